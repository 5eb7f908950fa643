# Sourced by the project scripts: running Postgres tools as `postgres` (Postgres refuses to run
# as root) and reading the extension version.

# as_postgres CMD...: runs CMD as the `postgres` OS user, whoever is running this script.
as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"
  elif [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"
  else sudo -u postgres "$@"; fi
}

# extension_version: the electric_auth package version from Cargo.toml (what CREATE EXTENSION
# installs and what the packages are named after).
extension_version() {
  cargo metadata --no-deps --format-version 1 |
    python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "electric_auth"))'
}
