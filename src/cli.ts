#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { COMMANDS, EXIT, GLOBAL_OPTIONS, commandUsage, findCommand, mainUsage, optionFlags, parseArgsOptions, type CommandSpec } from './cli-help.js';
import { ConfigError, loadConfig } from './config/load.js';
import type { AgentConfig } from './config/schema.js';
import { createLogger, LogOutput } from './logger.js';
import { loadWebConfig, type WebConfig } from './reporter/web-config.js';
import { buildInfo, versionText } from './version.js';

export { EXIT };

/** A usage error in words, with where to look: exit 64 (EX_USAGE), never parseArgs' raw text. */
function usageError(message: string, command?: CommandSpec): number {
  const help = command ? `vtpm-agent ${command.name} --help` : 'vtpm-agent --help';
  process.stderr.write(`vtpm-agent${command ? ` ${command.name}` : ''}: ${message}\nRun \`${help}\` for the options.\n`);
  return EXIT.USAGE;
}

/** parseArgs' error codes → a human message naming the option. */
function describeParseError(err: Error & { code?: string }, command: CommandSpec | undefined): string {
  const quoted = /'([^']+)'/.exec(err.message)?.[1] ?? '';
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const elsewhere = COMMANDS.filter((c) => c !== command && c.options.some((o) => `--${o.name}` === quoted || (o.short && `-${o.short}` === quoted)));
      const hint = elsewhere.length ? ` (it belongs to: ${elsewhere.map((c) => c.name).join(', ')})` : '';
      return `unknown option ${quoted}${command ? ` for '${command.name}'` : ''}${hint}`;
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const option = [...GLOBAL_OPTIONS, ...(command?.options ?? [])].find((o) => quoted.includes(`--${o.name}`));
      return option?.type === 'string' ? `option ${optionFlags(option)} needs a value` : `option ${quoted || '?'} takes no value`;
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument '${quoted}'`;
    default:
      return err.message;
  }
}

export async function main(argv: string[]): Promise<number> {
  // First find the command (the first word that is not an option or an option's value), then
  // parse strictly with the options of that command only.
  const everyOption = parseArgsOptions([...GLOBAL_OPTIONS, ...COMMANDS.flatMap((c) => c.options)]);
  const loose = parseArgs({ args: argv, options: everyOption, allowPositionals: true, strict: false });
  const word = loose.positionals[0];
  let command = word === undefined ? undefined : findCommand(word);
  if (word !== undefined && !command) return usageError(`unknown command '${word}' (commands: ${COMMANDS.map((c) => c.name).join(', ')})`);
  // `help check` is `check --help`.
  let helpFor = command;
  if (command?.name === 'help') {
    helpFor = loose.positionals[1] === undefined ? undefined : findCommand(loose.positionals[1]);
    if (loose.positionals[1] !== undefined && !helpFor) return usageError(`no help for unknown command '${loose.positionals[1]}'`);
    process.stdout.write(helpFor ? commandUsage(helpFor) : mainUsage());
    return EXIT.OK;
  }
  let values;
  try {
    values = parseArgs({
      args: argv,
      options: parseArgsOptions([...GLOBAL_OPTIONS, ...(command?.options ?? [])]),
      allowPositionals: true,
      strict: true,
    }).values as Record<string, string | boolean | string[] | undefined>;
  } catch (err) {
    return usageError(describeParseError(err as Error & { code?: string }, command), command);
  }
  const extra = loose.positionals.slice(1);
  if (extra.length) return usageError(`unexpected argument '${extra[0]}'`, command);
  if (values.help) {
    process.stdout.write(command ? commandUsage(command) : mainUsage());
    return EXIT.OK;
  }
  if (values.version || command?.name === 'version') {
    process.stdout.write(versionText(await buildInfo()));
    return EXIT.OK;
  }
  if (!command) {
    process.stderr.write(mainUsage());
    return EXIT.USAGE;
  }
  if (command.name === 'reconcile' && !values.once) {
    return usageError('reconcile runs inside `serve`; use `reconcile --once` for a single pass', command);
  }
  const str = (name: string) => values[name] as string | undefined;
  const flag = (name: string) => values[name] === true;
  const overrides = [...((values.set as string[] | undefined) ?? [])];
  const logLevelFlag = str('log.level') ?? str('log-level');
  if (logLevelFlag) overrides.push(`logLevel=${logLevelFlag}`);
  if (str('log.format')) overrides.push(`logFormat=${str('log.format')}`);
  if (str('web.config.file')) overrides.push(`web.configFile=${JSON.stringify(str('web.config.file'))}`);
  let loaded;
  try {
    loaded = await loadConfig({ path: str('config'), overrides });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`vtpm-agent: ${err.message}\n`);
      return EXIT.CONFIG;
    }
    throw err;
  }
  const { config } = loaded;
  for (const warning of loaded.warnings) process.stderr.write(`vtpm-agent: warning: ${warning}\n`);

  if (command.name === 'reconcile') {
    const log = createLogger(logLevelFlag ? config.logLevel : 'warn', new LogOutput({ fd: 2, sync: true, format: config.logFormat }));
    const [{ runCheck }, { runReconcileOnce }, { renderSection }] = await Promise.all([import('./check.js'), import('./placement/extension.js'), import('./report.js')]);
    try {
      // The verdict comes from a fresh run of the probes; no extension runs.
      const report = await runCheck({ config, log, extensions: [] });
      const outcome = await runReconcileOnce({ config, log, verdict: report.verdict, dryRun: flag('dry-run') });
      process.stdout.write(flag('json') ? `${JSON.stringify(outcome.section, null, 2)}\n` : `${renderSection(outcome.section)}\n`);
      return outcome.exitCode;
    } catch (err) {
      process.stderr.write(`vtpm-agent: reconcile could not run: ${(err as Error).stack ?? String(err)}\n`);
      return EXIT.CHECK_FAILED;
    }
  }

  if (command.name === 'fleet') {
    const timeoutSeconds = str('timeout') === undefined ? 120 : Number(str('timeout'));
    if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0 || timeoutSeconds > 3600) {
      return usageError(`--timeout must be a number of seconds between 0 and 3600, got ${JSON.stringify(str('timeout'))}`, command);
    }
    const log = createLogger(logLevelFlag ? config.logLevel : 'warn', new LogOutput({ fd: 2, sync: true, format: config.logFormat }));
    const [{ runFleet }, { renderFailures, renderFleet }] = await Promise.all([import('./fleet/run.js'), import('./fleet/render.js')]);
    try {
      const outcome = await runFleet({ config, log, prometheusUrl: str('prometheus') ?? null, timeoutSeconds });
      if (outcome.report) process.stdout.write(flag('json') ? `${JSON.stringify(outcome.report, null, 2)}\n` : `${renderFleet(outcome.report)}\n`);
      else {
        if (flag('json')) process.stdout.write(`${JSON.stringify({ failures: outcome.failures }, null, 2)}\n`);
        process.stderr.write(`${renderFailures(outcome.failures)}\n`);
      }
      return outcome.exitCode;
    } catch (err) {
      process.stderr.write(`vtpm-agent: fleet could not run: ${(err as Error).stack ?? String(err)}\n`);
      return EXIT.CHECK_FAILED;
    }
  }

  if (command.name === 'check') {
    // The check's logs go to stderr (warn and up by default) so stdout is only the report.
    const log = createLogger(logLevelFlag ? config.logLevel : 'warn', new LogOutput({ fd: 2, sync: true, format: config.logFormat }));
    if (flag('pre-reboot')) {
      const [{ runPreRebootCheck }, { PRE_REBOOT_EXIT, renderPreReboot }] = await Promise.all([import('./check.js'), import('./guests/pre-reboot.js')]);
      const report = await runPreRebootCheck(config, log);
      process.stdout.write(flag('json') ? `${JSON.stringify(report, null, 2)}\n` : `${renderPreReboot(report)}\n`);
      return PRE_REBOOT_EXIT[report.outcome];
    }
    const [{ runCheck }, { renderReport, sectionsNeedingAttention }] = await Promise.all([import('./check.js'), import('./report.js')]);
    try {
      const report = await runCheck({ config, log });
      process.stdout.write(flag('json') ? `${JSON.stringify(report, null, 2)}\n` : `${renderReport(report)}\n`);
      if (!report.verdict) return EXIT.CHECK_FAILED;
      if (!report.verdict.anyUsable) return EXIT.NONE_USABLE;
      // Usable, but something an operator should look at: opt-in, so the 0/1/2 contract holds.
      return flag('strict') && sectionsNeedingAttention(report).length ? EXIT.NEEDS_ATTENTION : EXIT.OK;
    } catch (err) {
      process.stderr.write(`vtpm-agent: the check could not run: ${(err as Error).stack ?? String(err)}\n`);
      return EXIT.CHECK_FAILED;
    }
  }

  let webConfig: WebConfig | null = null;
  if (config.web.configFile) {
    try {
      webConfig = await loadWebConfig(config.web.configFile);
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`vtpm-agent: ${err.message}\n`);
        return EXIT.CONFIG;
      }
      throw err;
    }
  }
  const output = new LogOutput({ fd: 1, format: config.logFormat });
  const log = createLogger(config.logLevel, output);
  const { version, revision } = await buildInfo();
  log.info({ configSource: loaded.source ?? '(defaults)', version, revision }, 'starting vtpm-agent');
  // Each command loads only its own code: `--version` and `check` never load the daemon's.
  const { Agent } = await import('./agent.js');
  const agent = new Agent({ config, log, webConfig });
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
        const reloaded = await loadConfig({ path: str('config'), overrides });
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
