#!/usr/bin/env bash
# The MSRV check (issue 19 item 9): what can be checked of `rust-version` (the root Cargo.toml's
# [workspace.package], 1.85) without a second toolchain. This machine has one toolchain and
# cannot fetch another (rustup's servers are not reachable; only the package registries are),
# so a real `cargo +1.85 build` is not possible here. What is checked instead:
#
# 1. Library APIs: clippy's `incompatible_msrv` lint (on by default, denied by the gate's
#    `-D warnings`) reads `rust-version` and rejects any std item stabilised after it. This
#    script fails if the lint is allowed anywhere.
# 2. Dependencies: every package in the resolved graph declares a `rust-version` no newer than
#    ours (or none). The workspace uses resolver 3, which prefers such versions; this catches a
#    `cargo update` or a new dependency that needs a newer compiler.
# 3. Language: let-chains (`if let … && …`, stable in 1.88 for edition 2024) are the newer
#    syntax edition 2024 makes easy to write by accident, and rustc does not check syntax
#    against `rust-version`; this script rejects them in the workspace's sources and templates.
#
# Usage: bash scripts/msrv.sh
set -euo pipefail
cd "$(dirname "$0")/.."

msrv=$(sed -n '/^\[workspace.package\]/,/^\[/s/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
[ -n "$msrv" ] || { echo "msrv: no rust-version in [workspace.package]" >&2; exit 1; }
status=0

if grep -rnE --include='*.rs' --include='*.toml' 'incompatible_msrv' \
    --exclude-dir=target --exclude-dir=.git . | grep -v '^./scripts/'; then
    echo "msrv: clippy::incompatible_msrv must not be allowed (see above)" >&2
    status=1
fi

cargo metadata --format-version 1 --locked | python3 -c '
import json, sys
msrv = tuple(int(x) for x in sys.argv[1].split(".")[:2])
meta = json.load(sys.stdin)
bad = sorted(
    (p["name"], p["version"], p["rust_version"])
    for p in meta["packages"]
    if p.get("rust_version")
    and tuple(int(x) for x in p["rust_version"].split(".")[:2]) > msrv
)
for name, version, needs in bad:
    print(f"msrv: {name} {version} needs Rust {needs}", file=sys.stderr)
count = len(meta["packages"])
print(f"msrv: {count} packages resolved, {len(bad)} newer than {sys.argv[1]}")
sys.exit(1 if bad else 0)
' "$msrv" || status=1

if grep -rnE --include='*.rs' --include='*.j2' '(&& let |\b(if|while) let [^{;]*&& )' \
    --exclude-dir=target --exclude-dir=.git .; then
    echo "msrv: let-chains need Rust 1.88; rust-version is $msrv (see above)" >&2
    status=1
fi

[ "$status" = 0 ] && echo "msrv: rust-version $msrv holds for APIs (clippy), dependencies and let-chains"
exit "$status"
