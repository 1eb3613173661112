#!/usr/bin/env bash
# The test command: installs the third-party peers the tests drive (first run only, cached
# in ~/.cache/listener-peers), then runs every test of the workspace with them.
set -euo pipefail
cd "$(dirname "$0")/.."

# install-peers.sh prints KEY=VALUE lines (peer locations); export them for the tests.
source scripts/peers-env.sh

cargo test --workspace --all-targets "$@"
cargo test --workspace --doc
