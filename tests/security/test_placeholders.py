"""Settings named before the library loads (no shared_preload_libraries), on real clusters of
the server $PG_CONFIG names (run by scripts/test_all.py and scripts/test_major.sh on every major):

- a superuser's session value of an `electric_auth.*` setting made before the library loaded,
  then reset by the caller (RESET ALL), makes the session refuse to verify;
- a setting the configuration files set and a reload dropped leaves a valueless placeholder in
  every new backend, which must not make sessions refuse (it is no session's lost value).
"""

import psycopg

from test_security import (REJECTED, SecurityCase, Session, mint)
from electric_auth_test import main


class ResetBeforeTheLibraryLoads(SecurityCase):
    """Without preload: a superuser's SECURITY DEFINER function sets a stricter audience with
    set_config before the library is loaded in the session (a placeholder); the caller's RESET
    ALL drops a placeholder, as it would not drop the defined (GUC_NO_RESET_ALL) setting."""

    CLUSTER = ("ea-sec-lazyreset", 54363, False)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with cls.cluster.connect() as su:
            su.execute("CREATE FUNCTION public.require_namespace() RETURNS text "
                       "LANGUAGE sql SECURITY DEFINER "
                       "RETURN set_config('electric_auth.jwt_namespace', 'definer-ns', false)")
            su.execute("GRANT EXECUTE ON FUNCTION public.require_namespace() TO ea_app")

    def test_a_reset_placeholder_makes_the_session_refuse(self):
        for reset in ("RESET ALL", "DISCARD ALL"):
            with self.subTest(reset=reset):
                s = Session(self.cluster)
                try:
                    defined = s.execute("SELECT count(*) FROM pg_settings "
                                        "WHERE name = 'electric_auth.jwt_namespace'")
                    self.assertEqual(defined.fetchone()[0], 0, "the library is not loaded yet")
                    s.execute("SELECT public.require_namespace()")
                    s.execute(reset)
                    # A token without the namespace would pass if the setting had been dropped.
                    status, message = s.user_id(mint())
                    self.assertEqual(status, "42501", message)
                    self.assertIn("electric_auth.jwt_namespace", message)
                    self.assertEqual(s.user_id(mint(claims={"definer-ns": {"sub": "alice"}}))[0],
                                     "42501")
                finally:
                    s.close()

    def test_a_refused_set_over_the_definers_value_makes_the_session_refuse(self):
        # The caller overwrites the definer's session value before the library loads; its own
        # value is refused when the library loads, and nothing is left of either.
        s = Session(self.cluster)
        try:
            s.execute("SELECT public.require_namespace()")
            s.execute("SET electric_auth.jwt_namespace = ''")
            status, message = s.user_id(mint())
            self.assertEqual(status, "42501", message)
            self.assertIn("electric_auth.jwt_namespace", message)
        finally:
            s.close()

    def test_a_connection_option_in_any_spelling_cannot_drop_a_database_setting(self):
        # The database requires a namespace (postgresql.conf sets none). A refused connection
        # option displaces that value for the session; Postgres keeps the option's spelling as
        # the placeholder's name, so the check must not depend on letter case.
        with self.cluster.connect(dbname="postgres") as su:
            su.execute("CREATE DATABASE ea_mixed")
            su.execute("ALTER DATABASE ea_mixed SET electric_auth.jwt_namespace = 'db-ns'")
        with self.cluster.connect(dbname="ea_mixed") as su:
            su.execute("CREATE EXTENSION electric_auth")
        for name in ("electric_auth.jwt_namespace", "Electric_Auth.Jwt_Namespace",
                     "ELECTRIC_AUTH.JWT_NAMESPACE"):
            with self.subTest(name=name):
                s = Session(self.cluster, dbname="ea_mixed", options=f"-c {name}=")
                try:
                    status, message = s.user_id(mint())
                    self.assertEqual(status, "42501", message)
                    self.assertIn("electric_auth.jwt_namespace", message)
                finally:
                    s.close()
        s = Session(self.cluster, dbname="ea_mixed")
        try:
            self.assertEqual(s.user_id(mint(claims={"db-ns": {"sub": "bob"}})), ("ok", "bob"))
        finally:
            s.close()

    def test_without_a_reset_the_definers_value_holds(self):
        s = Session(self.cluster)
        try:
            s.execute("SELECT public.require_namespace()")
            self.assertEqual(s.user_id(mint(claims={"definer-ns": {"sub": "bob"}})), ("ok", "bob"))
            self.assertEqual(s.user_id(mint())[0], REJECTED)
        finally:
            s.close()


class ReloadThatDropsASetting(SecurityCase):
    """Without preload: a setting the configuration files set and a reload then dropped
    (`ALTER SYSTEM RESET`, a line removed from postgresql.conf) leaves a valueless placeholder
    in the postmaster, which every new backend inherits. It is no session's lost value: 0.3.0
    took it for one and refused every token in every new session until a restart. The
    placeholder a session resets is still caught (ResetBeforeTheLibraryLoads)."""

    CLUSTER = ("ea-sec-reload-drop", 54365, False)

    def reload_with(self, change):
        before = self.cluster.reload_time()
        change()
        with self.cluster.connect() as su:
            su.execute("SELECT pg_reload_conf()")
        self.cluster.wait_for_reload(before)

    def alter_system(self, sql):
        with self.cluster.connect() as su:
            su.execute("LOAD 'electric_auth'")
            su.execute(sql)

    def test_a_setting_dropped_by_a_reload_does_not_refuse_new_sessions(self):
        conf = self.cluster.data / "postgresql.conf"
        routes = {
            "ALTER SYSTEM RESET": (
                lambda: self.alter_system("ALTER SYSTEM SET electric_auth.clock_drift = 7"),
                lambda: self.alter_system("ALTER SYSTEM RESET electric_auth.clock_drift")),
            "a line removed from postgresql.conf": (
                lambda: self.cluster.append_conf("electric_auth.jwt_namespace = ''"),
                lambda: conf.write_text(conf.read_text().replace(
                    "electric_auth.jwt_namespace = ''\n", ""))),
        }
        for route, (add, drop) in routes.items():
            with self.subTest(route=route):
                self.reload_with(add)
                self.reload_with(drop)
                s = Session(self.cluster)  # a new backend: it inherits the postmaster's table
                try:
                    self.assert_verification_unchanged(s)
                finally:
                    s.close()

if __name__ == "__main__":
    main()
