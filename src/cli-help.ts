/**
 * The command line in one table: the parser's options, `--help` of every command and the man
 * page vtpm-agent(8) (scripts/gen-manpage.ts) are all generated from it, so they cannot drift.
 */

export interface OptionSpec {
  /** Long name without dashes (`config`, `log.format`). */
  readonly name: string;
  readonly short?: string;
  readonly type: 'string' | 'boolean';
  readonly multiple?: boolean;
  /** Placeholder of the value (string options). */
  readonly arg?: string;
  readonly description: string;
}

export interface CommandSpec {
  readonly name: string;
  /** Arguments after the command name, for the synopsis. */
  readonly synopsis: string;
  /** One line for the command list. */
  readonly summary: string;
  /** A paragraph for `<command> --help` and the man page. */
  readonly description: string;
  readonly options: readonly OptionSpec[];
  readonly exitCodes?: ReadonlyArray<readonly [number, string]>;
}

/** Exit codes: check → 0 usable, 1 none usable, 2 the check itself failed; 64 = EX_USAGE, 78 = EX_CONFIG. */
export const EXIT = { OK: 0, NONE_USABLE: 1, CHECK_FAILED: 2, NEEDS_ATTENTION: 3, USAGE: 64, CONFIG: 78 } as const;

const USAGE_EXIT = [EXIT.USAGE, 'the command line is wrong (unknown command or option, missing value)'] as const;
const CONFIG_EXIT = [EXIT.CONFIG, 'the configuration cannot be read or is invalid (EX_CONFIG; every problem is printed)'] as const;

/** Options every command accepts. */
export const GLOBAL_OPTIONS: readonly OptionSpec[] = [
  { name: 'config', short: 'c', type: 'string', arg: 'PATH', description: 'configuration file (default /etc/vtpm-agent/config.yaml, optional; also $VTPM_AGENT_CONFIG)' },
  { name: 'set', type: 'string', multiple: true, arg: 'KEY=VALUE', description: 'override one configuration key, e.g. --set listen.port=9643 (repeatable)' },
  { name: 'log.level', type: 'string', arg: 'LEVEL', description: 'fatal|error|warn|info|debug|trace|silent' },
  { name: 'log-level', type: 'string', arg: 'LEVEL', description: 'the same as --log.level' },
  { name: 'log.format', type: 'string', arg: 'FORMAT', description: 'json|logfmt; under systemd each line also starts with its syslog priority <N>' },
  { name: 'help', short: 'h', type: 'boolean', description: 'show help (of the command, after one)' },
  { name: 'version', type: 'boolean', description: 'print version, git revision, Node.js version and platform' },
];

