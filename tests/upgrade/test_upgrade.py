"""Upgrading in place: 0.1.0, built from its git tag, with objects that depend on it, is
replaced by this version's build and `ALTER EXTENSION electric_auth UPDATE` runs the upgrade
scripts in sql/. The dependent objects must keep working, and the upgraded catalog must equal a
fresh install of this version: every member object, and each function's signature, result,
volatility, strictness, parallel safety, security and grants.

Run by `make test-upgrade` on Debian's Postgres 15 (0.1.0 supported nothing else). The old
source comes from scripts/release_source.sh (the tag v0.1.0, or in a clone without tags the
commit it names); it builds in a target directory of its own (target/release-0.1.0, shared with
`make bench`'s baseline): in this checkout's, cargo would hand pgrx the library last built there
(for another major, or this version) when the old crates are already fresh.
"""

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
from electric_auth_test import ROOT, main  # noqa: E402
from electric_auth_test.postgres import Cluster  # noqa: E402
from electric_auth_test.tokens import Minter  # noqa: E402

OLD_VERSION = "0.1.0"
PG_CONFIG = "/usr/bin/pg_config"
SECRET = "upgrade-secret-1f2e3d4c5b6a79881726354453627180"
CONF = ("electric_auth.mode = 'secure'\n"
        "electric_auth.jwt_alg = 'HS256'\n"
        f"electric_auth.jwt_key = '{SECRET}'\n")
mint = Minter(SECRET)

# The extension's member objects and, for functions, everything a caller depends on; for views
# (electric_auth.stats) their grants and definition.
CATALOG = """
SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS member,
       coalesce(p.oid::regprocedure::text, '') AS signature,
       coalesce(pg_get_function_result(p.oid), '') AS result,
       coalesce(p.provolatile::text, '') AS volatility,
       coalesce(p.proisstrict::text, '') AS strict,
       coalesce(p.proparallel::text, '') AS parallel,
       coalesce(p.prosecdef::text, '') AS security_definer,
       coalesce(p.proacl::text, c.relacl::text, '') AS grants,
       coalesce(p.proconfig::text, pg_get_viewdef(c.oid), '') AS config
  FROM pg_depend d
  JOIN pg_extension e ON e.oid = d.refobjid AND d.refclassid = 'pg_extension'::regclass
  LEFT JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
  LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
 WHERE e.extname = 'electric_auth' AND d.deptype = 'e'
UNION ALL
SELECT 'schema grants', '', '', '', '', '', '', coalesce(nspacl::text, ''), ''
  FROM pg_namespace WHERE nspname = 'electric_auth'
ORDER BY 1, 2
"""


def run(*args, **kwargs):
    return subprocess.run([str(a) for a in args], check=True, **kwargs)


def install(source_dir, target_dir=ROOT / "target"):
    """`cargo pgrx install` of the tree at source_dir into Debian's Postgres 15."""
    env = dict(os.environ, CARGO_TARGET_DIR=str(target_dir))
    run("cargo", "pgrx", "install", "--pg-config", PG_CONFIG, cwd=source_dir, env=env,
        stdout=subprocess.DEVNULL)


def old_source(into):
    run("bash", "scripts/release_source.sh", OLD_VERSION, into, cwd=ROOT)


def version_under_test():
    control = (ROOT / "Cargo.toml").read_text()
    return next(line.split('"')[1] for line in control.splitlines()
                if line.startswith("version = "))


