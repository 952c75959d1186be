#!/usr/bin/env bash
# The full test suite, as README.md gives it: installs what the tests need that cargo cannot
# (anvil, a local Ethereum node, from the npm registry into .tools/), then runs every test of
# the workspace, doctests included.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! NOVA_ANVIL="$(bash scripts/install-anvil.sh)"; then
    echo "test.sh: could not install anvil (needs node and npm); the Ethereum tests will fail" >&2
    exit 1
fi
export NOVA_ANVIL

cargo test --workspace "$@"
