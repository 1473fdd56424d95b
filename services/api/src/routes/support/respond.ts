/**
 * `"async": true` on any generation route: admission (validation, model check, queue place)
 * happens now, so those errors keep their status; the work then runs as a job and the caller
 * gets 202 with the job id. Without `async`, the same work runs for the waiting caller.
 */
import type { Request, Response } from 'express';
import type { JobStore } from '../../services/job-store';
import { cachedJson, sendJson, type CacheContext } from './cached-json';
import { userOf } from '../../middleware/auth';
import { clientGone } from '../../middleware/request-context';

/** Admits a request and returns the function that produces its JSON answer. */
export type Admit = (signal: AbortSignal, onRunning: () => void) => Promise<() => Promise<unknown>>;

export async function respond(req: Request, res: Response, jobs: JobStore, kind: string, admit: Admit, cache?: CacheContext): Promise<void> {
  if ((req.body as { async?: unknown } | undefined)?.async !== true) {
    const signal = clientGone(res);
    const run = async () => (await admit(signal, () => undefined))();
    if (cache) await cachedJson(req, res, cache, run);
    else sendJson(res, await run());
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
  res
    .status(202)
    .location(`/v1/jobs/${job.id}`)
    .json({ job_id: job.id, status: job.status, kind, poll: `/v1/jobs/${job.id}` });
}
