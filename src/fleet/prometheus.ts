/**
 * The agents' own verdicts, read from the Prometheus that scrapes them (HTTP API
 * `/api/v1/query`), so `vtpm-agent fleet` can join what each host found with what Placement
 * advertises. Every query has a timeout; answers are parsed with zod at the edge.
 */
import { METRIC_NAMES } from '../metric-names.js';
import { z } from 'zod';
import { AgentError } from '../errors.js';
import type { TpmModel, TpmVersion } from '../libvirt/facts.js';

const sampleSchema = z.object({
  metric: z.record(z.string(), z.string()),
  value: z.tuple([z.number(), z.string()]),
});
const answerSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('success'), data: z.object({ resultType: z.literal('vector'), result: z.array(sampleSchema) }) }),
  z.object({ status: z.literal('error'), errorType: z.string().optional(), error: z.string().optional() }),
]);

export type Sample = z.infer<typeof sampleSchema>;

/** Answers larger than this are refused: a wrong URL must not fill memory. */
const MAX_BYTES = 64 * 1024 * 1024;

function fail(message: string, details: Record<string, unknown>, cause?: unknown): AgentError {
  return new AgentError('VTPM_ERR_PROMETHEUS_QUERY', message, { details, ...(cause === undefined ? {} : { cause }) });
}

