#!/usr/bin/env python3
"""Fails when a module of either crate imports, directly or through others, a module that
imports it back (the house rule: dependencies point one way).

It reads the sources itself, in about a second, instead of compiling a tool (cargo-modules
took 17 minutes to install on a new machine). What it reads, per crate, from `src/lib.rs` down:

- the modules: `mod name;` (its file `name.rs` or `name/mod.rs`) and inline `mod name { … }`,
  except those compiled only for tests (`#[cfg(test)]`, `#[cfg(any(test, feature =
  "pg_test"))]`), as the library is built;
- the edges: every `use` declaration (groups, renames and globs expanded; `crate::`, `super::`,
  `self::`, or a child module's name), and every path written inline (`crate::verify::x()`);
  each points at the longest module prefix of the path. An inline path to the module's own
  ancestor is not an edge (`super::Foo` inside an inline module names its file's items), but a
  `use` of an ancestor is, as it always was.

Comments, strings and character literals are blanked before reading, so a path in a doc comment
or a message is not an edge. Every cfg'd Postgres major is read at once (a cycle under any of
them fails), so one run covers all majors.

    python3 scripts/check_cycles.py [CRATE_ROOT_DIR...]   (default: core/src and src)
    python3 scripts/check_cycles.py --self-test           (plants a cycle, expects failure)
"""

