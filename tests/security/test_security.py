"""Security guarantees of electric_auth, proved against real clusters of the server $PG_CONFIG
names (scripts/test_major.sh runs every tests/security/test_*.py on each major; alone:
`python3 tests/security/test_security.py --major 16`).

Every check runs on a throwaway cluster logging at `log_min_messages = debug5`; the server log
is searched afterwards for the secrets and for crashed backends. Tokens are minted by PyJWT (an
independent JWT library); the few a real library refuses to produce (an HS256 token keyed with
a PEM, a lowercase or duplicated `alg`) are built by hand with Python's own `hmac`. Clusters,
sessions, minting and the log search come from tests/lib (electric_auth_test); what the
security suites share beyond it (the secrets, SecurityCase) is here.

The verification settings are configured the way the README recommends: in postgresql.conf,
by the superuser. `ea_app` is an ordinary login role that owns a database of its own.
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import time
import unittest

import jwt
import psycopg

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
from electric_auth_test import ROOT, logs, main, postgres  # noqa: E402
from electric_auth_test.postgres import Cluster, psql_with_bind  # noqa: E402
from electric_auth_test.tokens import Minter, b64url, fixture, hand_signed, now  # noqa: E402

FIXTURES = fixture("interop")
RSA_PUBLIC_PEM = FIXTURES["keys"]["RSA"]["public_spki"]
P256_PUBLIC_PEM = FIXTURES["keys"]["P-256"]["public_spki"]
# A line of the private key's base64 body: it must reach no message and no log line.
P256_PRIVATE_PEM_BODY = FIXTURES["keys"]["P-256"]["private_pkcs8"].splitlines()[1]

# Each secret is distinctive so that the log search cannot match anything else.
SECRET = "conf-secret-3c1f9a0b7e5d42e8a6b1c0d9f8e7a6b5"  # postgresql.conf
ROTATED = "rotated-secret-9d8c7b6a5f4e3d2c1b0a99887766"  # ALTER SYSTEM, during rotation
ROLE_SECRET = "role-secret-1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c"  # ALTER ROLE ... SET (leaks)
ATTACKER = "attacker-secret-0f1e2d3c4b5a69788796a5b4c3d2"  # what a forger would use
# Keys typed into statements that fail or are logged (round 2): none may reach the log, even
# truncated (the log search looks for a distinctive prefix of every secret).
TYPED_SECRETS = {
    "in_transaction": "typed-in-txn-5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b",
    "misspelt": "typed-misspelt-8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d",
    "duration": "typed-duration-2f3e4d5c6b7a8f9e0d1c2b3a4f5e6d7c",
    "role": "typed-role-set-6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f",
    "bind": "typed-bind-param-0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d",
    "latin1": "typed-latin1-7f3e9c2a\u00e9-1b2c3d4e5f6a7b8c9d0e1f",
}
ALL_SECRETS = (SECRET, ROTATED, ROLE_SECRET, *TYPED_SECRETS.values())
# The log search looks for this many leading characters of each secret, so that a truncated
# copy (log_parameter_max_length) is found too; each prefix is distinctive.
LOG_SEARCH_PREFIX = logs.SEARCH_PREFIX

ISS, AUD = "ea-issuer", "ea-audience"  # configured in postgresql.conf with the key

SETTINGS = {
    # setting: a value that would weaken verification if an unprivileged role could set it
    "electric_auth.mode": "insecure",
    "electric_auth.jwt_alg": "HS384",
    "electric_auth.jwt_key": ATTACKER,
    "electric_auth.jwt_key_is_base64": "on",
    "electric_auth.jwt_namespace": "elsewhere",
    "electric_auth.jwt_iss": "",  # empty: iss no longer checked
    "electric_auth.jwt_aud": "",
    "electric_auth.clock_drift": "3600",
}

# Tokens the configuration accepts: alice, valid for an hour, unless the call says otherwise.
mint = Minter(SECRET, iss=ISS, aud=AUD)
valid_claims = mint.claims
# PyJWT's JWS layer signing arbitrary payload bytes (hostile JSON a dict cannot express).
mint_raw = mint.raw


def valid_payload(**extra) -> bytes:
    return json.dumps(valid_claims(**extra)).encode()


class SecurityCluster(Cluster):
    """A throwaway cluster logging at debug5, configured as the README recommends: in
    postgresql.conf, by the superuser, before the server starts (a reload would make the
    postmaster log each changed value). `ea_app` is an ordinary login role that owns a
    database of its own (ea_owned); ea_sec is the database connect() opens."""

    def __init__(self, name, port, preload, options=()):
        super().__init__(name, port, preload="electric_auth" if preload else "",
                         options=("-c log_min_messages=debug5", *options), dbname="ea_sec")

    def start_configured(self):
        self.fresh("electric_auth.mode = 'secure'\n"
                   "electric_auth.jwt_alg = 'HS256'\n"
                   f"electric_auth.jwt_key = '{SECRET}'\n"
                   f"electric_auth.jwt_iss = '{ISS}'\n"
                   f"electric_auth.jwt_aud = '{AUD}'")
        with self.connect(dbname="postgres") as su:
            su.execute("CREATE ROLE ea_app LOGIN")
            su.execute("CREATE ROLE ea_catalog LOGIN")
            su.execute("CREATE DATABASE ea_sec")
            su.execute("CREATE DATABASE ea_owned OWNER ea_app")
        for db in ("ea_sec", "ea_owned"):
            with self.connect(dbname=db) as su:
                su.execute("CREATE EXTENSION electric_auth")


class Session(postgres.Session):
    """A session of ea_app (unless told), keeping every notice and error it received."""

    def __init__(self, cluster, user="ea_app", **kwargs):
        super().__init__(cluster, user=user, **kwargs)


REJECTED = "28000"


def owned_docs(cluster, columns="owner_id text NOT NULL, body text",
               rows="SELECT CASE WHEN n % 4 = 0 THEN 'alice' ELSE 'user-' || (n % 50) END, "
                    "'doc ' || n FROM generate_series(1, 20000) n"):
    """Creates public.docs (`columns`, filled by `rows`) behind a policy on
    electric_auth.current_user_id(), readable by ea_app; returns how many rows are alice's."""
    with cluster.connect() as su:
        su.execute(f"CREATE TABLE public.docs ({columns})")
        su.execute(f"INSERT INTO public.docs {rows}")
        su.execute("ALTER TABLE public.docs ENABLE ROW LEVEL SECURITY")
        su.execute("CREATE POLICY docs_owner ON public.docs "
                   "USING (owner_id = electric_auth.current_user_id())")
        su.execute("ANALYZE public.docs")
        su.execute("GRANT SELECT ON public.docs TO ea_app")
        return su.execute(
            "SELECT count(*) FROM public.docs WHERE owner_id = 'alice'").fetchone()[0]


def force_parallel_plans(session):
    """Every query gets a Gather (Postgres 16 renamed force_parallel_mode to
    debug_parallel_query)."""
    version = int(session.execute("SHOW server_version_num").fetchone()[0])
    session.execute(f"SET {'force_parallel_mode' if version < 160000 else 'debug_parallel_query'}"
                    " = on")


def plan(session, query, *params):
    """The plan of `query`, as EXPLAIN (COSTS OFF) prints it."""
    return "\n".join(r[0] for r in session.execute(f"EXPLAIN (COSTS OFF) {query}", *params))


def parallel_scans_by_workers_only(session):
    """The planner chooses parallel scans on its own, and only workers run them, so a wrong
    answer cannot hide behind the leader."""
    for setting in ("parallel_setup_cost = 0", "parallel_tuple_cost = 0",
                    "min_parallel_table_scan_size = 0", "max_parallel_workers_per_gather = 2",
                    "parallel_leader_participation = off"):
        session.execute(f"SET {setting}")


