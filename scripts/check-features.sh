#!/usr/bin/env bash
# Feature checks of listener-core: no features, each feature alone, and all of them compile
# warning-free; a consumer with only the `realtime` feature pulls in no HTTP server and no
# hub. Prints the package count of each feature set (the README's feature table).
set -euo pipefail
cd "$(dirname "$0")/.."

# `fuzzing` is internal (the fuzz targets' hidden module), checked like the others.
features=(websocket realtime webhook webhook-server composio-api http-client admin metrics prometheus jetstream fuzzing)

# Warnings fail the check (without RUSTFLAGS, which would rebuild every dependency).
check() {
    echo "== cargo check -p listener-core --no-default-features $*"
    local out
    out=$(cargo check -p listener-core --no-default-features --message-format short "$@" 2>&1) || {
        echo "$out" >&2
        exit 1
    }
    if grep -q 'warning' <<<"$out"; then
        echo "$out" >&2
        echo "listener-core has warnings with --no-default-features $*" >&2
        exit 1
    fi
}
check
for f in "${features[@]}"; do
    check --features "$f"
done

echo "== a realtime-only consumer"
cargo build -q -p listener-realtime-only
tree=$(cargo tree -q -p listener-realtime-only -e normal --prefix none | sort -u)
for banned in axum listener-hub; do
    if grep -q "^$banned " <<<"$tree"; then
        echo "the realtime-only consumer depends on $banned" >&2
        exit 1
    fi
done
if cargo tree -q -p listener-realtime-only -e features -i hyper 2>/dev/null | grep -q 'hyper feature "server"'; then
    echo "the realtime-only consumer compiles hyper's server" >&2
    exit 1
fi

echo "== packages per feature set (cargo tree -e normal --prefix none | sort -u | wc -l)"
count() { cargo tree -q -p listener-core -e normal --prefix none "$@" | sort -u | wc -l; }
printf '%-52s %s\n' "none" "$(count --no-default-features)"
for f in "${features[@]}"; do
    printf '%-52s %s\n' "$f" "$(count --no-default-features --features "$f")"
done
printf '%-52s %s\n' "default (realtime, webhook-server, admin, metrics)" "$(count)"
printf '%-52s %s\n' "all" "$(count --all-features)"
