#!/usr/bin/env bash
# CI step: build the container image and smoke-test it for real.
#   - buildah/podman/runc/debootstrap come from Debian packages; if they cannot be installed the
#     step fails (under CI=true and outside it: a missing engine is a broken machine, not a pass).
#   - `vtpm-agent check --json` runs inside the image against the host's real libvirt (its socket
#     directory mounted read-only) and the image's own swtpm, with the mounts, user and
#     capabilities of the DaemonSet in deploy/kubernetes/.
#   - `serve` runs detached and must answer /healthz, /readyz and /metrics, then stop cleanly on SIGTERM.
# Prints one `ok`/`FAIL` line per check, TIMING/IMAGE_SIZE lines, and "N passed, N failed".
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGE=${VTPM_IMAGE:-localhost/vtpm-agent:ci}
CACHE=${VTPM_IMAGE_CACHE:-/var/cache/vtpm-agent-image}
T0=$EPOCHREALTIME
passed=0
failed=0
log() { printf '[ci-image] %s\n' "$*" >&2; }
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# Runs a check; never aborts the script, so every check reports.
ok() {
  local name=$1 out rc=0
  shift
  out=$("$@" 2>&1) || rc=$?
  if [[ $rc -eq 0 ]]; then
    echo "ok - $name"
    passed=$((passed + 1))
  else
    echo "FAIL - $name (exit $rc)"
    printf '%s\n' "$out" | tail -25 | sed 's/^/    /'
    failed=$((failed + 1))
  fi
}

