#!/usr/bin/env bash
# The hub's installer and unit under a REAL systemd: boots Debian in a systemd-nspawn container,
# installs the hub there the way the README's Pi guide does (as the user pi: `sudo systemd/install.sh`
# from a built checkout), and checks what only a running systemd can show: READY (Type=notify),
# the journal, the broker, the watchdog kill and restart, reload (SIGHUP), exit 78 without a restart
# loop, a clean stop with STOPPING=1, the hardening leaving Node working, the state directory, a
# second install (upgrade) keeping config and state, start at boot, and --uninstall.
# Prints PASS/FAIL per check and the measured figures; exits 1 if any check failed.
#
# NOT part of `npm test` or CI: it needs root on a Debian/Ubuntu machine, downloads packages
# (systemd-container, debootstrap, a ~390 MB Debian rootfs, cached) and takes about 3 minutes
# (the watchdog check alone waits up to 30 s, WatchdogSec).
#
#   sudo systemd/container-test.sh                 build the checkout's copy in the container, test
#   HUBTEST_BASE=/var/lib/machines/hubtest         cached pristine rootfs (made once by debootstrap)
#   HUBTEST_ROOT=/var/lib/machines/hubtest-run     the copy that is booted (replaced on every run)
#   HUBTEST_SUITE=bookworm                         Debian release: bookworm (systemd 252, like
#                                                  Raspberry Pi OS Bookworm) or trixie (257); give
#                                                  trixie its own HUBTEST_BASE and HUBTEST_ROOT.
#                                                  Both pass on a host with hybrid cgroups (v1 + a
#                                                  cgroup2 at /sys/fs/cgroup/unified)
#   HUBTEST_KEEP=1                                 leave the container running afterwards
#   HUBTEST_PROBE_EXTRA='PrivateDevices=yes'       [Service] lines added to hub.service for the
#                                                  device checks (4b) only: shows they can fail
#   HUBTEST_NPM_CI=1                               as a newcomer would: install build-essential and
#                                                  python3 in the container and run `npm ci` there
#                                                  (npm registry needed; native modules built from
#                                                  source when no prebuilt binary can be fetched)
#
# Node: the container gets this machine's node and npm (the hub needs Node >= 20; bookworm's own
# nodejs is 18), so the host should be a Debian of the same release or older glibc than the
# container. The checkout's node_modules are copied (no npm ci: better-sqlite3's prebuilt download
# is not needed and the test works offline once the rootfs is cached); `npm run build` runs inside.
# Works where PID 1 is not systemd (a VM or container: --register=no --keep-unit) and on a systemd host.
set -uo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE=${HUBTEST_BASE:-/var/lib/machines/hubtest}
ROOT=${HUBTEST_ROOT:-/var/lib/machines/hubtest-run}
SUITE=${HUBTEST_SUITE:-bookworm}
MIRROR=${HUBTEST_MIRROR:-http://deb.debian.org/debian}
PACKAGES=systemd,systemd-sysv,dbus,sudo,procps,mosquitto-clients
LOG=$(mktemp /tmp/hub-container-test.XXXXXX)

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); printf 'PASS  %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL  %s\n' "$*"; }
skip() { printf 'SKIP  %s\n' "$*"; }
note() { printf '      %s\n' "$*"; }
check() { # check "name" command...: PASS when the command succeeds
  local name=$1
  shift
  if "$@" >>"$LOG" 2>&1; then pass "$name"; else fail "$name"; fi
}
die() { echo "container-test.sh: $*" >&2; exit 2; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

[ "$(id -u)" = 0 ] || die "run as root (it boots a container)"
command -v apt-get >/dev/null || die "needs a Debian-like host (apt-get)"
[ -f "$SRC/package.json" ] || die "run from a checkout"
[ "${HUBTEST_NPM_CI:-0}" = 1 ] || [ -d "$SRC/node_modules" ] || die "run from a checkout with node_modules (npm ci), or set HUBTEST_NPM_CI=1"
HOST_NODE=$(command -v node) || die "node not found on this machine"
HOST_NODE=$(readlink -f "$HOST_NODE")
HOST_NPM=$(command -v npm) && HOST_NPM_DIR=$(cd "$(dirname "$(readlink -f "$HOST_NPM")")/.." && pwd) || die "npm not found"

# ------------------------------------------------------------------------------------------ tools
if ! command -v systemd-nspawn >/dev/null || ! command -v debootstrap >/dev/null; then
  echo "installing systemd-container and debootstrap"
  apt-get update -qq && apt-get install -y -qq systemd-container debootstrap >>"$LOG" 2>&1 || die "apt-get install failed (see $LOG)"
fi

# ------------------------------------------------------------------------- rootfs (cached), copy
if [ ! -x "$BASE/usr/lib/systemd/systemd" ]; then
  echo "debootstrap $SUITE into $BASE (once; a few minutes)"
  rm -rf "$BASE"
  debootstrap --include="$PACKAGES" "$SUITE" "$BASE" "$MIRROR" >>"$LOG" 2>&1 || die "debootstrap failed (see $LOG)"
fi
for p in sudo mosquitto-clients; do
  if ! chroot "$BASE" dpkg -s "$p" >/dev/null 2>&1; then
    mount --bind /proc "$BASE/proc"
    chroot "$BASE" apt-get install -y -qq "$p" >>"$LOG" 2>&1
    umount "$BASE/proc"
  fi
done
echo "copying $BASE to $ROOT"
rm -rf "$ROOT"
cp -a "$BASE" "$ROOT"
# This machine's node and npm, at the same path (install.sh writes node's path into the unit).
mkdir -p "$ROOT$(dirname "$HOST_NODE")" "$ROOT/usr/lib/node_modules"
cp "$HOST_NODE" "$ROOT$HOST_NODE"
[ "$HOST_NODE" = /usr/bin/node ] || ln -sf "$HOST_NODE" "$ROOT/usr/bin/node"
cp -a "$HOST_NPM_DIR" "$ROOT/usr/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/bin/npm"
chroot "$ROOT" /usr/bin/node --version >>"$LOG" 2>&1 || die "this machine's node does not run in the $SUITE container (glibc?); see $LOG"
# The first user, as on Raspberry Pi OS: pi with password-less sudo, the checkout in ~/hub.
chroot "$ROOT" useradd -m -u 1000 -s /bin/bash pi
echo 'pi ALL=(ALL) NOPASSWD: ALL' >"$ROOT/etc/sudoers.d/010_pi-nopasswd"
chmod 0440 "$ROOT/etc/sudoers.d/010_pi-nopasswd"
mkdir -p "$ROOT/home/pi/hub"
NPM_CI=${HUBTEST_NPM_CI:-0}
EXCLUDE_MODULES=()
[ "$NPM_CI" = 1 ] && EXCLUDE_MODULES=(--exclude=./node_modules)
(cd "$SRC" && tar --exclude=./.git --exclude=./dist --exclude=./data "${EXCLUDE_MODULES[@]}" -cf - .) | tar -xf - -C "$ROOT/home/pi/hub"
chroot "$ROOT" chown -R pi:pi /home/pi/hub
# The device probe (section 4b): run inside hub.service itself (ExecStartPost=, ExecReload= from a
# runtime drop-in) and, as a baseline, as root in a plain transient unit. It prints one line per
# fact, "hubprobe TAG KEY VALUE": its credentials, /dev's st_dev, the errno of open() on each device
# node given, whether a sysfs directory is listable and whether the mount covering it is ro or rw.
mkdir -p "$ROOT/usr/local/lib"
cat >"$ROOT/usr/local/lib/hubtest-probe.cjs" <<'EOF'
// hubtest-probe.cjs: written by systemd/container-test.sh; see section 4b there.
const fs = require('node:fs');
const [tag, ...paths] = process.argv.slice(2);
const out = (k, v) => console.log(`hubprobe ${tag} ${k} ${v}`);
const status = fs.readFileSync('/proc/self/status', 'utf8');
for (const k of ['Uid', 'Gid', 'Groups', 'CapEff', 'NoNewPrivs', 'Seccomp']) {
  const m = status.match(new RegExp(`^${k}:[ \\t]*(.*)$`, 'm'));
  out(k, m && m[1].trim() ? m[1].trim().split(/\s+/).join(',') : '-');
}
out('devdev', fs.statSync('/dev').dev);
// mountinfo field 5 is the mount point, field 6 the per-mount options (ro/rw).
const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n').map((l) => l.split(' '));
const under = (p, m) => p === m || p.startsWith(m === '/' ? '/' : `${m}/`);
// The deepest mount point above p; of equal ones the last (mounted on top).
const covering = (p) => mounts.reduce((b, f) => (under(p, f[4]) && (!b || f[4].length >= b[4].length) ? f : b), undefined);
const { O_RDWR, O_NONBLOCK, O_NOCTTY } = fs.constants;
for (const p of paths) {
  if (p.startsWith('/sys/')) {
    const m = covering(p);
    out(`mount:${p}`, m ? m[5].split(',')[0] : '-');
    try { out(p, `LIST(${fs.readdirSync(p).length})`); } catch (e) { out(p, e.code); }
    continue;
  }
  // O_NOCTTY: systemd starts the probe as a session leader; a tty must not become its terminal.
  try { fs.closeSync(fs.openSync(p, O_RDWR | O_NONBLOCK | O_NOCTTY)); out(p, 'OK'); } catch (e) { out(p, e.code); }
}
out('end', 'end');
EOF
if [ "$NPM_CI" = 1 ]; then
  # The README's Pi guide: build tools for native modules, then `npm ci` as the user.
  echo "apt-get install build-essential python3, then npm ci in the container"
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  mount --bind /proc "$ROOT/proc"
  chroot "$ROOT" apt-get install -y -qq build-essential python3 >>"$LOG" 2>&1
  RC=$?
  umount "$ROOT/proc"
  [ "$RC" = 0 ] || die "apt-get install build-essential python3 failed in the container (see $LOG)"
  # This machine reaches the npm registry through its own CA bundle (a proxy's CA may be in it), and
  # node-gyp needs the headers of the node binary copied above (on a Pi they come with Node's package;
  # here the headers download from nodejs.org may be unreachable). Both are taken from the host.
  cp /etc/ssl/certs/ca-certificates.crt "$ROOT/usr/local/share/hubtest-host-ca.crt"
  [ -d /usr/include/node ] && mkdir -p "$ROOT/usr/include" && cp -a /usr/include/node "$ROOT/usr/include/"
  NPM_ENV='NODE_EXTRA_CA_CERTS=/usr/local/share/hubtest-host-ca.crt npm_config_cafile=/usr/local/share/hubtest-host-ca.crt'
  [ -d /usr/include/node ] && NPM_ENV="$NPM_ENV npm_config_nodedir=/usr"
  T0=$(now_ms)
  chroot "$ROOT" su - pi -c "cd ~/hub && env $NPM_ENV npm ci" >>"$LOG" 2>&1 || die "npm ci failed in the container (see $LOG)"
  note "npm ci took $(($(now_ms) - T0)) ms"
fi
echo "npm run build in the container"
chroot "$ROOT" su - pi -c 'cd ~/hub && npm run build' >>"$LOG" 2>&1 || die "npm run build failed in the container (see $LOG)"

# ------------------------------------------------------------------------------------------- boot
# Device nodes as Raspberry Pi OS's udev rules make them (99-com.rules: gpiochip* gpio 0660, i2c-*
# i2c 0660; 50-udev-default.rules: tty[A-Z]* dialout 0660), created in section 4b. Majors from the
# kernel's Documentation/admin-guide/devices.txt: 89 i2c, 4/64 ttyS0 (the Pi's mini UART), 204/64
# ttyAMA0 (PL011), 166 ttyACM, 188 ttyUSB. gpiochip's major is dynamic (254 on a Pi): the first of
# 254..234 this kernel has not given to a driver, so the node cannot reach an unrelated driver.
GPIO_MAJOR=254
for m in $(seq 254 -1 234); do
  if ! sed -n '/^Character/,/^$/p' /proc/devices | grep -q "^ *$m "; then GPIO_MAJOR=$m; break; fi
done
DEVNODES=("gpiochip0 $GPIO_MAJOR 0 gpio" "i2c-1 89 1 i2c" "ttyS0 4 64 dialout" "ttyAMA0 204 64 dialout"
  "ttyACM0 166 0 dialout" "ttyUSB0 188 0 dialout")
DENIED_NODE="hubtest-rootonly 89 0 root" # root:root 0600: the negative control
LATE_NODE="ttyUSB1 188 1 dialout"        # made while the hub runs: a USB adapter plugged in later

NSPAWN_PID=
boot() {
  local opts=(-D "$ROOT" -b --machine=hubtest --private-network --console=passive)
  # Without systemd on the host there is no machined to register with nor a scope to allocate.
  # The container's own device restriction: registered with a systemd host, nspawn puts the
  # container in a scope with DevicePolicy=closed and a short DeviceAllow= list (null, zero, pts,
  # tun, ...): open() of any other node fails with EPERM there, before hub.service's own sandbox is
  # even involved. Allow the probed majors:minors on that scope (/dev/char/M:N needs no host node).
  # Without a systemd host (a VM, a container) there is no scope and no such restriction.
  # Section 4b tells the two apart: root in a plain transient unit is the container's baseline.
  if [ -d /run/systemd/system ]; then
    local n
    for n in "${DEVNODES[@]}" "$DENIED_NODE" "$LATE_NODE"; do
      set -- $n
      opts+=("--property=DeviceAllow=/dev/char/$2:$3 rw")
    done
  else
    opts+=(--register=no --keep-unit)
  fi
  systemd-nspawn "${opts[@]}" >>"$LOG" 2>&1 &
  NSPAWN_PID=$!
  LEADER=
  local deadline=$(($(date +%s) + 60)) state=
  while [ "$(date +%s)" -lt $deadline ]; do
    kill -0 "$NSPAWN_PID" 2>/dev/null || die "systemd-nspawn exited (see $LOG)"
    # The container's PID 1: the child of systemd-nspawn that is PID 1 in its namespace (right
    # after the start another, short-lived child of nspawn exists too).
    LEADER=
    for p in $(pgrep -P "$NSPAWN_PID"); do
      if grep -q -E '^NSpid:.*[[:space:]]1$' "/proc/$p/status" 2>/dev/null; then LEADER=$p; fi
    done
    export LEADER
    if [ -n "$LEADER" ]; then
      state=$(cx systemctl is-system-running 2>/dev/null)
      case "$state" in running | degraded) return 0 ;; esac
    fi
    sleep 0.5
  done
  die "the container did not finish booting within 60 s (state: ${state:-none}; see $LOG)"
}
# A command inside the container (all its namespaces), as root with a clean environment.
cx() { nsenter -t "$LEADER" -a -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 bash -c "$*"; }
as_pi() { cx "su - pi -c $(printf %q "$*")"; }
shutdown_container() {
  [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null || return 0
  cx systemctl poweroff >/dev/null 2>&1
  for _ in $(seq 1 60); do kill -0 "$NSPAWN_PID" 2>/dev/null || return 0; sleep 0.5; done
  kill "$NSPAWN_PID" 2>/dev/null
  wait "$NSPAWN_PID" 2>/dev/null
}
cleanup() { if [ "${HUBTEST_KEEP:-}" = 1 ]; then echo "container left running: nsenter -t $LEADER -a"; else shutdown_container; fi; }
trap cleanup EXIT

echo "booting the container (systemd $(chroot "$ROOT" dpkg-query -W -f='${Version}' systemd))"
boot
# Debug logging in PID 1: it then logs every notify message it accepts (READY, WATCHDOG, STOPPING).
cx systemd-analyze log-level debug

prop() { cx systemctl show hub.service -p "$1" --value; }
active() { cx systemctl is-active --quiet hub.service; }
wait_for() { # wait_for SECONDS command...: polls until the command succeeds
  local deadline=$(($(now_ms) + $1 * 1000))
  shift
  while [ "$(now_ms)" -lt $deadline ]; do "$@" && return 0; sleep 0.2; done
  return 1
}
journal_has() { cx "journalctl -u hub.service --no-pager -o cat $2 | grep -q -E $(printf %q "$1")"; }
# PID 1's debug line for a notify message it accepted from the hub whose main PID is $1 (an ERE):
# "from PID 12 (MAINPID=3, READY=1)" in systemd 252, "from PID 12: MAINPID=3, MAINPIDFDID=.., READY=1" in 257.
notified() { cx "journalctl _PID=1 -o cat --no-pager | grep -q -E 'hub.service: Got notification message from PID [0-9]+( \\(|: )MAINPID=$1,.* $2\\)?\$'"; }
mqtt_roundtrip() { # host, topic: a retained message comes back
  cx "mosquitto_pub -h $1 -t $2 -m hello-$2 -r -q 1 && mosquitto_sub -h $1 -t $2 -C 1 -W 5" | grep -q "hello-$2"
}
# The checks below run some of these in `bash -c`.
export -f cx as_pi prop active wait_for journal_has now_ms notified
echo "--- checks"

# 1. A first install, as the README says: sudo systemd/install.sh from the built checkout.
T0=$(now_ms)
if as_pi 'cd ~/hub && sudo systemd/install.sh' >>"$LOG" 2>&1; then pass "install.sh (first install) exits 0"; else fail "install.sh (first install) exits 0 (see $LOG)"; fi
note "install.sh took $(($(now_ms) - T0)) ms"
check "service active after install (Type=notify READY arrived)" active
START=$(prop ExecMainStartTimestampMonotonic)
READY=$(prop ActiveEnterTimestampMonotonic)
[ -n "$START" ] && [ -n "$READY" ] && note "start to READY: $(((READY - START) / 1000)) ms"
check "READY=1 came from a systemd-notify child with MAINPID (NotifyAccess=all)" notified '[0-9]+' READY=1
check "systemctl status shows the hub's STATUS= (broker listening on ...)" cx "systemctl status hub --no-pager | grep -q 'Status: \"broker listening on 127.0.0.1:1883'"
check "enabled (starts at boot)" cx systemctl is-enabled --quiet hub.service
check "journalctl -u hub shows the hub's log ('hub running')" journal_has 'hub running' ""
check "hub log lines carry syslog priorities (info and debug/warn levels, not all one)" cx "[ \$(journalctl -u hub -o json --no-pager _SYSTEMD_UNIT=hub.service | grep -o '\"PRIORITY\":\"[0-9]\"' | sort -u | wc -l) -ge 2 ]"

# 2. Who the hub runs as, and what the hardening leaves it.
MAIN=$(prop MainPID)
check "runs as user hub, not root" cx "[ \$(stat -c %U /proc/$MAIN) = hub ]"
check "supplementary groups gpio, i2c, dialout" cx "for g in gpio i2c dialout; do grep -q \"^Groups:.*\\b\$(getent group \$g | cut -d: -f3)\\b\" /proc/$MAIN/status || exit 1; done"
check "no capabilities, no_new_privs, seccomp filter on" cx "grep -q '^CapEff:\s*0000000000000000' /proc/$MAIN/status && grep -q '^NoNewPrivs:\s*1' /proc/$MAIN/status && grep -q '^Seccomp:\s*2' /proc/$MAIN/status"
check "no 'Operation not permitted' / EPERM / SIGSYS in the hub's log (filter and hardening vs Node)" bash -c "! cx \"journalctl -u hub --no-pager -o cat _SYSTEMD_UNIT=hub.service | grep -q -i -E 'EPERM|not permitted|EACCES|SIGSYS'\""
SEC=$(cx systemd-analyze security hub.service --no-pager 2>/dev/null | sed -n 's/.*Overall exposure level for hub.service: \([0-9.]*\).*/\1/p')
if [ -n "$SEC" ] && awk "BEGIN{exit !($SEC <= 4.0)}"; then pass "systemd-analyze security hub (live): exposure $SEC <= 4.0"; else fail "systemd-analyze security hub (live): exposure '${SEC}'"; fi
MEM=$(prop MemoryCurrent)
if [[ "$MEM" =~ ^[0-9]+$ ]]; then
  note "MemoryCurrent $((MEM / 1024 / 1024)) MB (MemoryMax $(($(prop MemoryMax) / 1024 / 1024)) MB)"
else
  skip "MemoryMax= not enforceable here: no memory controller for the container's cgroup (MemoryCurrent=$MEM)"
fi

# 3. The broker, inside the container (its own network namespace: no clash with the host's 1883).
check "broker answers on 127.0.0.1:1883 (retained publish and subscribe)" mqtt_roundtrip 127.0.0.1 test/v4
check "broker answers on [::1]:1883" mqtt_roundtrip ::1 test/v6
check "simulated readings arrive (hub/+/temperature)" cx "mosquitto_sub -h 127.0.0.1 -t 'hub/+/temperature' -C 1 -W 10 | grep -q -E '^[0-9.-]+$'"
check "hub status (as pi, via sudo) exits 0" as_pi 'sudo hub status'
check "state dir /var/lib/hub is hub:hub 0750 with broker.db" cx "[ \"\$(stat -c '%U:%G %a' /var/lib/hub)\" = 'hub:hub 750' ] && [ -f /var/lib/hub/broker.db ] && [ \$(stat -c %U /var/lib/hub/broker.db) = hub ]"
check "config /etc/hub root:hub 0750, config.yaml root:hub 0640" cx "[ \"\$(stat -c '%U:%G %a' /etc/hub)\" = 'root:hub 750' ] && [ \"\$(stat -c '%U:%G %a' /etc/hub/config.yaml)\" = 'root:hub 640' ]"

# 4. Reload: SIGHUP to the same process, logged by the hub.
cx systemctl reload hub.service >>"$LOG" 2>&1
check "systemctl reload: the hub logs 'reloading (SIGHUP)', same main PID" bash -c "wait_for 10 journal_has 'reloading \\(SIGHUP\\)' '' && [ \"\$(cx systemctl show hub -p MainPID --value)\" = $MAIN ]"
# The config is re-read by a child process (`hub __load`, hub/config/isolated.ts) spawned inside the
# unit's sandbox; had the sandbox refused it, the hub would log the fallback to in-process checking.
check "reload: the config's rules re-read by the hub's child process, inside the sandbox" bash -c "wait_for 20 journal_has 'hub/rules: rules reloaded' '' && ! journal_has 'could not validate in a child process' ''"

# 4b. Device access from inside the service's sandbox (issue 9: "GPIO, I2C and serial access intact").
# No Pi hardware and no kernel modules here, but open() on a character device checks the file's
# permissions (DAC, the groups) and the device cgroup (DeviceAllow=) BEFORE it reaches a driver, and
# a node only exists in the service's view if the mount namespace shows the real /dev (PrivateDevices=
# would give it a private tmpfs without them). So with the driver absent: ENXIO/ENODEV (or EIO, or
# success where the driver exists) means the sandbox let the hub through; EACCES/EPERM means it did not.
# The probe runs as hub.service itself (a runtime drop-in adds ExecStartPost= and ExecReload=):
# every Exec line of a unit gets the same User=, SupplementaryGroups=, namespaces (ProtectSystem=,
# PrivateTmp=, ...), seccomp filter, capabilities and the unit's cgroup (its device policy).
# A `systemd-run -p ...` copy of `systemctl show hub` would have to re-list ~40 properties and drift;
# nsenter + setpriv would join the mount namespace but neither the cgroup nor the seccomp filter.
mkdev() { # mkdev "NAME MAJOR MINOR GROUP" [MODE]: from the host (host caps and cgroup), in the container's /dev
  set -- $1 "${2:-0660}"
  cx "rm -f /dev/$1 && mknod -m $5 /dev/$1 c $2 $3 && chown root:$4 /dev/$1"
}
for n in "${DEVNODES[@]}"; do mkdev "$n"; done
mkdev "$DENIED_NODE" 0600
cx "ln -sfn ttyAMA0 /dev/serial0" # Raspberry Pi OS's udev rule: serial0 -> the header UART
node_path() { set -- $1; echo "/dev/$1"; }
PATHS="/dev/serial0 $(for n in "${DEVNODES[@]}"; do node_path "$n"; done | tr '\n' ' ')$(node_path "$DENIED_NODE")"
SYSFS="/sys/class/gpio /sys/bus/w1/devices"
# The container's baseline: root (DAC does not apply), no sandbox, in the container's cgroup tree.
BASE_OUT=$(cx "systemd-run --wait --pipe -q /usr/bin/node /usr/local/lib/hubtest-probe.cjs base $PATHS $SYSFS" 2>&1)
val() { sed -n "s|^hubprobe $2 $(printf '%s' "$3" | sed 's/[.[\*^$|]/\\&/g') ||p" <<<"$1" | tail -1; }
DENIED_BY_CONTAINER=
for p in $PATHS; do case "$(val "$BASE_OUT" base "$p")" in EPERM | EACCES | "") DENIED_BY_CONTAINER+=" $p" ;; esac; done
if [ -z "$DENIED_BY_CONTAINER" ]; then
  pass "container baseline: root in a transient unit is not refused any probed node (no device cgroup in the way)"