class SecurityCase(unittest.TestCase):
    """Each subclass runs on a cluster of its own: CLUSTER = (name, port, preload)."""

    CLUSTER = None
    SERVER_OPTIONS = ()

    @classmethod
    def setUpClass(cls):
        name, port, preload = cls.CLUSTER
        cls.cluster = SecurityCluster(name, port, preload, cls.SERVER_OPTIONS)
        cls.cluster.start_configured()

    @classmethod
    def tearDownClass(cls):
        try:
            check_log(cls.cluster)
        finally:
            cls.cluster.stop()

    def assert_verification_unchanged(self, session, refusal_allowed=False):
        """The superuser's configuration (HS256, the conf key, iss and aud) is in force,
        unweakened in every setting. With `refusal_allowed`, a session whose settings were
        tampered with before the library loaded may instead refuse every token (42501)."""
        first = session.user_id(mint())
        if refusal_allowed and first[0] == "42501":
            for token in (mint(), mint(key=ATTACKER), mint(iss="x")):
                self.assertEqual(session.user_id(token)[0], "42501")
            return
        self.assertEqual(first, ("ok", "alice"))
        unsigned = mint("mallory", alg="none", iss=None, aud=None, exp=now() + 60)
        self.assertEqual(session.user_id(unsigned), (REJECTED, "Signing algorithm mismatch"))
        self.assertEqual(session.user_id(mint(key=ATTACKER)),
                         (REJECTED, "Invalid token signature"))
        self.assertEqual(session.user_id(mint(alg="HS384", key=ATTACKER * 2)),
                         (REJECTED, "Signing algorithm mismatch"))
        self.assertEqual(session.user_id(mint(exp=now() - 100)), (REJECTED, "Expired token"))
        self.assertEqual(session.user_id(mint(iss="someone-else")),
                         (REJECTED, 'Invalid "iss" claim value: "someone-else"'))
        no_aud = mint_raw(json.dumps({"sub": "alice", "iat": now(), "exp": now() + 60,
                                      "iss": ISS}).encode())
        self.assertEqual(session.user_id(no_aud), (REJECTED, 'Missing required "aud" claim'))
        ns = {"elsewhere": {"sub": "mallory"}}
        self.assertEqual(session.user_id(mint(claims=ns)), ("ok", "alice"))

    def assert_no_secret_in(self, texts):
        for text in texts:
            for secret in ALL_SECRETS:
                self.assertNotIn(secret, text)


class PrivilegesMixin:
    """No unprivileged route changes how tokens are verified. Run with and without the
    library preloaded: without, a setting made before the library loads is a placeholder."""

    def test_set_and_set_config_and_set_local(self):
        for name, value in SETTINGS.items():
            attempts = [
                f"SET {name} = '{value}'",
                f"SET SESSION {name} = '{value}'",
                f"SELECT set_config('{name}', '{value}', false)",
                f"BEGIN; SET LOCAL {name} = '{value}'",
                f"BEGIN; SELECT set_config('{name}', '{value}', true)",
            ]
            for attempt in attempts:
                with self.subTest(attempt=attempt):
                    s = Session(self.cluster)
                    try:
                        # In a fresh session this is the first statement: without preload the
                        # library is not loaded yet, so Postgres may create a placeholder.
                        try:
                            for statement in attempt.split("; "):
                                s.conn.execute(statement)
                        except psycopg.errors.InsufficientPrivilege:
                            if "BEGIN" in attempt:
                                s.conn.execute("ROLLBACK")
                        # Without preload, a refused session value of a setting postgresql.conf
                        # does not set could have displaced a superuser's (a SECURITY DEFINER
                        # function's) value: the session then refuses every token instead.
                        lazy = not self.cluster.preload
                        self.assert_verification_unchanged(s, refusal_allowed=lazy)
                        if s.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                            s.conn.execute("COMMIT")
                            self.assert_verification_unchanged(s, refusal_allowed=lazy)
                    finally:
                        s.close()

    def try_stored_setting(self, name, value, check):
        """As ea_app: ALTER ROLE (itself, and in a database) and ALTER DATABASE (one it owns)
        SET `name` = `value`, then `check` a new session in both databases; whatever was
        stored is removed afterwards."""
        for db, statement in [
            ("ea_sec", f"ALTER ROLE ea_app SET {name} = '{value}'"),
            ("ea_sec", f"ALTER ROLE ea_app IN DATABASE ea_owned SET {name} = '{value}'"),
            ("ea_owned", f"ALTER DATABASE ea_owned SET {name} = '{value}'"),
        ]:
            with self.subTest(statement=statement[:80]):
                s = Session(self.cluster, dbname=db)
                try:
                    s.conn.execute(statement)
                    stored = True
                except psycopg.errors.InsufficientPrivilege:
                    stored = False
                finally:
                    s.close()
                try:
                    for target in ("ea_sec", "ea_owned"):
                        s = Session(self.cluster, dbname=target)
                        try:
                            check(s)
                        finally:
                            s.close()
                finally:
                    if stored:
                        with self.cluster.connect() as su:
                            su.execute("ALTER ROLE ea_app RESET ALL")
                            su.execute("ALTER ROLE ea_app IN DATABASE ea_owned RESET ALL")
                            su.execute("ALTER DATABASE ea_owned RESET ALL")

    def try_connection_option(self, option, refusal, check):
        """A session opened with `option` in the connection options and in PGOPTIONS: either
        refused at connection time (with `refusal` in the message) or `check`ed."""
        for how in ("options", "PGOPTIONS"):
            with self.subTest(how=how, option=option[:80]):
                saved = os.environ.get("PGOPTIONS")
                try:
                    if how == "PGOPTIONS":
                        os.environ["PGOPTIONS"] = option
                        s = Session(self.cluster)
                    else:
                        s = Session(self.cluster, options=option)
                except psycopg.OperationalError as e:
                    # Refused at connection time (the library is preloaded).
                    self.assertIn(refusal, str(e))
                    continue
                finally:
                    if saved is None:
                        os.environ.pop("PGOPTIONS", None)
                    else:
                        os.environ["PGOPTIONS"] = saved
                try:
                    check(s)
                finally:
                    s.close()

    def test_alter_role_and_owned_database_set(self):
        for name, value in SETTINGS.items():
            self.try_stored_setting(name, value, self.assert_verification_unchanged)

    def test_connection_options_and_pgoptions(self):
        for name, value in SETTINGS.items():
            self.try_connection_option(
                f"-c {name}={value}", "permission denied to set parameter",
                lambda s: self.assert_verification_unchanged(s, refusal_allowed=True))

    def assert_no_identity(self, s):
        """The session has no identity, and the configured verification still applies."""
        self.assertEqual(s.execute("SELECT electric_auth.current_user_id(), "
                                   "electric_auth.current_claims()").fetchone(), (None, None))
        self.assert_verification_unchanged(s)

    def test_the_identity_cannot_be_forged_with_set(self):
        carrier = "electric_auth.identity_token"
        for value in (mint(), "alice", '{"sub": "alice"}'):
            attempts = [
                f"SET {carrier} = '{value}'",
                f"SELECT set_config('{carrier}', '{value}', false)",
                f"BEGIN; SET LOCAL {carrier} = '{value}'",
                f"BEGIN; SELECT set_config('{carrier}', '{value}', true)",
            ]
            for attempt in attempts:
                with self.subTest(attempt=attempt[:60]):
                    s = Session(self.cluster)
                    try:
                        # The first statement of a fresh session: without preload this makes
                        # a placeholder, refused when the library loads.
                        try:
                            for statement in attempt.split("; "):
                                s.conn.execute(statement)
                        except psycopg.errors.InsufficientPrivilege as e:
                            self.assertIn("can only be set by electric_auth.authenticate()",
                                          e.diag.message_primary)
                            if "BEGIN" in attempt:
                                s.conn.execute("ROLLBACK")
                        self.assert_no_identity(s)
                        if s.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                            s.conn.execute("COMMIT")
                            self.assert_no_identity(s)
                    finally:
                        s.close()

    def test_the_identity_cannot_be_forged_with_connection_options(self):
        self.try_connection_option(f"-c electric_auth.identity_token={mint()}",
                                   "can only be set by electric_auth.authenticate()",
                                   self.assert_no_identity)

    def test_the_identity_cannot_be_forged_with_role_database_or_function_settings(self):
        carrier = "electric_auth.identity_token"
        token = mint()
        self.try_stored_setting(carrier, token, self.assert_no_identity)
        # A function's SET clause, created by the role in the database it owns.
        s = Session(self.cluster, dbname="ea_owned")
        try:
            try:
                s.conn.execute(f"CREATE OR REPLACE FUNCTION public.as_alice() RETURNS text "
                               f"LANGUAGE sql SET {carrier} = '{token}' "
                               f"RETURN electric_auth.current_user_id()")
                self.assertIsNone(s.execute("SELECT public.as_alice()").fetchone()[0])
            except psycopg.errors.InsufficientPrivilege as e:
                # Ours with the library loaded; Postgres's own for a placeholder.
                self.assertRegex(e.diag.message_primary,
                                 "can only be set by electric_auth.authenticate()|"
                                 "permission denied to set parameter")
            self.assert_no_identity(s)
        finally:
            s.close()
            with self.cluster.connect(dbname="ea_owned") as su:
                su.execute("DROP FUNCTION IF EXISTS public.as_alice()")
        # A superuser's session that has not loaded the library can store one (Postgres only
        # knows a placeholder then); applying it when the function runs is refused.
        with self.cluster.connect() as su:
            try:
                su.execute(f"CREATE FUNCTION public.as_alice_su() RETURNS text LANGUAGE sql "
                           f"SET {carrier} = '{token}' RETURN electric_auth.current_user_id()")
                stored = True
            except psycopg.errors.InsufficientPrivilege:
                stored = False  # the library is preloaded: refused at CREATE FUNCTION
        if stored:
            s = Session(self.cluster)
            try:
                self.assertIsNone(s.execute("SELECT public.as_alice_su()").fetchone()[0])
                self.assert_no_identity(s)
            finally:
                s.close()
                with self.cluster.connect() as su:
                    su.execute("DROP FUNCTION public.as_alice_su()")
        self.assertEqual(stored, not self.cluster.preload)

    def test_reset_all_and_discard_all_keep_a_superusers_session_settings(self):
        # A SECURITY DEFINER function (owned by the superuser) makes the issuer check stricter
        # for the session; Postgres runs RESET ALL / DISCARD ALL without a privilege check.
        with self.cluster.connect() as su:
            su.execute("CREATE OR REPLACE FUNCTION public.require_definer_issuer() RETURNS text "
                       "LANGUAGE sql SECURITY DEFINER "
                       "RETURN set_config('electric_auth.jwt_iss', 'definer-issuer', false)")
            su.execute("GRANT EXECUTE ON FUNCTION public.require_definer_issuer() TO ea_app")
        for reset in ("RESET ALL", "DISCARD ALL"):
            with self.subTest(reset=reset):
                s = Session(self.cluster)
                try:
                    self.assertEqual(s.user_id(mint()), ("ok", "alice"))  # library loaded
                    s.execute("SELECT public.require_definer_issuer()")
                    self.assertEqual(s.user_id(mint(iss="definer-issuer")), ("ok", "alice"))
                    s.execute(reset)
                    self.assertEqual(s.execute("SHOW electric_auth.jwt_iss").fetchone()[0],
                                     "definer-issuer")
                    self.assertEqual(s.user_id(mint()),
                                     (REJECTED, 'Invalid "iss" claim value: "ea-issuer"'))
                finally:
                    s.close()


