/**
 * HTTP basic auth against bcrypt hashes (exporter-toolkit's `basic_auth_users`). bcrypt costs
 * ~70 ms at cost 10, so a verified (user, hash, password) triple is cached, as exporter-toolkit
 * does: a scrape every 15 s pays it once. The cache key is a SHA-256 of the triple (no password
 * kept in memory), the cache is bounded (random passwords cannot grow it), and an unknown user
 * still pays one bcrypt so timing does not tell which users exist.
 */
import { createHash } from 'node:crypto';
import bcrypt from 'bcryptjs';

/** A valid hash of a random password: compared against for unknown users (constant work). */
const DUMMY_HASH = '$2b$10$SissxJ8zbTWlNWy3TDElx.s27L93eXw60RU8UZIBuoj/qv0fwMvWi';
const CACHE_MAX = 256;

export interface Credentials {
  user: string;
  password: string;
}

/** `Authorization: Basic …` → user and password; undefined when absent or malformed. */
export function parseBasicAuth(header: string | undefined): Credentials | undefined {
  if (!header) return undefined;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export class BasicAuth {
  private readonly verified = new Map<string, boolean>();
  /** bcrypt comparisons actually performed (tests and the bench read it). */
  comparisons = 0;

  constructor(private users: Map<string, string>) {}

  get enabled(): boolean {
    return this.users.size > 0;
  }

  /** New users (a reload): cached results for old hashes can never match again, so drop them. */
  replaceUsers(users: Map<string, string>): void {
    this.users = users;
    this.verified.clear();
  }

  async check(credentials: Credentials | undefined): Promise<boolean> {
    if (!credentials) return false;
    const hash = this.users.get(credentials.user);
    const key = createHash('sha256').update(`${credentials.user}\0${hash ?? ''}\0${credentials.password}`).digest('hex');
    const cached = this.verified.get(key);
    if (cached !== undefined) return cached;
    this.comparisons += 1;
    // Async: bcryptjs works in slices, so the event loop (and /healthz) keeps turning.
    const result = (await bcrypt.compare(credentials.password, hash ?? DUMMY_HASH)) && hash !== undefined;
    if (this.verified.size >= CACHE_MAX) this.verified.clear();
    this.verified.set(key, result);
    return result;
  }
}
