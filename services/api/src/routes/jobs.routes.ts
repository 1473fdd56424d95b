/** GET and DELETE /v1/jobs/:id: poll or cancel an async job (its owner, or an admin). */
import { Router } from 'express';
import Joi from 'joi';
import type { Config } from '../config';
import { AppError } from '../errors';
import { isAdmin, userOf } from '../middleware/auth';
import { validate } from '../middleware/validate';
import type { JobStore } from '../services/job-store';

const idParams = Joi.object({ id: Joi.string().guid().required() });

export function jobRoutes(jobs: JobStore, auth: Config['auth']): Router {
  const router = Router();
  const notFound = (id: string) =>
    new AppError('JOB_NOT_FOUND', 404, `No job ${id}`, { hint: 'Jobs are kept JOBS_TTL_S after they end and are lost when the API restarts.' });

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