class PrivilegesWithoutPreload(PrivilegesMixin, SecurityCase):
    CLUSTER = ("ea-sec-lazy", 54331, False)

    def test_placeholder_is_really_created_before_the_library_loads(self):
        # Guards the tests above: in this cluster the first SET in a session really precedes
        # the library, so the placeholder route is exercised, not skipped.
        s = Session(self.cluster)
        defined = "SELECT count(*) FROM pg_settings WHERE name = 'electric_auth.mode'"
        try:
            s.conn.execute("SET electric_auth.mode = 'insecure'")
            self.assertEqual(s.conn.execute(defined).fetchone()[0], 0, "already loaded")
            self.assertEqual(s.user_id(mint()), ("ok", "alice"))
            self.assertEqual(s.conn.execute(defined).fetchone()[0], 1)
            warnings = [n.message_primary for n in s.notices if n.severity == "WARNING"]
            self.assertIn('permission denied to set parameter "electric_auth.mode"', warnings)
        finally:
            s.close()

    def test_a_refused_connection_option_makes_the_session_refuse_tokens(self):
        # Postgres drops the refused value *and* the postgresql.conf value it displaced, so
        # jwt_iss would silently be empty: the session refuses to verify instead.
        s = Session(self.cluster, options="-c electric_auth.jwt_iss=")
        try:
            status, message = s.user_id(mint())
            self.assertEqual(status, "42501")
            self.assertIn("a value of electric_auth.jwt_iss set before the library loaded", message)
            self.assertEqual(s.user_id(mint(iss="anyone"))[0], "42501")
        finally:
            s.close()


    def test_a_key_stored_before_the_library_loaded_is_never_used(self):
        # Without preload, a superuser session that has not loaded the library yet can still
        # store a key with ALTER ROLE (Postgres only knows a placeholder then). The value is
        # refused when the library loads in that role's sessions, and the configured key it
        # displaced is lost, so the session refuses every token.
        with self.cluster.connect() as su:
            defined = su.execute("SELECT count(*) FROM pg_settings "
                                 "WHERE name = 'electric_auth.jwt_key'").fetchone()[0]
            self.assertEqual(defined, 0, "the library must not be loaded in this session")
            su.execute(f"ALTER ROLE ea_catalog SET electric_auth.jwt_key = '{ROLE_SECRET}'")
        s = Session(self.cluster, user="ea_catalog")
        try:
            self.assertEqual(s.user_id(mint(key=ROLE_SECRET))[0], "42501")
            self.assertEqual(s.user_id(mint())[0], "42501")
            warnings = [n.message_primary for n in s.notices if n.severity == "WARNING"]
            self.assertIn("electric_auth.jwt_key cannot be set with ALTER ROLE, ALTER DATABASE "
                          "or a function's SET clause", warnings)
            self.assert_no_secret_in(s.texts())
        finally:
            s.close()
            with self.cluster.connect() as su:
                su.execute("ALTER ROLE ea_catalog RESET ALL")


class PrivilegesWithPreload(PrivilegesMixin, SecurityCase):
    CLUSTER = ("ea-sec-pre", 54332, True)


