#!/usr/bin/env bash
# Installs everything electric_auth needs on Debian 12, idempotently and quickly when it is all
# there: Debian's Postgres 15 and build tools, cargo-pgrx 0.18.0, and pgrx's pg15 configuration
# pointing at the system pg_config (pgrx never downloads Postgres here).
set -euo pipefail

PACKAGES=(postgresql-15 postgresql-server-dev-15 postgresql-contrib libclang-dev clang pkg-config libssl-dev sudo)
PGRX_VERSION=0.18.0
PG_CONFIG=${PG_CONFIG:-/usr/bin/pg_config}

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

if ! cargo pgrx --version 2>/dev/null | grep -q "cargo-pgrx $PGRX_VERSION"; then
  echo "bootstrap: installing cargo-pgrx $PGRX_VERSION (a few minutes, once)"
  cargo install --locked cargo-pgrx --version "$PGRX_VERSION"
fi

if ! grep -qs "^pg15 = \"$PG_CONFIG\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
  echo "bootstrap: cargo pgrx init --pg15 $PG_CONFIG"
  cargo pgrx init --pg15 "$PG_CONFIG" >/dev/null
fi

# The security suite drives Postgres with psycopg and mints tokens with PyJWT and node.
python3 -c 'import jwt, psycopg, cryptography' 2>/dev/null ||
  python3 -m pip install --quiet 'pyjwt==2.15.1' 'psycopg[binary]>=3.2' 'cryptography>=42'
command -v node >/dev/null || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "bootstrap: installing cargo-fuzz (about a minute, once)"
  cargo install --locked cargo-fuzz
fi

rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