else
  fail "container baseline: the CONTAINER (not hub.service) refuses$DENIED_BY_CONTAINER: $(grep -c . <<<"$BASE_OUT") lines: $(tr '\n' ';' <<<"$BASE_OUT")"
fi
# Whether this container enforces a unit's device policy at all: with hybrid cgroups the container's
# systemd gets no devices controller, and DevicePolicy=closed then changes nothing (measured: the
# probe still got ENXIO). There, only the property check below guards against a DeviceAllow=.
E=$(cx "systemd-run --wait --pipe -q -p DevicePolicy=closed /usr/bin/node /usr/local/lib/hubtest-probe.cjs ctl /dev/i2c-1" 2>&1 | sed -n 's|^hubprobe ctl /dev/i2c-1 ||p')
if [ "$E" = EPERM ]; then
  note "device policies are enforced in this container (DevicePolicy=closed: EPERM): a DeviceAllow= in hub.service would show below"
else
  skip "device policies are NOT enforced in this container (DevicePolicy=closed gave root '${E:-nothing}', not EPERM): a DeviceAllow= in hub.service would go unnoticed by the probe; the next check reads the unit's properties"
fi
check "hub.service has no device policy of its own (DevicePolicy=auto, DeviceAllow= empty)" bash -c "[ \"\$(cx systemctl show hub -p DevicePolicy --value)\" = auto ] && [ -z \"\$(cx systemctl show hub -p DeviceAllow --value)\" ]"
cx "mkdir -p /run/systemd/system/hub.service.d && cat >/run/systemd/system/hub.service.d/hubtest-probe.conf" <<EOF
[Service]
ExecStartPost=/usr/bin/node /usr/local/lib/hubtest-probe.cjs start $PATHS $SYSFS
ExecReload=/usr/bin/node /usr/local/lib/hubtest-probe.cjs late $(node_path "$LATE_NODE")
${HUBTEST_PROBE_EXTRA:-}
EOF
cx systemctl daemon-reload
cx systemctl restart hub.service >>"$LOG" 2>&1
MAIN=$(prop MainPID)
wait_for 10 journal_has '^hubprobe start end' '' || true
SVC_OUT=$(cx "journalctl -u hub.service -o cat --no-pager | grep '^hubprobe '")
for k in Uid Groups CapEff NoNewPrivs Seccomp; do
  want=$(cx "sed -n 's/^$k:[[:space:]]*//p' /proc/$MAIN/status" | xargs | tr ' ' ',')
  got=$(val "$SVC_OUT" start "$k")
  [ "$got" = "${want:--}" ] || { fail "probe runs with the hub's credentials: $k is '$got', the hub's '$want'"; k=x; break; }
