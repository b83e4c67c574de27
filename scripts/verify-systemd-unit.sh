#!/usr/bin/env bash
# `systemd-analyze verify` of the shipped unit; any warning about the unit counts as a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
# Its exit status alone does not judge: it also fails for the host's units and for the path below.
out=$(systemd-analyze verify --man=no systemd/vtpm-agent.service 2>&1) || true
# Lines about other units (the host's) are not ours. ExecStart's /usr/bin/vtpm-agent exists once the
# package is installed: the systemd-booted package test verifies the installed unit again, there.
ours=$(grep -F 'vtpm-agent.service' <<<"$out" | grep -vxF 'vtpm-agent.service: Command /usr/bin/vtpm-agent is not executable: No such file or directory' || true)
if [ -n "$ours" ]; then echo "$ours"; exit 1; fi
echo "systemd/vtpm-agent.service verified"
