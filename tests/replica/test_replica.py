"""Read replicas: electric_auth on a physical streaming replica (hot standby).

Run by `make test` on every supported major (PG_CONFIG names the server). A primary with the
extension, a table, an RLS policy and a view is copied with pg_basebackup; the standby gets the
verification settings in its own postgresql.conf, as a team adding a replica would, and must
verify tokens read-only: no catalog writes, no temporary state. Tokens are minted by PyJWT.
"""

import pathlib
import sys
import time
import unittest

import psycopg

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
from electric_auth_test import main  # noqa: E402
from electric_auth_test.postgres import Cluster  # noqa: E402
from electric_auth_test.tokens import Minter  # noqa: E402

SECRET = "replica-secret-5b7e0c2d9a8f41e3b6d7c8a9f0e1d2c3"
SETTINGS = ("electric_auth.mode = 'secure'\n"
            "electric_auth.jwt_alg = 'HS256'\n"
            f"electric_auth.jwt_key = '{SECRET}'\n"
            "electric_auth.jwt_aud = 'replica-audience'\n")
mint = Minter(SECRET, aud="replica-audience")


class HotStandby(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # The primary has no electric_auth settings at all, and neither server preloads the
        # library: only the standby verifies here, configured in its own postgresql.conf.
        cls.primary = Cluster("ea-replica-primary", 54336, preload="", dbname="ea_replica")
        cls.replica = Cluster("ea-replica-standby", 54337, preload="", dbname="ea_replica")
        cls.primary.fresh()
        with cls.primary.connect(dbname="postgres") as su:
            su.execute("CREATE ROLE ea_reader LOGIN")
            su.execute("CREATE DATABASE ea_replica")
        with cls.primary.connect() as su:
            su.execute("CREATE EXTENSION electric_auth")
            su.execute("CREATE TABLE notes (owner_id text NOT NULL, body text NOT NULL)")
            su.execute("INSERT INTO notes VALUES ('alice', 'a1'), ('alice', 'a2'), ('bob', 'b1')")
            su.execute("ALTER TABLE notes ENABLE ROW LEVEL SECURITY")
            su.execute("CREATE POLICY own_notes ON notes USING "
                       "(owner_id = electric_auth.user_id(current_setting('app.token', true)))")
            su.execute("CREATE VIEW token_users AS SELECT electric_auth.user_id(t) AS uid "
                       "FROM (VALUES (current_setting('app.token', true))) v(t)")
            su.execute("GRANT SELECT ON notes, token_users TO ea_reader")
        cls.replica.create_standby_of(cls.primary, SETTINGS)
        cls.replica.start()

    @classmethod
    def tearDownClass(cls):
        cls.replica.stop()
        cls.primary.stop()

    def standby(self, user="ea_reader", **kwargs):
        return self.replica.connect(user=user, **kwargs)

    def test_the_standby_is_a_read_only_replica(self):
        with self.standby() as c:
            self.assertTrue(c.execute("SELECT pg_is_in_recovery()").fetchone()[0])
            with self.assertRaises(psycopg.errors.ReadOnlySqlTransaction):
                c.execute("CREATE TEMP TABLE t (x int)")

    def test_tokens_verify_on_the_standby(self):
        with self.standby() as c:
            uid = c.execute("SELECT electric_auth.user_id(%s)", (mint("alice"),)).fetchone()[0]
            self.assertEqual(uid, "alice")
            claims = c.execute("SELECT electric_auth.verify(%s)", (mint("bob"),)).fetchone()[0]
            self.assertEqual((claims["sub"], claims["aud"]), ("bob", "replica-audience"))

    def test_rejections_keep_their_sqlstate_on_the_standby(self):
        with self.standby() as c:
            for token, message in [
                (mint("mallory", key="not-the-replica-secret-0123456789"),
                 "Invalid token signature"),
                (mint("alice", aud="elsewhere"), 'Invalid "aud" claim value: "elsewhere"'),
                (mint("alice", exp=int(time.time()) - 60), "Expired token"),
            ]:
                with self.assertRaises(psycopg.errors.InvalidAuthorizationSpecification) as e:
                    c.execute("SELECT electric_auth.user_id(%s)", (token,))
                self.assertEqual(e.exception.diag.message_primary, message)

    def test_rls_policy_and_view_on_the_standby(self):
        with self.standby() as c:
            c.execute("SELECT set_config('app.token', %s, false)", (mint("alice"),))
            rows = c.execute("SELECT body FROM notes ORDER BY body").fetchall()
            self.assertEqual(rows, [("a1",), ("a2",)])
            self.assertEqual(c.execute("SELECT uid FROM token_users").fetchone()[0], "alice")
            c.execute("SELECT set_config('app.token', %s, false)", (mint("bob"),))
            self.assertEqual(c.execute("SELECT body FROM notes").fetchall(), [("b1",)])

    def test_the_key_lives_only_in_the_standbys_configuration(self):
        # The same token is refused on the primary, which has no key configured: the standby's
        # acceptance came from its own postgresql.conf.
        with self.primary.connect() as c:
            with self.assertRaises(psycopg.errors.InvalidParameterValue):
                c.execute("SELECT electric_auth.user_id(%s)", (mint("alice"),))


if __name__ == "__main__":
    main()