done
[ "$k" = x ] || pass "probe (ExecStartPost) runs with the hub's credentials: Uid $(val "$SVC_OUT" start Uid | cut -d, -f1), Groups $(val "$SVC_OUT" start Groups), CapEff 0, NoNewPrivs 1, Seccomp 2"
DEVDEV=$(cx stat -c %d /dev)
if [ "$(val "$SVC_OUT" start devdev)" = "$DEVDEV" ]; then pass "the service sees the container's /dev (st_dev $DEVDEV), not a PrivateDevices tmpfs"; else fail "the service's /dev is another file system (st_dev $(val "$SVC_OUT" start devdev), the container's $DEVDEV)"; fi
probe_verdict() { # probe_verdict TAG PATH GROUP: a driver-absent errno passes, EACCES/EPERM fail
  local e
  e=$(val "$SVC_OUT" "$1" "$2")
  case "$e" in
    OK | ENXIO | ENODEV | EIO) pass "hub service opens $2 (group $3, 0660): $e (the sandbox let it through; $([ "$e" = OK ] && echo 'a driver answered' || echo 'no driver on this machine'))" ;;
    *) fail "hub service opens $2 (group $3): ${e:-no result} (container baseline as root: $(val "$BASE_OUT" base "$2"))" ;;
  esac
}
probe_verdict start /dev/serial0 "dialout, -> ttyAMA0"
for n in "${DEVNODES[@]}"; do set -- $n; probe_verdict start "/dev/$1" "$4"; done
DENIED=$(node_path "$DENIED_NODE")
E=$(val "$SVC_OUT" start "$DENIED")
if [ "$E" = EACCES ]; then pass "negative control: $DENIED (root:root 0600) gives the hub EACCES (root in the container: $(val "$BASE_OUT" base "$DENIED"))"; else fail "negative control: $DENIED gives the hub '${E:-no result}', not EACCES: the check could not fail"; fi
# A serial adapter plugged in after the start: the node appears in the running service's /dev and
# opens (a closed device policy would resolve char-ttyUSB only at start; see hub.service's header).
mkdev "$LATE_NODE"
cx systemctl reload hub.service >>"$LOG" 2>&1
wait_for 10 journal_has '^hubprobe late end' '' || true
SVC_OUT=$(cx "journalctl -u hub.service -o cat --no-pager | grep '^hubprobe '")
set -- $LATE_NODE
probe_verdict late "/dev/$1" "$4, made after the start (ExecReload= probe)"
for d in $SYSFS; do
  in_svc=$(val "$SVC_OUT" start "mount:$d") in_cx=$(val "$BASE_OUT" base "mount:$d")
  if [ -n "$in_svc" ] && [ "$in_svc" = "$in_cx" ]; then
    pass "the mount covering $d is $in_svc for the service as for the container (the unit adds no read-only /sys)"
  else
    fail "the mount covering $d is '$in_svc' for the service, '$in_cx' for the container"
  fi
  case "$(val "$SVC_OUT" start "$d")" in
    LIST*) pass "the service lists $d: $(val "$SVC_OUT" start "$d")" ;;
    ENOENT) if [ "$(val "$BASE_OUT" base "$d")" = ENOENT ]; then skip "$d: absent on this machine (no GPIO/1-Wire driver), for root too"; else fail "$d: hidden from the service only"; fi ;;
    *) fail "the service cannot list $d: $(val "$SVC_OUT" start "$d")" ;;
  esac
