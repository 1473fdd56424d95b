/**
 * `"async": true` on any generation route: admission (validation, model check, queue place)
 * happens now, so those errors keep their status; the work then runs as a job and the caller
 * gets 202 with the job id. Without `async`, the same work runs for the waiting caller.
 */
import type { Request, Response } from 'express';
import { Router } from 'express';
import Joi from 'joi';
import type { Config } from '../config';
import { AppError } from '../errors';
import type { JobStore } from '../services/jobs.service';
import { cachedJson, type CacheContext } from './cache';
import { isAdmin, userOf } from './auth';
import { clientGone } from './request-context';
import { validate } from './validate';

/** Admits a request and returns the function that produces its JSON answer. */
export type Admit = (signal: AbortSignal, onRunning: () => void) => Promise<() => Promise<unknown>>;

export async function respond(req: Request, res: Response, jobs: JobStore, kind: string, admit: Admit, cache?: CacheContext): Promise<void> {
  if (req.body?.async !== true) {
    const signal = clientGone(res);
    const run = async () => (await admit(signal, () => undefined))();
    if (cache) await cachedJson(req, res, cache, run);
    else res.json(await run());
    return;
  }
  const controller = new AbortController();
  let markRunning: () => void = () => undefined;
  const produce = await admit(controller.signal, () => markRunning());
  const job = jobs.add(kind, userOf(req), controller, (running) => {
    markRunning = running;
    return produce();
  });
  res.locals.log = { ...res.locals.log, jobId: job.id };
  res.status(202).location(`/v1/jobs/${job.id}`).json({ job_id: job.id, status: job.status, kind, poll: `/v1/jobs/${job.id}` });
}

const idParams = Joi.object({ id: Joi.string().guid().required() });

export function jobRoutes(jobs: JobStore, auth: Config['auth']): Router {
  const router = Router();
  const notFound = (id: string) => new AppError('JOB_NOT_FOUND', 404, `No job ${id}`, { hint: 'Jobs are kept JOBS_TTL_S after they end and are lost when the API restarts.' });

  router.get('/jobs/:id', validate({ params: idParams }), (req, res) => {
    const job = jobs.get(String(req.params.id), userOf(req), isAdmin(auth, req));
    if (!job) throw notFound(String(req.params.id));
    res.json(job);
  });

  router.delete('/jobs/:id', validate({ params: idParams }), (req, res) => {
    const job = jobs.cancel(String(req.params.id), userOf(req), isAdmin(auth, req));
    if (!job) throw notFound(String(req.params.id));
    res.json(job);
  });
  return router;
}
