#!/usr/bin/env bash
# make dist: the PGXN source distribution, target/dist/electric_auth-<version>.zip: `git archive`
# of HEAD (committed files only) under the prefix electric_auth-<version>/, with META.json at
# its root. Run after scripts/check_versions.sh (make dist does), and upload the zip with PGXN
# Manager (https://manager.pgxn.org) or `pgxn-utils release`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
version=$(extension_version)
out=target/dist/electric_auth-$version.zip

git diff --quiet HEAD -- || echo "dist: uncommitted changes are not in the zip (it holds HEAD, $(git rev-parse --short HEAD))"
git cat-file -e HEAD:META.json 2>/dev/null || { echo "dist: META.json is not committed" >&2; exit 1; }
committed=$(git show HEAD:META.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
[ "$committed" = "$version" ] ||
  { echo "dist: the committed META.json says $committed, Cargo.toml $version: commit META.json" >&2; exit 1; }

mkdir -p target/dist
rm -f "$out"
git archive --format zip --prefix "electric_auth-$version/" -o "$out" HEAD
echo "dist: $out ($(unzip -Z1 "$out" | grep -vc '/$') files, $(du -k "$out" | cut -f1) KiB, from $(git rev-parse --short HEAD))"
if git show HEAD:META.json | grep -q '\.invalid'; then
  echo "dist: META.json still names placeholder addresses (*.invalid: maintainer, repository);" \
    "put the real ones in before uploading to PGXN"
fi