# --- tools ---------------------------------------------------------------------------------------
PKGS=(buildah podman runc debootstrap)
missing=()
for p in "${PKGS[@]}"; do command -v "$p" >/dev/null || missing+=("$p"); done
if ((${#missing[@]})); then
  log "installing ${missing[*]} from Debian"
  t=$EPOCHREALTIME
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PKGS[@]}") >&2 || true
  echo "TIMING tools-install $(elapsed "$t")s"
fi
for p in "${PKGS[@]}"; do
  if ! command -v "$p" >/dev/null; then
    echo "FAIL - container engine: $p is not installed and could not be installed (CI=${CI:-false})"
    echo "0 passed, 1 failed"
    exit 1
  fi
done

# --- libvirt on the host (shared; started here only when not running, as .ci/run does) -----------
if [[ ! -S /run/libvirt/libvirt-sock-ro ]]; then
  log "starting virtlogd and libvirtd"
  pgrep -x virtlogd >/dev/null || virtlogd -d
  pgrep -x libvirtd >/dev/null || libvirtd -d
  for _ in $(seq 100); do [[ -S /run/libvirt/libvirt-sock-ro ]] && break; sleep 0.1; done
fi
[[ -S /run/libvirt/libvirt-sock-ro ]] || { echo "FAIL - libvirtd: /run/libvirt/libvirt-sock-ro missing"; echo "0 passed, 1 failed"; exit 1; }

# --- build -----------------------------------------------------------------------------------------
t=$EPOCHREALTIME
# Created before tee writes into it: on a fresh machine it does not exist yet.
mkdir -p "$CACHE"
VTPM_IMAGE=$IMAGE VTPM_IMAGE_CACHE=$CACHE bash "$ROOT/scripts/build-image.sh" | tee "$CACHE/ci-build.out"
echo "TIMING build-total $(elapsed "$t")s"
export CONTAINERS_CONF="$CACHE/containers.conf" BUILDAH_RUNTIME=runc
SIZE=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "IMAGE_SIZE $((SIZE / 1000000)) MB ($SIZE bytes)"

RUN_ID="vtpm-ci-$$"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vtpm-ci-image.XXXXXX")
cleanup() {
  podman rm -f "$RUN_ID-serve" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/state"
(cd "$ROOT" && node -e "const y = require('yaml'); const fs = require('fs'); const cm = y.parse(fs.readFileSync('deploy/kubernetes/configmap.yaml', 'utf8')); fs.writeFileSync(process.argv[1], cm.data['config.yaml'])" "$WORK/config.yaml")

# The DaemonSet's view of the host (deploy/kubernetes/daemonset.yaml): host paths read-only under
# /host, the libvirt socket directory at its own path (virsh connects there), host PID and UTS.
# /etc/passwd and /etc/group stand in for the libvirt container's accounts of a real deployment.
HOST_VIEW=(
  --pid host --uts host
  --user 0:0 --cap-drop ALL --cap-add SYS_PTRACE --security-opt no-new-privileges
  --read-only --tmpfs /tmp
  -v /run/libvirt:/run/libvirt:ro
  -v /proc:/host/proc:ro
  -v /var/lib/libvirt:/host/var/lib/libvirt:ro
  -v /etc/passwd:/host/etc/passwd:ro -v /etc/group:/host/etc/group:ro
  -v "$WORK/state:/var/lib/vtpm-agent"
  -v "$WORK/config.yaml:/etc/vtpm-agent/config.yaml:ro"
)
# The DaemonSet's own configuration, from its ConfigMap; this host's swtpm principal is tss
# (Atmosphere's is swtpm, which does not exist here).
CONFIG_ARGS=(--config /etc/vtpm-agent/config.yaml --set swtpm.user=tss --set swtpm.group=tss)

# --- image metadata ----------------------------------------------------------------------------------
VERSION=$(node -p "require('$ROOT/package.json').version")
label() { podman image inspect --format "{{ index .Config.Labels \"$1\" }}" "$IMAGE"; }
ok "OCI label version = $VERSION" test "$(label org.opencontainers.image.version)" = "$VERSION"
ok "OCI label licenses = Apache-2.0" test "$(label org.opencontainers.image.licenses)" = "Apache-2.0"
ok "OCI label source is set" test -n "$(label org.opencontainers.image.source)"
BUILT_REVISION=$(awk '$1 == "REVISION" {print $2}' "$CACHE/ci-build.out")
ok "OCI label revision = the commit built ($BUILT_REVISION)" test "$(label org.opencontainers.image.revision)" = "$BUILT_REVISION" -a ${#BUILT_REVISION} = 40
ok "default user is non-root (9643)" test "$(podman image inspect --format '{{.Config.User}}' "$IMAGE")" = "9643:9643"
ok "OCI label base.name = the Debian base built ($(awk '$1 == "BASE_IMAGE" {print $2}' "$CACHE/ci-build.out"))" \
  test "$(label org.opencontainers.image.base.name)" = "$(awk '$1 == "BASE_IMAGE" {print $2}' "$CACHE/ci-build.out")" -a -n "$(label org.opencontainers.image.base.name)"
RUNTIME=$(node -p "require('$ROOT/packaging/runtimes/package-lock.json').packages['node_modules/node24'].version")
ok "the image runs the release's pinned Node.js ($RUNTIME) from /usr/lib/vtpm-agent" test \
  "$(podman run --rm --network none --entrypoint /usr/lib/vtpm-agent/bin/node "$IMAGE" -p process.versions.node)" = "$RUNTIME"
ok "the image's agent is the release tarball's (same bundle)" bash -c \
  "[[ \$(podman run --rm --network none --entrypoint sha256sum '$IMAGE' /usr/lib/vtpm-agent/dist/cli.mjs | cut -d' ' -f1) == \$(tar -xzOf '$ROOT/release/vtpm-agent-$VERSION-linux-x64.tar.gz' vtpm-agent-$VERSION-linux-x64/lib/vtpm-agent/dist/cli.mjs | sha256sum | cut -d' ' -f1) ]]"

# --- check against the host's libvirt and the image's swtpm --------------------------------------------
HOST_LIBVIRT=$(virsh -r -c qemu:///system version | awk '/Using library: libvirt/{print $4}')
HOST_PROVIDER=$(virsh -r -c qemu:///system hostname)
HOST_FQDN=$(hostname --fqdn)
check_rc=0
podman run --rm --network none "${HOST_VIEW[@]}" "$IMAGE" check --json "${CONFIG_ARGS[@]}" >"$WORK/check.json" 2>"$WORK/check.err" || check_rc=$?
ok "check --json exits 0 (vTPM usable; got $check_rc)" test "$check_rc" = 0
jq_node() { node -e "const j = JSON.parse(require('fs').readFileSync('$WORK/check.json', 'utf8')); $1" 2>&1; }
ok "check: libvirt probe ok, libvirt $HOST_LIBVIRT as on the host" jq_node \
  "const p = j.probes.find((p) => p.probe === 'libvirt'); if (!p?.ok || j.versions.libvirt !== '$HOST_LIBVIRT') { console.log(JSON.stringify({ p, v: j.versions })); process.exit(1); }"
ok "check: the image's swtpm answers (swtpm probe ok, version known)" jq_node \
  "const p = j.probes.find((p) => p.probe === 'swtpm'); if (!p?.ok || !j.versions.swtpm) { console.log(JSON.stringify({ p, v: j.versions })); process.exit(1); }"
ok "check: TPM 2.0 usable per the verdict" jq_node \
  "if (!j.verdict.combinations.some((c) => c.version === '2.0' && c.usable)) { console.log(JSON.stringify(j.verdict)); process.exit(1); }"
ok "check: node identity = host's FQDN ($HOST_FQDN) and libvirt host name ($HOST_PROVIDER)" jq_node \
  "const d = j.sections.find((s) => s.name === 'node-identity')?.data; if (d?.novaHost.value !== '$HOST_FQDN' || d?.providerName.value !== '$HOST_PROVIDER') { console.log(JSON.stringify(d)); process.exit(1); }"
ok "check: libvirtd found through host PID, placed on the host, via /proc/<pid>/root with SYS_PTRACE" jq_node \
  "const d = j.sections.find((s) => s.name === 'node-identity')?.data; if (d?.libvirtd?.placement !== 'host') { console.log(JSON.stringify(d?.libvirtd)); process.exit(1); }"
ok "check: emulation with the image's own swtpm passed (TPM 1.2 and 2.0, state survives a restart)" jq_node \
  "const s = j.sections.find((s) => s.name === 'emulation'); if (s?.ok !== true) { console.log(JSON.stringify(s)); process.exit(1); }"
# Sections that depend on what this CI host lacks (nova-compute's CRI logs, swtpm's local CA) may
# fail here; they are listed, not judged.
node -e "const j = JSON.parse(require('fs').readFileSync('$WORK/check.json', 'utf8')); for (const s of j.sections.filter((s) => s.ok === false)) { console.log('note - section ' + JSON.stringify(s.name) + ' is failing on this host: ' + s.summary); for (const c of s.data?.checks ?? []) for (const f of c.findings ?? []) if (f.status !== 'pass') console.log('note -   ' + f.reason + ': ' + f.message); }" || true

# Without SYS_PTRACE the libvirt container's paths are unreachable, and the agent says why.
podman run --rm --network none "${HOST_VIEW[@]/SYS_PTRACE/AUDIT_WRITE}" "$IMAGE" check --json "${CONFIG_ARGS[@]}" >"$WORK/noptrace.json" 2>/dev/null || true
ok "check without SYS_PTRACE reports PROC_ROOT_DENIED" node -e \
  "const j = JSON.parse(require('fs').readFileSync('$WORK/noptrace.json', 'utf8')); const d = j.sections.find((s) => s.name === 'node-identity').data; if (d.libvirtd?.reason !== 'PROC_ROOT_DENIED') { console.log(JSON.stringify(d.libvirtd)); process.exit(1); }"

# As the image's non-root user with nothing mounted: no crash, a typed report.
podman run --rm --network none "$IMAGE" check --json >"$WORK/nonroot.json" 2>/dev/null || true
ok "check as non-root without mounts: valid report, libvirt failure typed" node -e \
  "const j = JSON.parse(require('fs').readFileSync('$WORK/nonroot.json', 'utf8')); const p = j.probes.find((p) => p.probe === 'libvirt'); if (p.ok || !/^VTPM_ERR_/.test(p.error?.code ?? '')) { console.log(JSON.stringify(p)); process.exit(1); }"

# --- serve ------------------------------------------------------------------------------------------------
PORT=$(node -e "const s = require('net').createServer(); s.listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); })")
podman run -d --name "$RUN_ID-serve" -p "127.0.0.1:$PORT:9643" "${HOST_VIEW[@]}" "$IMAGE" serve "${CONFIG_ARGS[@]}" >/dev/null
healthy=1
for _ in $(seq 150); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null; then healthy=0; break; fi
  sleep 0.2
done
ok "serve: /healthz answers 200" test "$healthy" = 0
ok "serve: /readyz answers (200 or 503)" bash -c "code=\$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$PORT/readyz); [[ \$code == 200 || \$code == 503 ]]"
curl -fsS "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics.txt" 2>&1 || true
ok "serve: /metrics has vtpm_agent_build_info" grep -q '^vtpm_agent_build_info{' "$WORK/metrics.txt"
# Probes run at start-up; give the first round a bounded time to land.
for _ in $(seq 100); do
  grep -q '^vtpm_node_info{' "$WORK/metrics.txt" && grep -q '^vtpm_libvirt_info{' "$WORK/metrics.txt" && break
  sleep 0.3
  curl -fsS "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics.txt" 2>&1 || true
done
ok "serve: /metrics has vtpm_libvirt_info from the host's libvirt" grep -q "^vtpm_libvirt_info{libvirt_version=\"$HOST_LIBVIRT\"" "$WORK/metrics.txt"
ok "serve: /metrics has vtpm_node_info with the Nova host" grep -q "^vtpm_node_info{.*nova_host=\"$HOST_FQDN\"" "$WORK/metrics.txt"
stop_rc=0
podman stop -t 10 "$RUN_ID-serve" >/dev/null || stop_rc=$?
exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$RUN_ID-serve" 2>/dev/null || echo unknown)
ok "serve: SIGTERM stops it with exit code 0 (got $exit_code)" test "$stop_rc" = 0 -a "$exit_code" = 0
if ((failed)); then podman logs "$RUN_ID-serve" 2>&1 | tail -20 | sed 's/^/    serve log: /' || true; fi

echo "TIMING ci-image-total $(elapsed "$T0")s"
echo "$passed passed, $failed failed"
((failed == 0))
