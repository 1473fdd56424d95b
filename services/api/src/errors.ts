/**
 * The error model. Every failure the API reports is an AppError with a stable UPPER_SNAKE code,
 * an HTTP status, a message a caller can read, and (where a person can act) a hint.
 * Adapters (clients/*) translate foreign errors into these; nothing else imports axios or dockerode.
 */

export interface AppErrorOptions {
  hint?: string;
  /** Seconds after which a retry makes sense; sent as `Retry-After`. */
  retryAfterS?: number;
  /** Extra machine-readable fields added to the error body (e.g. validation details). */
  details?: Record<string, unknown>;
  cause?: unknown;
}

/**
 * An AppError is an answer, not a bug: it carries no stack trace. Collecting one costs about 50 µs
 * (make bench: 7 % of a refusal under overload) and nobody reads it; the request id and the code
 * find the place. What is unexpected is not an AppError: it is logged with its own stack (an
 * INTERNAL error keeps it as `cause`).
 */
export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  readonly hint?: string;
  readonly retryAfterS?: number;
  readonly details?: Record<string, unknown>;

  constructor(code: string, status: number, message: string, opts: AppErrorOptions = {}) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    } finally {
      Error.stackTraceLimit = limit;
    }
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.hint = opts.hint;
    this.retryAfterS = opts.retryAfterS;
    this.details = opts.details;
  }
}

export interface FieldProblem {
  field: string;
  message: string;
}

export class ValidationError extends AppError {
  constructor(message: string, problems: FieldProblem[] = [], opts: AppErrorOptions = {}) {
    super('VALIDATION_ERROR', 400, message, { ...opts, details: { ...opts.details, fields: problems } });
  }
}

export class UnauthorizedError extends AppError {
  constructor(message = 'Authentication required') {
    super('UNAUTHORIZED', 401, message, { hint: 'Send HTTP basic auth credentials of a user in AUTH_USERS.' });
  }
}

export class ForbiddenError extends AppError {
  constructor(message = 'This route is for admin users only') {
    super('FORBIDDEN', 403, message, { hint: 'Use a user listed in ADMIN_USERS.' });
  }
}

