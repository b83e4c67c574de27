/**
 * Classifies swtpm/swtpm_setup log lines (`<domain>-swtpm.log`) and QEMU domain log lines
 * (`<domain>.log`) into a bounded set of kinds, from the verbatim strings of docs/failure-modes §0.
 */
export type LogKind =
  | 'manufacture_start'
  | 'manufacture_end'
  | 'manufacture_ok'
  | 'authoring_failed'
  | 'localca_rights'
  | 'state_dir_access'
  | 'config_unreadable'
  | 'tool_missing'
  | 'swtpm_missing'
  | 'swtpm_died'
  | 'lock_open_failed'
  | 'lock_held'
  | 'state_io_error'
  | 'state_header_bad'
  | 'state_decrypt_failed'
  | 'failure_mode'
  | 'libtpms_init_failed'
  | 'tpm12_unsupported'
  | 'crypto_workaround'
  | 'swtpm_exec_denied'
  | 'qemu_cmd_init_failed'
  | 'qemu_init_send_failed'
  | 'qemu_probe_failed'
  | 'qemu_lock_timeout'
  | 'qemu_stateblob_failed'
  | 'qemu_migration_disabled';

export type LogSeverity = 'info' | 'warn' | 'fail';

interface Rule {
  kind: LogKind;
  severity: LogSeverity;
  re: RegExp;
}

const rules: Rule[] = [
  { kind: 'manufacture_start', severity: 'info', re: /^Starting vTPM manufacturing as \S+ @/ },
  { kind: 'manufacture_end', severity: 'info', re: /^Ending vTPM manufacturing @/ },
  { kind: 'manufacture_ok', severity: 'info', re: /^Successfully authored TPM state\./ },
  { kind: 'authoring_failed', severity: 'fail', re: /An error occurred\. Authoring the TPM state failed\./ },
  { kind: 'localca_rights', severity: 'fail', re: /Need read\/write rights on (statedir )?\S+ for user \S+\.|swtpm-localca exit with status \d+|cannot touch '[^']*\.lock\.swtpm-localca'/ },
  { kind: 'state_dir_access', severity: 'fail', re: /User \S+ cannot access directory \S+|Need (read|write) rights on directory/ },
  { kind: 'config_unreadable', severity: 'fail', re: /User \S+ cannot read config file/ },
  { kind: 'tool_missing', severity: 'fail', re: /Could not find \S+ in PATH\./ },
  { kind: 'swtpm_missing', severity: 'fail', re: /Default TPM 'swtpm' could not be found|swtpm at \S+ is not an executable|swtpm at \S+ does not support TPM 2/ },
  { kind: 'swtpm_died', severity: 'fail', re: /swtpm process terminated unexpectedly|Could not start the TPM 2\./ },
  { kind: 'lock_open_failed', severity: 'fail', re: /SWTPM_NVRAM_Lock_(Dir|Lockfile): Could not open lockfile/ },
  { kind: 'lock_held', severity: 'fail', re: /SWTPM_NVRAM_Lock_Dir: Could not lock access to lockfile/ },
  { kind: 'state_io_error', severity: 'fail', re: /SWTPM_NVRAM_(LoadData|StoreData)(_Dir)?: Error \(fatal\)/ },
  { kind: 'state_header_bad', severity: 'fail', re: /Error from SWTPM_NVRAM_CheckHeader/ },
  { kind: 'state_decrypt_failed', severity: 'fail', re: /Error from SWTPM_NVRAM_GetDecryptedData|Verification of HMAC failed/ },
  { kind: 'failure_mode', severity: 'fail', re: /libtpms\/tpm2: Entering failure mode/ },
  { kind: 'libtpms_init_failed', severity: 'fail', re: /Error: Could not initialize (libtpms|the TPM)/ },
  { kind: 'tpm12_unsupported', severity: 'fail', re: /TPM 1\.2 is not supported by libtpms/ },
  { kind: 'crypto_workaround', severity: 'warn', re: /Warning: Setting OPENSSL_ENABLE_SHA1_SIGNATURES|Warning: Disabled OpenSSL FIPS mode|Failed to disable OpenSSL FIPS mode/ },
  { kind: 'swtpm_exec_denied', severity: 'fail', re: /cannot execute binary \S*swtpm\S*: Permission denied/ },
  { kind: 'qemu_cmd_init_failed', severity: 'fail', re: /tpm-emulator: TPM result for CMD_INIT: 0x[0-9a-f]+/i },
  { kind: 'qemu_init_send_failed', severity: 'fail', re: /tpm-emulator: could not send INIT/ },
  { kind: 'qemu_probe_failed', severity: 'fail', re: /tpm-emulator: probing failed|tpm-emulator: TPM does not implement minimum set/ },
  { kind: 'qemu_lock_timeout', severity: 'fail', re: /tpm-emulator: Could not lock storage within/ },
  { kind: 'qemu_stateblob_failed', severity: 'fail', re: /tpm-emulator: Setting the stateblob/ },
  { kind: 'qemu_migration_disabled', severity: 'warn', re: /Migration disabled: TPM emulator does not support migration/ },
];

export interface ClassifiedLine {
  kind: LogKind;
  severity: LogSeverity;
}

export function classifyLogLine(line: string): ClassifiedLine | null {
  for (const r of rules) if (r.re.test(line)) return { kind: r.kind, severity: r.severity };
  return null;
}

/** `--vmid <name>:<uuid>` in swtpm_setup's "Invoking swtpm_localca" lines: which domain a manufacture was for. */
export function vmidOf(line: string): { name: string; uuid: string } | null {
  const m = /--vmid (\S+):([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b/i.exec(line);
  return m ? { name: m[1]!, uuid: m[2]!.toLowerCase() } : null;
}