done
note "probe errnos, service: $(sed -n 's/^hubprobe \(start\|late\) \(\/dev\/[^ ]*\) /\2=/p' <<<"$SVC_OUT" | tr '\n' ' ')"
note "probe errnos, root in the container: $(sed -n 's/^hubprobe base \(\/dev\/[^ ]*\) /\1=/p' <<<"$BASE_OUT" | tr '\n' ' ')"
cx "rm -rf /run/systemd/system/hub.service.d && systemctl daemon-reload && systemctl restart hub.service" >>"$LOG" 2>&1
check "drop-in removed, hub restarted without the probe" bash -c "wait_for 20 active && ! cx 'systemctl cat hub.service | grep -q hubtest-probe'"
MAIN=$(prop MainPID)

# 5. The watchdog: fed while healthy (READY + 15 s), then a hung hub (SIGSTOP) is killed and restarted.
if wait_for 25 notified "$MAIN" WATCHDOG=1; then
  pass "WATCHDOG=1 pings reach systemd"
else
  fail "WATCHDOG=1 pings reach systemd"
fi
RESTARTS=$(prop NRestarts)
T0=$(now_ms)
cx kill -STOP "$MAIN"
if wait_for 60 bash -c "[ \"\$(cx systemctl show hub -p MainPID --value)\" != $MAIN ]"; then
  T1=$(now_ms)
  if wait_for 30 active; then
    T2=$(now_ms)
    pass "watchdog: a stopped hub is killed and restarted"
    note "SIGSTOP to kill: $((T1 - T0)) ms (WatchdogSec=$(prop WatchdogUSec)); to active again: $((T2 - T0)) ms"
  else
    fail "watchdog: killed but not active again within 30 s"
  fi
  check "watchdog: systemd logged 'Watchdog timeout' and SIGABRT" cx "journalctl -u hub --no-pager -o cat | grep -q 'Watchdog timeout' && journalctl -u hub --no-pager -o cat | grep -q 'with signal SIGABRT'"
  check "watchdog: restart counted (NRestarts $RESTARTS -> $((RESTARTS + 1)))" bash -c "[ \"\$(cx systemctl show hub -p NRestarts --value)\" = $((RESTARTS + 1)) ]"
