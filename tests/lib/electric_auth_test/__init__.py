"""The test library every Python suite of electric_auth uses (and bench/bench.py):

- `postgres`: which server (PG_CONFIG, or `--major NN`), throwaway clusters run as the
  `postgres` OS user (initdb, start with options, stop, reload and wait for it to take effect,
  ALTER SYSTEM), psycopg connections and sessions that keep their notices, psql;
- `tokens`: tokens minted with PyJWT, with Python's own hmac (headers no library would write),
  and with node's `jsonwebtoken` and `jose`; the committed key fixtures;
- `logs`: searching a server log (or any text) for secrets, token fragments and crashes;
- `provider`: an identity provider on loopback (HTTPS with a CA made for the test, JWKS and
  discovery routes the test changes, RSA signing keys) for keys fetched by electric_auth.

A suite puts this folder on its path and imports what it needs:

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
    from electric_auth_test import main, postgres, tokens

Suites may run concurrently on different Postgres majors: a cluster's directories and port are
its own per major (see postgres.Cluster), and everything a suite writes lives under
$EA_TEST_TMP (default /tmp), so two checkouts can keep apart by setting it.
"""

import os
import pathlib
import sys
import time
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[3]


def scratch_dir(name):
    """$EA_TEST_TMP/NAME (default /tmp/NAME), for what a suite writes besides its clusters."""
    return pathlib.Path(os.environ.get("EA_TEST_TMP", "/tmp")) / name


def wait_until(predicate, timeout=15, what="condition"):
    """predicate()'s first true value, polled every 0.1 s; AssertionError after `timeout` s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def main():
    """A suite's entry point: `--major NN` (taken out of the arguments) selects the Postgres
    major, as PG_CONFIG does; then unittest runs the suite's tests."""
    from . import postgres  # here: postgres itself imports ROOT and scratch_dir from this module

    if "--major" in sys.argv:
        at = sys.argv.index("--major")
        os.environ["PG_CONFIG"] = postgres.pg_config_for(sys.argv[at + 1])
        del sys.argv[at:at + 2]
    print(f"Postgres {postgres.server_major()} ({postgres.pg_config()})", flush=True)
    unittest.main(verbosity=2)
