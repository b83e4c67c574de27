#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { Agent } from './agent.js';
import { runCheck, runPreRebootCheck } from './check.js';
import { PRE_REBOOT_EXIT, renderPreReboot } from './guests/pre-reboot.js';
import { ConfigError, loadConfig } from './config/load.js';
import type { AgentConfig } from './config/schema.js';
import { createLogger, LogOutput } from './logger.js';
import { runReconcileOnce } from './placement/extension.js';
import { renderReport, renderSection, sectionsNeedingAttention } from './report.js';
import { buildInfo } from './version.js';

/** Exit codes: check → 0 usable, 1 none usable, 2 the check itself failed; 78 = EX_CONFIG. */
export const EXIT = { OK: 0, NONE_USABLE: 1, CHECK_FAILED: 2, NEEDS_ATTENTION: 3, USAGE: 64, CONFIG: 78 } as const;

const USAGE = `Usage: vtpm-agent <command> [options]

Commands:
  check [--json] [--strict]
                     check this host once: which TPM version × model really works, and why not
                     (exit 0 usable, 1 none usable, 2 the check could not run; with --strict,
                     3 when usable but a section needs attention: a failed health check, a
                     guest at risk, drift)
  check --pre-reboot [--json]
                     may this host be rebooted? lists the running vTPM guests that would not
                     come back after a reboot, and why (exit 0 none, 1 guests at risk, 2 could
                     not tell: libvirt unreachable or a domain unreadable)
  serve              run the agent: scheduled probes, /metrics, /healthz, /readyz, /status
  reconcile --once [--dry-run] [--json]
                     check this host, then reconcile its Placement traits once (exit 0 consistent,
                     1 drift, 2 failure, 3 no OpenStack credentials configured)
  version            print the version

Options:
  -c, --config PATH  configuration file (default /etc/vtpm-agent/config.yaml, optional)
  --set KEY=VALUE    override one configuration key, e.g. --set listen.port=9643 (repeatable)
  --log.level LEVEL  fatal|error|warn|info|debug|trace|silent (also --log-level)
  --log.format FMT   json|logfmt (under systemd each line also carries its priority)
  --json             (check, reconcile) print JSON instead of the table
  --once             (reconcile) one pass, then exit
  --dry-run          (reconcile) show what would change in Placement, write nothing
  --strict           (check) exit 3 when vTPM is usable but a section needs attention
  --pre-reboot       (check) only the vTPM guests a host reboot would strand
  -h, --help         this help
`;

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        set: { type: 'string', multiple: true },
        'log-level': { type: 'string' },
        'log.level': { type: 'string' },
        'log.format': { type: 'string' },
        json: { type: 'boolean' },
        once: { type: 'boolean' },
        'dry-run': { type: 'boolean' },
        strict: { type: 'boolean' },
        'pre-reboot': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    process.stderr.write(`vtpm-agent: ${(err as Error).message}\n\n${USAGE}`);
    return EXIT.USAGE;
  }
  const { values, positionals } = parsed;
  const command = positionals[0];
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return values.help ? EXIT.OK : EXIT.USAGE;
  }
  if (command === 'version') {
    process.stdout.write(`vtpm-agent ${buildInfo.version}\n`);
    return EXIT.OK;
  }
  if (command === 'reconcile' && !values.once) {
    process.stderr.write('vtpm-agent: reconcile runs inside `serve`; use `reconcile --once` for a single pass\n');
    return EXIT.USAGE;
  }
  if (values['pre-reboot'] && command !== 'check') {
    process.stderr.write(`vtpm-agent: --pre-reboot belongs to check, not ${command}\n\n${USAGE}`);
    return EXIT.USAGE;
  }
  if (command !== 'check' && command !== 'serve' && command !== 'reconcile') {
    process.stderr.write(`vtpm-agent: unknown command '${command}'\n\n${USAGE}`);
    return EXIT.USAGE;
  }
  const overrides = [...(values.set ?? [])];
  const logLevelFlag = values['log.level'] ?? values['log-level'];
  if (logLevelFlag) overrides.push(`logLevel=${logLevelFlag}`);
  if (values['log.format']) overrides.push(`logFormat=${values['log.format']}`);
  let loaded;
  try {
    loaded = await loadConfig({ path: values.config, overrides });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`vtpm-agent: ${err.message}\n`);
      return EXIT.CONFIG;
    }
    throw err;
  }
  const { config } = loaded;
  for (const warning of loaded.warnings) process.stderr.write(`vtpm-agent: warning: ${warning}\n`);

  if (command === 'reconcile') {
    const log = createLogger(logLevelFlag ? config.logLevel : 'warn', new LogOutput({ fd: 2, sync: true, format: config.logFormat }));
    try {
      // The verdict comes from a fresh run of the probes; no extension runs.
      const report = await runCheck({ config, log, extensions: [] });
      const outcome = await runReconcileOnce({ config, log, verdict: report.verdict, dryRun: values['dry-run'] === true });
      process.stdout.write(values.json ? `${JSON.stringify(outcome.section, null, 2)}\n` : `${renderSection(outcome.section)}\n`);
      return outcome.exitCode;
    } catch (err) {
      process.stderr.write(`vtpm-agent: reconcile could not run: ${(err as Error).stack ?? String(err)}\n`);
      return EXIT.CHECK_FAILED;
    }
  }

  if (command === 'check') {
    // The check's logs go to stderr (warn and up by default) so stdout is only the report.
    if (values['pre-reboot']) {
      const report = await runPreRebootCheck(config);
      process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderPreReboot(report)}\n`);
      return PRE_REBOOT_EXIT[report.outcome];
    }
    const log = createLogger(logLevelFlag ? config.logLevel : 'warn', new LogOutput({ fd: 2, sync: true, format: config.logFormat }));
    try {
      const report = await runCheck({ config, log });
      process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderReport(report)}\n`);
      if (!report.verdict) return EXIT.CHECK_FAILED;
      if (!report.verdict.anyUsable) return EXIT.NONE_USABLE;
      // Usable, but something an operator should look at: opt-in, so the 0/1/2 contract holds.
      return values.strict && sectionsNeedingAttention(report).length ? EXIT.NEEDS_ATTENTION : EXIT.OK;
    } catch (err) {
      process.stderr.write(`vtpm-agent: the check could not run: ${(err as Error).stack ?? String(err)}\n`);
      return EXIT.CHECK_FAILED;
    }
  }

  const output = new LogOutput({ fd: 1, format: config.logFormat });
  const log = createLogger(config.logLevel, output);
  log.info({ configSource: loaded.source ?? '(defaults)', version: buildInfo.version }, 'starting vtpm-agent');
  const agent = new Agent({ config, log });
  let stopping: Promise<void> | undefined;
  const stop = (signal: string) => {
    if (stopping) return;
    log.info({ signal }, 'stopping');
    // Hard deadline: whatever hangs, the process is gone within 5 s of the signal.
    setTimeout(() => {
      log.error('stop took longer than 5 s; exiting anyway');
      process.exit(1);
    }, 4500).unref();
    // Exit explicitly once stopped: a lingering handle must not keep a stopped agent around.
    stopping = agent.stop().then(
      () => log.flush(() => process.exit(0)),
      (err: unknown) => {
        log.error({ err }, 'stop failed');
        log.flush(() => process.exit(1));
      },
    );
  };
  // SIGHUP (`systemctl reload`) re-reads the configuration; without a handler Node would exit 129.
  process.on('SIGHUP', () => {
    log.info({ signal: 'SIGHUP', configSource: loaded.source ?? '(defaults)' }, 'reloading configuration');
    let candidate: AgentConfig | undefined;
    agent
      .reload(async () => {
        const reloaded = await loadConfig({ path: values.config, overrides });
        for (const warning of reloaded.warnings) log.warn(warning);
        return (candidate = reloaded.config);
      })
      .then((outcome) => {
        if (outcome.ok && candidate) output.format = candidate.logFormat;
      })
      .catch((err: unknown) => log.error({ err }, 'reload failed; the running configuration stays'));
  });
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    await agent.start();
  } catch (err) {
    log.fatal({ err }, 'vtpm-agent could not start');
    await agent.stop().catch(() => undefined);
    return 1;
  }
  return await new Promise<number>(() => undefined);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`vtpm-agent: unexpected error: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 2;
  },
);
