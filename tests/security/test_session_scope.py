"""The session identity's scope and lifetime, on real clusters of the server $PG_CONFIG names
(run by scripts/test_all.py and scripts/test_major.sh on every major; tokens minted by PyJWT):

- `electric_auth.session_scope` (default `refuse`): a session-scope identity, which would
  outlive its client behind a transaction pooler, is refused unless a superuser allows it; no
  unprivileged role can allow it.
- A function's `SET electric_auth.*` clause: the identity is verified under the settings in
  force each time they change, in the leader and in parallel workers alike, so the answer never
  depends on the plan, and it is never dropped for good.
- Expiry by the clock: neither one long statement nor a procedure that COMMITs acts past
  `exp` + drift.
"""

import time

import psycopg

from test_security import (SecurityCase, Session, force_parallel_plans, mint, now, owned_docs,
                           plan)
from electric_auth_test import main


class SessionScope(SecurityCase):
    CLUSTER = ("ea-sec-scope", 54360, True)

    def test_session_scope_is_refused_by_default(self):
        s = Session(self.cluster)
        try:
            self.assertEqual(s.execute("SHOW electric_auth.session_scope").fetchone()[0],
                             "refuse")
            status, message = s.call("authenticate", "%s, 'session'", mint())
            self.assertEqual(status, "42501")
            self.assertEqual(message, "session-scope identities are refused here "
                                      "(electric_auth.session_scope = refuse)")
            self.assertIsNone(s.execute("SELECT electric_auth.current_user_id()").fetchone()[0])
            # The transaction scope is unaffected.
            s.execute("BEGIN")
            self.assertEqual(s.call("authenticate", "%s", mint()), ("ok", "alice"))
            s.execute("COMMIT")
        finally:
            s.close()

    def test_no_unprivileged_route_allows_it(self):
        s = Session(self.cluster)
        try:
            for sql in ("SET electric_auth.session_scope = allow",
                        "SELECT set_config('electric_auth.session_scope', 'allow', false)",
                        "ALTER ROLE ea_app SET electric_auth.session_scope = allow"):
                with self.subTest(sql=sql):
                    with self.assertRaises(psycopg.errors.InsufficientPrivilege):
                        s.execute(sql)
            self.assertEqual(s.call("authenticate", "%s, 'session'", mint())[0], "42501")
        finally:
            s.close()
        owner = Session(self.cluster, dbname="ea_owned")
        try:
            with self.assertRaises(psycopg.errors.InsufficientPrivilege):
                owner.execute("ALTER DATABASE ea_owned SET electric_auth.session_scope = allow")
        finally:
            owner.close()

    def test_a_superuser_allows_it_where_a_connection_belongs_to_one_client(self):
        self.cluster.alter_system("electric_auth.session_scope", "allow")
        try:
            s = Session(self.cluster)
            try:
                self.assertEqual(s.call("authenticate", "%s, 'session'", mint()),
                                 ("ok", "alice"))
                self.assertEqual(
                    s.execute("SELECT electric_auth.current_user_id()").fetchone()[0], "alice")
            finally:
                s.close()
        finally:
            self.cluster.alter_system("electric_auth.session_scope", None)


