# Sourced by test.sh, bench.sh and fuzz.sh: installs the peers (first run only) and exports
# where they are (SOCKUDO_BIN, PEERS_PYTHON, NATS_SERVER_BIN, CHROMEDRIVER_BIN, CHROMIUM_BIN, CARGO_FUZZ_BIN)
# for the tests, benchmarks and fuzz targets. A failed install stops the calling script (it
# runs under `set -e`).
_peers_out=$(bash "$(dirname "${BASH_SOURCE[0]}")/install-peers.sh")
while IFS='=' read -r key value; do
  case "$key" in
    SOCKUDO_BIN|PEERS_PYTHON|NATS_SERVER_BIN|CHROMEDRIVER_BIN|CHROMIUM_BIN|CARGO_FUZZ_BIN) export "$key=$value" ;;
  esac
done <<< "$_peers_out"
unset _peers_out