class Secrecy(SecurityCase):
    # Preloaded: the log redaction hook must be in the postmaster, which logs reloads.
    CLUSTER = ("ea-sec-secret", 54333, True)

    def test_key_is_unreadable_by_an_unprivileged_role(self):
        s = Session(self.cluster)
        try:
            self.assertEqual(s.user_id(mint()), ("ok", "alice"))  # library loaded, key in use
            for sql in ["SHOW electric_auth.jwt_key",
                        "SELECT current_setting('electric_auth.jwt_key')",
                        "SELECT current_setting('electric_auth.jwt_key', true)",
                        "SELECT * FROM pg_file_settings",
                        "SELECT * FROM pg_show_all_file_settings()"]:
                with self.subTest(sql=sql):
                    with self.assertRaises(psycopg.errors.InsufficientPrivilege):
                        s.execute(sql)
            rows = s.execute("SHOW ALL").fetchall()
            rows += s.execute("SELECT * FROM pg_settings").fetchall()
            rows += s.execute("SELECT * FROM pg_db_role_setting").fetchall()
            self.assertTrue(any("electric_auth.mode" in str(r) for r in rows))
            self.assertFalse(any(r[0] == "electric_auth.jwt_key" for r in rows))
            self.assert_no_secret_in(str(r) for r in rows)
            self.assert_no_secret_in(s.texts())
        finally:
            s.close()
        # The superuser does see it, so the checks above are not vacuous.
        with self.cluster.connect() as su:
            self.assertEqual(su.execute("SHOW electric_auth.jwt_key").fetchone()[0], SECRET)

    def test_configuration_errors_never_show_the_key(self):
        garbled_pem = RSA_PUBLIC_PEM.replace("MII", SECRET).replace("\n", "\\n")
        cases = [
            ("HS512", None, "electric_auth.jwt_key has to be at least 64 bytes long for HS512"),
            ("RS256", None, "electric_auth.jwt_key is not a valid key for "
                            "electric_auth.jwt_alg=RS256 or it has invalid format"),
            ("ES256", garbled_pem, "electric_auth.jwt_key is not a valid key for "
                                   "electric_auth.jwt_alg=ES256 or it has invalid format"),
        ]
        for alg, key, message in cases:
            with self.subTest(alg=alg):
                with self.cluster.connect() as su:
                    su.execute(f"ALTER ROLE ea_app SET electric_auth.jwt_alg = '{alg}'")
                if key is not None:
                    self.cluster.alter_system("electric_auth.jwt_key", key)
                s = Session(self.cluster)
                try:
                    self.assertEqual(s.user_id(mint()), ("22023", message))
                    self.assertTrue(s.alive())
                    self.assert_no_secret_in(s.texts())
                finally:
                    s.close()
                    with self.cluster.connect() as su:
                        su.execute("ALTER ROLE ea_app RESET ALL")
                    self.cluster.alter_system(None, None)

    def assert_refused_as_readable(self, su, statement):
        with self.assertRaises(psycopg.errors.InvalidParameterValue) as caught:
            su.execute(statement)
        diag = caught.exception.diag
        self.assertEqual(diag.message_primary, "electric_auth.jwt_key cannot be set with ALTER "
                                               "ROLE, ALTER DATABASE or a function's SET clause")
        self.assertIn("every role can read", diag.message_detail)
        self.assertIn("ALTER SYSTEM", diag.message_hint)
        for text in (diag.message_primary, diag.message_detail, diag.message_hint,
                     diag.context or "", str(caught.exception)):
            self.assertNotIn(ROLE_SECRET, text)
            self.assertNotIn(P256_PRIVATE_PEM_BODY, text)

    def test_keys_are_refused_where_every_role_could_read_them(self):
        # An HS secret and a private EC key (which the PEM hint invites), on every route that
        # stores a setting in pg_db_role_setting or pg_proc.proconfig.
        private_pem = FIXTURES["keys"]["P-256"]["private_pkcs8"]
        with self.cluster.connect() as su:
            for key in (ROLE_SECRET, private_pem):
                literal = psycopg.sql.Literal(key).as_string(su)
                for scope in ("ROLE ea_catalog", "DATABASE ea_owned",
                              "ROLE ea_catalog IN DATABASE ea_sec", "ROLE ALL"):
                    with self.subTest(scope=scope, key=key[:12]):
                        self.assert_refused_as_readable(
                            su, f"ALTER {scope} SET electric_auth.jwt_key = {literal}")
                with self.subTest(route="function SET clause", key=key[:12]):
                    self.assert_refused_as_readable(su, f"""
                        CREATE FUNCTION public.definer_with_key() RETURNS text LANGUAGE sql
                        SECURITY DEFINER SET electric_auth.jwt_key = {literal} RETURN 'x'""")
                    su.execute("CREATE FUNCTION public.definer() RETURNS text LANGUAGE sql "
                               "SECURITY DEFINER RETURN 'x'")
                    try:
                        self.assert_refused_as_readable(
                            su, f"ALTER FUNCTION public.definer() SET electric_auth.jwt_key = {literal}")
                    finally:
                        su.execute("DROP FUNCTION public.definer()")
            stored = su.execute("SELECT coalesce(setconfig::text, '') FROM pg_db_role_setting "
                                "UNION ALL SELECT coalesce(proconfig::text, '') FROM pg_proc").fetchall()
            self.assertFalse([r for r in stored if "jwt_key" in r[0]])
        # As an unprivileged role reading those catalogs, no key is to be found.
        s = Session(self.cluster, user="ea_catalog")
        try:
            rows = s.execute("SELECT setconfig::text FROM pg_db_role_setting").fetchall()
            self.assertFalse([r for r in rows if r[0] and "jwt_key" in r[0]])
        finally:
            s.close()
        self.assertNotIn(P256_PRIVATE_PEM_BODY, self.cluster.log())

    def test_a_key_typed_into_a_statement_never_reaches_the_log(self):
        typed = TYPED_SECRETS
        with self.cluster.connect() as su:
            # ALTER SYSTEM in a transaction block fails; log_min_error_statement logs STATEMENT:.
            su.execute("BEGIN")
            with self.assertRaises(psycopg.errors.ActiveSqlTransaction):
                su.execute(f"ALTER SYSTEM SET electric_auth.jwt_key = '{typed['in_transaction']}'")
            su.execute("ROLLBACK")
            # A misspelt setting later in the same query string (simple protocol).
            result = su.pgconn.exec_(
                f"SET electric_auth.jwt_key = '{typed['misspelt']}'; "
                "SET electric_auth.jwt_kye = 'x'".encode())
            self.assertEqual(result.status, psycopg.pq.ExecStatus.FATAL_ERROR)
            # Every statement logged, with its duration and by log_statement.
            su.execute("SET log_min_duration_statement = 0")
            su.execute("SET log_statement = 'all'")
            su.execute(f"ALTER SYSTEM SET electric_auth.jwt_key = '{typed['duration']}'")
            su.execute("ALTER SYSTEM RESET electric_auth.jwt_key")
            with self.assertRaises(psycopg.errors.InvalidParameterValue):
                su.execute(f"ALTER ROLE ea_catalog SET electric_auth.jwt_key = '{typed['role']}'")
            # A bind parameter, logged in full and truncated.
            for length in (-1, 24):
                su.execute(f"SET log_parameter_max_length = {length}")
                su.execute("SELECT set_config('electric_auth.jwt_key', %s, false)",
                           (typed["bind"],))
            su.execute("RESET electric_auth.jwt_key")
            su.execute("CREATE DATABASE ea_latin1 TEMPLATE template0 ENCODING 'LATIN1' "
                       "LC_COLLATE 'C' LC_CTYPE 'C'")
        # A LATIN1 database logs the statement as bytes that are not UTF-8.
        with self.cluster.connect(dbname="ea_latin1") as su:
            su.execute("SET log_statement = 'all'")
            su.execute(f"SET electric_auth.jwt_key = '{typed['latin1']}'")
            su.execute("RESET electric_auth.jwt_key")
        log = self.cluster.log()
        self.assertTrue("[statement hidden by electric_auth" in log, "the statements were logged")
        self.assertTrue("parameters: [hidden by electric_auth]" in log, "parameters were logged")
        for name, secret in typed.items():
            leaked = [line for line in log.splitlines() if secret[:LOG_SEARCH_PREFIX] in line]
            self.assertEqual(leaked, [], f"the {name} key reached the log")

    def test_key_rotation_reaches_every_session_on_its_next_call(self):
        sessions = [Session(self.cluster), Session(self.cluster, dbname="ea_owned")]
        old = mint()
        try:
            for s in sessions:  # warm: the verifier and any verified-token cache hold `old`
                self.assertEqual(s.user_id(old), ("ok", "alice"))
                self.assertEqual(s.user_id(old), ("ok", "alice"))
                self.assertEqual(s.call("verify", "%s", old)[0], "ok")
            self.cluster.alter_system("electric_auth.jwt_key", ROTATED)
            for s in sessions:
                self.assertEqual(s.user_id(old), (REJECTED, "Invalid token signature"))
                self.assertEqual(s.call("verify", "%s", old),
                                 (REJECTED, "Invalid token signature"))
                self.assertEqual(s.user_id(mint(key=ROTATED)), ("ok", "alice"))
        finally:
            for s in sessions:
                s.close()
            self.cluster.alter_system("electric_auth.jwt_key", None)
        # Within one session, SET takes effect on the very next call.
        with self.cluster.connect() as su:
            old = mint()
            self.assertEqual(su.execute("SELECT electric_auth.user_id(%s)", (old,)).fetchone(),
                             ("alice",))
            su.execute(f"SET electric_auth.jwt_key = '{ROTATED}'")
            with self.assertRaises(psycopg.errors.InvalidAuthorizationSpecification):
                su.execute("SELECT electric_auth.user_id(%s)", (old,))


