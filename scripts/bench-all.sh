#!/usr/bin/env bash
# Every benchmark, each printing its table (figures, never assertions). BENCH_SIZE=ci runs
# smaller sizes that finish in a few minutes; the default is the full sizes the issues name.
#   npm run bench                  full sizes
#   BENCH_SIZE=ci npm run bench    CI sizes
# Exit status: non-zero when a benchmark could not run (crashed), never because of a figure.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${BENCH_SIZE:-full}" = ci ]; then
  benches=(
    "bench/metrics-http.ts --duration 5"
    "bench/http-hostile.ts"
    "bench/swtpm-emulation.ts --runs 20"
    "bench/guests-inventory.ts --sizes 50,200 --baseline-max 50"
    "bench/logs-follower.ts --size-mb 256 --seconds 10"
    "bench/placement-reconcile.ts 100 4"
    "bench/exec-output-cap.ts --runs 3"
    "bench/splay.ts --agents 16 --interval 10 --intervals 2"
    "bench/footprint.ts"
  )
else
  benches=(
    "bench/metrics-http.ts"
    "bench/http-hostile.ts"
    "bench/swtpm-emulation.ts"
    "bench/guests-inventory.ts"
    "bench/logs-follower.ts"
    "bench/placement-reconcile.ts"
    "bench/exec-output-cap.ts"
    "bench/splay.ts"
    "bench/footprint.ts"
  )
fi
# On the pinned Node.js 24 (the runtime the release ships), not whatever `node` the machine has.
node24=$(bash scripts/node-runtime.sh 24) || { echo "Node.js 24 could not be installed"; exit 1; }
failed=0
for b in "${benches[@]}"; do
  echo "=== tsx $b ($("$node24" --version))"
  # shellcheck disable=SC2086
  if ! timeout 900 "$node24" node_modules/tsx/dist/cli.mjs $b; then echo "benchmark failed: $b"; failed=$((failed + 1)); fi
done
exit "$failed"
