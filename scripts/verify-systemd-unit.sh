#!/usr/bin/env bash
# `systemd-analyze verify` of the shipped unit; any warning about the unit counts as a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(systemd-analyze verify --man=no systemd/vtpm-agent.service 2>&1) || { echo "$out"; exit 1; }
# Lines about other units (the host's) are not ours.
ours=$(grep -F 'vtpm-agent.service' <<<"$out" || true)
if [ -n "$ours" ]; then echo "$ours"; exit 1; fi
echo "systemd/vtpm-agent.service verified"
