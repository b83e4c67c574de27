#!/usr/bin/env bash
# The .deb under a real systemd: boots a fresh Debian 12 root filesystem (scripts/nspawn-base.sh,
# copied per scenario) with systemd as PID 1 under systemd-nspawn, the host's libvirt sockets bound
# in (and /var/lib/libvirt read-only, as a compute node has it), no network (the package installs
# offline: its dependencies are in the base). Then:
#   install   apt-get install ./vtpm-agent_*.deb: active through Type=notify (READY), watchdog pings,
#             /healthz 200, user/group/conffile as packaged, `vtpm-agent check` as installed
#   reload    systemctl reload: a valid change is applied in the same process, an invalid one
#             keeps the running configuration and names each bad key
#   stop      systemctl stop within 5 s, exit 0, no process of the unit left
#   upgrade   from the previous build: a locally edited config and the state are kept, restarted
#   purge     nothing of the package left: files, user, group, config, state, stat override
# Prints one `ok`/`FAIL` line per check and "N passed, N failed".
#   scripts/package-test.sh [DEB]   (default: release/vtpm-agent_<version>_amd64.deb; `npm run release` makes it)
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=$(node -p "require('$ROOT/package.json').version")
DEB=${1:-$ROOT/release/vtpm-agent_${VERSION}_amd64.deb}
passed=0
failed=0
log() { printf '[package-test] %s\n' "$*" >&2; }
ok() { # name command...: one check; never aborts the script
  local name=$1 out rc=0
  shift
  out=$("$@" 2>&1) || rc=$?
  if [[ $rc -eq 0 ]]; then echo "ok - $name"; passed=$((passed + 1))
  else echo "FAIL - $name (exit $rc)"; printf '%s\n' "$out" | tail -25 | sed 's/^/    /'; failed=$((failed + 1)); fi
}
finish() { echo "$passed passed, $failed failed"; ((failed == 0)); exit; }
fatal() { echo "FAIL - $*"; failed=$((failed + 1)); finish; }

