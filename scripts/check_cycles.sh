#!/usr/bin/env bash
# Fails when a module of either crate imports, directly or through others, a module that imports
# it back. Built on cargo-modules (crates.io), which reads the crates as rust-analyzer does:
# `cargo modules dependencies --acyclic` exits non-zero and names the cycle when there is one.
# The glue is checked with each major's features, since each compiles its own cfg blocks.
#   scripts/check_cycles.sh [MAJOR...]   (default: every supported major)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pg_versions.sh
CARGO_MODULES_VERSION=0.27.0
if ! cargo modules --version 2>/dev/null | grep -q "$CARGO_MODULES_VERSION"; then
  cargo install --locked "cargo-modules@$CARGO_MODULES_VERSION"
fi

check() {
  local what=$1; shift
  if ! out=$(cargo modules dependencies "$@" --lib --acyclic --no-externs --no-sysroot 2>&1); then
    echo "check_cycles: module cycle in $what:" >&2
    echo "$out" | grep -v '^\s*$' | tail -40 >&2
    exit 1
  fi
  echo "check_cycles: $what: no module cycle"
}

check "electric_auth_core" --package electric_auth_core
for major in ${@:-$PG_VERSIONS}; do
  check "electric_auth (pg$major)" --package electric_auth --no-default-features --features "pg$major"
done
