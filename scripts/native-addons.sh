#!/usr/bin/env bash
# Rebuilds the optional native addon (unix-dgram, for sd_notify) for the Node.js binary given,
# against that Node's own headers (no download): the test suite runs on Node 20 and Node 24,
# whose addon ABIs differ. Usage: scripts/native-addons.sh /path/to/node
set -euo pipefail
cd "$(dirname "$0")/.."
node_bin=$1
[ -d node_modules/unix-dgram ] || exit 0
prefix=$(cd "$(dirname "$node_bin")/.." && pwd)
if [ -d "$prefix/include/node" ]; then nodedir=$prefix; else nodedir=$(npm config get nodedir); fi
gyp=$(dirname "$(command -v npm)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js
[ -f "$gyp" ] || gyp=/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js
# Under `npm test`, npm exports npm_config_nodedir (the machine's), which node-gyp prefers over
# --nodedir: set it to the headers of the Node being built for.
(cd node_modules/unix-dgram && npm_config_nodedir="$nodedir" "$node_bin" "$gyp" rebuild --nodedir="$nodedir" >/dev/null 2>&1) || {
  echo "could not rebuild unix-dgram for $("$node_bin" --version)" >&2; exit 1; }
"$node_bin" -e "require('unix-dgram')" 
