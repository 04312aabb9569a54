#!/usr/bin/env bash
# Installs (or upgrades, or removes) the hub as a systemd service. Run from a built checkout:
#   npm ci && npm run build && sudo systemd/install.sh
# Idempotent: running it again upgrades the program and keeps /etc/hub/config.yaml and /var/lib/hub.
#
#   systemd/install.sh [--prefix DIR] [--uninstall]
#   DESTDIR=/tmp/root systemd/install.sh      stage the files for a package (no users, no systemctl)
#
# What goes where (live install; under DESTDIR the systemd files go to /usr/lib and the command to
# /usr/bin, as a package's do):
#   $PREFIX (/opt/hub)                   dist/, package.json, package-lock.json, node_modules/ (production
#                                        dependencies only), config.example.yaml, README.md, systemd/
#   /usr/local/bin/hub                   `hub status`, `hub check` ... with --config /etc/hub/config.yaml
#   /etc/systemd/system/hub.service      the unit (ExecStart adjusted to this node and $PREFIX)
#   /etc/sysusers.d/hub.conf             the user hub and the groups gpio, i2c, dialout
#   /etc/hub/config.yaml                 from config.example.yaml, only if absent (root:hub 0640)
#   /var/lib/hub                         created by systemd (StateDirectory=), never by this script
#
# node_modules: the checkout's own production dependencies (`npm ls --omit=dev`) are copied rather
# than running `npm ci --omit=dev` in $PREFIX: no second download, works offline, no package
# scripts run as root, and native modules (better-sqlite3) are the ones already built and tested on
# this machine. Dev dependencies (TypeScript, tap, Biome: most of node_modules) are left out.
set -euo pipefail
umask 022

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "install.sh: $*"; }

PREFIX=/opt/hub
UNINSTALL=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX=$2; shift 2 ;;
    --prefix=*) PREFIX=${1#--prefix=}; shift ;;
    --uninstall) UNINSTALL=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (try --help)" ;;
  esac
done
case "$PREFIX" in
  /?*) PREFIX=${PREFIX%/} ;;
  *) die "--prefix must be an absolute directory other than /: $PREFIX" ;;
esac
case "$PREFIX" in /|/usr|/etc|/var|/opt|/home|/usr/local) die "--prefix $PREFIX would mix the hub with other programs; use e.g. /opt/hub" ;; esac

DESTDIR=${DESTDIR:-}
DESTDIR=${DESTDIR%/}
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MARKER=.hub-install   # in $PREFIX: proves a directory is ours before rm -rf
CONF_DIR=/etc/hub
CONF=$CONF_DIR/config.yaml
if [ -n "$DESTDIR" ]; then
  UNIT_DIR=/usr/lib/systemd/system
  SYSUSERS_DIR=/usr/lib/sysusers.d
  WRAPPER=/usr/bin/hub
else
  UNIT_DIR=/etc/systemd/system
  SYSUSERS_DIR=/etc/sysusers.d
  WRAPPER=/usr/local/bin/hub
fi
# Both places, so that an uninstall finds what either kind of install left.
ALL_UNITS=(/etc/systemd/system/hub.service /usr/lib/systemd/system/hub.service)
ALL_SYSUSERS=(/etc/sysusers.d/hub.conf /usr/lib/sysusers.d/hub.conf)
ALL_WRAPPERS=(/usr/local/bin/hub /usr/bin/hub)

live() { [ -z "$DESTDIR" ]; }
# systemd is PID 1 (sd_booted(3)); not in containers and chroots.
systemd_running() { live && [ -d /run/systemd/system ]; }

if live && [ "$(id -u)" != 0 ]; then die "run as root (sudo $0), or set DESTDIR to stage the files"; fi

# ---------------------------------------------------------------------------------------- uninstall
if [ "$UNINSTALL" = 1 ]; then
  if systemd_running; then
    systemctl disable --now hub.service 2>/dev/null || true
  fi
  for f in "${ALL_UNITS[@]}" "${ALL_SYSUSERS[@]}"; do rm -f "$DESTDIR$f"; done
  for f in "${ALL_WRAPPERS[@]}"; do
    if [ -f "$DESTDIR$f" ] && grep -q "installed by hub's install.sh" "$DESTDIR$f"; then rm -f "$DESTDIR$f"; fi
  done
  if [ -e "$DESTDIR$PREFIX" ]; then
    [ -f "$DESTDIR$PREFIX/$MARKER" ] || die "$DESTDIR$PREFIX was not installed by this script (no $MARKER); not removing it"
    rm -rf "$DESTDIR$PREFIX"
  fi
  if systemd_running; then systemctl daemon-reload; systemctl reset-failed hub.service 2>/dev/null || true; fi
  say "removed the hub from $PREFIX and its unit"
  say "kept the configuration ($CONF_DIR), the state (/var/lib/hub) and the user hub; to remove them too:"
  say "  sudo rm -rf $CONF_DIR /var/lib/hub && sudo userdel hub"
  exit 0