class UpgradeFromOldRelease(unittest.TestCase):
    def setUp(self):
        self.src = tempfile.mkdtemp(prefix="ea-0.1.0-")
        # No preload: the library file is replaced while the server is down, never under a
        # running backend.
        self.cluster = Cluster("ea-upgrade", 54338, preload="", config=PG_CONFIG)

    def tearDown(self):
        self.cluster.stop()
        shutil.rmtree(self.src, ignore_errors=True)
        # Leave this version installed, as the other layers expect.
        install(ROOT)

    def assert_dependents_work(self, c):
        c.execute("SELECT set_config('app.token', %s, false)", (mint("alice"),))
        c.execute("INSERT INTO todos (title, token) VALUES ('t', %s)", (mint("alice"),))
        self.assertEqual(
            c.execute("SELECT owner_id, token FROM todos ORDER BY id DESC LIMIT 1").fetchone(),
            ("alice", None))
        c.execute("SET ROLE ea_reader")
        self.assertEqual(c.execute("SELECT body FROM notes ORDER BY body").fetchall(),
                         [("a1",), ("a2",)])
        self.assertEqual(c.execute("SELECT uid FROM session_user_id").fetchone()[0], "alice")
        c.execute("RESET ROLE")

    def assert_session_identity_works(self, c):
        """0.3.0's functions, added by the upgrade script, under an RLS policy."""
        c.execute("""CREATE POLICY notes_identity ON notes AS RESTRICTIVE
                       USING (owner_id = electric_auth.current_user_id())""")
        c.execute("SET ROLE ea_reader")
        with c.transaction():
            self.assertEqual(c.execute("SELECT electric_auth.authenticate(%s)",
                                       (mint("alice"),)).fetchone()[0], "alice")
            self.assertEqual(c.execute("SELECT body FROM notes ORDER BY body").fetchall(),
                             [("a1",), ("a2",)])
            self.assertEqual(c.execute("SELECT electric_auth.current_claims()->>'sub'")
                             .fetchone()[0], "alice")
        self.assertIsNone(c.execute("SELECT electric_auth.current_user_id()").fetchone()[0])
        self.assertEqual(c.execute("SELECT count(*) FROM notes").fetchone()[0], 0)
        c.execute("RESET ROLE")
        c.execute("DROP POLICY notes_identity ON notes")

    def test_alter_extension_update_from_0_1_0(self):
        new_version = version_under_test()
        self.assertNotEqual(new_version, OLD_VERSION)
        old_source(self.src)
        self.assertIn(f'version = "{OLD_VERSION}"', (pathlib.Path(self.src) / "Cargo.toml").read_text())
        install(self.src, ROOT / "target/release-0.1.0")
        script = pathlib.Path(f"/usr/share/postgresql/15/extension/electric_auth--{OLD_VERSION}.sql")
        self.assertTrue(script.exists(), "0.1.0's install script is in place")

        # The old release, with the objects the README shows depending on it.
        self.cluster.fresh(CONF)
        with self.cluster.connect() as su:
            su.execute("CREATE DATABASE upgraded")
            su.execute("CREATE DATABASE fresh")
            su.execute("CREATE ROLE ea_reader")
        with self.cluster.connect(dbname="upgraded") as c:
            c.execute("CREATE EXTENSION electric_auth")
            self.assertEqual(c.execute("SELECT extversion FROM pg_extension "
                                       "WHERE extname = 'electric_auth'").fetchone()[0],
                             OLD_VERSION)
            c.execute("""
                CREATE TABLE todos (id serial PRIMARY KEY, title text, owner_id text, token text);
                CREATE FUNCTION stamp_owner() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                  NEW.owner_id := electric_auth.user_id(NEW.token);
                  NEW.token := NULL;
                  RETURN NEW;
                END $$;
                CREATE TRIGGER todos_stamp_owner BEFORE INSERT OR UPDATE ON todos
                  FOR EACH ROW EXECUTE FUNCTION stamp_owner();
                CREATE TABLE notes (owner_id text, body text);
                INSERT INTO notes VALUES ('alice', 'a1'), ('alice', 'a2'), ('bob', 'b1');
                ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
                CREATE POLICY notes_owner ON notes
                  USING (owner_id = electric_auth.user_id(current_setting('app.token', true)));
                CREATE VIEW session_user_id AS
                  SELECT electric_auth.user_id(current_setting('app.token', true)) AS uid;
                GRANT SELECT ON notes, session_user_id TO ea_reader;
            """)
            self.assert_dependents_work(c)
        self.cluster.stop()

        install(ROOT)
        self.cluster.start()
        with self.cluster.connect(dbname="upgraded") as c:
            # Along the chain: to 0.3.0 (electric_auth.stats appears), a grant on the view,
            # then to the version under test, which recreates the view with its new `issuer`
            # column and must keep that grant.
            c.execute("ALTER EXTENSION electric_auth UPDATE TO '0.3.0'")
            c.execute("GRANT SELECT ON electric_auth.stats TO ea_reader")
            c.execute("ALTER EXTENSION electric_auth UPDATE")
            self.assertEqual(c.execute("SELECT extversion FROM pg_extension "
                                       "WHERE extname = 'electric_auth'").fetchone()[0],
                             new_version)
            self.assertTrue(c.execute("SELECT has_table_privilege('ea_reader', "
                                      "'electric_auth.stats', 'SELECT')").fetchone()[0],
                            "the upgrade keeps a grant on electric_auth.stats")
            self.assertIn("issuer", [row[0] for row in c.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = 'electric_auth.stats'::regclass "
                "AND attnum > 0").fetchall()])
            self.assertIn("issuer", [row[0] for row in c.execute(
                "SELECT unnest(proargnames) FROM pg_proc "
                "WHERE oid = 'electric_auth.key_source()'::regprocedure").fetchall()])
            c.execute("REVOKE SELECT ON electric_auth.stats FROM ea_reader")
            # Revocation's objects (issue 33): the role, the view and logout(revoke).
            self.assertTrue(c.execute("SELECT count(*) = 1 FROM pg_roles "
                                      "WHERE rolname = 'electric_auth_revoker'").fetchone()[0])
            self.assertEqual(c.execute("SELECT 'electric_auth.logout(boolean)'::regprocedure::text")
                             .fetchone()[0], "electric_auth.logout(boolean)")
            self.assertFalse(c.execute("SELECT has_table_privilege('ea_reader', "
                                       "'electric_auth.revocations', 'SELECT')").fetchone()[0])
            self.assert_dependents_work(c)
            self.assert_session_identity_works(c)
            upgraded = c.execute(CATALOG).fetchall()
        with self.cluster.connect(dbname="fresh") as c:
            c.execute("CREATE EXTENSION electric_auth")
            fresh = c.execute(CATALOG).fetchall()
        self.assertGreaterEqual(len(fresh), 3, "the catalog query sees the extension's objects")
        self.assertIn("view electric_auth.stats", [row[0] for row in fresh])
        self.assertEqual(upgraded, fresh)


if __name__ == "__main__":
    main()
