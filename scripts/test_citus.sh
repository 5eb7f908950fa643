#!/usr/bin/env bash
# The Citus layer (issue 16), not part of `make test`: Citus is in no package registry, and its
# source is public code we never commit. Given a Citus source tree (`git archive v14.0.1` of
# github.com/citusdata/citus), builds and installs it into the Postgres 17 test server (skipped
# when that Citus is already installed), installs this extension there, and runs
# tests/citus/test_citus.py: a coordinator and two workers on local ports, run as `postgres`.
#   make test-citus CITUS_SRC=/path/to/citus-v14.0.1
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pg_versions.sh
source scripts/common.sh

src=${CITUS_SRC:-}
if [ -z "$src" ]; then
  echo "test-citus: SKIPPED, nothing was tested: no Citus source given." >&2
  echo "  Citus is in no package registry; run: make test-citus CITUS_SRC=<citus v14.0.1 source>" >&2
  exit 0
fi
[ -f "$src/configure" ] && [ -f "$src/src/backend/distributed/citus.control" ] ||
  { echo "test-citus: $src is not a Citus source tree" >&2; exit 1; }

PG_CONFIG=$(pg_config_for 17)
export PG_CONFIG
want=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$src/src/backend/distributed/citus.control")
control="$("$PG_CONFIG" --sharedir)/extension/citus.control"
have=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$control" 2>/dev/null || true)
if [ -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ] && [ "$have" = "$want" ]; then
  echo "test-citus: Citus $want already installed in $("$PG_CONFIG" --version)"
else
  echo "test-citus: building Citus $want against $("$PG_CONFIG" --version) (about a minute)"
  # Its build needs these headers (gssapi: the wheel's libpq-be.h includes it).
  missing=()
  for p in libzstd-dev liblz4-dev libkrb5-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  build=/tmp/ea-citus-build
  rm -rf "$build" && cp -a "$src" "$build"
  touch "$build/configure" # newer than configure.ac, so make does not want autoconf
  (cd "$build" && ./configure PG_CONFIG="$PG_CONFIG" --without-libcurl >/dev/null &&
     make -j2 >/dev/null && make install >/dev/null)
fi

echo "test-citus: installing electric_auth into $("$PG_CONFIG" --version)"
cargo pgrx install --pg-config "$PG_CONFIG" >/dev/null
python3 tests/citus/test_citus.py