/** The body as text, read chunk by chunk; null (and the rest not read) past `maxBytes` bytes. */
async function readCapped(res: Response, maxBytes: number): Promise<string | null> {
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += chunk.byteLength;
    // Leaving the loop cancels the stream: the rest is never downloaded.
    if (size > maxBytes) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export class PrometheusClient {
  private readonly base: URL;
  private readonly authorization: string | null;

  /** `url` may carry basic-auth credentials (https://user:pass@prometheus:9090); they go in a header. */
  constructor(url: string, private readonly timeoutMs: number) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      // Never echoed whole: it may carry user:password@.
      const shown = url.replace(/\/\/[^/@]*@/, '//***@');
      throw fail(`--prometheus ${JSON.stringify(shown)} is not a URL (expected e.g. http://prometheus:9090)`, { url: shown });
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw fail(`--prometheus must be an http(s) URL, got ${parsed.protocol}`, { url: parsed.origin });
    this.authorization = parsed.username ? `Basic ${Buffer.from(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`).toString('base64')}` : null;
    parsed.username = '';
    parsed.password = '';
    if (!parsed.pathname.endsWith('/')) parsed.pathname += '/';
    this.base = parsed;
  }

  /** The URL without credentials, for reports. */
  get url(): string {
    return this.base.toString().replace(/\/$/, '');
  }

  /** An instant query; throws a coded error naming the query and what went wrong. */
  async query(expr: string, signal?: AbortSignal): Promise<Sample[]> {
    const url = new URL('api/v1/query', this.base);
    const details = { prometheus: this.url, query: expr };
    const timeout = AbortSignal.timeout(this.timeoutMs);
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...(this.authorization ? { authorization: this.authorization } : {}) },
        body: new URLSearchParams({ query: expr, timeout: `${Math.max(1, Math.floor(this.timeoutMs / 1000))}s` }),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      if (timeout.aborted) throw fail(`Prometheus ${this.url} did not answer within ${this.timeoutMs} ms (query ${expr})`, details, err);
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw fail(`Prometheus ${this.url} is unreachable: ${cause?.code ?? cause?.message ?? (err as Error).message}`, details, err);
    }
    let text: string;
    try {
      const declared = Number(res.headers.get('content-length') ?? 0);
      if (declared > MAX_BYTES) throw fail(`Prometheus answer of ${declared} bytes is over the ${MAX_BYTES}-byte limit`, details);
      const capped = await readCapped(res, MAX_BYTES);
      if (capped === null) throw fail(`Prometheus answer is over the ${MAX_BYTES}-byte limit`, details);
      text = capped;
    } catch (err) {
      if (err instanceof AgentError) throw err;
      if (timeout.aborted) throw fail(`Prometheus ${this.url} did not finish its answer within ${this.timeoutMs} ms (query ${expr})`, details, err);
      throw fail(`Prometheus ${this.url}: reading the answer failed: ${(err as Error).message}`, details, err);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw fail(`Prometheus ${this.url} answered HTTP ${res.status} with no JSON (is this the Prometheus URL?): ${text.slice(0, 120).replace(/\s+/g, ' ')}`, { ...details, status: res.status });
    }
    const parsed = answerSchema.safeParse(json);
    if (!parsed.success) throw fail(`Prometheus ${this.url} answered HTTP ${res.status} with an unexpected shape for ${expr}`, { ...details, status: res.status });
    if (parsed.data.status === 'error') {
      throw fail(`Prometheus refused ${expr}: ${parsed.data.errorType ?? 'error'}: ${parsed.data.error ?? ''}`.trim(), { ...details, status: res.status });
    }
    return parsed.data.data.result;
  }
}

/** One scrape target of an agent, as Prometheus knows it. */
export interface AgentView {
  /** `job/instance`: what identifies a target in Prometheus. */
  target: string;
  providerName: string | null;
  computeNodeUuid: string | null;
  novaHost: string | null;
  /** The target's latest scrape worked (`up == 1`). */
  up: boolean;
  /** The agent's verdict per combination (absent while the agent is down or has no verdict yet). */
  usable: Array<{ version: TpmVersion; model: TpmModel; usable: boolean }>;
  /** Running vTPM guests that would not come back after a reboot, per reason. */
  guestsAtRisk: Record<string, number>;
}

/** How far back a silent agent's last `vtpm_node_info` is remembered (to name a down agent's host). */
export const NODE_INFO_LOOKBACK = '1d';

const targetOf = (m: Record<string, string>): string => `${m.job ?? ''}/${m.instance ?? ''}`;
const orNull = (v: string | undefined): string | null => (v ? v : null);

/** Reads every agent's identity, liveness, verdict and guests at risk with four queries. */
export async function readAgents(client: PrometheusClient, signal?: AbortSignal): Promise<AgentView[]> {
  const [identities, ups, usable, atRisk] = await Promise.all([
    client.query(`last_over_time(${METRIC_NAMES.nodeInfo}[${NODE_INFO_LOOKBACK}])`, signal),
    client.query(`up and on(job, instance) last_over_time(${METRIC_NAMES.nodeInfo}[${NODE_INFO_LOOKBACK}])`, signal),
    client.query(METRIC_NAMES.capabilityUsable, signal),
    client.query(`sum by (job, instance, reason) (${METRIC_NAMES.guestsAtRisk})`, signal),
  ]);
  const agents = new Map<string, AgentView>();
  for (const s of identities) {
    const target = targetOf(s.metric);
    if (agents.has(target)) continue;
    agents.set(target, {
      target,
      providerName: orNull(s.metric.provider_name),
      computeNodeUuid: orNull(s.metric.compute_node_uuid),
      novaHost: orNull(s.metric.nova_host),
      up: false,
      usable: [],
      guestsAtRisk: {},
    });
  }
  for (const s of ups) {
    const a = agents.get(targetOf(s.metric));
    if (a) a.up = Number(s.value[1]) === 1;
  }
  for (const s of usable) {
    const a = agents.get(targetOf(s.metric));
    const { version, model } = s.metric;
    if (!a || (version !== '1.2' && version !== '2.0') || (model !== 'tpm-tis' && model !== 'tpm-crb')) continue;
    a.usable.push({ version, model, usable: Number(s.value[1]) === 1 });
  }
  for (const s of atRisk) {
    const a = agents.get(targetOf(s.metric));
    const n = Number(s.value[1]);
    if (a && n > 0) a.guestsAtRisk[s.metric.reason ?? 'unknown'] = n;
  }
  return [...agents.values()].sort((a, b) => a.target.localeCompare(b.target));
}
