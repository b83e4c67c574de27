/**
 * Test certificates made with openssl at test time: a CA, server certificates for 127.0.0.1 and
 * client certificates, each as PEM files in a temp dir; plus bcrypt hashes and a web config
 * writer for the agent's --web.config.file.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { stringify } from 'yaml';
import { requireCommands } from './components.js';

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  /** Issues a certificate signed by the CA; returns the PEM file paths. */
  issue(name: string, options: { cn: string; san?: string; client?: boolean; days?: number }): { cert: string; key: string };
  cleanup(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
}

export function makePki(prefix = 'vtpmtest-pki-'): Pki {
  requireCommands('openssl');
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  const caCert = path.join(dir, 'ca.crt');
  const caKey = path.join(dir, 'ca.key');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', caCert, '-days', '2', '-subj', '/CN=vtpm-agent test CA'], dir);
  let serial = 1;
  return {
    dir,
    caCert,
    caKey,
    issue(name, { cn, san, client, days }) {
      const key = path.join(dir, `${name}.key`);
      const csr = path.join(dir, `${name}.csr`);
      const cert = path.join(dir, `${name}.crt`);
      const ext = path.join(dir, `${name}.ext`);
      writeFileSync(ext, [`extendedKeyUsage=${client ? 'clientAuth' : 'serverAuth'}`, ...(san ? [`subjectAltName=${san}`] : [])].join('\n') + '\n');
      openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`], dir);
      openssl(['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-set_serial', String(serial++), '-days', String(days ?? 2), '-extfile', ext, '-out', cert], dir);
      return { cert, key };
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** bcrypt at cost 10, as `htpasswd -nBC 10` makes it (the $2y$ prefix Go and htpasswd write). */
export function bcryptHash(password: string): string {
  return bcrypt.hashSync(password, 10).replace(/^\$2b\$/, '$2y$');
}

/** Writes an exporter-toolkit web config (the YAML node_exporter takes) and returns its path. */
export function writeWebConfig(file: string, config: Record<string, unknown>): string {
  writeFileSync(file, stringify(config));
  return file;
}