class FunctionSettings(SecurityCase):
    CLUSTER = ("ea-sec-fnset", 54361, True)
    SERVER_OPTIONS = ("-c electric_auth.session_scope=allow",)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.alices_rows = owned_docs(cls.cluster)
        with cls.cluster.connect() as su:
            # A superuser's function that checks tokens for another audience.
            su.execute("CREATE FUNCTION public.for_other_audience() RETURNS text "
                       "LANGUAGE sql SECURITY DEFINER "
                       "SET electric_auth.jwt_aud = 'other-audience' "
                       "RETURN electric_auth.current_user_id()")
            su.execute("CREATE FUNCTION public.noop_other_audience() RETURNS int "
                       "LANGUAGE sql SECURITY DEFINER "
                       "SET electric_auth.jwt_aud = 'other-audience' RETURN 1")
            su.execute("GRANT EXECUTE ON FUNCTION public.for_other_audience(), "
                       "public.noop_other_audience() TO ea_app")

    def test_a_function_set_clause_never_drops_the_callers_identity(self):
        query = "SELECT electric_auth.current_user_id(), count(*) FROM public.docs"
        for scope in ("transaction", "session"):
            with self.subTest(scope=scope):
                s = Session(self.cluster)
                try:
                    s.execute("BEGIN")
                    s.execute("SELECT electric_auth.authenticate(%s, %s)", mint(), scope)
                    # Inside the function the token does not verify: it says why.
                    s.execute("SAVEPOINT inside")
                    with self.assertRaises(psycopg.errors.InvalidAuthorizationSpecification) as e:
                        s.execute("SELECT public.for_other_audience()")
                    self.assertEqual(e.exception.diag.message_primary,
                                     'Invalid "aud" claim value: "ea-audience"')
                    s.execute("ROLLBACK TO SAVEPOINT inside")
                    # A function that only changes the settings for a moment.
                    s.execute("SELECT public.noop_other_audience()")
                    # Back under the caller's settings: the same identity, whatever the plan.
                    self.assertEqual(s.execute(query).fetchone(), ("alice", self.alices_rows))
                    force_parallel_plans(s)
                    s.execute("SET LOCAL parallel_setup_cost = 0")
                    s.execute("SET LOCAL parallel_tuple_cost = 0")
                    self.assertIn("Gather", plan(s, query))
                    self.assertEqual(s.execute(query).fetchone(), ("alice", self.alices_rows))
                    s.execute("COMMIT")
                finally:
                    s.close()


class ExpiryByTheClock(SecurityCase):
    CLUSTER = ("ea-sec-clock", 54362, True)
    SERVER_OPTIONS = ("-c electric_auth.session_scope=allow",)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with cls.cluster.connect() as su:
            su.execute("CREATE TABLE public.writes (owner_id text NOT NULL, at float8 NOT NULL)")
            su.execute("GRANT INSERT, SELECT ON public.writes TO ea_app")
            su.execute("""
                CREATE PROCEDURE public.write_every_second(n int) LANGUAGE plpgsql AS $$
                BEGIN
                  FOR i IN 1..n LOOP
                    INSERT INTO public.writes
                      VALUES (electric_auth.current_user_id(),
                              extract(epoch FROM clock_timestamp()));
                    COMMIT;
                    PERFORM pg_sleep(1);
                  END LOOP;
                END $$""")
            su.execute("GRANT EXECUTE ON PROCEDURE public.write_every_second(int) TO ea_app")

    def test_a_long_statement_stops_at_expiry(self):
        s = Session(self.cluster)
        try:
            exp = now() + 2  # clock_drift 2: the identity lapses after exp + 2
            s.execute("BEGIN")
            s.execute("SELECT electric_auth.authenticate(%s)", mint(exp=exp))
            started = time.time()
            with self.assertRaises(psycopg.errors.InvalidAuthorizationSpecification) as e:
                # Per row: the identity, then a second's sleep (volatile: never folded).
                s.execute("SELECT string_agg(electric_auth.current_user_id() "
                          "|| pg_sleep(1)::text, ',') FROM generate_series(1, 10)")
            self.assertEqual(e.exception.diag.message_primary, "Expired token")
            self.assertLess(time.time() - started, 9, "stopped at expiry, not at the end")
            self.assertLessEqual(time.time(), exp + 2 + 2.5)
            s.execute("ROLLBACK")
        finally:
            s.close()

    def test_a_procedure_that_commits_stops_at_expiry(self):
        s = Session(self.cluster)
        try:
            exp = now() + 2
            s.execute("SELECT electric_auth.authenticate(%s, 'session')", mint(exp=exp))
            with self.assertRaises(psycopg.errors.InvalidAuthorizationSpecification) as e:
                s.execute("CALL public.write_every_second(10)")
            self.assertEqual(e.exception.diag.message_primary, "Expired token")
            s.execute("SELECT electric_auth.logout()")
            with self.cluster.connect() as su:
                writes = su.execute("SELECT count(*), max(at) FROM public.writes").fetchone()
            self.assertGreater(writes[0], 0)
            self.assertLess(writes[0], 10)
            self.assertLessEqual(writes[1], exp + 2 + 1, "nothing written past exp + drift")
        finally:
            s.close()



if __name__ == "__main__":
    main()
