import { z } from 'zod';
import { cronExpression } from './cron.js';
import { LOG_FORMATS } from '../logger.js';
import { guestsConfigSchema } from '../guests/config.js';
import { healthConfigSchema } from '../health/config.js';
import { openstackConfigSchema } from '../openstack/config.js';
import { placementConfigSchema } from '../placement/config.js';
import { identityConfigSchema } from '../identity/config.js';
import { novaLogConfigSchema } from '../logs/config.js';
import { barbicanConfigSchema } from '../barbican/config.js';


const positiveSeconds = z.number().positive().max(3600);

export const libvirtConfigSchema = z.strictObject({
  uri: z.string().min(1).default('qemu:///system').describe('libvirt connection URI; the agent adds `-r` (read-only socket) for everything but domcapabilities.'),
  virshPath: z.string().min(1).default('virsh').describe('virsh binary (looked up on PATH).'),
  virtType: z.enum(['auto', 'kvm', 'qemu']).default('auto').describe('`auto`: kvm when /dev/kvm exists, else qemu (TCG).'),
  machineTypes: z.array(z.string().min(1)).min(1).default(['default', 'q35']).describe('Machine types to ask domain capabilities for; `default` means libvirt\'s default machine type.'),
  timeoutSeconds: positiveSeconds.default(30).describe('Limit of one virsh call.'),
  domcapsMaxBytes: z
    .number()
    .int()
    .min(64 * 1024)
    .max(64 * 1024 * 1024)
    .default(1024 * 1024)
    .describe('Output cap of one `virsh domcapabilities` (real answers are 5–30 KiB); past it virsh is killed and the libvirt probe fails with LIBVIRT_OUTPUT_TOO_LARGE.'),
  domainXmlMaxBytes: z
    .number()
    .int()
    .min(16 * 1024)
    .max(16 * 1024 * 1024)
    .default(128 * 1024)
    .describe("Output allowance per domain for the guest inventory's `virsh dumpxml` batch (Nova's domain XML is 5–30 KiB); a batch may print 64 KiB + this × its domains + 16 KiB × its secrets."),
});

export const swtpmConfigSchema = z.strictObject({
  user: z
    .string()
    .min(1)
    .nullable()
    .default(null)
    .describe("User libvirt runs swtpm as; null = libvirt's own choice: qemu.conf swtpm_user (read where libvirtd lives), else tss (root where no tss account exists)."),
  group: z.string().min(1).nullable().default(null).describe('Group libvirt runs swtpm as; null = qemu.conf swtpm_group, else tss (root where no tss group exists).'),
  stateDir: z.string().startsWith('/').default('/var/lib/libvirt/swtpm').describe('libvirt\'s swtpm state directory for the system instance.'),
  swtpmPath: z.string().min(1).default('swtpm').describe('swtpm binary (looked up on PATH, as libvirt does).'),
  swtpmSetupPath: z.string().min(1).default('swtpm_setup').describe('swtpm_setup binary.'),
  swtpmIoctlPath: z.string().min(1).default('swtpm_ioctl').describe('swtpm_ioctl binary.'),
  timeoutSeconds: positiveSeconds.default(10).describe('Limit of one swtpm --print-capabilities call.'),
});

export const emulationConfigSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('Run throwaway swtpm instances to prove emulation works.'),
  levels: z.array(z.enum(['basic', 'state'])).min(1).default(['basic', 'state']).describe('basic: startup/self-test/random/capability; state: encrypted NV state survives a restart (TPM 2.0).'),
  schedule: cronExpression.default('*/10 * * * *').describe('node-cron schedule of the emulation checks.'),
  timeoutSeconds: positiveSeconds.default(60).describe('Overall limit for one round of emulation checks.'),
  checkTimeoutSeconds: positiveSeconds.default(15).describe('Limit of one check from its first swtpm start to its last stop (the state check starts swtpm three times), within the round\'s limit.'),
  versions: z.array(z.enum(['1.2', '2.0'])).min(1).default(['1.2', '2.0']).describe('TPM versions to check (drop 1.2 where libtpms is built without it on purpose).'),
  runAs: z.enum(['auto', 'swtpm-user', 'self']).default('auto').describe("Who runs the throwaway swtpm: auto = libvirt's swtpm user and group (swtpm.user/swtpm.group) when the agent is root, as libvirt does, else the agent's own user."),
  tempDir: z.string().startsWith('/').nullable().default(null).describe('Parent of the private 0700 check directories; null = the OS temp dir (systemd PrivateTmp).'),
});

