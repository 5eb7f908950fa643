#!/usr/bin/env bash
# make test (check-versions): the release version is written in several files, and they must
# agree. Cargo.toml's electric_auth package version is the one CREATE EXTENSION installs and the
# packages are named after (scripts/common.sh's extension_version); this fails unless
#   - core/Cargo.toml (electric_auth_core) has the same version,
#   - META.json (PGXN) has it at the top level and for every extension under "provides",
#   - electric_auth.control's default_version is it, or pgrx's @CARGO_VERSION@ placeholder
#     (which `cargo pgrx install/package` replaces with it),
#   - the README's install commands (.deb, tarball and PGXN zip names) name it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
version=$(extension_version)
cargo metadata --no-deps --format-version 1 | python3 -c '
import json, re, sys
version = sys.argv[1]
wrong = []
def same(where, found):
    if found != version:
        wrong.append(f"{where}: {found!r}")

packages = {p["name"]: p["version"] for p in json.load(sys.stdin)["packages"]}
same("core/Cargo.toml (electric_auth_core)", packages.get("electric_auth_core"))

meta = json.load(open("META.json"))
same("META.json version", meta.get("version"))
provides = meta.get("provides") or {}
if "electric_auth" not in provides:
    wrong.append("META.json provides: no electric_auth")
for name, extension in provides.items():
    same(f"META.json provides.{name}.version", extension.get("version"))

control = open("electric_auth.control").read()
default = re.findall(r"^\s*default_version\s*=\s*\x27([^\x27]*)\x27", control, re.M)
if default != ["@CARGO_VERSION@"]:
    same("electric_auth.control default_version", default[0] if len(default) == 1 else default)

readme = open("README.md").read()
for name in re.findall(r"electric_auth-\d+\.\d+\.\d+(?=[-./])|electric-auth_\d+\.\d+\.\d+_", readme):
    same(f"README.md ({name})", re.search(r"\d+\.\d+\.\d+", name).group())

if wrong:
    sys.exit(f"check_versions: Cargo.toml says electric_auth {version}, but\n  " + "\n  ".join(wrong))
print(f"check_versions: electric_auth {version} in Cargo.toml, core/Cargo.toml, META.json, "
      "electric_auth.control and the README agree")
' "$version"
