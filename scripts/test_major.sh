#!/usr/bin/env bash
# Every test layer that needs a Postgres server, on one major (15, 16, 17 or 18): the
# #[pg_test]s (cargo pgrx test), then the extension installed into that server for the
# pg_regress contract suite, the security suite, the hot-standby replica test, the PgBouncer
# test and `make demo`'s walkthrough. Each layer starts its own throwaway clusters and stops
# them; the first failure stops the script.
#
# Several majors may run at once (scripts/test_major.sh 16 & scripts/test_major.sh 17): every
# cluster, port and scratch directory is the major's own (tests/lib/electric_auth_test), and
# the two cargo steps take turns, since every major builds into the same target/debug (one
# major's `cargo pgrx install` would otherwise copy the library another major just built).
# $EA_TEST_TMP (default /tmp) keeps two checkouts apart.
#   scripts/test_major.sh NN
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pg_versions.sh
major=$1
PG_CONFIG=$(pg_config_for "$major")
export PG_CONFIG
tmp=${EA_TEST_TMP:-/tmp}
mkdir -p -m 1777 "$tmp" # the clusters' directories are made there by `postgres`
pgdata=$tmp/ea-pgdata-$major
started=$(date +%s)

step() { echo; echo "== Postgres $major: $* =="; }
# in_turn CMD...: CMD while no other test_major.sh of this checkout runs a cargo step.
mkdir -p target
in_turn() { flock target/.test-major-cargo.lock "$@"; }

step "#[pg_test] (cargo pgrx test pg$major)"
rm -rf "$pgdata"
in_turn cargo pgrx test "pg$major" --runas postgres --pgdata "$pgdata"

step "install into $("$PG_CONFIG" --version)"
in_turn cargo pgrx install --pg-config "$PG_CONFIG" >/dev/null

step "no OpenSSL symbol clash (AWS-LC is prefixed)"
bash tests/symbols/check_symbols.sh "$("$PG_CONFIG" --pkglibdir)/electric_auth.so"

step "pg_regress contract suite"
bash scripts/pg_regress.sh

step "security suite"
# Every tests/security/test_*.py file (each imports the shared clusters and sessions from
# test_security.py).
for suite in tests/security/test_*.py; do
  python3 "$suite"
done

step "hot standby"
python3 tests/replica/test_replica.py

step "PgBouncer (transaction and session pooling)"
python3 tests/pooler/test_pgbouncer.py

step "make demo's walkthrough, from a checkout postgres cannot enter"
python3 tests/demo/test_demo.py

if [ "$major" = 18 ]; then
  step "OAuth validator: connections authenticated by their token (new in 18)"
  python3 tests/oauth/test_oauth.py
fi

echo "== Postgres $major: all layers passed in $(($(date +%s) - started)) s =="
