/**
 * The admin audit trail: every admin action writes one line
 * `audit {user, action, target, outcome, durationMs, requestId?}`.
 */
import { AppError } from '../errors';
import type { Logger } from '../logger';

/** Who asked: for the audit line. */
export interface Actor {
  user: string;
  requestId?: string;
}

/** An error's code for the audit line (INTERNAL for anything that is not ours). */
export function outcomeOf(err: unknown): string {
  return err instanceof AppError ? err.code : 'INTERNAL';
}

export class AuditLog {
  constructor(
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {}

  write(actor: Actor, action: string, target: string, outcome: string, started: number): void {
    this.logger.info('audit', {
      user: actor.user,
      action,
      target,
      outcome,
      durationMs: this.now() - started,
      ...(actor.requestId ? { requestId: actor.requestId } : {}),
    });
  }

  /** Runs one action and audits its outcome; `setTarget` names the target once it is known. */
  async audited<T>(actor: Actor, action: string, target: string, fn: (setTarget: (t: string) => void) => Promise<T>): Promise<T> {
    const started = this.now();
    let tgt = target;
    try {
      const r = await fn((t) => {
        tgt = t;
      });
      this.write(actor, action, tgt, 'ok', started);
      return r;
    } catch (err) {
      this.write(actor, action, tgt, outcomeOf(err), started);
      throw err;
    }
  }
}
