#!/usr/bin/env bash
# Fails when a module of either crate imports, directly or through others, a module that imports
# it back. The module graph comes from cargo-modules (crates.io), which reads the crates as
# rust-analyzer does (`use` paths, re-exports, `super::`, cfg blocks all resolved):
# `cargo modules dependencies` with every item kind but modules filtered out prints one "uses"
# edge per module pair in DOT. Its own `--acyclic` works on items and flags every type whose
# method names the type (`Algorithm` -> `Algorithm::name`), so the cycle search over the module
# edges is the few lines of Python below. cargo-modules draws edges from `use` declarations only;
# a path written inline (`crate::verify::settings::MODE.get()`) adds an edge here too, found by
# a plain search of the sources for `crate::`/`super::` paths (the longest known module wins;
# an inline path to the file's own ancestor is skipped, since `super::` inside an inline
# `mod tests` names the file's module, which a search by lines cannot tell apart).
# The glue is read with each major's features, since each compiles its own cfg blocks.
#   scripts/check_cycles.sh [MAJOR...]   (default: every supported major)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pg_versions.sh
CARGO_MODULES_VERSION=0.27.0
if ! cargo modules --version 2>/dev/null | grep -q "$CARGO_MODULES_VERSION"; then
  cargo install --locked "cargo-modules@$CARGO_MODULES_VERSION"
fi

check() {
  local what=$1 krate=$2 root=$3; shift 3
  cargo modules dependencies "$@" --lib --no-externs --no-sysroot --no-fns --no-traits \
    --no-types --no-owns 2>/dev/null |
    python3 -c '
import pathlib, re, sys
what, krate, root = sys.argv[1:4]
dot = sys.stdin.read()
edges = {}
for a, b in re.findall(r"^\s*\"([^\"]+)\" -> \"([^\"]+)\" \[label=\"uses\"", dot, re.M):
    if a != b:
        edges.setdefault(a, set()).add(b)
modules = set(re.findall(r"^\s*\"([^\"]+)\" \[label=", dot, re.M)) | {krate}
for file in pathlib.Path(root).rglob("*.rs"):
    parts = list(file.relative_to(root).with_suffix("").parts)
    if parts[-1] in ("lib", "mod"):
        parts.pop()
    here = "::".join([krate] + parts)
    if here not in modules:
        continue  # not part of the build for these features
    for line in file.read_text().splitlines():
        code = line.split("//")[0]
        for anchor, rest in re.findall(r"\b(crate|super)::((?:[a-z_][a-z0-9_]*::)*[A-Za-z_][A-Za-z0-9_]*)", code):
            base = [krate] if anchor == "crate" else here.split("::")[:-1]
            path = base + rest.split("::")
            while path and "::".join(path) not in modules:
                path.pop()
            target = "::".join(path)
            if target and target != here and not here.startswith(target + "::"):
                edges.setdefault(here, set()).add(target)
if not edges:
    sys.exit(f"check_cycles: {what}: cargo-modules printed no module edges (did it fail?)")
state, path = {}, []
def visit(node):
    state[node] = "open"; path.append(node)
    for nxt in sorted(edges.get(node, ())):
        if state.get(nxt) == "open":
            cycle = path[path.index(nxt):] + [nxt]
            sys.exit(f"check_cycles: module cycle in {what}:\n  " + "\n  -> ".join(cycle))
        if nxt not in state:
            visit(nxt)
    state[node] = "done"; path.pop()
for node in sorted(edges):
    if node not in state:
        visit(node)
count = sum(len(v) for v in edges.values())
print(f"check_cycles: {what}: {len(edges)} modules, {count} uses edges, no cycle")
' "$what" "$krate" "$root"
}

check "electric_auth_core" electric_auth_core core/src --package electric_auth_core
for major in ${@:-$PG_VERSIONS}; do
  check "electric_auth (pg$major)" electric_auth src --package electric_auth --no-default-features --features "pg$major"
done
