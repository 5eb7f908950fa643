#!/usr/bin/env bash
# A throwaway Postgres cluster of the server whose pg_config is $PG_CONFIG (default Debian's 15),
# run as the `postgres` user (Postgres refuses root), with its own data and socket directories
# under /tmp and its own port, the extension preloaded unless EA_PRELOAD is set empty. Further
# arguments after PORT are server options (e.g. "-c x=y"); EA_CONF, when set, is appended to
# postgresql.conf before the server first starts.
#   scripts/cluster.sh start NAME PORT [OPTION...]   |   scripts/cluster.sh stop NAME
set -euo pipefail
BIN=$("${PG_CONFIG:-/usr/bin/pg_config}" --bindir)
action=$1 name=$2
data=/tmp/$name-data sock=/tmp/$name-sock

source "$(dirname "$0")/common.sh"
# Every path below is absolute: run the tools from / so that `postgres` can enter the working
# directory whoever's checkout this is (otherwise: "could not change directory ... Permission denied").
cd /

case $action in
  start)
    port=$3; shift 3
    preload=${EA_PRELOAD-electric_auth}
    as_postgres "$BIN/pg_ctl" -D "$data" stop -m immediate >/dev/null 2>&1 || true
    rm -rf "$data" "$sock"
    mkdir -p "$sock" && chown postgres "$sock" 2>/dev/null || true
    as_postgres "$BIN/initdb" -D "$data" -A trust -U postgres --no-sync >/dev/null
    [ -z "${EA_CONF:-}" ] || printf '%s\n' "$EA_CONF" >>"$data/postgresql.conf"
    unset EA_CONF # the server logs its environment at debug levels
    as_postgres "$BIN/pg_ctl" -D "$data" -l "$data/server.log" -w start -o \
      "-p $port -k $sock -c listen_addresses='' -c shared_preload_libraries='$preload' -c fsync=off $*" >/dev/null
    ;;
  stop)
    [ -d "$data" ] && as_postgres "$BIN/pg_ctl" -D "$data" -w stop -m fast >/dev/null 2>&1 || true
    ;;
esac