else
  cx kill -CONT "$MAIN"
  fail "watchdog: a stopped hub was not killed within 60 s"
fi

# 6. A bad config: exit 78, no restart loop (RestartPreventExitStatus=78).
cx systemctl reset-failed hub.service
cx "cp -p /etc/hub/config.yaml /root/config.good && echo 'hardware: banana' >>/etc/hub/config.yaml"
cx systemctl restart hub.service >>"$LOG" 2>&1
RESTARTS=$(prop NRestarts)
sleep 8 # longer than RestartSec=5s: a restart would have happened by now
check "bad config: exit status 78, unit failed" bash -c "[ \"\$(cx systemctl show hub -p ExecMainStatus --value)\" = 78 ] && [ \"\$(cx systemctl show hub -p ActiveState --value)\" = failed ]"
check "bad config: not restarted (NRestarts stays $RESTARTS)" bash -c "[ \"\$(cx systemctl show hub -p NRestarts --value)\" = $RESTARTS ]"
check "bad config: the journal says where (config.yaml:LINE:COL)" journal_has '/etc/hub/config.yaml:[0-9]+:[0-9]+: hardware' ""
cx "cp -p /root/config.good /etc/hub/config.yaml"
cx systemctl reset-failed hub.service
cx systemctl start hub.service >>"$LOG" 2>&1
check "fixed config: starts again" active

