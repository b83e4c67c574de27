import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import t from 'tap';
import { COMMANDS, GLOBAL_OPTIONS, commandUsage, mainUsage, optionFlags } from '../../src/cli-help.js';
import { readBuildInfo, versionText } from '../../src/version.js';
import { renderManPage, MANPAGE } from '../../scripts/gen-manpage.js';
import { repoRoot, runCli } from '../harness/agent.js';
import { requireCommands } from '../harness/components.js';

t.test('--help of every command lists its own and the common options, from the one table', async (t) => {
  const main = mainUsage();
  for (const c of COMMANDS) t.match(main, new RegExp(`^  ${c.name} +${c.summary.slice(0, 20).replace(/[()]/g, '.')}`, 'm'), `${c.name} in the command list`);
  for (const c of COMMANDS) {
    const text = commandUsage(c);
    t.match(text, `Usage: vtpm-agent ${c.name}`);
    for (const o of [...c.options, ...GLOBAL_OPTIONS]) t.ok(text.includes(optionFlags(o)), `${c.name} --help shows ${optionFlags(o)}`);
    for (const other of COMMANDS.filter((x) => x !== c)) {
      for (const o of other.options.filter((o) => !c.options.some((x) => x.name === o.name))) t.notOk(text.includes(`--${o.name} `) || text.endsWith(`--${o.name}`), `${c.name} --help does not offer ${other.name}'s --${o.name}`);
    }
  }
});

t.test('the CLI: --help per command, clear usage errors with exit 64, --version', async (t) => {
  const env = { ...process.env, VTPM_AGENT_CONFIG: '/dev/null' };
  const help = await runCli(['check', '--help'], { env });
  t.equal(help.code, 0);
  t.equal(help.stdout, commandUsage(COMMANDS.find((c) => c.name === 'check')!));
  t.equal((await runCli(['help', 'reconcile'], { env })).stdout, commandUsage(COMMANDS.find((c) => c.name === 'reconcile')!));
  const cases: Array<[string[], RegExp]> = [
    [['check', '--once'], /^vtpm-agent check: unknown option --once for 'check' \(it belongs to: reconcile\)\nRun `vtpm-agent check --help` for the options\.\n$/],
    [['serve', '--bogus'], /^vtpm-agent serve: unknown option --bogus for 'serve'\n/],
    [['serve', '--config'], /^vtpm-agent serve: option -c, --config PATH needs a value\n/],
    [['check', '--json=yes'], /^vtpm-agent check: option --json takes no value\n/],
    [['frobnicate'], /^vtpm-agent: unknown command 'frobnicate' \(commands: check, serve, reconcile, fleet, version, help\)\n/],
    [['check', 'extra'], /^vtpm-agent check: unexpected argument 'extra'\n/],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(args, { env });
    t.equal(r.code, 64, `${args.join(' ')} exits 64`);
    t.match(r.stderr, message);
    t.notMatch(r.stderr, /ERR_PARSE_ARGS|To specify a positional argument/, "not parseArgs' raw text");
  }
  const revision = execFileSync('git', ['-C', repoRoot, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
  for (const args of [['--version'], ['version'], ['serve', '--version']]) {
    const r = await runCli(args, { env });
    t.equal(r.code, 0, `${args.join(' ')} exits 0`);
    const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
    t.equal(r.stdout, `vtpm-agent, version ${version} (revision: ${revision})\n  node version: ${process.version}\n  platform:     ${os.platform()}/${os.arch()}\n`, 'in a clone the revision is git HEAD');
  }
});

t.test('build info: the build record wins; without one, package.json and git', async (t) => {
  const built = await readBuildInfo({ version: '9.9.9', revision: 'abc123', buildDate: '2026-12-01T00:00:00.000Z' });
  t.same(built, { version: '9.9.9', revision: 'abc123', buildDate: '2026-12-01T00:00:00.000Z', nodeVersion: process.version, platform: `${process.platform}/${process.arch}` });
  t.match(versionText(built), /^vtpm-agent, version 9\.9\.9 \(revision: abc123\)\n  build date:   2026-12-01T00:00:00\.000Z\n  node version: v\d+/);
  const clone = await readBuildInfo(null);
  t.match(clone.revision, /^[0-9a-f]{40}$/);
  t.equal(clone.buildDate, null);
  t.equal((await readBuildInfo({ revision: '' })).revision, clone.revision, 'an empty revision in the record falls back to git');
});

t.test('scripts/build-info.mjs writes the record the agent reads', async (t) => {
  const dir = execFileSync('mktemp', ['-d'], { encoding: 'utf8' }).trim();
  t.teardown(() => execFileSync('rm', ['-rf', dir]));
  execFileSync(process.execPath, [`${repoRoot}scripts/build-info.mjs`, dir], { env: { ...process.env, SOURCE_DATE_EPOCH: '1767225600' } });
  const record = JSON.parse(readFileSync(`${dir}/build-info.json`, 'utf8')) as Record<string, string>;
  t.match(record, { revision: /^[0-9a-f]{40}$/, buildDate: '2026-01-01T00:00:00.000Z' });
  execFileSync(process.execPath, [`${repoRoot}scripts/build-info.mjs`, dir], { env: { ...process.env, VTPM_AGENT_REVISION: 'deadbeef' } });
  t.equal((JSON.parse(readFileSync(`${dir}/build-info.json`, 'utf8')) as Record<string, string>).revision, 'deadbeef', 'a build from a tarball can pass the revision in');
});

t.test('man page vtpm-agent(8): current, every command and option, clean under groff', async (t) => {
  requireCommands('groff', 'man');
  t.equal(readFileSync(MANPAGE, 'utf8'), renderManPage(), 'man/vtpm-agent.8 is current (npx tsx scripts/gen-manpage.ts)');
  // -ww: every warning; -z: no output. lintian runs the same check (manpage-has-errors-from-man).
  const warnings = execFileSync('groff', ['-man', '-ww', '-z', MANPAGE.pathname], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  t.equal(warnings, '');
  const text = execFileSync('man', ['-l', MANPAGE.pathname], { encoding: 'utf8', env: { ...process.env, MANWIDTH: '200', MAN_KEEP_FORMATTING: '', LC_ALL: 'C.UTF-8' } }).replace(/.\x08/g, '');
  for (const c of COMMANDS) t.match(text, new RegExp(`^ {3}${c.name}\\b`, 'm'), `section for ${c.name}`);
  for (const o of [...GLOBAL_OPTIONS, ...COMMANDS.flatMap((c) => c.options)]) t.ok(text.includes(`--${o.name}`), `--${o.name} documented`);
});
