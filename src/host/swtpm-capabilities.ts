import { z } from 'zod';
import { AgentError } from '../errors.js';

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
