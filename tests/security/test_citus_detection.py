"""Citus is recognised by its library, not by a setting any role can create (hardening round 3,
item 12).

On a server without Citus, any role can `SET citus.propagate_set_commands = 'local'`: Postgres
makes it a placeholder. electric_auth once took a setting's existence for Citus being loaded,
so such a role switched `authenticate()` to its Citus path: the token went into an SPI
`SET LOCAL` statement (which `pg_stat_statements.track = all` keeps, verbatim, where the role
can read it) and the Citus warnings appeared. Here the identity must behave exactly as without
the placeholder.

Run by `make test-security` on every major (no Citus needed).
"""

from test_security import SECRET, Session, SecurityCase, mint
from electric_auth_test import main

PGSS = ("-c shared_preload_libraries=electric_auth,pg_stat_statements",
        "-c pg_stat_statements.track=all",
        "-c log_statement=all")


class CitusPlaceholder(SecurityCase):
    CLUSTER = ("ea-sec-citus-detect", 54391, True)
    SERVER_OPTIONS = (*PGSS, "-c electric_auth.session_scope=allow")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with cls.cluster.connect() as su:
            su.execute("CREATE EXTENSION pg_stat_statements")
            su.execute("GRANT pg_read_all_stats TO ea_app")

    def statements(self):
        with self.cluster.connect() as su:
            return [r[0] for r in su.execute("SELECT query FROM pg_stat_statements")]

    def identity(self, s):
        return s.execute("SELECT electric_auth.current_user_id()").fetchone()[0]

    def run_identity_flows(self, s, token):
        """The identity's lifetimes, as the spec gives them without Citus."""
        s.execute("BEGIN")
        self.assertEqual(s.call("authenticate", "%s", token), ("ok", "alice"))
        self.assertEqual(self.identity(s), "alice")
        s.execute("COMMIT")
        self.assertIsNone(self.identity(s))
        # Outside a transaction block, a transaction-scope identity ends with its statement.
        self.assertEqual(s.call("authenticate", "%s", token), ("ok", "alice"))
        self.assertIsNone(self.identity(s))
        self.assertEqual(s.call("authenticate", "%s, 'session'", token), ("ok", "alice"))
        self.assertEqual(self.identity(s), "alice")
        s.execute("BEGIN")
        self.assertEqual(s.call("logout", ""), ("ok", ""))
        self.assertIsNone(self.identity(s))
        s.execute("ROLLBACK")
        self.assertEqual(self.identity(s), "alice")
        self.assertEqual(s.call("logout", ""), ("ok", ""))
        self.assertIsNone(self.identity(s))

    def test_a_placeholder_does_not_switch_authenticate_to_the_citus_path(self):
        for value in ("local", "none"):
            with self.subTest(value=value):
                s = Session(self.cluster)
                try:
                    s.execute(f"SET citus.propagate_set_commands = '{value}'")
                    self.assertEqual(s.execute("SHOW citus.propagate_set_commands").fetchone()[0],
                                     value)
                    token = mint(jti=f"placeholder-{value}")
                    self.run_identity_flows(s, token)
                    # No Citus warning: the session scope is not "lost to the workers", the
                    # propagation setting is not complained about.
                    self.assertEqual([n.message_primary for n in s.notices], [])
                    # The token never went into a statement: pg_stat_statements (track = all
                    # keeps SPI statements, utility ones verbatim) holds no part of it.
                    signature = token.rsplit(".", 1)[1]
                    leaked = [q for q in self.statements() if signature in q
                              or "identity_token" in q]
                    self.assertEqual(leaked, [])
                    self.assert_no_secret_in(s.texts())
                finally:
                    s.close()

    def test_the_placeholder_cannot_be_made_citus_by_a_role_or_database_setting(self):
        # Stored settings become placeholders too at connection start.
        with self.cluster.connect() as su:
            su.execute("ALTER ROLE ea_app SET citus.propagate_set_commands = 'local'")
        try:
            s = Session(self.cluster)
            try:
                self.assertEqual(s.execute("SHOW citus.propagate_set_commands").fetchone()[0],
                                 "local")
                token = mint(jti="stored-placeholder")
                self.run_identity_flows(s, token)
                self.assertEqual([n.message_primary for n in s.notices], [])
                signature = token.rsplit(".", 1)[1]
                self.assertEqual([q for q in self.statements() if signature in q], [])
            finally:
                s.close()
        finally:
            with self.cluster.connect() as su:
                su.execute("ALTER ROLE ea_app RESET citus.propagate_set_commands")

    def test_the_log_holds_no_statement_with_the_carrier(self):
        s = Session(self.cluster)
        try:
            s.execute("SET citus.propagate_set_commands = 'local'")
            s.execute("BEGIN")
            self.assertEqual(s.call("authenticate", "%s", mint(jti="log"))[0], "ok")
            s.execute("COMMIT")
        finally:
            s.close()
        self.assertNotIn("SET LOCAL electric_auth.identity_token", self.cluster.log())
        self.assertNotIn(SECRET, self.cluster.log())


if __name__ == "__main__":
    main()
