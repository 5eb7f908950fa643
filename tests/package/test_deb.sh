#!/usr/bin/env bash
# The Postgres 15 .deb from `make package`, installed the way a user would (dpkg -i) into
# Debian's own Postgres 15: its files land where Debian's layout puts them, a fresh cluster
# creates the extension from them and verifies a token minted by PyJWT, and `dpkg -r` removes
# every file again. Afterwards this checkout's dev build is reinstalled for the other layers.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/common.sh
version=$(extension_version)
deb=target/packages/postgresql-15-electric-auth_${version}_amd64.deb
pkg=postgresql-15-electric-auth
NAME=ea-deb PORT=54339
SOCK=${EA_TEST_TMP:-/tmp}/$NAME-sock # where scripts/cluster.sh puts it
fail() { echo "test_deb: FAILED: $*" >&2; exit 1; }

cleanup() {
  scripts/cluster.sh stop $NAME
  dpkg -r "$pkg" >/dev/null 2>&1 || true
  cargo pgrx install --pg-config /usr/bin/pg_config >/dev/null 2>&1
}
trap cleanup EXIT

[ -f "$deb" ] || fail "$deb is missing (make package PG=15)"
dpkg-deb --field "$deb" Depends | grep -q 'postgresql-15' || fail "the package must depend on postgresql-15"
# Start from nothing: no electric_auth file may be left from another install.
rm -f /usr/lib/postgresql/15/lib/electric_auth.so /usr/share/postgresql/15/extension/electric_auth*
dpkg -i "$deb" >/dev/null
dpkg -L "$pkg" | grep -qx /usr/lib/postgresql/15/lib/electric_auth.so || fail "library not in /usr/lib/postgresql/15/lib"
for f in electric_auth.control "electric_auth--$version.sql" electric_auth--0.1.0--0.2.0.sql electric_auth--0.2.0--0.3.0.sql electric_auth--0.3.0--0.4.0.sql; do
  dpkg -L "$pkg" | grep -qx "/usr/share/postgresql/15/extension/$f" || fail "$f not in /usr/share/postgresql/15/extension"
done

secret=deb-install-secret-6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d
EA_CONF="electric_auth.jwt_alg = 'HS256'
electric_auth.jwt_key = '$secret'" scripts/cluster.sh start $NAME $PORT
token=$(PYTHONPATH=tests/lib python3 -c 'import sys; from electric_auth_test.tokens import Minter
print(Minter(sys.argv[1], sub="deb-user", lifetime=600)())' "$secret")
psql=(as_postgres psql -X -q -t -A -v ON_ERROR_STOP=1 -h "$SOCK" -p $PORT -d postgres)
"${psql[@]}" -c "CREATE EXTENSION electric_auth"
got=$("${psql[@]}" -c "SELECT extversion FROM pg_extension WHERE extname = 'electric_auth'")
[ "$got" = "$version" ] || fail "extversion is '$got', expected $version"
got=$("${psql[@]}" -c "SELECT electric_auth.user_id('$token')")
[ "$got" = deb-user ] || fail "user_id returned '$got'"
if "${psql[@]}" -c "SELECT electric_auth.user_id('${token}x')" 2>/dev/null; then
  fail "a tampered token was accepted"
fi
scripts/cluster.sh stop $NAME

dpkg -r "$pkg" >/dev/null
[ ! -e /usr/lib/postgresql/15/lib/electric_auth.so ] || fail "dpkg -r left the library behind"
ls /usr/share/postgresql/15/extension/electric_auth* >/dev/null 2>&1 && fail "dpkg -r left extension files behind"
echo "test_deb: $deb installed, created, verified a token, and removed cleanly"