export class NotFoundError extends AppError {
  constructor(message: string, opts: AppErrorOptions = {}) {
    super('NOT_FOUND', 404, message, opts);
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(limit: string) {
    super('PAYLOAD_TOO_LARGE', 413, `Request body is larger than ${limit}`, {
      hint: 'Send a smaller body (resize images before base64-encoding them).',
    });
  }
}

export class ModelNotFoundError extends AppError {
  constructor(model: string, opts: AppErrorOptions = {}) {
    super('MODEL_NOT_FOUND', 404, `Model '${model}' is not installed on this server`, {
      hint: `Pull it first: \`make pull MODEL=${model}\` (or \`ollama pull ${model}\` inside the ollama container).`,
      ...opts,
      details: { model, ...opts.details },
    });
  }
}

export class OllamaUnavailableError extends AppError {
  constructor(message = 'Ollama is not reachable', opts: AppErrorOptions = {}) {
    super('OLLAMA_UNAVAILABLE', 503, message, {
      retryAfterS: 10,
      hint: 'Check that the ollama container (or Ollama.app) is running: `make ps` / `make logs`. Callers should fall back to another provider now.',
      ...opts,
    });
  }
}

export class OllamaRestartingError extends AppError {
  constructor(retryAfterS = 15) {
    super('OLLAMA_RESTARTING', 503, 'Ollama is being restarted by an admin', {
      retryAfterS,
      hint: 'Retry shortly, or fall back to another provider.',
    });
  }
}

export class UpstreamTimeoutError extends AppError {
  constructor(model: string | undefined, timeoutS: number, opts: AppErrorOptions = {}) {
    super('UPSTREAM_TIMEOUT', 504, `Ollama did not answer${model ? ` for '${model}'` : ''} within ${timeoutS} s`, {
      hint: 'The model may be loading or the GPU overloaded. Raise MODEL_TIMEOUTS for this model, use a smaller model, or retry with "async": true.',
      ...opts,
    });
  }
}

export class InsufficientMemoryError extends AppError {
  constructor(upstreamMessage: string, opts: AppErrorOptions = {}) {
    super('INSUFFICIENT_MEMORY', 503, `The model does not fit in memory: ${upstreamMessage}`, {
      retryAfterS: 30,
      hint: 'Use a smaller model or quantization (e.g. a Q4 variant), lower NUM_CTX, or unload other models (OLLAMA_MAX_LOADED_MODELS=1).',
      ...opts,
    });
  }
}

export class QueueFullError extends AppError {
  constructor(message: string, retryAfterS: number, opts: AppErrorOptions = {}) {
    super('QUEUE_FULL', 503, message, {
      hint: 'The GPU is busy. Retry after the Retry-After delay, or fall back to another provider.',
      ...opts,
      retryAfterS,
    });
  }
}

export class QueueTimeoutError extends AppError {
  constructor(waitedS: number, retryAfterS: number) {
    super('QUEUE_TIMEOUT', 503, `Waited ${waitedS} s in the queue without getting a GPU slot`, {
      retryAfterS,
      hint: 'The GPU is busy with long generations. Retry later, raise QUEUE_TIMEOUT_S, or fall back to another provider.',
    });
  }
}

/** Ollama rejected the request (its 400): bad option, unsupported capability, ... */
export class UpstreamRejectedError extends AppError {
  constructor(upstreamMessage: string, opts: AppErrorOptions = {}) {
    super('UPSTREAM_REJECTED', 400, `Ollama rejected the request: ${upstreamMessage}`, opts);
  }
}

/** Anything else that went wrong in Ollama (its 5xx, a malformed answer). */
export class UpstreamError extends AppError {
  constructor(message: string, opts: AppErrorOptions = {}) {
    super('UPSTREAM_ERROR', 502, message, {
      hint: 'See the ollama logs (`make logs`) for details.',
      ...opts,
    });
  }
}

export class ClientClosedError extends AppError {
  constructor() {
    super('CLIENT_CLOSED_REQUEST', 499, 'The client closed the request');
  }
}

export class SchemaValidationFailedError extends AppError {
  constructor(attempts: number, errors: string[], opts: AppErrorOptions = {}) {
    super('SCHEMA_VALIDATION_FAILED', 422, `The model's output did not match the schema after ${attempts} attempt(s)`, {
      hint: 'Simplify the schema, describe the fields in the prompt, or use a larger model.',
      ...opts,
      details: { attempts, errors, ...opts.details },
    });
  }
}

export class InvalidSchemaError extends AppError {
  constructor(errors: string[]) {
    super('INVALID_SCHEMA', 400, 'The JSON Schema itself is invalid', { details: { errors } });
  }
}

export class ServiceShuttingDownError extends AppError {
  constructor() {
    super('SHUTTING_DOWN', 503, 'The API is shutting down', { retryAfterS: 5 });
  }
}

export class DockerUnavailableError extends AppError {
  constructor(message = 'The Docker API is not reachable', opts: AppErrorOptions = {}) {
    super('DOCKER_UNAVAILABLE', 503, message, {
      hint: 'Check DOCKER_HOST and that the docker-socket-proxy service is running (`make ps`).',
      ...opts,
    });
  }
}

export class ContainerNotFoundError extends AppError {
  constructor(what: string, opts: AppErrorOptions = {}) {
    super('CONTAINER_NOT_FOUND', 404, `No container found for ${what}`, {
      hint: 'Start the stack (`make up`), or set OLLAMA_CONTAINER to the container name.',
      ...opts,
    });
  }
}

export class ConflictError extends AppError {
  constructor(code: string, message: string, opts: AppErrorOptions = {}) {
    super(code, 409, message, opts);
  }
}

/** Thrown by loadConfig: lists every bad key, never a value. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}
