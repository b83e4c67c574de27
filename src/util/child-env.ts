/**
 * The environment handed to child processes (virsh, swtpm, journalctl, …): the agent's own
 * environment minus its credentials. Children never need OpenStack secrets, and some run as
 * another user (swtpm as tss), whose other processes could read /proc/<pid>/environ.
 */
const SECRET_NAME = /^(OS_|VTPM_AGENT__)|PASSWORD|SECRET|TOKEN|CREDENTIAL/i;

export function childEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && !SECRET_NAME.test(name)) out[name] = value;
  }
  return out;
}
