#!/usr/bin/env bash
# A throwaway Postgres cluster of the server whose pg_config is $PG_CONFIG (default Debian's 15),
# run as the `postgres` user (Postgres refuses root), with its own data and socket directories
# ($EA_TEST_TMP, default /tmp: NAME-data, NAME-sock) and its own port, the extension preloaded
# unless EA_PRELOAD is set empty. Further arguments after PORT are server options (e.g.
# "-c x=y"); EA_CONF, when set, is appended to postgresql.conf before the server first starts.
# The clusters of the Python suites are the same (tests/lib/electric_auth_test/postgres.py),
# which this script runs.
#   scripts/cluster.sh start NAME PORT [OPTION...]   |   scripts/cluster.sh stop NAME
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
PYTHONPATH="$root/tests/lib${PYTHONPATH:+:$PYTHONPATH}" exec python3 -m electric_auth_test.postgres "$@"
