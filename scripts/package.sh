#!/usr/bin/env bash
# Release artifacts for one Postgres major, built by `cargo pgrx package` (release profile)
# against that major's pg_config, in target/packages/:
#   electric_auth-<version>-pg<NN>-amd64.tar.gz    lib/electric_auth.so, extension/*.control,
#                                                  extension/*.sql (install + every upgrade script)
#   postgresql-<NN>-electric-auth_<version>_amd64.deb
#       the same files where Debian's and the PGDG packages keep them
#       (/usr/lib/postgresql/NN/lib, /usr/share/postgresql/NN/extension); Depends: postgresql-NN.
#   scripts/package.sh NN
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pg_versions.sh
source scripts/common.sh
major=$1
pg_config=$(pg_config_for "$major")
version=$(extension_version)
out=target/packages
staging=target/packages/staging-pg$major
rm -rf "$staging" && mkdir -p "$out"

echo "package: electric_auth $version for Postgres $major (cargo pgrx package, release)"
cargo pgrx package --pg-config "$pg_config" --out-dir "$staging/pgrx" >/dev/null
libdir=$staging/pgrx$("$pg_config" --pkglibdir)
extdir=$staging/pgrx$("$pg_config" --sharedir)/extension
[ -f "$libdir/electric_auth.so" ] && [ -f "$extdir/electric_auth--$version.sql" ] ||
  { echo "package: cargo pgrx package did not produce the expected files" >&2; exit 1; }

# The tarball: independent of where a Postgres keeps its files.
tarroot=$staging/electric_auth-$version-pg$major
mkdir -p "$tarroot/lib" "$tarroot/extension"
cp "$libdir/electric_auth.so" "$tarroot/lib/"
cp "$extdir"/electric_auth* "$tarroot/extension/"
cat >"$tarroot/INSTALL" <<TXT
electric_auth $version for PostgreSQL $major (x86_64 Linux, glibc).
Install into the server whose pg_config is on PATH (as root):
  cp lib/electric_auth.so "\$(pg_config --pkglibdir)/"
  cp extension/* "\$(pg_config --sharedir)/extension/"
Then, in each database: CREATE EXTENSION electric_auth;  (or ALTER EXTENSION electric_auth UPDATE;)
TXT
tar czf "$out/electric_auth-$version-pg$major-amd64.tar.gz" -C "$staging" "electric_auth-$version-pg$major"

# The Debian package.
deb=$staging/deb
mkdir -p "$deb/DEBIAN" "$deb/usr/lib/postgresql/$major/lib" "$deb/usr/share/postgresql/$major/extension"
cp "$libdir/electric_auth.so" "$deb/usr/lib/postgresql/$major/lib/"
cp "$extdir"/electric_auth* "$deb/usr/share/postgresql/$major/extension/"
strip --strip-unneeded "$deb/usr/lib/postgresql/$major/lib/electric_auth.so"
size_kib=$(du -sk "$deb/usr" | cut -f1)
# Depends: the server, and the Debian package of every shared library the .so links.
depends=$({
  echo "postgresql-$major"
  for lib in $(readelf -d "$deb/usr/lib/postgresql/$major/lib/electric_auth.so" |
    sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    dpkg -S "*/$lib" 2>/dev/null | grep -v -- '-dev' | head -1 | cut -d: -f1
  done
} | awk '!seen[$0]++' | paste -sd, | sed 's/,/, /g')
cat >"$deb/DEBIAN/control" <<CONTROL
Package: postgresql-$major-electric-auth
Version: $version
Architecture: amd64
Maintainer: electric_auth developers <electric-auth@invalid>
Depends: $depends
Section: database
Priority: optional
Installed-Size: $size_kib
Description: Electric sync client JWT verification for PostgreSQL $major
 electric_auth verifies the JWTs of Electric sync clients inside PostgreSQL:
 electric_auth.verify(token) and electric_auth.user_id(token), configured with
 electric_auth.* settings, for triggers, RLS policies, views and functions.
CONTROL
find "$deb" -type d -exec chmod 755 {} +
find "$deb/usr" -type f -exec chmod 644 {} +
dpkg-deb --root-owner-group --build "$deb" "$out/postgresql-$major-electric-auth_${version}_amd64.deb" >/dev/null
rm -rf "$staging"
ls -l "$out"/*"pg$major"* "$out"/postgresql-"$major"-*
