#!/usr/bin/env bash
# Unpacks a released version's source into DEST: from its tag, or, in a clone that did not fetch
# tags, from the commit the tag names (listed here, one line per release). Used by the upgrade
# test and by `make bench` for the 0.1.0 baseline.
#   scripts/release_source.sh VERSION DEST
set -euo pipefail
cd "$(dirname "$0")/.."
version=$1 dest=$2
case $version in
  0.1.0) commit=740a483 ;;
  0.2.0) commit=67e1581 ;;
  0.3.0) commit=ba70f23 ;;
  0.4.0) commit=50e1699 ;;
  *) echo "release_source: unknown release $version" >&2; exit 1 ;;
esac
ref=v$version
git rev-parse --verify -q "$ref^{commit}" >/dev/null || ref=$commit
mkdir -p "$dest"
git archive "$ref" | tar x -C "$dest"