# 7. A clean stop: STOPPING=1 reaches systemd, exit 0 well within TimeoutStopSec.
MAIN=$(prop MainPID)
T0=$(now_ms)
cx systemctl stop hub.service
T1=$(now_ms)
note "systemctl stop took $((T1 - T0)) ms (TimeoutStopSec=$(prop TimeoutStopUSec))"
check "stop: exit status 0, result success, within 5 s" bash -c "[ \"\$(cx systemctl show hub -p ExecMainStatus --value)\" = 0 ] && [ \"\$(cx systemctl show hub -p Result --value)\" = success ] && [ $((T1 - T0)) -lt 5000 ]"
stopping_seen() { notified "$1" STOPPING=1; }
check "stop: STOPPING=1 reached systemd" stopping_seen "$MAIN"
# The hub exits a few ms after STOPPING=1; a systemd-notify child still running then is killed with
# the cgroup. That is a race, so five more stops, each of which must deliver it.
SEEN=0
for _ in 1 2 3 4 5; do
  cx systemctl reset-failed hub.service
  cx systemctl start hub.service >>"$LOG" 2>&1
  M=$(prop MainPID)
  cx systemctl stop hub.service
  if stopping_seen "$M"; then SEEN=$((SEEN + 1)); fi
done
if [ $SEEN = 5 ]; then pass "stop: STOPPING=1 reached systemd in 5 of 5 more stops"; else fail "stop: STOPPING=1 reached systemd in only $SEEN of 5 more stops"; fi
check "stop: the hub logged 'stopped' and no systemd-notify failure" bash -c "journal_has '^hub: stopped' '' && ! journal_has 'systemd-notify failed' ''"