fi

# ------------------------------------------------------------------------------------------- checks
NODE=${NODE:-$(command -v node || true)}
[ -n "$NODE" ] || die "node not found: install Node.js 20 or newer (see the README, 'Run on a Raspberry Pi')"
NODE_MAJOR=$("$NODE" -p 'process.versions.node.split(".")[0]')
[ "$NODE_MAJOR" -ge 20 ] || die "Node.js $("$NODE" --version) is too old: the hub needs 20 or newer"
case "$NODE" in
  /home/*|/root/*|/run/user/*)
    # The unit has ProtectHome=yes: the service cannot see a node installed by nvm in a home directory.
    if live; then die "$NODE is in a home directory, which the service cannot see; install Node.js system-wide (README)"; fi ;;
esac
command -v npm >/dev/null || die "npm not found (it comes with Node.js)"
[ -f "$SRC/dist/bundle/hub.mjs" ] || die "no build in $SRC/dist: run 'npm ci && npm run build' in $SRC first"
[ -d "$SRC/node_modules" ] || die "no node_modules in $SRC: run 'npm ci && npm run build' in $SRC first"
# The production dependency tree; fails (and we stop) if node_modules does not match package-lock.json.
DEPS=$(cd "$SRC" && npm ls --omit=dev --all --parseable 2>/dev/null) ||
  die "node_modules in $SRC does not match package-lock.json: run 'npm ci' there first"

if [ -e "$DESTDIR$PREFIX" ] && [ ! -f "$DESTDIR$PREFIX/$MARKER" ]; then
  die "$DESTDIR$PREFIX exists and was not installed by this script; choose another --prefix"
fi
# An upgrade checks the config it keeps with the new version (this checkout's build) before
# installing it: a hub that would refuse its config (exit 78, no restart) is not installed, and the
# old one keeps running.
if [ -f "$DESTDIR$CONF" ] && ! "$NODE" "$SRC/dist/bundle/hub.mjs" check --config "$DESTDIR$CONF"; then
  die "$CONF has problems with this version (above); nothing was changed. Fix it, then run this script again"
fi

# ------------------------------------------------------------------------------------ the program
# Staged next to $PREFIX, then swapped in: an interrupted upgrade leaves the old version working.
STAGE=$DESTDIR$PREFIX.new
rm -rf "$STAGE"
mkdir -p "$STAGE/dist"
# bundle/: the program that runs (hub.mjs and its chunks); hub/ drivers/ rules/: tsc's output.
for d in bundle hub drivers rules; do
  if [ -d "$SRC/dist/$d" ]; then cp -R "$SRC/dist/$d" "$STAGE/dist/$d"; fi
done
for f in package.json package-lock.json config.example.yaml config.schema.json README.md; do
  if [ -f "$SRC/$f" ]; then cp "$SRC/$f" "$STAGE/$f"; fi
done
if [ -d "$SRC/rules/examples" ]; then mkdir -p "$STAGE/rules" && cp -R "$SRC/rules/examples" "$STAGE/rules/examples"; fi
mkdir -p "$STAGE/systemd"
cp "$SRC/systemd/hub.service" "$SRC/systemd/hub.sysusers" "$SRC/systemd/install.sh" "$STAGE/systemd/"
# Top-level packages with their nested node_modules: a package's nested dependencies are its own
# (production) dependencies, never another package's dev dependencies.
TOP=()
while IFS= read -r dir; do
  rel=${dir#"$SRC"/}
  if [[ "$rel" =~ ^node_modules/(@[^/]+/)?[^/]+$ ]]; then TOP+=("$rel"); fi
done <<<"$DEPS"
if [ ${#TOP[@]} -gt 0 ]; then (cd "$SRC" && cp -R --parents -- "${TOP[@]}" "$STAGE/"); fi
echo "hub installed by systemd/install.sh; this directory is replaced on upgrade" >"$STAGE/$MARKER"
chmod -R u=rwX,go=rX "$STAGE"
chmod 0755 "$STAGE/systemd/install.sh"
mkdir -p "$(dirname "$DESTDIR$PREFIX")"
if [ -e "$DESTDIR$PREFIX" ]; then
  rm -rf "$DESTDIR$PREFIX.old"
  mv "$DESTDIR$PREFIX" "$DESTDIR$PREFIX.old"
  mv "$STAGE" "$DESTDIR$PREFIX"
  rm -rf "$DESTDIR$PREFIX.old"
else
  mv "$STAGE" "$DESTDIR$PREFIX"
fi
say "installed the hub $("$NODE" "$DESTDIR$PREFIX/dist/bundle/hub.mjs" --version) in $DESTDIR$PREFIX"

# -------------------------------------------------------------------------- unit, user, command
mkdir -p "$DESTDIR$UNIT_DIR" "$DESTDIR$SYSUSERS_DIR" "$DESTDIR$(dirname "$WRAPPER")"
sed -e "s|/usr/bin/node |$NODE |" -e "s|/opt/hub/|$PREFIX/|g" "$SRC/systemd/hub.service" >"$DESTDIR$UNIT_DIR/hub.service.tmp"
chmod 0644 "$DESTDIR$UNIT_DIR/hub.service.tmp"
mv "$DESTDIR$UNIT_DIR/hub.service.tmp" "$DESTDIR$UNIT_DIR/hub.service"
install -m 0644 "$SRC/systemd/hub.sysusers" "$DESTDIR$SYSUSERS_DIR/hub.conf"
cat >"$DESTDIR$WRAPPER.tmp" <<EOF
#!/bin/sh
# installed by hub's install.sh: the hub's command line, with --config $CONF unless given.
case " \$* " in
  *" --config "*|*" --config="*|*" -c "*) ;;
  *) set -- "\$@" --config $CONF ;;
esac
exec $NODE --max-semi-space-size=1 $PREFIX/dist/bundle/hub.mjs "\$@"
EOF
chmod 0755 "$DESTDIR$WRAPPER.tmp"
mv "$DESTDIR$WRAPPER.tmp" "$DESTDIR$WRAPPER"

if live; then
  if command -v systemd-sysusers >/dev/null; then
    systemd-sysusers "$SYSUSERS_DIR/hub.conf"
  else
    for g in gpio i2c dialout; do getent group "$g" >/dev/null || groupadd --system "$g"; done
    id hub >/dev/null 2>&1 || useradd --system --user-group --home-dir /var/lib/hub --shell /usr/sbin/nologin hub
  fi
fi

# --------------------------------------------------------------------------------- configuration
# /etc/hub is root:hub 0750 (= ConfigurationDirectoryMode): the service reads, never writes it.
mkdir -p "$DESTDIR$CONF_DIR"
chmod 0750 "$DESTDIR$CONF_DIR"
if live; then chown root:hub "$DESTDIR$CONF_DIR"; fi
if [ -e "$DESTDIR$CONF" ]; then
  say "kept the existing $CONF"
else
  sed -e "s|^state_dir: .*|state_dir: /var/lib/hub|" \
    -e "1s|\\\$schema=./config.schema.json|\$schema=$PREFIX/config.schema.json|" \
    "$SRC/config.example.yaml" >"$DESTDIR$CONF.tmp"
  grep -q '^state_dir: /var/lib/hub$' "$DESTDIR$CONF.tmp" || die "could not set state_dir in $CONF"
  chmod 0640 "$DESTDIR$CONF.tmp"
  if live; then chown root:hub "$DESTDIR$CONF.tmp"; fi
  mv "$DESTDIR$CONF.tmp" "$DESTDIR$CONF"
  say "created $CONF from config.example.yaml (simulated sensors; edit it to add yours)"
  # (An existing config was checked above, with the new version, before it was installed.)
  "$NODE" "$DESTDIR$PREFIX/dist/bundle/hub.mjs" check --config "$DESTDIR$CONF" ||
    die "$CONF has problems (above); fix them, then run this script again"
fi

# ---------------------------------------------------------------------------------------- service
if ! live; then
  say "DESTDIR set: not creating users or starting the service (a package does that in its postinst)"
elif ! systemd_running; then
  say "systemd is not running here: enable the service later with 'systemctl enable --now hub'"
else
  systemctl daemon-reload
  systemctl enable hub.service
  # An upgrade restarts a running hub onto the new files; a first install starts it.
  # Type=notify: this waits until the hub reports READY (the broker listens) or fails.
  verb=start
  if systemctl is-active --quiet hub.service; then verb=restart; fi
  # Every start counts towards StartLimitBurst=5 in 5 minutes, manual restarts included. systemd
  # <= 254 forgets the count on daemon-reload (above); 255 and later keep it (Trixie has 257), so a
  # user who restarted the hub a few times while editing the config would get "start of the service
  # was attempted too often" from this upgrade. reset-failed clears the count.
  systemctl reset-failed hub.service 2>/dev/null || true
  systemctl "$verb" hub.service || die "the service did not start; see: journalctl -u hub -n 50"
  say "the hub is running: 'sudo hub status', logs: 'journalctl -u hub -f'"
fi
