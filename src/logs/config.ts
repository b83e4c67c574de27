import { z } from 'zod';

/** Following nova-compute's log (config section `novaLog`). */
export const novaLogConfigSchema = z.strictObject({
  source: z.enum(['none', 'file', 'journald', 'cri']).default('none').describe('Where nova-compute logs: a file (distro packages, OpenStack-Ansible), journald, or CRI container logs (Atmosphere).'),
  path: z.string().startsWith('/').default('/var/log/nova/nova-compute.log').describe('`file`: the log file (host path).'),
  unit: z.string().min(1).default('nova-compute.service').describe('`journald`: the systemd unit.'),
  journalDirectory: z.string().startsWith('/').nullable().default(null).describe('`journald`: a journal directory to read instead of the system journal (default: the host\'s /var/log/journal when a host root is set).'),
  journalctlPath: z.string().min(1).default('journalctl').describe('`journald`: the journalctl binary.'),
  glob: z.string().startsWith('/').default('/var/log/containers/nova-compute-*.log').describe('`cri`: links to container logs (host path; `*` wildcards in the file name).'),
  container: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a Kubernetes container name').default('nova-compute').describe('`cri`: the container whose logs count (pods have init containers too).'),
  startAt: z.enum(['end', 'beginning']).default('end').describe('Where to begin the first time (no saved position): `end` does not count history.'),
  stateFile: z.string().min(1).default('nova-log.json').describe('Position and counts, relative to the agent\'s stateDir (or absolute).'),
  pollIntervalSeconds: z.number().min(0.05).max(60).default(1).describe('`file`/`cri`: how often to look for new lines.'),
  incidentWindowSeconds: z.number().int().min(1).max(3600).default(120).describe('Lines of one failure (castellan, Nova, traceback) within this much log time count once.'),
  maxLineBytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(64 * 1024).describe('Longer lines are cut (binary garbage); nova-compute\'s longest lines are a few KiB.'),
});

export type NovaLogConfig = z.infer<typeof novaLogConfigSchema>;
