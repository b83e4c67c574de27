#!/usr/bin/env bash
# Installs and starts what the test suite needs on a Debian 12 machine: the Debian packages in
# scripts/apt-packages.txt, the npm dependencies, libvirtd + virtlogd (no systemd needed).
# Idempotent: a second run installs and starts nothing that is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else log "need root for: $*"; return 1; fi; }

mapfile -t packages < <(grep -Ev '^\s*(#|$)' scripts/apt-packages.txt | sort -u)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  # Packages' own services must not start here (ports, systemd): the tests start what they need.
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null; as_root chmod +x /usr/sbin/policy-rc.d; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ "${CI:-}" = true ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
fi

# A root-owned swtpm local CA makes every libvirt vTPM start fail (see docs): keep it tss-owned.
if [ -d /var/lib/swtpm-localca ] && id tss >/dev/null 2>&1; then as_root chown -R tss:root /var/lib/swtpm-localca; fi

# libvirtd does not spawn virtlogd without systemd; both are started by hand.
if ! pgrep -x virtlogd >/dev/null; then log "starting virtlogd"; as_root virtlogd -d; fi
if ! pgrep -x libvirtd >/dev/null; then log "starting libvirtd"; as_root libvirtd -d; fi
for _ in $(seq 1 100); do [ -S /run/libvirt/libvirt-sock ] && break; sleep 0.1; done
# The first call after a start probes QEMU's capabilities (seconds); do it once here.
timeout 120 virsh -r -c qemu:///system version >/dev/null
log "host ready"
