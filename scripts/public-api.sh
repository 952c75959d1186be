#!/usr/bin/env bash
# The public-API check of .ci/run (issue 19 item 1): no dependency's type in a library crate's
# public API, and no change of nova-core's public API that is not in its snapshot.
#
#   bash scripts/public-api.sh           check
#   bash scripts/public-api.sh --bless   rewrite the snapshots after a change you mean
#
# How: rustdoc's JSON output of each crate (stable rustdoc with RUSTC_BOOTSTRAP=1, since the
# JSON output is not stabilised; cargo-semver-checks and cargo-public-api cannot be installed
# here in reasonable time), read by scripts/public_api.py, which lists every public item with
# its signature and fails on a type or trait from a crate outside the allowed list. The limits
# of that approach are written at the top of scripts/public_api.py.
#
# The JSON is built in a target directory of its own: RUSTC_BOOTSTRAP changes what some build
# scripts see, and sharing the normal target directory would rebuild dependencies every time.
set -euo pipefail
cd "$(dirname "$0")/.."

bless=()
if [[ "${1:-}" == "--bless" ]]; then
    bless=(--bless)
fi

target="${CARGO_TARGET_DIR:-target}/public-api"
# Stable crates a public signature may name besides std: bytes, http, serde (its traits live in
# serde_core), serde_json and url, as issue 19 lists them; tokio 1.x (TcpStream, broadcast and
# watch receivers) and futures-core's Stream (the ecosystem's stream trait, 0.3 since 2019).
stable="bytes,http,serde,serde_core,serde_json,url,tokio,futures_core"

# crate | snapshot file (empty: the leak check only) | sibling nova crates its API may name.
# Only nova-core has a snapshot: it is the API every other crate and every user builds on, and
# a snapshot per crate would make every parallel change of a platform crate a merge conflict.
# Not checked: nova-testkit (a test-support crate whose TLS servers take and give rustls
# configurations on purpose), nova-gen-golden and nova-gen-golden-generic (nova-gen's golden
# output), and the binaries, proc-macros, examples and benchmarks, which have no library API.
checks=(
    "nova-core|nova-core/public-api.txt|"
    "nova-ws||nova_core,nova_macros"
    "nova-bybit||nova_core"
    "nova-deribit||nova_core"
    "nova-ethereum||nova_core"
    "nova-slack||nova_core"
    "nova-discord||nova_core"
    "nova-cluster||nova_core"
)

status=0
for check in "${checks[@]}"; do
    IFS='|' read -r crate snapshot siblings <<<"$check"
    RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$target" cargo rustdoc -q -p "$crate" --lib -- \
        -Z unstable-options --output-format json
    lib=${crate//-/_}
    lib=${lib/#nova_ws/nova} # the package nova-ws's library is `nova`
    json="$target/doc/$lib.json"
    args=("$json" --allow "$stable${siblings:+,$siblings}")
    if [[ -n "$snapshot" ]]; then
        args+=(--snapshot "$snapshot" "${bless[@]}")
    fi
    python3 scripts/public_api.py "${args[@]}" || status=1
done
exit "$status"
