#!/bin/sh
# vtpm-agent: runs the agent on the Node.js runtime shipped with it (lib/vtpm-agent beside bin/),
# wherever the tree was installed: /usr by the .deb and the image, any prefix from the tarball.
# The V8 flags are scripts/node-flags.txt's (chosen by bench/footprint.ts), put in by the release build.
lib=$(dirname "$(readlink -f "$0")")/../lib/vtpm-agent
exec "$lib/bin/node" @NODE_FLAGS@ "$lib/dist/cli.mjs" "$@"
