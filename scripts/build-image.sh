#!/usr/bin/env bash
# Builds the vtpm-agent container image with rootful buildah, without a Docker engine or a registry
# (see docs/deployment.md, "Building the image"):
#   1. a Debian bookworm base image made by debootstrap (cached as an OCI archive),
#   2. the release tarball (scripts/release.sh): the esbuild bundle and the integrity-pinned Node.js
#      24 runtime, the same tree the .deb installs, unpacked into .cache/image/tree,
#   3. `buildah bud` of the Dockerfile: Debian's swtpm and virsh plus that tree.
#
# Environment:
#   VTPM_IMAGE        image name to tag        (default localhost/vtpm-agent:dev)
#   VTPM_IMAGE_CACHE  cache that survives runs (default /var/cache/vtpm-agent-image); delete it to build from scratch
#   VTPM_IMAGE_REBUILD_BASE=1  make a fresh base image even if one is cached
#   VTPM_RELEASE_TARBALL  the release tarball to put in (default release/vtpm-agent-<version>-linux-x64.tar.gz)
# Prints `IMAGE <name>`, `IMAGE_ID <id>`, `IMAGE_SIZE_BYTES <n>` and per-step `TIMING` lines.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${VTPM_IMAGE_CACHE:-/var/cache/vtpm-agent-image}
IMAGE=${VTPM_IMAGE:-localhost/vtpm-agent:dev}
BASE_REPO=localhost/vtpm-agent-base
STAGE="$ROOT/.cache/image"   # build-context inputs made on the host; .gitignore'd, .dockerignore lets only these in

log() { printf '[build-image] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
timed() {
  local name=$1 t0 rc=0
  shift
  t0=$EPOCHREALTIME
  "$@" || rc=$?
  awk -v n="$name" -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "TIMING %s %.1fs\n", n, b - a }' >&2
  return $rc
}

for tool in buildah podman runc debootstrap node tar git; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/ci-image.sh installs buildah podman runc debootstrap)"
done
mkdir -p "$CACHE"
BASE_WORK=
trap '[[ -n "$BASE_WORK" ]] && rm -rf "$BASE_WORK"' EXIT

# Engine settings for this machine kind, kept out of /etc: runc because crun refuses the hybrid
# cgroup layout, and ulimits podman may set without CAP_SYS_RESOURCE (container-build.md F1, F2).
export CONTAINERS_CONF="$CACHE/containers.conf"
cat >"$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=32768:32768"]
[engine]
runtime = "runc"
EOF
export BUILDAH_RUNTIME=runc

