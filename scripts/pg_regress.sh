#!/usr/bin/env bash
# Runs the SQL contract suite (tests/pg_regress/sql/*.sql against expected/*.out) with
# Postgres's own pg_regress, as the `postgres` user, on a throwaway cluster. The extension must
# already be installed (make install-dev). With --update, copies the results over expected/ so
# the diff can be reviewed in git.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
PORT=${EA_REGRESS_PORT:-54329}
NAME=ea-regress
OUT=/tmp/$NAME-out
PG_REGRESS=$(/usr/bin/pg_config --pkglibdir)/pgxs/src/test/regress/pg_regress

scripts/cluster.sh start $NAME "$PORT"
trap 'scripts/cluster.sh stop $NAME' EXIT
# The server and pg_regress run as `postgres`, which may not be able to read this checkout
# (e.g. under /root): stage the suite in a directory it owns.
rm -rf "$OUT" && mkdir -p "$OUT" && cp -r tests/pg_regress/sql tests/pg_regress/expected "$OUT"/
chown -R postgres "$OUT" 2>/dev/null || true
tests=$(cd tests/pg_regress/sql && ls *.sql | sed 's/\.sql$//')
status=0
as_postgres "$PG_REGRESS" --bindir="$(/usr/bin/pg_config --bindir)" --host=/tmp/$NAME-sock --port="$PORT" \
  --inputdir="$OUT" --outputdir="$OUT" --dbname=electric_auth_regress $tests || status=$?
if [ "${1:-}" = --update ]; then
  cp "$OUT"/results/*.out tests/pg_regress/expected/
  echo "pg_regress: expected/ updated from results; review with git diff"
  exit 0
fi
if [ $status -ne 0 ]; then
  cat "$OUT/regression.diffs" 2>/dev/null | head -200
  echo "pg_regress: FAILED (full diff: $OUT/regression.diffs)"
fi
exit $status
