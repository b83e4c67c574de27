/** Renders the man page vtpm-agent(8) (roff) from the help table `--help` prints (src/cli-help.ts). */
import { COMMANDS, GLOBAL_OPTIONS, MANUAL, PROGRAM, type OptionHelp } from '../src/cli-help.js';

/** Escapes text for roff: backslashes, leading dots/quotes, and hyphens meant as minus signs in flags. */
function roff(text: string): string {
  const escaped = text.replace(/\\/g, '\\e').replace(/-/g, '\\-').replace(/`([^`]+)`/g, '\\fB$1\\fR');
  return /^[.']/.test(escaped) ? `\\&${escaped}` : escaped;
}

function options(list: OptionHelp[]): string[] {
  return list.flatMap((o) => ['.TP', `\\fB${roff(o.flags)}\\fR`, roff(o.description)]);
}

export function renderManPage(version: string, date: string): string {
  const out = [
    `.TH VTPM\\-AGENT 8 "${date}" "vtpm-agent ${version}" "System Administration"`,
    '.SH NAME',
    `${PROGRAM.name} \\- ${roff(PROGRAM.summary)}`,
    '.SH SYNOPSIS',
    ...COMMANDS.flatMap((c) => [`.B ${PROGRAM.name} ${c.name}`, roff(`${c.args} [options]`.trim()), '.br']),
    '.SH DESCRIPTION',
    ...PROGRAM.description.flatMap((p) => [roff(p), '.PP']),
    '.SH COMMANDS',
  ];
  for (const c of COMMANDS) {
    out.push('.SS', `\\fB${c.name}\\fR ${roff(c.args)}`, roff(c.summary), '.PP');
    for (const p of c.description) out.push(roff(p), '.PP');
    if (c.options.length) out.push(...options(c.options), '.PP');
    out.push('Exit status:', '.RS', ...c.exitStatus.flatMap(([code, meaning]) => ['.TP 4', code, roff(meaning)]), '.RE');
  }
  out.push('.SH OPTIONS', ...options(GLOBAL_OPTIONS));
  out.push('.SH ENVIRONMENT', ...MANUAL.environment.flatMap(([name, meaning]) => ['.TP', `\\fB${roff(name)}\\fR`, roff(meaning)]));
  out.push('.SH FILES', ...MANUAL.files.flatMap(([name, meaning]) => ['.TP', `\\fI${roff(name)}\\fR`, roff(meaning)]));
  out.push('.SH SEE ALSO', MANUAL.seeAlso.map((ref) => `\\fB${ref.replace('(', '\\fR(')}`).join(', '));
  return `${out.join('\n')}\n`;
}

