import { z } from 'zod';
import { AgentError } from '../errors.js';
import { runCommand, SMALL_OUTPUT_BYTES } from '../util/exec.js';

/** `swtpm socket --print-capabilities` / `swtpm_setup --print-capabilities` output. */
const capabilitiesSchema = z.object({
  type: z.string(),
  features: z.array(z.string()),
  version: z.string().optional(),
});

export type SwtpmCapabilities = z.infer<typeof capabilitiesSchema>;

export function parseSwtpmCapabilities(output: string, what: string): SwtpmCapabilities {
  let json: unknown;
  try {
    json = JSON.parse(output);
  } catch {
    throw new AgentError('VTPM_ERR_PARSE', `${what} --print-capabilities did not print JSON: ${JSON.stringify(output.trim().slice(0, 200))}`);
  }
  const parsed = capabilitiesSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new AgentError('VTPM_ERR_PARSE', `${what} --print-capabilities JSON is unexpected: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}`);
  }
  return parsed.data;
}

export interface CapabilitiesCall {
  timeoutMs: number;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
}

/**
 * The one place that runs `<file> [args] --print-capabilities` (swtpm socket, swtpm_setup): its
 * features and version, or a coded error saying why not.
 */
export async function readSwtpmCapabilities(file: string, args: readonly string[], what: string, call: CapabilitiesCall): Promise<{ features: string[]; version: string | null }> {
  // A JSON object of a few hundred bytes.
  const result = await runCommand(file, [...args, '--print-capabilities'], { ...call, maxOutputBytes: SMALL_OUTPUT_BYTES });
  if (result.exitCode !== 0) {
    throw new AgentError('VTPM_ERR_EXEC_FAILED', `${what} --print-capabilities exited ${result.exitCode}: ${(result.stderr.trim() || result.stdout.trim()).slice(0, 300)}`);
  }
  const parsed = parseSwtpmCapabilities(result.stdout, what);
  return { features: parsed.features, version: parsed.version ?? null };
}
