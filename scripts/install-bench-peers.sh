#!/usr/bin/env bash
# Installs what the webhook benchmark needs beyond the test peers: the load generator `wrk`
# (Debian's package) and FastAPI + uvicorn (PyPI, pinned in scripts/bench-peers.txt) in the
# peers' virtualenv, next to Composio's SDK. Run after scripts/install-peers.sh (bench.sh
# does both). Idempotent: a second run finds everything in place and returns at once.
set -euo pipefail
cd "$(dirname "$0")"

PEERS_DIR="${LISTENER_PEERS_DIR:-$HOME/.cache/listener-peers}"
VENV="$PEERS_DIR/venv"

log() { printf '[install-bench-peers] %s\n' "$*" >&2; }

# --- wrk (Debian) ----------------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
  log "installing wrk"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi

# --- FastAPI + uvicorn, in the venv install-peers.sh made --------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  log "no virtualenv at $VENV: run scripts/install-peers.sh first"
  exit 1
fi
# Resolved together with the test peers' pins, so nothing Composio's SDK needs is moved.
stamp="$VENV/.bench-requirements.sha256"
want=$(cat python-peers.txt bench-peers.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing FastAPI + uvicorn into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r python-peers.txt -r bench-peers.txt
  echo "$want" > "$stamp"
fi