export const configSchema = z.strictObject({
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('pino log level (logs go to stdout).'),
  logFormat: z
    .enum(LOG_FORMATS)
    .default('json')
    .describe('Log line format: json (pino) or logfmt. Under systemd (JOURNAL_STREAM) each line also starts with its syslog priority `<N>`, so `journalctl -p err` filters.'),
  hostRoot: z.string().startsWith('/').default('/').describe('Host paths are resolved under this prefix (a pod mounting the host at /host sets `/host`).'),
  stateDir: z.string().startsWith('/').default('/var/lib/vtpm-agent').describe('Where the agent keeps persistent state (systemd StateDirectory).'),
  splay: z
    .number()
    .min(0)
    .max(86400)
    .default(300)
    .describe(
      'Seconds: every scheduled run (probes, Placement reconcile, Barbican preflight) starts at a stable per-host offset after its tick, a hash of the host identity (identity.providerName, identity.novaHost, else the OS host name) times min(splay, the schedule interval), so a fleet does not call Keystone, Placement and Barbican in the same second. 0 disables.',
    ),
  listen: z
    .strictObject({
      host: z.string().min(1).default('0.0.0.0').describe('Address /metrics, /healthz, /readyz and /status listen on.'),
      port: z.number().int().min(0).max(65535).default(9643).describe('TCP port (9643 by default; 0 picks a free port).'),
    })
    .prefault({}),
  web: z
    .strictObject({
      configFile: z
        .string()
        .min(1)
        .nullable()
        .default(null)
        .describe('exporter-toolkit web configuration file (the YAML node_exporter --web.config.file takes: tls_server_config, basic_auth_users, http_server_config.headers, rate_limit); null = plain HTTP without auth. --web.config.file sets it.'),
      headersTimeoutSeconds: z.number().positive().max(300).default(10).describe('A connection must deliver a complete request (TLS handshake and headers) within this long of being accepted, or it is closed.'),
      requestTimeoutSeconds: z.number().positive().max(600).default(30).describe('Limit for receiving one whole request (Node requestTimeout).'),
      keepAliveTimeoutSeconds: z.number().positive().max(600).default(72).describe('Idle keep-alive connections are closed after this long (longer than any scrape interval, so Prometheus reuses connections).'),
      maxConnections: z.number().int().min(8).max(65_536).default(256).describe('At most this many open connections; at the cap, the oldest connection not being served (slow or idle) is shed for the new one.'),
      maxPipelinedRequests: z.number().int().min(1).max(1024).default(16).describe('A connection with more requests than this pipelined and unanswered is closed (a flood; Prometheus sends one at a time).'),
      maxHeaderBytes: z.number().int().min(1024).max(1_048_576).default(16_384).describe('Largest request head (request line and headers) accepted; larger gets 431.'),
    })
    .prefault({}),
  probes: z
    .strictObject({
      schedule: cronExpression.default('*/5 * * * *').describe('Default node-cron schedule of the probes (a first run happens at start).'),
      timeoutSeconds: positiveSeconds.default(60).describe('Default hard limit of one probe run.'),
      concurrency: z.number().int().min(1).max(16).default(2).describe('At most this many probes run at once (they spawn virsh and swtpm).'),
    })
    .prefault({}),
  libvirt: libvirtConfigSchema.prefault({}),
  swtpm: swtpmConfigSchema.prefault({}),
  emulation: emulationConfigSchema.prefault({}),
  guests: guestsConfigSchema.prefault({}),
  health: healthConfigSchema.prefault({}),
  openstack: openstackConfigSchema.prefault({}),
  placement: placementConfigSchema.prefault({}),
  identity: identityConfigSchema.prefault({}),
  novaLog: novaLogConfigSchema.prefault({}),
  barbican: barbicanConfigSchema.prefault({}),
});

export type AgentConfig = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