[[ -f "$DEB" ]] || fatal "no package at $DEB: run \`npm run release\` first"
for tool in systemd-nspawn nsenter dpkg-deb; do command -v "$tool" >/dev/null || fatal "$tool is missing (scripts/apt-packages.txt)"; done
[[ -S /run/libvirt/libvirt-sock-ro ]] || fatal "the host's libvirtd is not running (/run/libvirt/libvirt-sock-ro missing)"
BASE=$(bash "$ROOT/scripts/nspawn-base.sh") || fatal "no base root filesystem (scripts/nspawn-base.sh)"
WORK=$(mktemp -d /var/tmp/vtpm-package-test.XXXXXX)
NSPAWN_PIDS=()
cleanup() {
  for pid in "${NSPAWN_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
HOST_LIBVIRT=$(virsh -r -c qemu:///system version 2>/dev/null | awk '/Using library: libvirt/{print $4}')
HOST_LIBVIRT_GID=$(getent group libvirt | cut -d: -f3)
HOST_LIBVIRT_GID=${HOST_LIBVIRT_GID:-$(stat -c %g /run/libvirt/libvirt-sock)}

# --- the container ------------------------------------------------------------------------------
PID1=
# boot NAME: a fresh copy of the base, booted; sets PID1 (the container's systemd, seen from here).
boot() {
  local name=$1 root="$WORK/$1" nspawn inner t
  cp -a "$BASE" "$root"
  mkdir -p "$root/root/pkg"
  cp "$DEB" "$root/root/pkg/"
  # The host's libvirt group (gid) exists in the container too, as on a compute node: the package
  # must add its user to it.
  chroot "$root" groupadd --system --gid "$HOST_LIBVIRT_GID" libvirt
  # --register=no --keep-unit: no host D-Bus or machined here (release-and-fleet.md).
  systemd-nspawn -q --register=no --keep-unit --private-network -M "vtpm-$name-$$" -D "$root" \
    --bind=/run/libvirt --bind-ro=/var/lib/libvirt -b >"$WORK/$name.console" 2>&1 &
  nspawn=$!
  NSPAWN_PIDS+=("$nspawn")
  PID1=
  for ((t = 0; t < 600; t++)); do
    # systemd is nspawn's child, or its grandchild where nspawn forks an inner nspawn first.
    PID1=$(pgrep -P "$nspawn" -x systemd | head -1)
    if [[ -z "$PID1" ]]; then
      for inner in $(pgrep -P "$nspawn" -x systemd-nspawn); do PID1=$(pgrep -P "$inner" -x systemd | head -1); done
    fi
    [[ -n "$PID1" ]] && break
    kill -0 "$nspawn" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n "$PID1" ]] || { tail -20 "$WORK/$name.console" >&2; return 1; }
  # Booted: multi-user.target reached (degraded counts: the base has units that fail in a container).
  for ((t = 0; t < 600; t++)); do
    state=$(in_ct systemctl is-system-running 2>/dev/null) || true
    [[ "$state" == running || "$state" == degraded ]] && return 0
    sleep 0.1
  done
  echo "systemd did not finish booting (state: $state)" >&2
  tail -20 "$WORK/$name.console" >&2
  return 1
}
in_ct() { nsenter -t "$PID1" -a -- /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
poweroff() { in_ct systemctl poweroff >/dev/null 2>&1; local pid=${NSPAWN_PIDS[-1]}; for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done; kill -KILL "$pid"; }
prop() { in_ct systemctl show -P "$1" vtpm-agent.service; }
# HTTP status of a path on the agent, from inside (private network), with the packaged runtime.
http_status() {
  in_ct /usr/lib/vtpm-agent/bin/node -e "fetch('http://127.0.0.1:$1$2', { signal: AbortSignal.timeout(5000) }).then((r) => console.log(r.status), () => console.log(0))"
}
wait_for() { # seconds command...: until the command succeeds
  local until=$((SECONDS + $1)); shift
  while ! "$@" >/dev/null 2>&1; do ((SECONDS < until)) || return 1; sleep 0.2; done
}
healthz_200() { [[ "$(http_status "${1:-9643}" /healthz)" == 200 ]]; }
journal_since() { in_ct journalctl -u vtpm-agent.service -o cat --no-pager --since "@$1"; }
# No process of the unit left: none in its cgroup, none run by its user.
no_unit_process() {
  local left
  left=$(in_ct sh -c 'grep -l "/vtpm-agent.service" /proc/[0-9]*/cgroup 2>/dev/null; for p in /proc/[0-9]*; do [ "$(stat -c %U "$p" 2>/dev/null)" = vtpm-agent ] && echo "$p"; done' || true)
  [[ -z "$left" ]] || { echo "left: $left"; return 1; }
}
nothing_left() {
  local problems=()
  in_ct getent passwd vtpm-agent >/dev/null && problems+=("user vtpm-agent")
  in_ct getent group vtpm-agent >/dev/null && problems+=("group vtpm-agent")
  for path in /etc/vtpm-agent /var/lib/vtpm-agent /usr/lib/vtpm-agent /usr/bin/vtpm-agent /lib/systemd/system/vtpm-agent.service \
    /usr/share/man/man8/vtpm-agent.8.gz /usr/share/doc/vtpm-agent /etc/systemd/system/multi-user.target.wants/vtpm-agent.service \
    /var/lib/systemd/deb-systemd-helper-enabled/vtpm-agent.service.dsh-also; do
    in_ct test -e "$path" && problems+=("$path")
  done
  in_ct dpkg-statoverride --list | grep -q vtpm-agent && problems+=("dpkg stat override")
  in_ct dpkg-query -W -f '${db:Status-Status}' vtpm-agent 2>/dev/null | grep -qv '^not-installed$' && problems+=("dpkg still knows the package")
  in_ct getent group libvirt | grep -q vtpm-agent && problems+=("member of libvirt")
  ((${#problems[@]} == 0)) || { echo "left after purge: ${problems[*]}"; return 1; }
}
set_config() { in_ct sed -i -E "$1" /etc/vtpm-agent/config.yaml; }

# --- scenario 1: install, reload, stop, purge ---------------------------------------------------
t0=$EPOCHREALTIME
boot install || fatal "systemd did not boot under systemd-nspawn (console: above)"
echo "TIMING boot $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')s"
ok "systemd is PID 1 in the container" test "$(in_ct cat /proc/1/comm)" = systemd
# A short watchdog for the test (the unit's own is 60 s): pings every 2 s.
in_ct mkdir -p /etc/systemd/system/vtpm-agent.service.d
in_ct sh -c 'printf "[Service]\nWatchdogSec=4\n" >/etc/systemd/system/vtpm-agent.service.d/50-test-watchdog.conf'
DEB_NAME=$(basename "$DEB")
ok "apt-get install ./$DEB_NAME (offline: dependencies already in the base)" in_ct apt-get install -y --no-install-recommends "/root/pkg/$DEB_NAME"
ok "dpkg: vtpm-agent $VERSION installed" test "$(in_ct dpkg-query -W -f '${Version} ${db:Status-Status}' vtpm-agent)" = "$VERSION installed"
ok "service enabled" test "$(in_ct systemctl is-enabled vtpm-agent.service)" = enabled
ok "service active: READY reached (Type=notify)" wait_for 30 bash -c "[[ \$(nsenter -t $PID1 -a systemctl is-active vtpm-agent.service) == active ]]"
ok "unit is Type=notify, NotifyAccess=all, started by the package" test "$(prop Type)/$(prop NotifyAccess)/$(prop NRestarts)" = "notify/all/0"
ok "the main process is the bundled runtime, as user vtpm-agent" bash -c "in_ct() { nsenter -t $PID1 -a \"\$@\"; }; pid=\$(in_ct systemctl show -P MainPID vtpm-agent); [[ \$(in_ct readlink /proc/\$pid/exe) == /usr/lib/vtpm-agent/bin/node && \$(in_ct stat -c %U /proc/\$pid) == vtpm-agent ]]"
w1=$(prop WatchdogTimestampMonotonic)
sleep 5
w2=$(prop WatchdogTimestampMonotonic)
ok "watchdog pings seen (WatchdogSec=4: timestamp $w1 -> $w2)" test "${w2:-0}" -gt "${w1:-0}" -a "${w1:-0}" -gt 0
sleep 5
ok "still active, not restarted, after 2.5 watchdog periods" test "$(in_ct systemctl is-active vtpm-agent.service)/$(prop NRestarts)" = "active/0"
ok "/healthz answers 200" wait_for 20 healthz_200
ok "user vtpm-agent: system user, nologin, member of libvirt" bash -c "p=\$(nsenter -t $PID1 -a getent passwd vtpm-agent) && (( \$(cut -d: -f3 <<<\"\$p\") < 1000 )) && [[ \$p == *nologin ]] && nsenter -t $PID1 -a id -nG vtpm-agent | grep -qw libvirt"
ok "/etc/vtpm-agent/config.yaml: conffile, root:vtpm-agent 0640" bash -c "[[ \$(nsenter -t $PID1 -a stat -c '%U:%G %a' /etc/vtpm-agent/config.yaml) == 'root:vtpm-agent 640' ]] && nsenter -t $PID1 -a grep -qx /etc/vtpm-agent/config.yaml /var/lib/dpkg/info/vtpm-agent.conffiles"
ok "state directory /var/lib/vtpm-agent owned by vtpm-agent" test "$(in_ct stat -c '%U %a' /var/lib/vtpm-agent)" = "vtpm-agent 700"
ok "installed unit passes systemd-analyze verify" bash -c "out=\$(nsenter -t $PID1 -a systemd-analyze verify vtpm-agent.service 2>&1); if grep -F vtpm-agent.service <<<\"\$out\"; then false; fi"
ok "man page vtpm-agent(8) installed; \`vtpm-agent check --help\` answers" bash -c "nsenter -t $PID1 -a test -s /usr/share/man/man8/vtpm-agent.8.gz && nsenter -t $PID1 -a vtpm-agent check --help | grep -q 'Usage: vtpm-agent check'"
check_rc=0
in_ct vtpm-agent check --json >"$WORK/check.json" 2>"$WORK/check.err" || check_rc=$?
ok "vtpm-agent check as installed: vTPM usable with the container's swtpm and the host's libvirt (exit 0; got $check_rc)" test "$check_rc" = 0
node -e "const j = JSON.parse(require('fs').readFileSync('$WORK/check.json', 'utf8')); for (const c of j.verdict?.combinations ?? []) console.log('note - check in the container: TPM ' + c.version + ' ' + c.model + (c.usable ? ' usable' : ' not usable: ' + (c.reasons ?? []).map((r) => r.code ?? r).join(', ')))" 2>/dev/null || true
ok "check: reaches the host's libvirt ($HOST_LIBVIRT) through the bound socket" node -e \
  "const j = JSON.parse(require('fs').readFileSync('$WORK/check.json', 'utf8')); if (j.versions?.libvirt !== '$HOST_LIBVIRT') { console.log(JSON.stringify(j.versions)); process.exit(1); }"

# reload: a valid change (log level and listen port) in the same process; an invalid one keeps the
# running configuration.
pid_before=$(prop MainPID)
set_config 's/^logLevel: .*/logLevel: debug/; s/^  port: 9643$/  port: 9644/'
ok "systemctl reload (valid change: logLevel debug, listen.port 9644)" in_ct systemctl reload vtpm-agent.service
# Type=notify: "reloading" until the agent sends READY=1 again (RELOADING=1 ... READY=1).
ok "reload: same process, active again" wait_for 20 bash -c "[[ \$(nsenter -t $PID1 -a systemctl show -P MainPID vtpm-agent) == $pid_before && \$(nsenter -t $PID1 -a systemctl is-active vtpm-agent) == active ]]"
ok "reload: the new configuration is applied (/healthz 200 on the new port 9644)" wait_for 20 healthz_200 9644
since=$(in_ct date +%s)
set_config 's/^logLevel: .*/logLevel: loud/; s/^  port: 9644$/  port: not-a-port/'
ok "systemctl reload (invalid change: logLevel and listen.port)" in_ct systemctl reload vtpm-agent.service
wait_for 20 bash -c "[[ \$(nsenter -t $PID1 -a systemctl is-active vtpm-agent) != reloading ]]"
ok "invalid reload: same process, still active" bash -c "[[ \$(nsenter -t $PID1 -a systemctl show -P MainPID vtpm-agent) == $pid_before ]] && [[ \$(nsenter -t $PID1 -a systemctl is-active vtpm-agent) == active ]]"
ok "invalid reload: the running configuration stays (/healthz 200 on 9644)" healthz_200 9644
ok "invalid reload: each bad key is logged (logLevel, listen.port)" wait_for 10 bash -c "j=\$(nsenter -t $PID1 -a journalctl -u vtpm-agent.service -o cat --no-pager --since @$since); grep -q logLevel <<<\"\$j\" && grep -q listen.port <<<\"\$j\""
set_config 's/^logLevel: .*/logLevel: info/; s/^  port: not-a-port$/  port: 9643/'

# stop: within 5 s, cleanly, nothing left behind; from a fresh start, while the first probe round
# (virsh, swtpm children) is under way.
in_ct systemctl reset-failed vtpm-agent.service 2>/dev/null
in_ct systemctl restart vtpm-agent.service
ok "restarted for the stop test" wait_for 30 bash -c "[[ \$(nsenter -t $PID1 -a systemctl is-active vtpm-agent.service) == active ]]"
unit_procs() { in_ct sh -c 'grep -l "/vtpm-agent.service" /proc/[0-9]*/cgroup 2>/dev/null | wc -l'; }
# Stopped while a probe has a child running (virsh, swtpm), when one shows within 20 s.
wait_for 20 bash -c "(( \$(nsenter -t $PID1 -a sh -c 'grep -l /vtpm-agent.service /proc/[0-9]*/cgroup 2>/dev/null | wc -l') > 1 ))" || true
echo "note - processes in the unit's cgroup when stopped: $(unit_procs)"
t=$EPOCHREALTIME
in_ct systemctl stop vtpm-agent.service
stop_s=$(awk -v a="$t" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
ok "systemctl stop within 5 s (took ${stop_s} s)" awk -v s="$stop_s" 'BEGIN { exit !(s < 5) }'
ok "stopped cleanly: Result=success, exit status 0" test "$(prop Result)/$(prop ExecMainStatus)" = "success/0"
ok "no process of the unit left (cgroup, user)" no_unit_process
ok "not killed by systemd (no SIGKILL in the journal)" bash -c "! nsenter -t $PID1 -a journalctl -u vtpm-agent.service --no-pager | grep -Ei 'SIGKILL|killing process'"

in_ct rm -rf /etc/systemd/system/vtpm-agent.service.d
ok "apt-get purge vtpm-agent" in_ct apt-get purge -y vtpm-agent
ok "purge leaves nothing" nothing_left
poweroff

# --- scenario 2: upgrade from the previous build keeps a locally edited config ---------------------
# The previous build: this package as version <version>~prev (sorts before it).
PREV="$WORK/vtpm-agent_${VERSION}~prev_amd64.deb"
dpkg-deb -R "$DEB" "$WORK/prev" && sed -i "s/^Version: .*/Version: ${VERSION}~prev/" "$WORK/prev/DEBIAN/control" \
  && dpkg-deb -Znone --build "$WORK/prev" "$PREV" >/dev/null || fatal "could not make the previous build"
rm -rf "$WORK/prev" "$WORK/install"
boot upgrade || fatal "systemd did not boot under systemd-nspawn (upgrade scenario)"
cp "$PREV" "$WORK/upgrade/root/pkg/"
ok "install the previous build (${VERSION}~prev)" in_ct apt-get install -y --no-install-recommends "/root/pkg/$(basename "$PREV")"
ok "previous build active" wait_for 30 bash -c "[[ \$(nsenter -t $PID1 -a systemctl is-active vtpm-agent.service) == active ]]"
set_config 's/^  port: 9643$/  port: 9650/'
in_ct sh -c 'echo "# edited on this host" >>/etc/vtpm-agent/config.yaml'
in_ct systemctl restart vtpm-agent.service
ok "locally edited config in effect (port 9650)" wait_for 30 healthz_200 9650
in_ct sh -c 'echo kept >/var/lib/vtpm-agent/upgrade-marker && chown vtpm-agent: /var/lib/vtpm-agent/upgrade-marker'
pid_before=$(prop MainPID)
ok "upgrade: apt-get install ./$DEB_NAME" in_ct apt-get install -y --no-install-recommends "/root/pkg/$DEB_NAME"
ok "upgrade: $VERSION installed" test "$(in_ct dpkg-query -W -f '${Version}' vtpm-agent)" = "$VERSION"
ok "upgrade: the edited config is kept" bash -c "nsenter -t $PID1 -a grep -q '^# edited on this host' /etc/vtpm-agent/config.yaml && nsenter -t $PID1 -a grep -q '^  port: 9650' /etc/vtpm-agent/config.yaml"
ok "upgrade: config still root:vtpm-agent 0640" test "$(in_ct stat -c '%U:%G %a' /etc/vtpm-agent/config.yaml)" = "root:vtpm-agent 640"
ok "upgrade: state kept" test "$(in_ct cat /var/lib/vtpm-agent/upgrade-marker)" = kept
ok "upgrade: service restarted (new process) and active" wait_for 30 bash -c "[[ \$(nsenter -t $PID1 -a systemctl is-active vtpm-agent) == active && \$(nsenter -t $PID1 -a systemctl show -P MainPID vtpm-agent) != $pid_before ]]"
ok "upgrade: /healthz 200 on the edited port" wait_for 30 healthz_200 9650
ok "apt-get remove stops the service" bash -c "nsenter -t $PID1 -a env DEBIAN_FRONTEND=noninteractive apt-get remove -y vtpm-agent >/dev/null && ! nsenter -t $PID1 -a systemctl is-active -q vtpm-agent.service"
ok "remove keeps config and state (until purge)" in_ct test -f /etc/vtpm-agent/config.yaml -a -f /var/lib/vtpm-agent/upgrade-marker
ok "no process of the unit left after remove" no_unit_process
ok "apt-get purge vtpm-agent" in_ct apt-get purge -y vtpm-agent
ok "purge leaves nothing" nothing_left
poweroff

finish