class HostileTokens(SecurityCase):
    CLUSTER = ("ea-sec-hostile", 54334, True)

    def setUp(self):
        self.s = Session(self.cluster)

    def tearDown(self):
        self.assertTrue(self.s.alive(), "the backend survived")
        self.s.close()

    def assert_rejected(self, token_sql, message, *params):
        for function in ("user_id", "verify"):
            self.assertEqual(self.s.call(function, token_sql, *params), (REJECTED, message))
            self.assertTrue(self.s.alive())

    def test_empty_and_huge_tokens_are_invalid(self):
        for token_sql in ["''", "repeat('a', 1 << 20)", "repeat('a', 16 << 20)",
                          "repeat('a.', 8 << 20)", "repeat('.', 1 << 20)"]:
            with self.subTest(token_sql=token_sql[:30]):
                self.assert_rejected(token_sql, "Invalid token")
        # A correctly signed token over 64 KiB is refused without being decoded: it would
        # otherwise verify.
        big = mint(pad="x" * (70 * 1024))
        self.assertEqual(jwt.decode(big, SECRET, algorithms=["HS256"], audience=AUD)["sub"],
                         "alice")
        self.assert_rejected("%s", "Invalid token", big)

    def test_deep_nesting_and_huge_numbers(self):
        claims = b'{"sub":"alice","iat":1,"exp":4102444800,"iss":"ea-issuer","aud":"ea-audience"'
        deep = claims + b',"d":' + b"[" * 20000 + b"]" * 20000 + b"}"
        self.assert_rejected("%s", "Invalid token", mint_raw(deep))
        fine = claims + b',"d":' + b"[" * 100 + b"]" * 100 + b"}"
        self.assertEqual(self.s.user_id(mint_raw(fine)), ("ok", "alice"))
        overflow = b'{"sub":"alice","iat":1,"exp":1e400}'
        self.assert_rejected("%s", "Invalid token", mint_raw(overflow))
        far = mint(exp=10 ** 30, n=-(10 ** 40), f=1e300)
        status, claims = self.s.call("verify", "%s", far)
        self.assertEqual(status, "ok")
        # verify() returns the payload as signed: every digit of a big integer is kept.
        self.assertEqual((claims["exp"], claims["n"]), (10 ** 30, -(10 ** 40)))
        self.assert_rejected("%s", 'Invalid "iat" claim value: 1e+30', mint(iat=10 ** 30))

    def test_nul_and_broken_unicode_in_the_payload(self):
        # PyJWT serialises "\x00" as the JSON escape \u0000; Postgres text cannot hold it.
        self.assert_rejected("%s", "Invalid token", mint(name="a\x00b"))
        self.assert_rejected("%s", "Invalid token", mint(claims={"a\x00": 1}))
        for raw in [b'{"sub":"\xff","iat":1,"exp":4102444800}',
                    b'{"sub":"a\x00b","iat":1,"exp":4102444800}',
                    b'{"sub":"\\ud800","iat":1,"exp":4102444800}']:
            self.assert_rejected("%s", "Invalid token", mint_raw(raw))

    def test_duplicate_keys_resolve_like_the_signers_json_parser(self):
        raw = (b'{"sub":"first","iat":1,"sub":"last","exp":4102444800,'
               b'"iss":"ea-issuer","aud":"ea-audience"}')
        token = mint_raw(raw)
        signer_view = jwt.decode(token, SECRET, algorithms=["HS256"],  # Python json: last wins
                                 options={"verify_aud": False, "verify_iss": False})
        node_view = subprocess.run(
            ["node", "-e", "console.log(JSON.parse(process.argv[1]).sub)", raw.decode()],
            capture_output=True, text=True, check=True).stdout.strip()
        self.assertEqual(self.s.user_id(token), ("ok", signer_view["sub"]))
        self.assertEqual(self.s.user_id(token), ("ok", node_view))
        self.assertEqual(self.s.call("verify", "%s", token)[1]["sub"], "last")
        # In the header too: the last `alg` is the one checked.
        payload = valid_payload()
        last_hs = hand_signed(b'{"alg":"none","alg":"HS256"}', payload, SECRET.encode())
        self.assertEqual(self.s.user_id(last_hs), ("ok", "alice"))
        last_none = hand_signed(b'{"alg":"HS256","alg":"none"}', payload, SECRET.encode())
        self.assert_rejected("%s", "Signing algorithm mismatch", last_none)

    def test_algorithm_confusion_and_unsigned_tokens(self):
        payload = valid_payload()
        unsigned = mint(alg="none")
        self.assert_rejected("%s", "Signing algorithm mismatch", unsigned)
        self.assert_rejected("%s", "Invalid token", unsigned.rstrip("."))  # two parts: shape
        for header in [b'{"alg":"hs256"}', b'{"typ":"JWT"}', b'{"alg":null}',
                       b'{"alg":"none"}', b'{"alg":"HS256 "}']:
            token = hand_signed(header, payload, SECRET.encode())
            self.assert_rejected("%s", "Signing algorithm mismatch", token)
        # HS256 keyed with the configured RS256/ES256 public key's PEM text. (PyJWT refuses to
        # produce such a token; an attacker would not.)
        for alg, pem in (("RS256", RSA_PUBLIC_PEM), ("ES256", P256_PUBLIC_PEM)):
            self.cluster.alter_system("electric_auth.jwt_alg", alg)
            self.cluster.alter_system("electric_auth.jwt_key", pem.replace("\n", "\\n"))
            try:
                self.assertEqual(self.s.user_id(mint()), (REJECTED, "Signing algorithm mismatch"))
                for key in (pem, pem.strip(), pem.replace("\n", "")):
                    confused = hand_signed(b'{"alg":"HS256","typ":"JWT"}', payload, key.encode())
                    self.assert_rejected("%s", "Signing algorithm mismatch", confused)
                    header = json.dumps({"alg": alg, "typ": "JWT"}).encode()
                    relabelled = hand_signed(header, payload, key.encode())
                    self.assert_rejected("%s", "Invalid token signature", relabelled)
            finally:
                self.cluster.alter_system(None, None)

    def test_keys_named_by_the_token_are_ignored(self):
        attacker_jwk = {"kty": "oct", "k": b64url(ATTACKER.encode())}
        for headers in [{"kid": "attacker"}, {"jku": "https://attacker.example/jwks.json"},
                        {"jwk": attacker_jwk}, {"x5u": "https://attacker.example/cert.pem"}]:
            with self.subTest(headers=list(headers)):
                forged = mint(key=ATTACKER, headers=headers)
                self.assert_rejected("%s", "Invalid token signature", forged)
                # With the configured key the same headers are simply ignored.
                self.assertEqual(self.s.user_id(mint(headers=headers)), ("ok", "alice"))


class CritHeadersAndEncodings(SecurityCase):
    """crit headers and databases that are not UTF8."""

    CLUSTER = ("ea-sec-crit", 54341, True)

    def test_a_crit_header_is_an_invalid_token(self):
        payload = valid_payload()
        s = Session(self.cluster)
        try:
            for header in [{"alg": "HS256", "crit": ["b64"], "b64": False},
                           {"alg": "HS256", "crit": ["urn:example:unknown"],
                            "urn:example:unknown": 1}]:
                token = hand_signed(json.dumps(header).encode(), payload, SECRET.encode())
                # PyJWT, an independent verifier, refuses these too.
                with self.assertRaises(jwt.InvalidTokenError):
                    jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUD)
                self.assertEqual(s.user_id(token), (REJECTED, "Invalid token"))
                self.assertEqual(s.call("verify", "%s", token), (REJECTED, "Invalid token"))
            self.assertEqual(s.user_id(hand_signed(b'{"alg":"HS256"}', payload, SECRET.encode())),
                             ("ok", "alice"))
        finally:
            s.close()

    def test_a_database_that_is_not_utf8_is_refused_without_a_panic(self):
        with self.cluster.connect() as su:
            su.execute("CREATE DATABASE ea_latin1_ext TEMPLATE template0 ENCODING 'LATIN1' "
                       "LC_COLLATE 'C' LC_CTYPE 'C'")
        with self.cluster.connect(dbname="ea_latin1_ext") as su:
            with self.assertRaises(psycopg.errors.FeatureNotSupported) as caught:
                su.execute("CREATE EXTENSION electric_auth")
            self.assertEqual(caught.exception.diag.message_primary,
                             "electric_auth requires a database with encoding UTF8, not LATIN1")
            # An install from before 0.2.0, which did not refuse such a database: the functions
            # as 0.1.0 declared them.
            su.execute("CREATE SCHEMA electric_auth")
            for name, returns in (("user_id", "text"), ("verify", "jsonb")):
                su.execute(f"CREATE FUNCTION electric_auth.{name}(text) RETURNS {returns} "
                           f"STRICT STABLE LANGUAGE c AS '$libdir/electric_auth', '{name}_wrapper'")
            for token in (mint(), mint(name="Jos\u00e9"), "\u00e9.\u00e9.\u00e9"):
                for name in ("user_id", "verify"):
                    with self.subTest(name=name, token=token[:10]):
                        with self.assertRaises(psycopg.errors.FeatureNotSupported) as caught:
                            su.execute(f"SELECT electric_auth.{name}(%s)", (token,))
                        self.assertEqual(caught.exception.diag.message_primary,
                                         "electric_auth requires a database with encoding UTF8")
            self.assertEqual(su.execute("SELECT 1").fetchone()[0], 1)
        self.assertNotIn("panicked", self.cluster.log())


