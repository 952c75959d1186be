#!/usr/bin/env bash
# The full test suite, as README.md gives it: installs what the tests need that cargo cannot
# (anvil, a local Ethereum node, from the npm registry into .tools/; redis-server from Debian's
# packages), then runs every test of
# the workspace, doctests included.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! NOVA_ANVIL="$(bash scripts/install-anvil.sh)"; then
    echo "test.sh: could not install anvil (needs node and npm); the Ethereum tests will fail" >&2
    exit 1
fi
export NOVA_ANVIL

# nova-cluster's tests run a private redis-server (Debian's package); install it when missing.
if ! command -v redis-server >/dev/null 2>&1; then
    if ! (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server) </dev/null >&2; then
        echo "test.sh: could not install redis-server; the cluster tests will fail" >&2
        exit 1
    fi
fi

cargo test --workspace "$@"