import pathlib
import re
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def blank(text):
    """`text` with comments, string, byte-string, raw-string and char literals replaced by
    spaces (newlines kept), so only code remains."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i)); i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth += 1; j += 2
                elif text.startswith("*/", j):
                    depth -= 1; j += 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif re.match(r"b?r#*\"", text[i:i + 40]) and (i == 0 or not re.match(r"\w", text[i - 1])):
            m = re.match(r"b?r(#*)\"", text[i:])
            end = text.find('"' + m.group(1), i + m.end())
            j = n if end < 0 else end + 1 + len(m.group(1))
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}', b'x'), not a lifetime ('a).
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:])
            if m:
                out.append(" " * m.end()); i += m.end()
            else:
                out.append(c); i += 1
        else:
            out.append(c); i += 1
    return "".join(out)


def matching_brace(code, open_at):
    depth = 0
    for j in range(open_at, len(code)):
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(code)


TEST_ONLY = re.compile(r"#\[cfg\((test|any\(\s*test\s*,[^\]]*\))\)\]")
MOD = re.compile(r"((?:#\[[^\]]*\]\s*)*)(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*([;{])")


class Crate:
    def __init__(self, name, src):
        self.name, self.src = name, pathlib.Path(src)
        self.modules = {}  # path -> list of code pieces (blanked text) belonging to it
        self.load(name, self.src / "lib.rs", blank(self.src.joinpath("lib.rs").read_text()))

    def load(self, path, file, code):
        """Records module `path` with `code` (from `file`), and its child modules."""
        pieces = self.modules.setdefault(path, [])
        kept, at = [], 0
        for m in MOD.finditer(code):
            if m.start() < at:
                continue  # inside an inline module already taken out
            attrs, name, kind = m.group(1), m.group(2), m.group(3)
            child = f"{path}::{name}"
            end = m.end() if kind == ";" else matching_brace(code, m.end() - 1) + 1
            kept.append(code[at:m.start()])
            at = end
            if TEST_ONLY.search(attrs or ""):
                continue
            if kind == "{":
                self.load(child, file, code[m.end():end - 1])
            else:
                base = file.parent if file.name in ("lib.rs", "mod.rs") else file.with_suffix("")
                for candidate in (base / f"{name}.rs", base / name / "mod.rs"):
                    if candidate.exists():
                        self.load(child, candidate, blank(candidate.read_text()))
                        break
                else:
                    sys.exit(f"check_cycles: {file}: no file for `mod {name};`")
        kept.append(code[at:])
        pieces.append("".join(kept))

    def resolve(self, here, segments):
        """The module `segments` (a path as written in module `here`) names, or None."""
        if not segments:
            return None
        head, rest = segments[0], segments[1:]
        if head == "crate":
            base = [self.name]
        elif head == "self":
            base = here.split("::")
        elif head == "super":
            base = here.split("::")[:-1]
            while rest and rest[0] == "super":
                base, rest = base[:-1], rest[1:]
        elif f"{here}::{head}" in self.modules:
            base, rest = here.split("::") + [head], rest
        else:
            return None  # another crate (std, pgrx, electric_auth_core) or a local item
        path = base + list(rest)
        while path and "::".join(path) not in self.modules:
            path.pop()
        return "::".join(path) or None

    def edges(self):
        edges = {}
        for here, pieces in self.modules.items():
            for code in pieces:
                targets = set()
                for use in re.finditer(r"\buse\s+([^;]*);", code):
                    for path in expand(use.group(1)):
                        target = self.resolve(here, path)
                        if target and target != here:
                            targets.add(target)
                body = re.sub(r"\buse\s+[^;]*;", " ", code)
                for m in re.finditer(r"\b((?:crate|super|self)(?:\s*::\s*" + IDENT + r")+)", body):
                    segments = [s.strip() for s in m.group(1).split("::")]
                    target = self.resolve(here, segments)
                    if target and target != here and not here.startswith(target + "::"):
                        targets.add(target)
                edges.setdefault(here, set()).update(targets)
        return edges


def expand(tree):
    """The paths of a use tree (`a::{b, c::{d as e, *}}` -> [a,b], [a,c,d], [a,c])."""
    tree = re.sub(r"\s*(::|\{|\}|,)\s*", r"\1", tree.strip())
    tree = re.sub(r"^::", "", tree)

    def walk(prefix, text):
        parts, depth, start = [], 0, 0
        for i, ch in enumerate(text):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(text[start:i])
                start = i + 1
        parts.append(text[start:])
        for part in filter(None, parts):
            brace = part.find("{")
            if brace >= 0:
                head = [s for s in part[:brace].split("::") if s]
                yield from walk(prefix + head, part[brace + 1:part.rindex("}")])
                continue
            part = re.sub(r"\s+as\s+" + IDENT + "$", "", part)  # a rename
            segments = [s for s in part.split("::") if s and s != "*"]
            if segments and segments[-1] == "self":
                segments = segments[:-1]
            yield prefix + segments

    return [p for p in walk([], tree) if p]


def find_cycle(edges):
    state, path = {}, []

    def visit(node):
        state[node] = "open"; path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = "done"; path.pop()
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def check(name, src):
    crate = Crate(name, src)
    edges = crate.edges()
    count = sum(len(v) for v in edges.values())
    if count == 0:
        sys.exit(f"check_cycles: {name}: no module edges found (is {src} a crate?)")
    cycle = find_cycle(edges)
    if cycle:
        print(f"check_cycles: module cycle in {name}:\n  " + "\n  -> ".join(cycle))
        return False
    print(f"check_cycles: {name}: {len(crate.modules)} modules, {count} uses edges, no cycle")
    return True


PLANTED = [
    # (file in core/src, line added at its top, what the cycle goes through)
    ("algorithm.rs", "#[allow(unused_imports)] use crate::token::*;", "a use of crate::"),
    ("algorithm.rs", "pub const PLANTED: usize = crate::token::MAX_TOKEN_BYTES;",
     "a path written inline"),
    ("fast/lean.rs", "#[allow(unused_imports)] use super::scan::*;", "a use of super::"),
]


def self_test():
    """Each of PLANTED in a copy of the core crate must fail the check; the copy as it is must
    pass it."""
    import contextlib
    import io
    import shutil
    with tempfile.TemporaryDirectory() as tmp:
        copy = pathlib.Path(tmp) / "src"
        shutil.copytree(ROOT / "core" / "src", copy)
        if not check("electric_auth_core", copy):
            sys.exit("check_cycles self-test: the unchanged copy already has a cycle")
        for file, line, how in PLANTED:
            target = copy / file
            original = target.read_text()
            target.write_text(line + "\n" + original)
            with contextlib.redirect_stdout(io.StringIO()) as said:
                found = not check("electric_auth_core", copy)
            target.write_text(original)
            if not found:
                sys.exit(f"check_cycles self-test: a cycle planted in {file} through {how} "
                         "was not found")
            print(f"check_cycles self-test: found the cycle planted in {file} through {how}: "
                  + " -> ".join(l.strip().lstrip("-> ") for l in said.getvalue().splitlines()[1:]))


if __name__ == "__main__":
    args = sys.argv[1:]
    if args == ["--self-test"]:
        self_test()
        sys.exit(0)
    roots = [pathlib.Path(a) for a in args] or [ROOT / "core" / "src", ROOT / "src"]
    names = {str(ROOT / "core" / "src"): "electric_auth_core", str(ROOT / "src"): "electric_auth"}
    ok = all([check(names.get(str(r.resolve()), r.parent.name), r) for r in roots])
    sys.exit(0 if ok else 1)