class ParallelWorkers(SecurityCase):
    """A session marked for a refused setting stays refused in parallel workers, which load the
    library afresh and restore the leader's (already emptied) settings. No preload: that is the
    configuration where a session can be marked at all."""

    CLUSTER = ("ea-sec-parallel", 54342, False)
    WRONG_ISS = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.WRONG_ISS = mint(iss="someone-else")
        with cls.cluster.connect() as su:
            su.execute("CREATE TABLE public.parallel_tokens (t text)")
            su.execute("INSERT INTO public.parallel_tokens SELECT %s FROM generate_series(1, 2000)",
                       (cls.WRONG_ISS,))
            su.execute("ANALYZE public.parallel_tokens")
            su.execute("GRANT SELECT ON public.parallel_tokens TO ea_app")

    def assert_refused_in_a_worker(self, s, sql, *params):
        with self.assertRaises(psycopg.errors.InsufficientPrivilege) as caught:
            s.execute(sql, *params)
        self.assertIn("electric_auth will not verify tokens in this session",
                      caught.exception.diag.message_primary)
        self.assertIn("parallel worker", caught.exception.diag.context or "",
                      "the refusal came from a parallel worker")

    def tampered_sessions(self):
        no_aud = mint_raw(json.dumps({"sub": "mallory", "iat": now(), "exp": now() + 600,
                                      "iss": ISS}).encode())
        both = {"electric_auth.jwt_iss", "electric_auth.jwt_aud"}
        return [("-c electric_auth.jwt_iss=", {"electric_auth.jwt_iss"}, self.WRONG_ISS),
                ("-c electric_auth.jwt_aud=", {"electric_auth.jwt_aud"}, no_aud),
                ("-c electric_auth.jwt_iss= -c electric_auth.jwt_aud=", both, self.WRONG_ISS)]

    def test_forced_parallel_plans_refuse_like_the_leader(self):
        for option, refused, token in self.tampered_sessions():
            with self.subTest(option=option):
                s = Session(self.cluster, options=option)
                try:
                    self.assertEqual(s.user_id(token)[0], "42501")  # the leader refuses
                    self.assertIn(s.execute("SHOW electric_auth.refused_setting").fetchone()[0],
                                  refused)
                    force_parallel_plans(s)
                    self.assertIn("Gather", plan(s, "SELECT electric_auth.user_id(%s)", token))
                    for function in ("user_id", "verify"):
                        self.assert_refused_in_a_worker(
                            s, f"SELECT electric_auth.{function}(%s)", token)
                finally:
                    s.close()

    def test_the_mark_survives_a_rolled_back_first_call(self):
        # The library loads inside a transaction that is rolled back: the mark stays, in the
        # leader and in the workers.
        s = Session(self.cluster, options="-c electric_auth.jwt_iss=")
        try:
            s.execute("BEGIN")
            self.assertEqual(s.user_id(self.WRONG_ISS)[0], "42501")
            s.execute("ROLLBACK")
            self.assertEqual(s.user_id(self.WRONG_ISS)[0], "42501")
            force_parallel_plans(s)
            self.assert_refused_in_a_worker(s, "SELECT electric_auth.user_id(%s)", self.WRONG_ISS)
        finally:
            s.close()

    def test_naturally_chosen_parallel_plans_refuse(self):
        s = Session(self.cluster, options="-c electric_auth.jwt_iss=")
        try:
            parallel_scans_by_workers_only(s)
            query = ("SELECT count(*) FROM public.parallel_tokens "
                     "WHERE electric_auth.user_id(t) = 'alice'")
            self.assertIn("Parallel Seq Scan", plan(s, query))
            self.assert_refused_in_a_worker(s, query)
        finally:
            s.close()

    def test_an_untampered_session_verifies_in_parallel_workers(self):
        # The same plans in a session nobody tampered with: the workers verify, with the iss
        # check the configuration asks for.
        s = Session(self.cluster)
        try:
            force_parallel_plans(s)
            self.assertEqual(s.user_id(mint()), ("ok", "alice"))
            self.assertEqual(s.user_id(self.WRONG_ISS),
                             (REJECTED, 'Invalid "iss" claim value: "someone-else"'))
        finally:
            s.close()


class SessionIdentity(SecurityCase):
    """authenticate() / current_user_id() where backend memory does not reach (parallel
    workers), across PREPARE TRANSACTION, at expiry and across a key rotation in live backends."""

    CLUSTER = ("ea-sec-identity", 54344, True)
    SERVER_OPTIONS = ("-c max_prepared_transactions=4", "-c electric_auth.session_scope=allow")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.alices_rows = owned_docs(cls.cluster)

    def whoami(self, s):
        return s.execute("SELECT electric_auth.current_user_id()").fetchone()[0]

    def test_forced_parallel_plans_see_the_leaders_identity(self):
        query = ("SELECT count(*), count(*) FILTER (WHERE owner_id <> 'alice'), "
                 "min(electric_auth.current_user_id()) FROM public.docs")
        for scope in ("transaction", "session"):
            with self.subTest(scope=scope):
                s = Session(self.cluster)
                try:
                    force_parallel_plans(s)
                    s.execute("SET parallel_setup_cost = 0")
                    s.execute("SET parallel_tuple_cost = 0")
                    s.execute("BEGIN")
                    s.execute("SELECT electric_auth.authenticate(%s, %s)", mint(), scope)
                    self.assertIn("Gather", plan(s, query))
                    self.assertEqual(s.execute(query).fetchone(),
                                     (self.alices_rows, 0, "alice"))
                    self.assertEqual(s.execute(
                        "SELECT electric_auth.current_claims()->>'iss'").fetchone()[0], ISS)
                    s.execute("COMMIT")
                    expected = (self.alices_rows, 0, "alice") if scope == "session" else (0, 0, None)
                    self.assertEqual(s.execute(query).fetchone(), expected)
                finally:
                    s.close()

    def test_only_workers_scan_and_still_see_only_the_users_rows(self):
        s = Session(self.cluster)
        try:
            parallel_scans_by_workers_only(s)
            query = "SELECT count(*), count(DISTINCT owner_id) FROM public.docs"
            self.assertIn("Parallel Seq Scan", plan(s, query))
            self.assertEqual(s.execute(query).fetchone(), (0, 0))
            s.execute("BEGIN")
            s.execute("SELECT electric_auth.authenticate(%s)", mint())
            self.assertEqual(s.execute(query).fetchone(), (self.alices_rows, 1))
            s.execute("SELECT electric_auth.authenticate(%s)", mint(sub="user-7"))
            self.assertEqual(s.execute(query).fetchone()[1], 1)
            self.assertEqual(s.execute(
                "SELECT min(owner_id) FROM public.docs").fetchone()[0], "user-7")
            s.execute("ROLLBACK")
            self.assertEqual(s.execute(query).fetchone(), (0, 0))
        finally:
            s.close()

    def test_prepare_transaction_ends_a_transaction_identity(self):
        s = Session(self.cluster)
        try:
            s.execute("BEGIN")
            self.assertEqual(s.execute("SELECT electric_auth.authenticate(%s)", mint())
                             .fetchone()[0], "alice")
            s.execute("PREPARE TRANSACTION 'ea_identity'")
            self.assertIsNone(self.whoami(s))
            s.execute("COMMIT PREPARED 'ea_identity'")
            self.assertIsNone(self.whoami(s))
        finally:
            s.close()

    def test_expiry_is_checked_at_each_statement(self):
        # exp two seconds from now; clock_drift is 2: the identity lapses after exp + 2.
        s = Session(self.cluster)
        try:
            exp = now() + 2
            self.assertEqual(s.execute("SELECT electric_auth.authenticate(%s, 'session')",
                                       mint(exp=exp)).fetchone()[0], "alice")
            self.assertEqual(self.whoami(s), "alice")
            time.sleep(max(0.0, exp + 2 + 1.1 - time.time()))
            with self.assertRaises(psycopg.errors.InvalidAuthorizationSpecification) as caught:
                self.whoami(s)
            self.assertEqual(caught.exception.diag.message_primary, "Expired token")
            with self.assertRaises(psycopg.errors.InvalidAuthorizationSpecification):
                s.execute("SELECT count(*) FROM public.docs")
            s.execute("SELECT electric_auth.logout()")
            self.assertIsNone(self.whoami(s))
        finally:
            s.close()

    def test_a_key_rotation_reverifies_or_refuses_identities_in_live_backends(self):
        a, b = Session(self.cluster), Session(self.cluster)
        try:
            old = mint()
            for s in (a, b):
                s.execute("SELECT electric_auth.authenticate(%s, 'session')", old)
                self.assertEqual(self.whoami(s), "alice")
            b.execute("BEGIN")  # a transaction identity over the session one
            b.execute("SELECT electric_auth.authenticate(%s)", mint(sub="user-7"))
            self.cluster.alter_system("electric_auth.jwt_key", ROTATED)
            refused = (REJECTED, "Invalid token signature")
            self.assertEqual(a.call("current_user_id", ""), refused)
            self.assertEqual(b.call("current_user_id", ""), refused)
            with self.assertRaises(psycopg.errors.InvalidAuthorizationSpecification):
                b.execute("SELECT count(*) FROM public.docs")
            b.execute("ROLLBACK")
            self.assertEqual(b.call("current_user_id", ""), refused,
                             "the session identity underneath is refused too")
            self.assertEqual(a.call("authenticate", "%s", old), refused)
            new = mint(key=ROTATED)
            self.assertEqual(a.call("authenticate", "%s, 'session'", new), ("ok", "alice"))
            # The old key back: each identity is verified again under the settings in force,
            # so the old token is good again and the new one is refused.
            self.cluster.alter_system("electric_auth.jwt_key", None)
            self.assertEqual(a.call("current_user_id", ""), refused)
            self.assertEqual(self.whoami(b), "alice")
        finally:
            a.close()
            b.close()

    def test_the_readme_rls_recipe(self):
        block = readme_sql_block("<!-- example: session identity RLS -->")
        with self.cluster.connect() as su:
            su.execute("CREATE DATABASE ea_readme_identity")
        try:
            with self.cluster.connect(dbname="ea_readme_identity") as su:
                su.execute("CREATE EXTENSION electric_auth")
                su.execute(block)
                su.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO ea_app")
                su.execute("GRANT SELECT ON my_identity TO ea_app")
            s = Session(self.cluster, dbname="ea_readme_identity")
            try:
                self.assertEqual(s.execute("SELECT count(*) FROM notes").fetchone()[0], 0)
                # No identity: the policy's WITH CHECK refuses the row (owner NULL).
                with self.assertRaises(psycopg.errors.InsufficientPrivilege):
                    s.execute("INSERT INTO notes (body) VALUES ('from nobody')")
                s.execute("BEGIN")
                token = mint(email="alice@example.com")
                s.execute("SELECT electric_auth.authenticate(%s)", token)
                assert_token_not_in_activity(self, self.cluster, s, token,
                                             dbname="ea_readme_identity")
                s.execute("INSERT INTO notes (body) VALUES ('hello')")
                self.assertEqual(s.execute("SELECT owner_id, body FROM notes").fetchall(),
                                 [("alice", "hello")])
                self.assertEqual(s.execute("SELECT * FROM my_identity").fetchone(),
                                 ("alice", "alice@example.com"))
                s.execute("SAVEPOINT other_owner")
                with self.assertRaises(psycopg.errors.InsufficientPrivilege):
                    s.execute("INSERT INTO notes (owner_id, body) VALUES ('bob', 'as bob')")
                s.execute("ROLLBACK TO SAVEPOINT other_owner")
                s.execute("COMMIT")
                self.assertEqual(s.execute("SELECT count(*) FROM notes").fetchone()[0], 0)
                self.assertEqual(s.execute("SELECT * FROM my_identity").fetchone(), (None, None))
                s.execute("BEGIN")
                s.execute("SELECT electric_auth.authenticate(%s)", mint(sub="bob"))
                self.assertEqual(s.execute("SELECT count(*) FROM notes").fetchone()[0], 0)
                self.assertEqual(s.execute("UPDATE notes SET body = 'mine now'").rowcount, 0)
                self.assertEqual(s.execute("DELETE FROM notes").rowcount, 0)
                s.execute("COMMIT")
            finally:
                s.close()
            with self.cluster.connect(dbname="ea_readme_identity") as su:
                self.assertEqual(su.execute("SELECT owner_id, body FROM notes").fetchall(),
                                 [("alice", "hello")])
        finally:
            with self.cluster.connect() as su:
                su.execute("DROP DATABASE ea_readme_identity WITH (FORCE)")