export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'check',
    synopsis: '[--json] [--strict | --pre-reboot]',
    summary: 'check this host once: which TPM version and model really work, and why not',
    description:
      'Runs every enabled probe once (libvirt domain capabilities, swtpm, host, emulation, health checks, guest inventory) plus the one-shot view of each configured capability, and prints the verdict. Logs go to stderr (warn and up unless --log.level is given), the report to stdout.',
    options: [
      { name: 'json', type: 'boolean', description: 'print the report as JSON' },
      { name: 'strict', type: 'boolean', description: 'exit 3 when vTPM is usable but a section needs attention (a failed health check, a guest at risk, drift)' },
      {
        name: 'pre-reboot',
        type: 'boolean',
        description: 'may this host be rebooted? only the running vTPM guests a reboot would strand, and why (exit 0 none, 1 guests at risk, 2 could not tell: libvirt unreachable or a domain unreadable)',
      },
    ],
    exitCodes: [
      [EXIT.OK, 'at least one TPM version and model is usable'],
      [EXIT.NONE_USABLE, 'none is usable'],
      [EXIT.CHECK_FAILED, 'the check itself could not run'],
      [EXIT.NEEDS_ATTENTION, '(--strict) usable, but a section needs attention'],
      USAGE_EXIT,
      CONFIG_EXIT,
    ],
  },
  {
    name: 'serve',
    synopsis: '',
    summary: 'run the agent: scheduled probes, capabilities, /metrics, /healthz, /readyz, /status',
    description:
      'The daemon. It answers HTTP at once and is ready (/readyz) after the first probe round. Under systemd it sends READY=1 and watchdog pings (Type=notify), and logs carry their priority to journald. SIGHUP (systemctl reload) re-reads the configuration: a valid change is applied in place, an invalid one is logged key by key and changes nothing. SIGTERM and SIGINT stop it within 5 seconds.',
    options: [
      {
        name: 'web.config.file',
        type: 'string',
        arg: 'PATH',
        description: "exporter-toolkit web configuration (TLS, client certificates, basic auth, headers), the file node_exporter's --web.config.file takes; same as --set web.configFile=PATH. Certificates and users are re-read when the files change and on SIGHUP",
      },
    ],
    exitCodes: [[EXIT.OK, 'stopped by SIGTERM or SIGINT'], [1, 'could not start (e.g. the port is taken)'], USAGE_EXIT, CONFIG_EXIT],
  },
  {
    name: 'reconcile',
    synopsis: '--once [--dry-run] [--json]',
    summary: "check this host, then reconcile its Placement traits once",
    description: 'Runs the probes once, then one pass of the Placement trait reconciler (inside `serve` it runs on its own schedule).',
    options: [
      { name: 'once', type: 'boolean', description: 'one pass, then exit (required)' },
      { name: 'dry-run', type: 'boolean', description: 'show what would change in Placement, write nothing' },
      { name: 'json', type: 'boolean', description: 'print the outcome as JSON' },
    ],
    exitCodes: [[EXIT.OK, 'consistent'], [1, 'drift'], [2, 'failure'], [3, 'no OpenStack credentials configured'], USAGE_EXIT, CONFIG_EXIT],
  },
  {
    name: 'fleet',
    synopsis: '[--prometheus URL] [--json] [--timeout SECONDS]',
    summary: "the whole cloud from an admin host: vTPM traits, capacity, agents' verdicts, flavor and image audit",
    description:
      "Run from any admin host with OpenStack credentials. Lists every compute provider's COMPUTE_SECURITY_TPM_* traits and fencing from Placement (one request per trait, not per host), capacity per TPM version × model (advertised, verified, fenced), with --prometheus the agents' verdicts, agents missing, drift and guests at risk, and audits vTPM flavors (Nova) and images (Glance): invalid combinations, configurations no verified host can run, vTPM flavors that do not forbid the fencing trait, and hw:tpm_secret_security=user flavors.",
    options: [
      { name: 'prometheus', type: 'string', arg: 'URL', description: 'Prometheus that scrapes the agents, e.g. http://prometheus:9090' },
      { name: 'json', type: 'boolean', description: 'print the report as JSON' },
      { name: 'timeout', type: 'string', arg: 'SECONDS', description: 'limit of the whole run (default 120; each request has openstack.timeoutSeconds)' },
    ],
    exitCodes: [[EXIT.OK, 'consistent'], [1, 'findings'], [2, 'could not run (each failing source is named)'], USAGE_EXIT, CONFIG_EXIT],
  },
  {
    name: 'version',
    synopsis: '',
    summary: 'print version, git revision, Node.js version and platform',
    description: 'The same as --version. The revision is the git commit the build was made from.',
    options: [],
  },
  {
    name: 'help',
    synopsis: '[COMMAND]',
    summary: 'show help of vtpm-agent or of one command',
    description: 'The same as --help, or COMMAND --help.',
    options: [],
  },
];

export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/** node:util parseArgs options for these specs. */
export function parseArgsOptions(specs: readonly OptionSpec[]): Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> {
  return Object.fromEntries(specs.map((o) => [o.name, { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) }]));
}

/** `-c, --config PATH` */
export function optionFlags(o: OptionSpec): string {
  return `${o.short ? `-${o.short}, ` : ''}--${o.name}${o.arg ? ` ${o.arg}` : ''}`;
}

function optionTable(specs: readonly OptionSpec[]): string {
  const width = Math.max(...specs.map((o) => optionFlags(o).length));
  return specs.map((o) => `  ${optionFlags(o).padEnd(width)}  ${o.description}`).join('\n');
}

function wrap(text: string, width = 92, indent = ''): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(indent + line);
  return lines.join('\n');
}

export function mainUsage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `Usage: vtpm-agent <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Options (every command):
${optionTable(GLOBAL_OPTIONS)}

\`vtpm-agent <command> --help\` shows a command's options; \`man vtpm-agent\` the whole manual.
`;
}

export function commandUsage(command: CommandSpec): string {
  const parts = [`Usage: vtpm-agent ${command.name}${command.synopsis ? ` ${command.synopsis}` : ''} [options]`, '', wrap(command.description)];
  if (command.options.length) parts.push('', 'Options:', optionTable(command.options));
  parts.push('', 'Options (every command):', optionTable(GLOBAL_OPTIONS));
  if (command.exitCodes?.length) parts.push('', 'Exit status:', ...command.exitCodes.map(([code, text]) => `  ${String(code).padStart(2)}  ${text}`));
  return `${parts.join('\n')}\n`;
}
