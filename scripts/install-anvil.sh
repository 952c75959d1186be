#!/usr/bin/env bash
# Installs anvil, Foundry's local Ethereum development node, for the nova-ethereum tests.
#
# The npm registry ships the anvil binary inside a per-platform package
# (@foundry-rs/anvil-<os>-<arch>); this script installs that package alone into the project-local
# directory .tools/anvil (no install scripts run, nothing is downloaded from elsewhere) and links
# the binary at .tools/bin/anvil, where nova-testkit's `anvil` module looks for it. Idempotent: a
# second run with the binary already at the wanted version changes nothing.
#
# Prints the binary's absolute path on stdout (progress goes to stderr), so a caller can write
#   export NOVA_ANVIL="$(bash scripts/install-anvil.sh)"
#
# ANVIL_VERSION overrides the version (default below).
set -euo pipefail
cd "$(dirname "$0")/.."

version="${ANVIL_VERSION:-1.7.1}"

case "$(uname -s)" in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    *) echo "install-anvil: unsupported OS $(uname -s)" >&2; exit 1 ;;
esac
case "$(uname -m)" in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) echo "install-anvil: unsupported CPU $(uname -m)" >&2; exit 1 ;;
esac

package="@foundry-rs/anvil-${os}-${arch}"
prefix="$PWD/.tools/anvil"
binary="$prefix/node_modules/$package/bin/anvil"
link="$PWD/.tools/bin/anvil"

installed_version() {
    "$binary" --version 2>/dev/null | sed -n 's/^anvil Version: *//p' | head -n 1
}

if [ -x "$binary" ] && [ "$(installed_version)" = "$version" ]; then
    echo "install-anvil: anvil $version already installed" >&2
else
    if ! command -v npm >/dev/null 2>&1; then
        echo "install-anvil: npm not found; install Node.js (it ships npm) first" >&2
        exit 1
    fi
    echo "install-anvil: installing $package@$version from the npm registry into $prefix" >&2
    mkdir -p "$prefix"
    npm install --prefix "$prefix" --save-exact --ignore-scripts --no-audit --no-fund --loglevel=error \
        "$package@$version" >&2
    if [ "$(installed_version)" != "$version" ]; then
        echo "install-anvil: $binary did not report version $version after install" >&2
        exit 1
    fi
fi

mkdir -p "$(dirname "$link")"
ln -sfn "$binary" "$link"
echo "$link"
