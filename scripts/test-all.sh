#!/usr/bin/env bash
# The whole test suite, as the README and CI run it: set up the host (Debian packages, npm
# dependencies, libvirtd), static checks, the release (.deb, tarball) with its container image and
# its systemd-booted package test, the tap suite on the supported Node.js lines 22 and 24 (pinned
# binaries, scripts/node-runtime.sh; the machine's Node only drives the build), promtool rule tests.
# The last line is the plain summary "N passed, N failed".
#
#   npm test                    everything
#   NODE_VERSIONS=24 npm test   the tap suite on Node 24 only
#   npm test -- test/unit/x.test.ts   only these tap files (on every Node version; no image step)
#   SKIP_IMAGE=1 npm test       everything but the container image
#   SKIP_PACKAGE=1 npm test     everything but the release build and the systemd-booted package test
#   SKIP_BENCH=1 npm test       everything but the benchmarks (CI sizes otherwise)
set -uo pipefail
cd "$(dirname "$0")/.."
export VTPM_AGENT_CONFIG=/dev/null   # tests never read the host's /etc/vtpm-agent/config.yaml
mkdir -p .cache/test-logs
passed=0
failed=0
report=()

record() { # name pass fail
  passed=$((passed + $2)); failed=$((failed + $3))
  report+=("$(printf '%-40s %6s passed %4s failed' "$1" "$2" "$3")")
}
check() { # name command...: one static check counts as one test
  local name=$1; shift
  if "$@" > ".cache/test-logs/${name//[^a-zA-Z0-9]/_}.log" 2>&1; then record "$name" 1 0
  else record "$name" 0 1; echo "--- $name failed:"; tail -n 40 ".cache/test-logs/${name//[^a-zA-Z0-9]/_}.log"; fi
}
tap_run() { # label node-binary tap-args...
  local label=$1 node=$2; shift 2
  local out=".cache/test-logs/tap-${label//[^a-zA-Z0-9]/_}.log"
  echo "=== tap: $label ($("$node" --version))"
  "$node" node_modules/tap/dist/esm/run.mjs --reporter=tap "$@" 2>&1 | tee "$out" | grep -E '^(not ok|ok) [0-9]+ - |^# \{' || true
  local summary pass fail
  summary=$(grep -E '^# \{ total: [0-9]+' "$out" | tail -n 1)
  pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary"); pass=${pass:-0}
  fail=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary"); fail=${fail:-0}
  # A run that died before its summary, or that ran nothing, is a failure too.
  if [ -z "$summary" ] || [ "$pass" = 0 ]; then fail=$((fail + 1)); fi
  record "tap $label" "$pass" "$fail"
}

if ! bash scripts/setup-host.sh; then
  echo "host setup failed: see above"
  echo "0 passed, 1 failed"
  exit 1
fi
# Everything after the setup (static checks, builds, benchmarks) runs on the pinned Node.js 24, a
# supported line, whatever `node` the machine has: npx and tsx resolve `node` from PATH.
if node24=$(bash scripts/node-runtime.sh 24); then
  PATH="$(dirname "$node24"):$PATH"; export PATH
else
  record "install Node.js 24" 0 1
fi

# A file the tests read but .gitignore keeps out of the repository passes here and fails on CI's
# clean clone: no source, test or deploy file may be ignored.
no_ignored_sources() {
  git rev-parse --git-dir >/dev/null 2>&1 || return 0   # a tarball, not a clone: nothing to compare
  local ignored
  ignored=$(git ls-files --others --ignored --exclude-standard -- src test scripts deploy bench systemd docs)
  [ -z "$ignored" ] || { echo "ignored by .gitignore but present (commit them or move them):"; echo "$ignored"; return 1; }
}
check "no git-ignored sources or fixtures" no_ignored_sources
check "typecheck (tsc --noEmit)" npx tsc -p tsconfig.json --noEmit
check "imports: no cycle, layers point one way" npx tsx scripts/check-imports.ts
check "build (tsc)" npm run --silent build
check "config.example.yaml current" npx tsx scripts/gen-config-example.ts --check
check "man/vtpm-agent.8 current" npx tsx scripts/gen-manpage.ts --check
if command -v systemd-analyze >/dev/null; then
  check "systemd-analyze verify" bash scripts/verify-systemd-unit.sh
