#!/usr/bin/env bash
# The benchmark suite (not part of the tests): installs the peers, then runs every benchmark
# side by side on this machine and prints the tables that BENCHMARKS.md records.
#
#   bash scripts/bench.sh            # everything (~17 minutes on 2 cores after the build)
#   QUICK=1 bash scripts/bench.sh    # smaller runs, for a smoke check
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/peers-env.sh
# wrk, FastAPI and uvicorn for the webhook benchmark (into the peers' venv).
bash scripts/install-bench-peers.sh

if [ -n "${QUICK:-}" ]; then
  rt_args=(--events 5000 --peer-events 500 --runs 3 --latency-secs 2)
  mem_args=(--events 100000)
  wh_args=(--duration 3 --runs 3 --latency-secs 3)
  crit_args=(--warm-up-time 1 --measurement-time 2)
  js_args=(--events 20000 --runs 3 --latency-secs 2 --latency-runs 2 --scale-events 5000 --scale-runs 2 --memory-events 100000)
else
  rt_args=()
  mem_args=()
  wh_args=()
  crit_args=()
  js_args=()
fi

cargo build --release -q -p listener-bench
bin="${CARGO_TARGET_DIR:-target}/release/listener-bench"

echo "## Machine"
echo
echo "- $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "- $(free -g | awk '/Mem:/ {print $2}') GiB memory, kernel $(uname -r)"
echo "- $(rustc --version)"
echo "- peer: $("${PEERS_PYTHON:-python3}" -c 'import importlib.metadata as m; print("composio", m.version("composio"), "/ pysher", m.version("pysher"))' 2>/dev/null || echo 'composio not installed')"
echo "- webhook peer: $("${PEERS_PYTHON:-python3}" -c 'import importlib.metadata as m; print(" / ".join(p + " " + m.version(p) for p in ("fastapi", "uvicorn", "uvloop", "httptools")))' 2>/dev/null || echo 'fastapi/uvicorn not installed')"
echo "- load generator: $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "- JetStream: $("${NATS_SERVER_BIN:-nats-server}" --version 2>/dev/null || echo 'nats-server not installed')"
echo

echo "## Dispatch (criterion, in-process)"
echo
cargo bench -q -p listener-core --bench dispatch -- "${crit_args[@]}" 2>/dev/null \
  | grep -E '^(dispatch_one_match|decode)|time:' | sed 's/^/    /'
echo

"$bin" realtime "${rt_args[@]}"
echo
"$bin" memory "${mem_args[@]}"
echo
"$bin" webhook "${wh_args[@]}"
echo
# A nats-server -js of its own (temporary store, ephemeral port): NATS_SERVER_BIN.
"$bin" jetstream "${js_args[@]}"