class KeySetRotation(SecurityCase):
    """Issue 14's rotation, in live backends: a JWKS with the old key, then old and new, then
    the new one alone (ALTER SYSTEM + pg_reload_conf()); tokens minted here by PyJWT with kid."""

    CLUSTER = ("ea-sec-keysets", 54347, True)
    SERVER_OPTIONS = ("-c electric_auth.session_scope=allow",)
    KEYSETS = fixture("keysets")

    def token(self, name, sub):
        private = self.KEYSETS["keys"][name]["private_pkcs8"]
        return mint(sub, key=private, alg="RS256", headers={"kid": name})

    def use_jwks(self, name):
        self.cluster.alter_system("electric_auth.jwt_key", json.dumps(self.KEYSETS["jwks"][name]))

    def test_rotation_without_downtime_then_the_old_key_is_gone(self):
        self.cluster.alter_system("electric_auth.jwt_alg", "RS256")
        self.use_jwks("rotation_old")
        old, new = self.token("rsa-1", "old-user"), self.token("rsa-2", "new-user")
        s, other = Session(self.cluster), Session(self.cluster)
        try:
            self.assertEqual(s.call("authenticate", "%s, 'session'", old), ("ok", "old-user"))
            for session in (s, other):
                for _ in range(3):  # warm the verifier and the verified-token cache
                    self.assertEqual(session.user_id(old), ("ok", "old-user"))
                self.assertEqual(session.user_id(new), (REJECTED, "Invalid token signature"))
            # Publish the new key beside the old one: both kinds of token verify.
            self.use_jwks("rotation_both")
            for session in (s, other):
                self.assertEqual(session.user_id(old), ("ok", "old-user"))
                self.assertEqual(session.user_id(new), ("ok", "new-user"))
            self.assertEqual(s.execute("SELECT electric_auth.current_user_id()").fetchone()[0],
                             "old-user")
            # Remove the old key: its tokens fail on the next call, the cached one included,
            # and the session identity it carried is refused with the reason.
            self.use_jwks("rotation_new")
            for session in (s, other):
                self.assertEqual(session.user_id(old), (REJECTED, "Invalid token signature"))
                self.assertEqual(session.user_id(new), ("ok", "new-user"))
            self.assertEqual(s.call("current_user_id", ""), (REJECTED, "Invalid token signature"))
            self.assertEqual(s.call("authenticate", "%s", old),
                             (REJECTED, "Invalid token signature"))
        finally:
            s.close()
            other.close()


README = (ROOT / "README.md").read_text()


def readme_sql_block(marker, lang="sql"):
    """The first ```sql (or `lang`) block after `marker` in the README, exactly as a reader
    copies it."""
    after = README[README.index(marker):]
    start = after.index(f"```{lang}\n") + len(f"```{lang}\n")
    return after[start:after.index("```", start)]


def assert_token_not_in_activity(case, cluster, session, token, dbname="ea_sec"):
    """`session` has just run a statement with `token` as a bind parameter and sits idle in its
    transaction: another session of the same role sees that statement in pg_stat_activity
    (the README's examples send "$1"), and nowhere the token."""
    with cluster.connect(user="ea_app", dbname=dbname) as other:
        rows = other.execute("SELECT pid, state, query FROM pg_stat_activity").fetchall()
    mine = [r for r in rows if r[0] == session.conn.info.backend_pid]
    case.assertEqual(len(mine), 1)
    case.assertEqual(mine[0][1], "idle in transaction")
    case.assertIn("$1", mine[0][2], "the statement was not sent with a bind parameter")
    for _, _, query in rows:
        case.assertNotIn(token, query or "")
        case.assertNotIn(token.split(".")[2], query or "", "the token's signature is visible")


def readme_code_blocks():
    """Every fenced code block in the README, with its language."""
    return [(m.group(1), m.group(2)) for m in
            re.finditer(r"^```(\w*)\n(.*?)^```", README, flags=re.M | re.S)]