# ---------------------------------------------------------------------------------------------
# 1. Base image. A registry is not reachable, so the base is debootstrap's minbase, slimmed the way
#    Debian's official images are, with bookworm-updates/security applied in one squashed layer.
# ---------------------------------------------------------------------------------------------
make_base() {
  local rootfs mirror
  BASE_WORK=$(mktemp -d "${TMPDIR:-/tmp}/vtpm-base.XXXXXX")
  local work=$BASE_WORK
  rootfs="$work/rootfs"
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/doc/*
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  printf '%s\n' \
    'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
    'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
    'Dir::Cache::pkgcache "";' 'Dir::Cache::srcpkgcache "";' >"$rootfs/etc/apt/apt.conf.d/docker-clean"
  printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
    'path-exclude /usr/share/man/*' 'path-exclude /usr/share/locale/*' \
    'path-include /usr/share/locale/locale.alias' >"$rootfs/etc/dpkg/dpkg.cfg.d/docker"
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # Pipe to stdin: `podman import <(tar …)` silently imports an empty layer (container-build.md F3).
  tar --numeric-owner -C "$rootfs" -c . | podman import - "$BASE_REPO:rootfs" >"$work/import.log" 2>&1
  printf '%s\n' "FROM $BASE_REPO:rootfs" \
    'RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -y -qq upgrade && apt-get clean && rm -rf /var/lib/apt/lists/*' \
    'CMD ["bash"]' >"$work/Containerfile"
  buildah bud --quiet --squash --pull=never -f "$work/Containerfile" -t "$BASE_REPO:bookworm" "$work" >"$work/bud.log" 2>&1 \
    || { tail -20 "$work/bud.log" >&2; die "base image upgrade layer failed"; }
  podman rmi "$BASE_REPO:rootfs" >/dev/null
  podman save --format oci-archive -o "$CACHE/base.tar.tmp" "$BASE_REPO:bookworm" >"$work/save.log" 2>&1 \
    || { tail -20 "$work/save.log" >&2; die "saving the base image failed"; }
  mv "$CACHE/base.tar.tmp" "$CACHE/base.tar"
  rm -rf "$work"
}

if [[ "${VTPM_IMAGE_REBUILD_BASE:-0}" == 1 ]]; then
  podman rmi -f "$BASE_REPO:bookworm" >/dev/null 2>&1 || true
  rm -f "$CACHE/base.tar"
fi
if podman image exists "$BASE_REPO:bookworm"; then
  log "base image $BASE_REPO:bookworm present"
elif [[ -s "$CACHE/base.tar" ]] && timed base-load podman load -q -i "$CACHE/base.tar" >/dev/null; then
  podman image exists "$BASE_REPO:bookworm" || die "$CACHE/base.tar did not hold $BASE_REPO:bookworm; delete it"
  log "base image loaded from $CACHE/base.tar"
else
  log "making the base image with debootstrap (about 1-2 minutes)"
  timed base-debootstrap make_base
fi
DEBIAN_VERSION=$(podman run --rm --network none "$BASE_REPO:bookworm" cat /etc/debian_version)
[[ "$DEBIAN_VERSION" =~ ^12\.[0-9]+$ ]] || die "base image is not Debian 12 (debian_version: $DEBIAN_VERSION)"
# Pinned name of this base: the Dockerfile refers to the Debian point release, never a moving tag.
BASE_IMAGE="docker.io/library/debian:${DEBIAN_VERSION}-slim"
podman tag "$BASE_REPO:bookworm" "$BASE_IMAGE"
log "base image $BASE_IMAGE (Debian $DEBIAN_VERSION)"

# ---------------------------------------------------------------------------------------------
# 2. The release tree: the tarball `npm run release` makes (made here when absent), the same
#    bundle and pinned Node.js runtime as the .deb. Nothing is compiled in the image build.
# ---------------------------------------------------------------------------------------------
VERSION=$(node -p "require('$ROOT/package.json').version")
TARBALL=${VTPM_RELEASE_TARBALL:-$ROOT/release/vtpm-agent-$VERSION-linux-x64.tar.gz}
stage_tree() {
  if [[ ! -s "$TARBALL" ]]; then
    log "no release tarball at $TARBALL: building it (RELEASE_IMAGE=0 scripts/release.sh)"
    RELEASE_IMAGE=0 bash "$ROOT/scripts/release.sh" >&2 || die "scripts/release.sh failed"
  fi
  rm -rf "$STAGE/tree" && mkdir -p "$STAGE/tree"
  tar -xzf "$TARBALL" -C "$STAGE/tree" --strip-components=1
  [[ -x "$STAGE/tree/bin/vtpm-agent" && -x "$STAGE/tree/lib/vtpm-agent/bin/node" ]] || die "$TARBALL does not hold bin/vtpm-agent and lib/vtpm-agent/bin/node"
}
mkdir -p "$STAGE"
timed release-tree stage_tree

# ---------------------------------------------------------------------------------------------
# 3. The image.
# ---------------------------------------------------------------------------------------------
REVISION=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
# Reproducible: the creation date is the commit's, not the build's.
CREATED=$(date -u -d "@$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)" +%Y-%m-%dT%H:%M:%SZ)
build_image() {
  buildah bud --layers --pull=never --format docker \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    --build-arg "VERSION=$VERSION" \
    --build-arg "REVISION=$REVISION" \
    --build-arg "CREATED=$CREATED" \
    `# Also as --label: buildah's layer cache can reuse a LABEL layer whose ARG values changed,` \
    `# which left the revision of an earlier commit on the image.` \
    --label "org.opencontainers.image.version=$VERSION" \
    --label "org.opencontainers.image.revision=$REVISION" \
    --label "org.opencontainers.image.created=$CREATED" \
    -t "$IMAGE" -f "$ROOT/Dockerfile" "$ROOT" >"$CACHE/build.log" 2>&1
}
timed image-build build_image || { tail -40 "$CACHE/build.log" >&2; die "buildah bud failed (full log: $CACHE/build.log)"; }

# Old builds of this tag stay as dangling images; drop them so the cache does not grow without bound.
podman image prune -f >/dev/null 2>&1 || true
echo "IMAGE $IMAGE"
echo "REVISION $REVISION"
echo "BASE_IMAGE $BASE_IMAGE"
echo "IMAGE_ID $(podman image inspect --format '{{.Id}}' "$IMAGE")"
echo "IMAGE_SIZE_BYTES $(podman image inspect --format '{{.Size}}' "$IMAGE")"
