#!/usr/bin/env python3
"""`make demo` as a newcomer runs it: scripts/demo.sh from a checkout the `postgres` OS user
cannot enter, against the server of $PG_CONFIG (the extension already installed there).

Fails on any "Permission denied" (the tools must not start in a directory postgres cannot
enter), on any ERROR other than the four the demo shows on purpose, on a WARNING, FATAL or
PANIC, and when a statement's rows are not the expected ones (each user sees only their own,
no identity sees none, the kid picks the key, the rotation refuses the old kid). About 10 s.

    PG_CONFIG=/path/to/pg_config python3 tests/demo/test_demo.py
EA_DEMO_PORT and EA_DEMO_NAME choose the demo cluster's port and name (default 54330, ea-demo-check).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# The errors the demo provokes on purpose, in order.
EXPECTED_ERRORS = [
    "ERROR:  Expired token",
    'ERROR:  new row violates row-level security policy for table "notes"',
    "ERROR:  Invalid token signature",  # kid 2026-11 named, signed by the 2026-05 key
    "ERROR:  Invalid token signature",  # kid 2026-05 after the rotation removed its key
]


def table(*lines):
    return "\n".join(lines)


ALICE_ROWS = table(
    " id | owner_id |         body         ",
    "----+----------+----------------------",
    "  1 | alice    | alice: buy milk",
    "  2 | alice    | alice: call the bank",
    "(2 rows)",
)
ROWS = "SELECT id, owner_id, body FROM notes ORDER BY id;"

# (statement as echoed, what must follow it), in the order the demo runs them.
EXPECTED_RESULTS = [
    ("SELECT electric_auth.user_id($1) \\bind :alice_token \\g",
     table(" user_id ", "---------", " alice", "(1 row)")),
    ("SELECT electric_auth.user_id($1) \\bind :expired_token \\g", EXPECTED_ERRORS[0]),
    ("SELECT electric_auth.authenticate($1) \\bind :alice_token \\g",
     table(" authenticate ", "--------------", " alice", "(1 row)")),
    (ROWS, ALICE_ROWS),
    ("SELECT electric_auth.authenticate($1) \\bind :bob_token \\g",
     table(" authenticate ", "--------------", " bob", "(1 row)")),
    (ROWS, table(
        " id | owner_id |       body        ",
        "----+----------+-------------------",
        "  3 | bob      | bob: fix the bike",
        "(1 row)")),
    ("SELECT electric_auth.current_user_id();",
     table(" current_user_id ", "-----------------", " (null)", "(1 row)")),
    (ROWS, table(
        " id | owner_id | body ",
        "----+----------+------",
        "(0 rows)")),
    ("INSERT INTO notes (body) VALUES ('nobody: hello');", EXPECTED_ERRORS[1]),
    (ROWS, table(
        " id | owner_id |         body         ",
        "----+----------+----------------------",
        "  1 | alice    | alice: buy milk",
        "  2 | alice    | alice: call the bank",
        "  3 | bob      | bob: fix the bike",
        "(3 rows)")),
    ("SELECT electric_auth.user_id($1) AS kid_2026_05 \\bind :alice_token \\g",
     table(" kid_2026_05 ", "-------------", " alice", "(1 row)")),
    ("SELECT electric_auth.user_id($1) AS kid_2026_11 \\bind :alice_new_token \\g",
     table(" kid_2026_11 ", "-------------", " alice", "(1 row)")),
    ("SELECT electric_auth.user_id($1) \\bind :forged_kid_token \\g", EXPECTED_ERRORS[2]),
    ("SELECT electric_auth.user_id($1) \\bind :alice_token \\g", EXPECTED_ERRORS[3]),
    ("SELECT electric_auth.user_id($1) AS kid_2026_11 \\bind :alice_new_token \\g",
     table(" kid_2026_11 ", "-------------", " alice", "(1 row)")),
    ("SELECT electric_auth.authenticate($1) \\bind :alice_new_token \\g",
     table(" authenticate ", "--------------", " alice", "(1 row)")),
    (ROWS, ALICE_ROWS),
]


class Demo(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # A checkout of the demo's scripts in a directory only this user can enter (mkdtemp:
        # mode 0700), as in a clone under /root.
        cls.private = tempfile.mkdtemp(prefix="ea-demo-checkout-")
        checkout = Path(cls.private) / "electric_auth"
        shutil.copytree(REPO / "scripts", checkout / "scripts")
        # scripts/cluster.sh runs the test library's clusters.
        shutil.copytree(REPO / "tests/lib", checkout / "tests/lib",
                        ignore=shutil.ignore_patterns("node_modules", "__pycache__"))
        env = dict(os.environ)
        env.setdefault("EA_DEMO_PORT", "54330")
        env.setdefault("EA_DEMO_NAME", "ea-demo-check")
        run = subprocess.run(["bash", "scripts/demo.sh"], cwd=checkout, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             timeout=300)
        cls.rc, cls.output = run.returncode, run.stdout

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.private, ignore_errors=True)

    def fail_with_output(self, message):
        self.fail(f"{message}\n--- demo output ---\n{self.output}")

    def test_postgres_cannot_enter_the_checkout(self):
        # Otherwise this test would prove nothing about "Permission denied".
        if os.geteuid() != 0:
            self.skipTest("not root: cannot run a command as postgres to check")
        entered = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", self.private])
        self.assertNotEqual(entered.returncode, 0, f"postgres can enter {self.private}")

    def test_demo_succeeds(self):
        if self.rc != 0:
            self.fail_with_output(f"scripts/demo.sh exited with {self.rc}")

    def test_no_permission_noise(self):
        for needle in ("Permission denied", "could not change directory"):
            if needle in self.output:
                self.fail_with_output(f"the demo printed {needle!r}")

    def test_only_the_intended_errors(self):
        errors = [line for line in self.output.splitlines()
                  if any(level in line for level in ("ERROR:", "WARNING:", "FATAL:", "PANIC:"))]
        if errors != EXPECTED_ERRORS:
            self.fail_with_output(f"errors {errors}, expected {EXPECTED_ERRORS}")

    def test_each_statement_shows_the_expected_rows(self):
        position = 0
        for statement, result in EXPECTED_RESULTS:
            found = self.output.find(f"{statement}\n{result}\n", position)
            if found < 0:
                self.fail_with_output(
                    f"after offset {position}, expected\n{statement}\n{result}")
            position = found + len(statement)

    def test_tokens_and_keys_are_not_printed(self):
        # Tokens and JWKS documents reach psql as variables before echo starts.
        for needle in ("eyJ", '"kty"', "BEGIN PUBLIC KEY"):
            if needle in self.output:
                self.fail_with_output(f"the demo printed {needle!r}")


if __name__ == "__main__":
    sys.exit(0 if unittest.main(exit=False, verbosity=2).result.wasSuccessful() else 1)