class ReadmeTriggerExample(SecurityCase):
    """The README's owner-stamping trigger with row-level security, run as written, as an
    unprivileged role and as the table's owner: no identity, or another user's, can read,
    change or delete a row."""

    CLUSTER = ("ea-sec-readme", 54343, True)

    def setUp(self):
        with self.cluster.connect() as su:
            su.execute("DROP TABLE IF EXISTS todos")
            su.execute("DROP FUNCTION IF EXISTS stamp_owner()")
            su.execute(readme_sql_block("<!-- example: owner-stamping trigger -->"))
            su.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON todos TO ea_app")

    def alices_row(self):
        """A row of alice's, written by the superuser past triggers and policies (so this works
        whatever the example's trigger wants)."""
        with self.cluster.connect() as su:
            su.execute("SET session_replication_role = replica")
            return su.execute("INSERT INTO todos (title, owner_id) VALUES ('alice''s', 'alice') "
                              "RETURNING id").fetchone()[0]

    def row(self, todo):
        with self.cluster.connect() as su:
            return su.execute("SELECT title, owner_id FROM todos WHERE id = %s", (todo,)).fetchone()

    def assert_cannot_touch(self, s, todo):
        """Each UPDATE and DELETE of alice's row fails or touches no row, and the row stays."""
        for statement in ("UPDATE todos SET title = 'hijacked' WHERE id = %s",
                          "UPDATE todos SET owner_id = 'mallory' WHERE id = %s",
                          "UPDATE todos SET title = 'hijacked', owner_id = NULL WHERE id = %s",
                          "DELETE FROM todos WHERE id = %s"):
            with self.subTest(statement=statement):
                s.execute("SAVEPOINT attempt")
                try:
                    self.assertEqual(s.execute(statement, todo).rowcount, 0)
                except psycopg.Error:
                    pass
                s.execute("ROLLBACK TO SAVEPOINT attempt")
                s.execute("RELEASE SAVEPOINT attempt")
        self.assertEqual(s.execute("SELECT count(*) FROM todos WHERE id = %s", todo)
                         .fetchone()[0], 0, "alice's row is visible")

    def attack(self, role):
        todo = self.alices_row()
        s = Session(self.cluster, user=role)
        try:
            for identity in (None, "bob"):
                with self.subTest(role=role, identity=identity):
                    s.execute("BEGIN")
                    try:
                        if identity:
                            s.execute("SELECT electric_auth.authenticate(%s)", mint(sub=identity))
                        self.assert_cannot_touch(s, todo)
                    finally:
                        s.execute("ROLLBACK")
        finally:
            s.close()
        self.assertEqual(self.row(todo), ("alice's", "alice"))

    def test_no_identity_or_another_users_cannot_change_or_delete_a_row(self):
        self.attack("ea_app")

    def test_nor_can_the_tables_owner(self):
        with self.cluster.connect() as su:
            if not su.execute("SELECT 1 FROM pg_roles WHERE rolname = 'ea_todo_owner'").fetchone():
                su.execute("CREATE ROLE ea_todo_owner LOGIN")
            su.execute("ALTER TABLE todos OWNER TO ea_todo_owner")
        self.attack("ea_todo_owner")

    def test_the_owner_is_stamped_and_kept(self):
        s, bob = Session(self.cluster), Session(self.cluster)
        alice = mint()
        try:
            # No identity: the trigger refuses the INSERT, whatever owner the client names.
            for statement in ("INSERT INTO todos (title) VALUES ('no identity')",
                              "INSERT INTO todos (title, owner_id) VALUES ('forged', 'alice')"):
                with self.assertRaises(psycopg.errors.InvalidAuthorizationSpecification):
                    s.execute(statement)
            s.execute("BEGIN")
            s.execute("SELECT electric_auth.authenticate(%s)", alice)
            assert_token_not_in_activity(self, self.cluster, s, alice)
            # The owner is stamped from the identity, whatever owner_id the client sent.
            todo, owner = s.execute("INSERT INTO todos (title, owner_id) VALUES ('t', 'mallory') "
                                    "RETURNING id, owner_id").fetchone()
            self.assertEqual(owner, "alice")
            self.assertEqual(s.execute("UPDATE todos SET title = 'mine' WHERE id = %s",
                                       todo).rowcount, 1)
            # The owner never changes, not even by the owner.
            s.execute("SAVEPOINT give_away")
            with self.assertRaises(psycopg.errors.InsufficientPrivilege):
                s.execute("UPDATE todos SET owner_id = 'bob' WHERE id = %s", todo)
            s.execute("ROLLBACK TO SAVEPOINT give_away")
            s.execute("COMMIT")
            self.assertEqual(self.row(todo), ("mine", "alice"))
            # Bob sees nothing of alice's; alice deletes her row.
            bob.execute("BEGIN")
            bob.execute("SELECT electric_auth.authenticate(%s)", mint(sub="bob"))
            self.assertEqual(bob.execute("SELECT count(*) FROM todos").fetchone()[0], 0)
            bob.execute("COMMIT")
            s.execute("BEGIN")
            s.execute("SELECT electric_auth.authenticate(%s)", alice)
            self.assertEqual(s.execute("DELETE FROM todos WHERE id = %s", todo).rowcount, 1)
            s.execute("COMMIT")
            self.assertIsNone(self.row(todo))
        finally:
            s.close()
            bob.close()


class ReadmeBindParameters(SecurityCase):
    """Tokens in the README are bind parameters: no example writes one into a statement's text,
    and the psycopg and psql (16+) snippets, run as written as ea_app, leave only "$1" in
    pg_stat_activity for another session of the same role to read. Statements are logged
    (log_statement = all) with log_parameter_max_length = 0, as the README advises."""

    CLUSTER = ("ea-sec-readme-binds", 54375, True)
    SERVER_OPTIONS = ("-c log_statement=all", "-c log_parameter_max_length=0")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with cls.cluster.connect() as su:
            su.execute(readme_sql_block("<!-- example: session identity RLS -->"))
            su.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO ea_app")
            su.execute("INSERT INTO notes (owner_id, body) VALUES ('alice', 'alice''s note'), "
                       "('bob', 'bob''s note')")

    def test_no_readme_example_writes_a_token_into_a_statement(self):
        call_with_text = re.compile(
            r"electric_auth\.(verify|user_id|authenticate)\(\s*(?:'|:'|:\"|E')", re.I)
        set_with_text = re.compile(r"\bSET\s+(SESSION\s+|LOCAL\s+)?app\.token\b|"
                                   r"set_config\(\s*'app\.token'\s*,\s*'", re.I)
        blocks = readme_code_blocks()
        self.assertGreater(len(blocks), 20)
        for lang, block in blocks:
            for line in block.splitlines():
                with self.subTest(line=line):
                    self.assertIsNone(call_with_text.search(line))
                    self.assertIsNone(set_with_text.search(line))
                    self.assertNotIn("eyJ", line)

    def test_the_psycopg_snippet(self):
        block = readme_sql_block("<!-- example: psycopg bind parameter -->", lang="python")
        token = mint()
        s = Session(self.cluster)
        seen = []

        class Watched:
            """The snippet's `conn`: after the authenticate() statement, another session reads
            pg_stat_activity."""

            def __init__(self, conn):
                self.conn = conn

            def transaction(self):
                return self.conn.transaction()

            def execute(inner, sql, params=None):
                cur = inner.conn.execute(sql, params)
                if "authenticate" in sql:
                    assert_token_not_in_activity(self, self.cluster, s, token)
                    seen.append(sql)
                return cur

        try:
            scope = {"conn": Watched(s.conn), "token": token}
            exec(block, scope)  # the README's snippet, as written
            self.assertEqual(len(seen), 1)
            self.assertEqual(scope["rows"][0][1:], ("alice", "alice's note"))
            self.assertEqual(len(scope["rows"]), 1)
        finally:
            s.close()
        self.assertNotIn(token, self.cluster.log())

    def test_the_psql_snippet(self):
        psql = psql_with_bind()
        if psql is None:
            self.skipTest("no psql 16 or later on this machine")
        block = readme_sql_block("<!-- example: psql bind parameter -->")
        lines = block.splitlines(keepends=True)
        bind = next(i for i, line in enumerate(lines) if "\\bind" in line)
        token = mint()
        env = dict(os.environ, ELECTRIC_TOKEN=token, PGAPPNAME="ea-readme-psql")
        proc = subprocess.Popen(
            [psql, "-X", "-v", "ON_ERROR_STOP=1", "-h", self.cluster.sock,
             "-p", str(self.cluster.port), "-U", "ea_app", "-d", "ea_sec"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env)
        try:
            proc.stdin.write("".join(lines[:bind + 1]))
            proc.stdin.flush()
            # psql sits idle in its transaction after authenticate(): what may another session
            # of the same role read?
            with self.cluster.connect(user="ea_app") as other:
                for _ in range(200):
                    row = other.execute(
                        "SELECT state, query FROM pg_stat_activity "
                        "WHERE application_name = 'ea-readme-psql'").fetchone()
                    if row and row[0] == "idle in transaction" and "authenticate" in row[1]:
                        break
                    time.sleep(0.05)
                else:
                    self.fail(f"psql never ran authenticate(): {row}")
                self.assertEqual(row[1].strip(), "SELECT electric_auth.authenticate($1)")
                everything = other.execute("SELECT string_agg(coalesce(query, ''), ' ') "
                                           "FROM pg_stat_activity").fetchone()[0]
                self.assertNotIn(token, everything)
            out, err = proc.communicate("".join(lines[bind + 1:]), timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn(" alice\n", out)  # authenticate()'s result
        self.assertIn("alice's note", out)
        self.assertNotIn("bob's note", out)
        # log_statement = all wrote the statement, not the token (log_parameter_max_length = 0).
        log = self.cluster.log()
        self.assertIn("SELECT electric_auth.authenticate($1)", log)
        self.assertNotIn(token, log)

    def test_parameters_reach_the_log_masked_unless_their_length_is_zero(self):
        # What the README says: log_statement logs bind parameters' values by default, and the
        # library's log hook masks a token among them.
        token = mint(sub="logged")
        with self.cluster.connect() as su:
            su.execute("SET log_parameter_max_length = -1")  # Postgres's default
            su.execute("SELECT electric_auth.user_id(%s)", (token,))
        log = self.cluster.log()
        self.assertIn("$1 = '[token hidden by electric_auth]'", log)
        for part in token.split("."):
            self.assertNotIn(part[:20], log)


def check_log(cluster):
    """After a cluster's tests: no secret in the debug5 server log, and no backend crashed."""
    log = cluster.log()
    logs.assert_logs_debug(log, cluster.name)
    logs.assert_no_secret(log, ALL_SECRETS, f"{cluster.name}'s server log")
    logs.assert_no_crash(log, cluster.name)


if __name__ == "__main__":
    main()