else
  record "systemd-analyze verify (missing)" 0 1
fi
for rules_test in deploy/prometheus/tests/*.test.yml; do
  [ -e "$rules_test" ] || continue
  check "promtool test rules $(basename "$rules_test")" promtool test rules "$rules_test"
done

check "PrometheusRule current" npx tsx scripts/gen-prometheusrule.ts --check
check "Grafana dashboard current" npx tsx scripts/gen-grafana.ts --check
# A step that prints `ok`/`FAIL` lines and ends with "N passed, N failed" counts as that many tests.
summarised() { # name log command...
  local name=$1 out=$2 summary; shift 2
  "$@" 2>&1 | tee "$out" | grep -E '^(ok|not ok|FAIL|PASS)|passed, [0-9]+ failed' || true
  summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
  if [ -n "$summary" ]; then record "$name" "$(cut -d' ' -f1 <<<"$summary")" "$(cut -d' ' -f3 <<<"$summary")"
  else record "$name" 0 1; tail -n 30 "$out"; fi
}
if [ "$#" = 0 ] && [ "${SKIP_PACKAGE:-}" != 1 ]; then
  # The release: the .deb (lintian-clean) and the tarball; the image below is built from the tarball.
  echo "=== release (npm run release, without the image)"
  check "npm run release (.deb, lintian, tarball)" env RELEASE_IMAGE=0 bash scripts/release.sh
fi
if [ "$#" = 0 ] && [ "${SKIP_IMAGE:-}" != 1 ]; then
  # The container image: built with buildah from the release tarball and smoke-tested with podman
  # against the real libvirt.
  echo "=== container image build and smoke test"
  summarised "container image (scripts/ci-image.sh)" .cache/test-logs/ci-image.log bash scripts/ci-image.sh
fi
if [ "$#" = 0 ] && [ "${SKIP_PACKAGE:-}" != 1 ]; then
  # The .deb under a real systemd (systemd-nspawn): install, reload, stop, upgrade, purge.
  echo "=== package under systemd (scripts/package-test.sh)"
  summarised "package under systemd (scripts/package-test.sh)" .cache/test-logs/package-test.log bash scripts/package-test.sh
fi

node_bins=()
for v in ${NODE_VERSIONS:-22 24}; do
  if bin=$(bash scripts/node-runtime.sh "$v"); then node_bins+=("$v:$bin"); else record "install Node.js $v" 0 1; fi
done
for entry in "${node_bins[@]}"; do
  v=${entry%%:*}; bin=${entry#*:}
  if [ "$#" -gt 0 ]; then
    tap_run "node$v selected" "$bin" --jobs=1 "$@"
  else
    # Unit tests in parallel; integration tests one at a time (they share libvirtd and ports).
    tap_run "node$v unit" "$bin" --jobs=2 'test/unit/*.test.ts'
    tap_run "node$v integration" "$bin" --jobs=1 'test/integration/*.test.ts'
  fi
done

if [ "$#" = 0 ] && [ "${SKIP_BENCH:-}" != 1 ]; then
  # The benchmarks print their tables here (CI sizes); a benchmark that crashes counts as a failure.
  echo "=== benchmarks (BENCH_SIZE=ci)"
  BENCH_SIZE=ci bash scripts/bench-all.sh 2>&1 | tee .cache/test-logs/bench.log
  crashed=${PIPESTATUS[0]}
  if [ "$crashed" = 0 ]; then record "benchmarks ran (scripts/bench-all.sh)" 1 0; else record "benchmarks ran (scripts/bench-all.sh)" 0 "$crashed"; fi
fi

echo
printf '%s\n' "${report[@]}"
echo "${passed} passed, ${failed} failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