# 8. An upgrade (install.sh again) after several restarts: keeps config and state, restarts the hub.
cx systemctl start hub.service
wait_for 20 active
cx "echo '# my own note' >>/etc/hub/config.yaml"
SUM=$(cx md5sum /etc/hub/config.yaml)
# Five manual restarts within StartLimitIntervalSec (300 s): the installer must still manage to
# restart. Under systemd <= 254 its daemon-reload already forgets the count; systemd >= 255 keeps it
# across reloads, and install.sh's reset-failed is what lets the upgrade start the hub there.
for _ in 1 2 3 4 5; do cx systemctl restart hub.service >>"$LOG" 2>&1; done
OLD=$(prop MainPID)
if as_pi 'cd ~/hub && sudo systemd/install.sh' >>"$LOG" 2>&1; then pass "install.sh again (upgrade, after 5 manual restarts) exits 0"; else fail "install.sh again (upgrade, after 5 manual restarts) exits 0 (see $LOG)"; fi
check "upgrade: service active with a new main PID" bash -c "cx systemctl is-active --quiet hub && [ \"\$(cx systemctl show hub -p MainPID --value)\" != '$OLD' ]"
check "upgrade: /etc/hub/config.yaml unchanged" bash -c "[ \"\$(cx md5sum /etc/hub/config.yaml)\" = '$SUM' ]"
check "upgrade: state kept (the retained message is still there)" cx "mosquitto_sub -h 127.0.0.1 -t test/v4 -C 1 -W 5 | grep -q hello-test/v4"

