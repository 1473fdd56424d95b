/**
 * Async jobs for long generations: Cloudflare cuts a request whose first byte takes more than
 * 100 s (HTTP 524), so a caller may send `"async": true`, get 202 {job_id}, and poll.
 *
 * Jobs live in this process's memory only: bounded in number (JOBS_MAX), kept JOBS_TTL_S after
 * they end, and lost when the API restarts. A job is readable by the user who
 * made it (and admins); ids are random UUIDs.
 */
import { randomUUID } from 'node:crypto';
import { AppError, QueueFullError } from '../errors';

export type JobStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface Job {
  id: string;
  kind: string;
  owner: string | null;
  status: JobStatus;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  result?: unknown;
  error?: { code: string; message: string; hint?: string; status: number };
}

interface Entry {
  job: Job;
  controller: AbortController;
  endedAt: number | null;
}

export interface JobsOptions {
  ttlS: number;
  max: number;
}

export class JobStore {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly opts: JobsOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Registers a job whose work already passed admission (validation, model check, queue place).
   * `work` gets a callback to report that it got the GPU.
   */
  add(kind: string, owner: string | null, controller: AbortController, work: (markRunning: () => void) => Promise<unknown>): Job {
    this.prune();
    if (this.activeCount() >= this.opts.max) {
      controller.abort();
      throw new QueueFullError(`Too many async jobs (${this.opts.max}) are queued or running`, 30, { details: { jobs: this.opts.max } });
    }
    if (this.entries.size >= this.opts.max) this.evictOldestEnded();
    const job: Job = { id: randomUUID(), kind, owner, status: 'queued', createdAt: this.iso(), startedAt: null, finishedAt: null };
    const entry: Entry = { job, controller, endedAt: null };
    this.entries.set(job.id, entry);
    const markRunning = () => {
      if (job.status === 'queued') {
        job.status = 'running';
        job.startedAt = this.iso();
      }
    };
    work(markRunning).then(
      (result) => this.finish(entry, 'done', { result }),
      (err: unknown) => {
        if (controller.signal.aborted && job.status === 'cancelled') return;
        const e = err instanceof AppError ? err : new AppError('INTERNAL', 500, 'Internal server error');
        this.finish(entry, 'failed', { error: { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}), status: e.status } });
      },
    );
    return job;
  }

  /** The job, if it exists and `user` may see it (its owner, or an admin). */
  get(id: string, user: string | null, isAdmin: boolean): Job | undefined {
    this.prune();
    const e = this.entries.get(id);
    if (!e || (!isAdmin && e.job.owner !== user)) return undefined;
    return e.job;
  }

  cancel(id: string, user: string | null, isAdmin: boolean): Job | undefined {
    const job = this.get(id, user, isAdmin);
    if (!job || job.finishedAt) return job;
    const e = this.entries.get(id)!;
    this.finish(e, 'cancelled', {});
    e.controller.abort();
    return job;
  }

  cancelAll(): void {
    for (const e of this.entries.values()) if (!e.job.finishedAt) e.controller.abort();
  }

  activeCount(): number {
    let n = 0;
    for (const e of this.entries.values()) if (!e.job.finishedAt) n++;
    return n;
  }

  get size(): number {
    return this.entries.size;
  }

  private finish(entry: Entry, status: JobStatus, extra: Partial<Job>): void {
    if (entry.job.finishedAt) return;
    Object.assign(entry.job, extra, { status, finishedAt: this.iso() });
    entry.endedAt = this.now();
  }

  private prune(): void {
    const cutoff = this.now() - this.opts.ttlS * 1000;
    for (const [id, e] of this.entries) if (e.endedAt !== null && e.endedAt < cutoff) this.entries.delete(id);
  }

  private evictOldestEnded(): void {
    let oldest: [string, number] | undefined;
    for (const [id, e] of this.entries) if (e.endedAt !== null && (!oldest || e.endedAt < oldest[1])) oldest = [id, e.endedAt];
    if (oldest) this.entries.delete(oldest[0]);
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }
}
