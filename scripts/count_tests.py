#!/usr/bin/env python3
"""Counts the tests `make test` runs, by layer, in the working tree or at a git revision, and
with two revisions lists the tests of the first that the second no longer has (a test moved to
another file counts as the same test: it is named by class and method, or by function).

    python3 scripts/count_tests.py                 (the working tree)
    python3 scripts/count_tests.py f388ceb .       (two revisions, "." the working tree: counts,
                                                   and what the first has that the second lost)

Layers: the core's Rust tests (#[test] in core/), the #[pg_test]s (src/), pg_regress files
(tests/pg_regress/sql), and the Python suites' test methods (tests/**/test_*.py), each run on
every major (the upgrade and .deb tests on 15 only; the Citus suite is not in make test).
"""

import ast
import re
import subprocess
import sys
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Test classes renamed for what they test (issue 31): an old name counts as its new one.
RENAMED = {"RoundTwoTokens": "CritHeadersAndEncodings"}


def files(rev):
    """{path: text} of the tracked files that hold tests, at `rev` (None: the working tree)."""
    if rev is None:
        paths = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                               cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
        read = lambda p: (ROOT / p).read_text(errors="replace") if (ROOT / p).exists() else ""  # noqa: E731
    else:
        paths = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.split()
        read = lambda p: subprocess.run(["git", "show", f"{rev}:{p}"], cwd=ROOT,  # noqa: E731
                                        capture_output=True, text=True).stdout
    wanted = [p for p in paths if (p.endswith(".rs") and (p.startswith("core/") or p.startswith("src/")))
              or (p.startswith("tests/") and re.search(r"/test_[^/]*\.py$", p))
              or (p.startswith("tests/pg_regress/sql/") and p.endswith(".sql"))]
    return {p: read(p) for p in wanted}


def tests(rev):
    """{layer: set of test names}."""
    found = {"core #[test]": set(), "#[pg_test]": set(), "pg_regress": set(), "python": set()}
    for path, text in files(rev).items():
        if path.endswith(".rs"):
            layer = "core #[test]" if path.startswith("core/") else "#[pg_test]"
            attribute = "#[test]" if layer == "core #[test]" else "#[pg_test]"
            for m in re.finditer(re.escape(attribute) + r"\s*(?:#\[[^\]]*\]\s*)*(?:pub\s+)?fn\s+(\w+)",
                                 text):
                found[layer].add(m.group(1))
        elif path.endswith(".sql"):
            found["pg_regress"].add(pathlib.Path(path).stem)
        else:
            try:
                tree = ast.parse(text)
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    for item in node.body:
                        if isinstance(item, ast.FunctionDef) and item.name.startswith("test"):
                            name = RENAMED.get(node.name, node.name)
                            found["python"].add(f"{name}.{item.name}")
    return found


def main():
    # "." names the working tree.
    revs = [None if rev == "." else rev for rev in sys.argv[1:]] or [None]
    counted = [(rev or "working tree", tests(rev)) for rev in revs]
    for name, found in counted:
        total = sum(len(v) for v in found.values())
        print(f"{name}: " + ", ".join(f"{layer} {len(v)}" for layer, v in found.items())
              + f"; {total} in all")
    if len(counted) == 2:
        (a, before), (b, after) = counted
        gone = {layer: sorted(before[layer] - after[layer]) for layer in before}
        lost = sum(len(v) for v in gone.values())
        print(f"in {a}, not in {b}: {lost}")
        for layer, names in gone.items():
            for n in names:
                print(f"  {layer}: {n}")
        sys.exit(1 if lost else 0)


if __name__ == "__main__":
    main()
