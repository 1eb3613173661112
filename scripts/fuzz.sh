#!/usr/bin/env bash
# Runs every fuzz target (fuzz/, libFuzzer through cargo-fuzz on the nightly toolchain) for
# SECONDS each (default 30), one after another, at the lowest CPU priority, and prints one
# line of figures per target. A crash, a timeout or a violated property fails the run; its
# input is left in fuzz/artifacts/<target>/ (minimize it with `cargo +nightly fuzz tmin`, then
# commit it under tests/fuzz-regressions/<target>/, where `cargo test` replays it).
#
#   bash scripts/fuzz.sh             # 30 s per target (what CI runs)
#   bash scripts/fuzz.sh 900         # 15 minutes per target (RELIABILITY.md's figures)
#   bash scripts/fuzz.sh 60 decode   # some targets only
#
# cargo-fuzz is installed by scripts/install-peers.sh (first run only). Builds go to
# fuzz-target/ in the peers' cache (~/.cache/listener-peers, outside the checkout, so that a
# fresh clone such as CI's reuses them; FUZZ_TARGET_DIR overrides, ~1 GB). The corpus grown
# by earlier runs is kept in fuzz/corpus/<target>/ (not committed) and starts from
# fuzz/seeds/<target>/ (made from tests/fixtures by fuzz/seeds.py) and the committed finds.
# Full logs: fuzz/logs/<target>.log.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(decode webhook_verify pusher_frames macro_args hub_ndjson)
fi

source scripts/peers-env.sh
export PATH="$(dirname "$CARGO_FUZZ_BIN"):$PATH"

target_dir="${FUZZ_TARGET_DIR:-${LISTENER_PEERS_DIR:-$HOME/.cache/listener-peers}/fuzz-target}"
# No sanitizer: the code under test is safe Rust (unsafe_code is forbidden), and
# AddressSanitizer would halve the executions on two shared cores; debug assertions and
# overflow checks stay on.
flags=(--fuzz-dir fuzz --sanitizer none --debug-assertions --target-dir "$target_dir")

mkdir -p fuzz/logs
echo "== cargo +nightly fuzz build"
start=$(date +%s)
if ! nice -n 19 cargo +nightly fuzz build "${flags[@]}" >fuzz/logs/build.log 2>&1; then
  tail -40 fuzz/logs/build.log >&2
  echo "the fuzz build failed (fuzz/logs/build.log)" >&2
  exit 1
fi
echo "built in $(( $(date +%s) - start )) s"

failed=()
printf '%-16s %12s %8s %7s %7s %9s  %s\n' target executions exec/s cov ft corpus result
for t in "${targets[@]}"; do
  corpus="fuzz/corpus/$t"
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  dirs=("$corpus" "fuzz/seeds/$t")
  [ -d "tests/fuzz-regressions/$t" ] && dirs+=("tests/fuzz-regressions/$t")
  log="fuzz/logs/$t.log"
  result=ok
  nice -n 19 cargo +nightly fuzz run "${flags[@]}" "$t" "${dirs[@]}" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1 || result=FAILED
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
  printf '%-16s %12s %8s %7s %7s %9s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result"
  if [ "$result" != ok ]; then
    failed+=("$t")
    echo "--- $log (last lines)"
    grep -vE '^#[0-9]+ +(NEW|REDUCE|pulse)' "$log" | tail -40
    echo "---"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz targets failed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
