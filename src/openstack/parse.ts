import type { z } from 'zod';
import { OpenStackError } from './errors.js';

/** Parses a service's JSON answer at the edge; a wrong shape is a `bad-response` naming the first issue. */
export function parseServiceBody<T>(schema: z.ZodType<T>, body: unknown, where: { service: string; method: string; path: string }): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new OpenStackError(
    { kind: 'bad-response', ...where },
    `${where.service}: ${where.method} ${where.path} answered an unexpected shape (${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'})`,
  );
}
