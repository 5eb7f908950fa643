# Sourced by the scripts that drive Postgres, which refuses to run as root.

# as_postgres CMD...: runs CMD as the `postgres` OS user, whoever is running this script.
as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"
  elif [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"
  else sudo -u postgres "$@"; fi
}
