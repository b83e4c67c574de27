import cron from 'node-cron';
import { z } from 'zod';

/**
 * A node-cron expression (5 or 6 fields), validated by node-cron itself: an expression it would
 * refuse at schedule time (`99 * * * *`) is a configuration error (exit 78), not a crash at start.
 */
export const cronExpression = z
  .string()
  .refine((expr) => /^\S+( \S+){4,5}$/.test(expr) && cron.validate(expr), 'must be a cron expression with 5 or 6 fields, e.g. "*/5 * * * *"');
