import type { NextFunction, Request, Response } from 'express';
import type Joi from 'joi';
import { ValidationError, type FieldProblem } from '../errors';

type Part = 'body' | 'query' | 'params';

/**
 * Express 5 gives a `*name` wildcard parameter as its path segments; model names and ids may
 * contain `/` (namespaces), so join them back before validation.
 */
export function joinWildcard(param: string) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    const params = req.params as Record<string, unknown>;
    if (Array.isArray(params[param])) params[param] = (params[param] as string[]).join('/');
    next();
  };
}

export interface ValidateOptions {
  /**
   * For bodies passed on to Ollama: the first problem only, the body left exactly as it came, and
   * the error's message made from that problem by `message`.
   */
  passthrough?: { message: (problem: FieldProblem) => string };
}

/** Validates request parts with joi; every bad field is listed in one 400 VALIDATION_ERROR. */
export function validate(schemas: Partial<Record<Part, Joi.Schema>>, opts: ValidateOptions = {}) {
  const pass = opts.passthrough;
  return (req: Request, _res: Response, next: NextFunction): void => {
    const problems: FieldProblem[] = [];
    for (const part of Object.keys(schemas) as Part[]) {
      const result = schemas[part]!.validate(req[part], { abortEarly: Boolean(pass), convert: true, errors: { wrap: { label: false } } });
      const value: unknown = result.value;
      const error = result.error;
      if (error) {
        for (const d of error.details) problems.push({ field: [part, ...d.path].join('.'), message: d.message });
      } else if (pass) {
        continue;
      } else if (part === 'query') {
        // Express 5's req.query is a getter: replace it with the converted values.
        Object.defineProperty(req, 'query', { value, writable: true, configurable: true });
      } else {
        (req as unknown as Record<Part, unknown>)[part] = value;
      }
    }
    if (pass && problems.length) {
      next(new ValidationError(pass.message(problems[0]), problems.slice(0, 1)));
      return;
    }
    if (problems.length) {
      next(new ValidationError(`Invalid request: ${problems.map((p) => p.field).join(', ')}`, problems));
      return;
    }
    next();
  };
}
