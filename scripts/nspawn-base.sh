#!/usr/bin/env bash
# Prints the path of a Debian 12 (bookworm) root filesystem that boots systemd under
# systemd-nspawn, made once with debootstrap and cached (copy it per test; never boot it itself).
# minbase plus systemd and what the vtpm-agent package depends on or uses, so the package installs
# inside without a network: adduser, systemd, libvirt-clients (virsh), swtpm.
#   VTPM_NSPAWN_CACHE   cache directory (default /var/cache/vtpm-agent-nspawn; created here)
set -euo pipefail
CACHE=${VTPM_NSPAWN_CACHE:-/var/cache/vtpm-agent-nspawn}
INCLUDE=systemd,systemd-sysv,dbus,adduser,libvirt-clients,swtpm,swtpm-tools,ca-certificates
key=$(printf '%s' "bookworm $INCLUDE" | sha256sum | cut -c1-12)
base="$CACHE/bookworm-$key"
mkdir -p "$CACHE"
if [ ! -x "$base/lib/systemd/systemd" ]; then
  for tool in debootstrap systemd-nspawn; do
    command -v "$tool" >/dev/null || { echo "$tool is missing (scripts/apt-packages.txt: debootstrap, systemd-container)" >&2; exit 1; }
  done
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  rm -rf "$base.tmp"
  echo "[nspawn-base] debootstrap bookworm minbase + $INCLUDE into $base (about 1-2 minutes, once)" >&2
  debootstrap --variant=minbase --include="$INCLUDE" bookworm "$base.tmp" "$mirror" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; echo "debootstrap failed (log: $CACHE/debootstrap.log)" >&2; exit 1; }
  # A fresh machine id on each boot of each copy; no apt lists (the package test is offline).
  : >"$base.tmp/etc/machine-id"
  rm -rf "$base.tmp"/var/cache/apt/archives/*.deb "$base.tmp"/var/lib/apt/lists/*
  mv "$base.tmp" "$base"
fi
echo "$base"