# 9. A reboot: the hub starts at boot, state survives.
shutdown_container
boot
cx systemd-analyze log-level debug
check "after a reboot: active" wait_for 30 active
BOOT=$(cx systemctl show -p UserspaceTimestampMonotonic --value)
READY=$(prop ActiveEnterTimestampMonotonic)
[ -n "$BOOT" ] && [ -n "$READY" ] && note "boot (userspace start) to hub READY: $(((READY - BOOT) / 1000)) ms"
check "after a reboot: the retained message is still there (broker.db)" cx "mosquitto_sub -h 127.0.0.1 -t test/v4 -C 1 -W 5 | grep -q hello-test/v4"

# 10. Uninstall: the service goes, config and state stay.
if cx /opt/hub/systemd/install.sh --uninstall >>"$LOG" 2>&1; then pass "install.sh --uninstall exits 0"; else fail "install.sh --uninstall exits 0"; fi
check "uninstall: no hub process, unit not found" bash -c "! cx 'pgrep -u hub' && ! cx 'systemctl cat hub.service' "
check "uninstall: /opt/hub, /usr/local/bin/hub, /etc/systemd/system/hub.service gone" cx "[ ! -e /opt/hub ] && [ ! -e /usr/local/bin/hub ] && [ ! -e /etc/systemd/system/hub.service ]"
check "uninstall: config and state kept" cx "[ -f /etc/hub/config.yaml ] && [ -f /var/lib/hub/broker.db ]"

# Over the whole run (two boots): every hub that got SIGTERM (stop, restart, upgrade, poweroff,
# uninstall) told systemd STOPPING=1.
# Per boot (PIDs repeat after a reboot): "boot pid" of each hub that logged SIGTERM, and of each
# MAINPID that systemd got STOPPING=1 for.
per_boot() {
  cx "for b in \$(journalctl --list-boots --no-pager | awk '\$1 ~ /^-?[0-9]+\$/ {print \$2}'); do $1 | sed \"s/^/\$b /\"; done | sort -u"
}
TERMED=$(per_boot "journalctl -b \$b _SYSTEMD_UNIT=hub.service -o json --no-pager | grep 'stopping signal=SIGTERM' | grep -o '\"_PID\":\"[0-9]*' | grep -o '[0-9]*\$'")
TOLD=$(per_boot "journalctl -b \$b _PID=1 -o cat --no-pager | sed -n -E '/STOPPING=1/s/^hub.service: Got notification message from PID [0-9]+( \\(|: )MAINPID=([0-9]+),.*/\\2/p'")
MISSED=$(comm -23 <(echo "$TERMED") <(echo "$TOLD") | grep -c . || true)
if [ -n "$TERMED" ] && [ "$MISSED" = 0 ]; then
  pass "every stopped hub sent STOPPING=1 ($(echo "$TERMED" | wc -l) SIGTERMs over the run)"
else
  fail "STOPPING=1 missing for $MISSED of $(echo "$TERMED" | grep -c .) hubs that got SIGTERM"
fi

echo "--- $PASSED passed, $FAILED failed (details: $LOG)"
echo "not checked here (needs a Pi): the drivers behind /dev/gpiochip*, /dev/i2c-*, the serial ports and 1-Wire (only the permission path to them, 4b); hardware: linux; MemoryMax on a Pi kernel"
[ "$FAILED" = 0 ]
