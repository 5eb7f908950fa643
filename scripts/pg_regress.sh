#!/usr/bin/env bash
# Runs the SQL contract suite (tests/pg_regress/sql/*.sql against expected/*.out) with
# Postgres's own pg_regress, as the `postgres` user, on a throwaway cluster of the server whose
# pg_config is $PG_CONFIG (default Debian's 15). The extension must already be installed there
# (make install-dev PG_CONFIG=...). Where a Postgres major prints something differently, the
# suite keeps pg_regress's alternative expected files (expected/NAME_1.out ...) beside the first.
# With --update, copies the results over expected/ so the diff can be reviewed in git.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
PG_CONFIG=${PG_CONFIG:-/usr/bin/pg_config}
export PG_CONFIG
major=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
# A cluster, a port and an output directory per major, as the Python suites have, so that
# majors can run side by side (tests/lib/electric_auth_test/postgres.py).
PORT=${EA_REGRESS_PORT:-$((54329 + 100 * (major - 15)))}
NAME=ea-regress-pg$major
tmp=${EA_TEST_TMP:-/tmp}
OUT=$tmp/$NAME-out
PG_REGRESS=$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress

scripts/cluster.sh start $NAME "$PORT"
trap 'scripts/cluster.sh stop $NAME' EXIT
# The server and pg_regress run as `postgres`, which may not be able to read this checkout
# (e.g. under /root): stage the suite in a directory it owns.
rm -rf "$OUT" && mkdir -p "$OUT" && cp -r tests/pg_regress/sql tests/pg_regress/expected "$OUT"/
chown -R postgres "$OUT" 2>/dev/null || true
tests=$(cd tests/pg_regress/sql && ls *.sql | sed 's/\.sql$//')
status=0
as_postgres "$PG_REGRESS" --bindir="$("$PG_CONFIG" --bindir)" --host="$tmp/$NAME-sock" --port="$PORT" \
  --inputdir="$OUT" --outputdir="$OUT" --dbname=electric_auth_regress $tests || status=$?
if [ "${1:-}" = --update ]; then
  # Debian's 15 writes the primary NAME.out. Major M writes NAME_<M-15>.out, and only where it
  # prints differently from every earlier major's file (pg_regress accepts any of them), so run
  # the majors in order, as `make regress-update` does.
  for result in "$OUT"/results/*.out; do
    name=$(basename "$result" .out)
    if [ "$major" = 15 ]; then
      cp "$result" "tests/pg_regress/expected/$name.out"
      continue
    fi
    for earlier in tests/pg_regress/expected/"$name".out tests/pg_regress/expected/"$name"_*.out; do
      cmp -s "$result" "$earlier" && continue 2
    done
    cp "$result" "tests/pg_regress/expected/${name}_$((major - 15)).out"
  done
  echo "pg_regress: expected/ updated from Postgres $major's results; review with git diff"
  exit 0
fi
if [ $status -ne 0 ]; then
  cat "$OUT/regression.diffs" 2>/dev/null | head -200
  echo "pg_regress: FAILED (full diff: $OUT/regression.diffs)"
fi
exit $status
