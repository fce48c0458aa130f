#!/bin/sh
# The agent's bundle under Debian's nodejs (see /usr/share/doc/xivo-ha-agent/README.md.gz).
exec /usr/bin/node /usr/lib/xivo-ha-agent/xivo-ha-agent.mjs "$@"
