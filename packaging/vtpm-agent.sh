#!/bin/sh
# vtpm-agent: runs the agent on the Node.js runtime shipped with it (lib/vtpm-agent beside bin/),
# wherever the tree was installed: /usr by the .deb and the image, any prefix from the tarball.
# --max-semi-space-size=1: a smaller young generation keeps the daemon's resident memory down.
lib=$(dirname "$(readlink -f "$0")")/../lib/vtpm-agent
exec "$lib/bin/node" --max-semi-space-size=1 "$lib/dist/cli.mjs" "$@"
