"""Several identity providers in one database (electric_auth.issuers, issue 32; README section
"Several identity providers"), against real HTTPS identity providers on loopback (the test
library's electric_auth_test.provider: one CA made here, a certificate for localhost), tokens
minted by PyJWT and signed by hand with hmac where no library would sign.

What it proves, on one preloaded cluster whose postgresql.conf lists seven issuers — A
(discovery, oidc_issuer, RS256, `aud` an array, `role_claim`), B (jwks_url, RS256,
`user_id_claim` /email and `user_id_prefix` "b:"), C (jwks_url, RS256 and ES256), D (jwks_url on
B's provider, jwks_max_stale 5 s), H (an inline HS256 secret, a user id at an escaped JSON
Pointer), F (inline HS256, empty prefix) and G (a base64 HS384 secret, its own clock_drift) — and
no default issuer:

 1. each issuer's tokens verify with its own keys and claims, user ids `<iss>#<sub>` by default,
    or prefix + the value at the pointer; its own aud and clock drift; verify() returns the
    payload unchanged;
 2. issuer confusion (A's iss with B's key, kid or none; another issuer's algorithm; an HS256
    token whose secret is A's public key PEM) is refused, with the reason Electric gives;
 3. an unknown, absent or non-string iss is `Unknown issuer` without a default issuer; with the
    single-issuer settings it goes to the default issuer (unprefixed user ids, its own jwt_iss),
    and a user id in another issuer's prefix is `User id is reserved for another issuer`;
 4. D's provider answering 500 past D's jwks_max_stale refuses D's tokens as stale, B's provider
    down refuses B's new kids: every other issuer's tokens verify meanwhile;
 5. C's RS256 and ES256 tokens verify side by side, many times, with no refusal and no fetch;
 6. a rotation at A (a new kid) is absorbed by a fetch of A's JWKS alone;
 7. invalid values of electric_auth.issuers are refused at ALTER SYSTEM with 22023 and a message
    naming the entry, and at a reload of postgresql.conf the server keeps the last good value;
    no HS key text in a message or the log; '', [] and two issuers sharing a prefix are valid;
 8. the setting is hidden from non-superusers, and a key typed into ALTER SYSTEM / SET /
    set_config stays out of the log, pg_stat_activity and pg_stat_statements;
 9. electric_auth.stats has an `issuer` column (reasons unknown_issuer and reserved_user_id),
    electric_auth.key_source() one row per fetched source with its issuer; an issuer added at a
    reload gets its own source (refused with its URL until its provider serves keys), the
    others untouched;
10. (PostgreSQL 18) pg_hba.conf oauth lines with issuer= A and issuer= B: each line takes its own
    issuer's keys and role_claim under delegate_ident_mapping=1, and refuses the other's tokens;
11. a hot standby verifies every listed issuer, fetching a fetched issuer's keys for itself and
    absorbing its rotation by its own request.

Clusters ea-issuers-* on base ports 54458 (the seven issuers), 54459 (PG 18 logins) and 54469-54470
(a primary and its hot standby), the HTTPS providers A, B, C on base ports 54466-54468 (tests/lib adds 100 per major above 15, to these
too). Alone: python3 tests/security/test_issuers.py --major NN
"""

import base64
import json
import os
import pathlib
import subprocess
import sys
import threading
import time
import unittest
import uuid

import psycopg
import psycopg.sql
from cryptography.hazmat.primitives import serialization

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
from electric_auth_test import ROOT, logs, main, scratch_dir, wait_until  # noqa: E402
from electric_auth_test import provider as idp  # noqa: E402
from electric_auth_test.postgres import (OLDEST_MAJOR, PORT_STRIDE, Cluster,  # noqa: E402
                                         Session, pg_config_value, server_major)
from electric_auth_test.provider import Provider, json_route, jwks, send  # noqa: E402
from electric_auth_test.tokens import Minter, hand_signed  # noqa: E402

MAJOR = server_major()
# The seven-issuer cluster (with pg_stat_statements, for test 8), and the PG 18 login cluster.
MAIN = Cluster("ea-issuers", 54458, preload="pg_stat_statements,electric_auth",
               options=("-c pg_stat_statements.track=all",))
LOGINS = Cluster("ea-issuers-oauth", 54459)
PORT_A = 54466 + PORT_STRIDE * (MAJOR - OLDEST_MAJOR)
PORT_B, PORT_C = PORT_A + 1, PORT_A + 2
ISS_A = f"https://localhost:{PORT_A}"
ISS_B = f"https://localhost:{PORT_B}"
ISS_C = f"https://localhost:{PORT_C}"
ISS_D = f"{ISS_B}/d"  # its JWKS on B's provider, at /d/jwks
ISS_H = "https://first-party.example"
ISS_F = "https://legacy.example"
ISS_G = "https://b64.example"
H_NAMESPACE = "https://first-party.example/claims"  # H's user id: /https:~1~1first-party...
TLS_DIR = scratch_dir(f"ea-issuers-pg{MAJOR}-tls")
MIN_REFRESH = 2  # electric_auth.jwks_min_refresh_interval, seconds
TIMEOUT = 2  # electric_auth.jwks_timeout, seconds
D_MAX_STALE = 5  # D's jwks_max_stale, seconds

# Every HS key this suite types anywhere: none may reach a message, the log, pg_stat_activity
# or pg_stat_statements (searched by their first logs.SEARCH_PREFIX characters).
SECRET_H = "ea-iss-h-secret-3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e"
SECRET_F = "ea-iss-f-secret-8b6d4f2a0c9e7b5d3f1a8c6e4b2d0f9a"
DEFAULT_SECRET = "ea-iss-default-secret-1c3e5a7b9d2f4a6c8e0b1d3f5a"
SECRET_G = os.urandom(48)  # G's HS384 secret, given in base64
SECRET_G_TEXT = base64.b64encode(SECRET_G).decode()
BAD_CONFIG_SECRET = "ea-iss-badcfg-secret-7e5c3a1f9d7b5e3c1a9f7d5b3e1c"
TYPED = {
    "alter_system": "ea-iss-typed-alter-system-6b4d2f0a8c6e4b2d0f8a",
    "set": "ea-iss-typed-set-session-2d0f8b6e4c2a0e8d6b4f2a0c",
    "set_config": "ea-iss-typed-set-config-9a7c5e3b1d9f7a5c3e1b9d7f",
    "reload": "ea-iss-typed-reload-file-4e2c0a8f6d4b2e0c8a6f4d2b",
}
MINTED = []  # every token made here, for the log search at the end

A_ENTRY = {"iss": ISS_A, "oidc_issuer": ISS_A, "alg": "RS256", "aud": ["aud-a1", "aud-a2"],
           "role_claim": "/roles"}
B_ENTRY = {"iss": ISS_B, "jwks_url": f"{ISS_B}/jwks", "alg": "RS256", "user_id_claim": "/email",
           "user_id_prefix": "b:", "role_claim": "/groups/db"}
ISSUERS = [
    A_ENTRY,
    B_ENTRY,
    {"iss": ISS_C, "jwks_url": f"{ISS_C}/jwks", "alg": ["RS256", "ES256"]},
    {"iss": ISS_D, "jwks_url": f"{ISS_B}/d/jwks", "alg": "RS256", "jwks_max_stale": D_MAX_STALE},
    {"iss": ISS_H, "key": SECRET_H, "alg": "HS256",
     "user_id_claim": "/https:~1~1first-party.example~1claims/uid"},
    {"iss": ISS_F, "key": SECRET_F, "alg": "HS256", "user_id_prefix": ""},
    {"iss": ISS_G, "key": SECRET_G_TEXT, "key_is_base64": True, "alg": "HS384",
     "clock_drift": 120, "aud": "aud-g"},
]


def keep(token):
    MINTED.append(token)
    return token


def SigningKey(kid, **options):  # noqa: N802 (a class to its callers)
    return idp.SigningKey(kid, minted=MINTED, **options)


def without_kid(key, **claims):
    """A token signed with `key` (a SigningKey) whose header names no kid."""
    return keep(key.minter(**claims))


mint_h = Minter(SECRET_H, iss=ISS_H, **{H_NAMESPACE: {"uid": "u-42"}})
mint_f = Minter(SECRET_F, iss=ISS_F, sub="legacy-alice")
mint_default = Minter(DEFAULT_SECRET)
mint_g = Minter(SECRET_G, "HS384", iss=ISS_G, aud="aud-g")


def raw_token(key, **claims):
    """A token signed with `key` (a SigningKey), no kid, whose claims PyJWT would not write
    (a non-string iss, say)."""
    payload = key.minter.claims(**claims)
    return keep(key.minter.raw(json.dumps(payload).encode()))


def h_token(**claims):
    return keep(mint_h(**claims))


def f_token(sub=None, **claims):
    return keep(mint_f(sub, **claims))


def g_token(sub=None, **claims):
    return keep(mint_g(sub, **claims))


def default_token(sub=None, **claims):
    return keep(mint_default(sub, **claims))


def assert_no_signature(text, tokens, where):
    """No token's signature (its first 24 characters; an unsigned token has none) in `text`."""
    for token in tokens:
        signature = token.split(".")[2][:24]
        if signature and signature in text:
            raise AssertionError(f"{where}: a token is there: {logs.line_with(text, signature)}")


def discovery(issuer):
    return json.dumps({"issuer": issuer, "jwks_uri": f"{issuer}/jwks",
                       "authorization_endpoint": f"{issuer}/authorize"}).encode()


def status_500(h):
    send(h, b'{"error": "internal"}', status=500)


def hang(h):
    """A provider that accepts the request and answers only after the fetch's deadline."""
    time.sleep(TIMEOUT + 3)


def conf_line(entries):
    """postgresql.conf's line for `entries` (JSON holds no single quote or backslash here)."""
    text = json.dumps(entries)
    assert "'" not in text and "\\" not in text, text
    return f"electric_auth.issuers = '{text}'"


# --- The providers, shared by both clusters --------------------------------------------------

class Keys:
    """The signing keys each provider publishes (set up once per run)."""


def serve_a(*keys):
    PROVIDERS["A"].routes = {
        "/.well-known/openid-configuration": json_route(discovery(ISS_A)),
        "/jwks": json_route(jwks(*keys), "application/jwk-set+json"),
    }


def serve_b(b_keys=None, d_route=None):
    PROVIDERS["B"].routes = {
        "/jwks": json_route(jwks(*(b_keys or [Keys.b1])), "application/jwk-set+json"),
        "/d/jwks": d_route or json_route(jwks(Keys.d1)),
    }


def serve_c():
    PROVIDERS["C"].routes = {"/jwks": json_route(jwks(Keys.c_rs, Keys.c_ec))}


PROVIDERS = {}


def setUpModule():  # noqa: N802 (unittest's name)
    tls = idp.make_tls(TLS_DIR, label="ea-issuers")
    Keys.a1 = SigningKey("a1", iss=ISS_A, aud="aud-a1")
    Keys.a2 = SigningKey("a2", iss=ISS_A, aud="aud-a1")
    Keys.a3 = SigningKey("a3", iss=ISS_A, aud="aud-a1")
    Keys.b1 = SigningKey("b1", iss=ISS_B, sub="bob-sub", email="bob@example.com")
    Keys.b2 = SigningKey("b2", iss=ISS_B, sub="bob-sub", email="bob@example.com")
    Keys.c_rs = SigningKey("c-rs", iss=ISS_C)
    Keys.c_ec = SigningKey("c-ec", alg="ES256", iss=ISS_C)
    Keys.d1 = SigningKey("d1", iss=ISS_D)
    for name, port in (("A", PORT_A), ("B", PORT_B), ("C", PORT_C)):
        PROVIDERS[name] = Provider(port, tls["good"])
    serve_a(Keys.a1)
    serve_b()
    serve_c()
    for p in PROVIDERS.values():
        p.start()


def tearDownModule():  # noqa: N802
    for p in PROVIDERS.values():
        p.stop()


def common_conf(entries):
    return [
        conf_line(entries),
        f"electric_auth.jwks_ca_file = '{TLS_DIR}/ca.pem'",
        f"electric_auth.jwks_timeout = '{TIMEOUT}s'",
        f"electric_auth.jwks_min_refresh_interval = '{MIN_REFRESH}s'",
    ]


def key_sources(cluster, dbname=None):
    """electric_auth.key_source()'s rows by issuer (None: the default source)."""
    with cluster.connect(dbname=dbname) as c:
        c.row_factory = psycopg.rows.dict_row
        rows = c.execute("SELECT * FROM electric_auth.key_source()").fetchall()
    return {r["issuer"]: r for r in rows}


def user_id(cluster, token, dbname=None):
    """(user id, None) or (None, (sqlstate, message))."""
    with cluster.connect(dbname=dbname) as c:
        try:
            return c.execute("SELECT electric_auth.user_id(%s)", (token,)).fetchone()[0], None
        except psycopg.Error as e:
            return None, (e.sqlstate, e.diag.message_primary)


def wait_for_first_fetches(cluster, names, dbname=None):
    """Until a token of each issuer in `names` ("A", "B", "C", "D") verifies on `cluster`."""
    tokens = {"A": (Keys.a1.mint(), f"{ISS_A}#alice"), "B": (Keys.b1.mint(), "b:bob@example.com"),
              "C": (Keys.c_rs.mint(), f"{ISS_C}#alice"), "D": (Keys.d1.mint(), f"{ISS_D}#alice")}
    for name in names:
        token, user = tokens[name]
        wait_until(lambda: user_id(cluster, token, dbname) == (user, None),
                   timeout=TIMEOUT + 15, what=f"the first fetch of {name}'s keys")


def require_the_feature(cluster):
    with cluster.connect() as c:
        defined = c.execute("SELECT count(*) FROM pg_settings "
                            "WHERE name = 'electric_auth.issuers'").fetchone()[0]
    if not defined:
        raise AssertionError("the installed electric_auth does not define "
                             "electric_auth.issuers (not built/installed yet?)")


# --- The seven-issuer cluster ----------------------------------------------------------------

class Issuers(unittest.TestCase):
    """One cluster, the providers above; the tests run in their numbered order."""

    @classmethod
    def setUpClass(cls):
        MAIN.fresh("\n".join(common_conf(ISSUERS)))
        try:
            require_the_feature(MAIN)
            with MAIN.connect() as c:
                c.execute("CREATE EXTENSION electric_auth")
                c.execute("CREATE EXTENSION pg_stat_statements")
                c.execute("CREATE ROLE ea_issuers_app LOGIN")
                c.execute("CREATE ROLE ea_issuers_stats LOGIN IN ROLE pg_read_all_stats")
            try:
                wait_for_first_fetches(MAIN, "ABCD")
            except AssertionError as e:  # the tests say what does not work
                print(f"\nsetUpClass: {e}", file=sys.stderr)
        except BaseException:
            MAIN.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        MAIN.stop()

    # helpers

    def user_id(self, token):
        return user_id(MAIN, token)

    def assert_user(self, token, user):
        self.assertEqual(self.user_id(token), (user, None))

    def assert_refused(self, token, sqlstate, message):
        self.assertEqual(self.user_id(token), (None, (sqlstate, message)))

    def set_default_issuer(self, **settings):
        """The single-issuer settings (jwt_alg, jwt_key, ...) by ALTER SYSTEM; None resets."""
        for name, value in settings.items():
            MAIN.alter_system(f"electric_auth.{name}", value)

    def verify_all_others(self, but=()):
        """The tokens of every issuer not in `but` verify."""
        expected = {"A": (Keys.a1.mint, f"{ISS_A}#alice"),
                    "B": (Keys.b1.mint, "b:bob@example.com"),
                    "C": (Keys.c_ec.mint, f"{ISS_C}#alice"),
                    "H": (h_token, f"{ISS_H}#u-42"),
                    "F": (f_token, "legacy-alice"),
                    "G": (g_token, f"{ISS_G}#alice")}
        for name, (mint, user) in expected.items():
            if name not in but:
                with self.subTest(issuer=name):
                    self.assert_user(mint(), user)

    # tests

    def test_01_each_issuers_tokens_verify_with_its_own_claims(self):
        # A: default prefix; aud is an array, the token's aud must contain one of them.
        self.assert_user(Keys.a1.mint(), f"{ISS_A}#alice")
        self.assert_user(Keys.a1.mint(aud="aud-a2"), f"{ISS_A}#alice")
        self.assert_user(Keys.a1.mint(aud=["elsewhere", "aud-a1"]), f"{ISS_A}#alice")
        self.assert_user(without_kid(Keys.a1, sub="carol"), f"{ISS_A}#carol")
        self.assert_refused(Keys.a1.mint(aud="elsewhere"), "28000",
                            'Invalid "aud" claim value: "elsewhere"')
        self.assert_refused(Keys.a1.mint(aud=None), "28000", 'Missing required "aud" claim')
        # B: the user id at /email, after the prefix "b:"; no email (or a blank one): refused.
        self.assert_user(Keys.b1.mint(), "b:bob@example.com")
        self.assert_user(Keys.b1.mint(aud="anything"), "b:bob@example.com")  # no aud configured
        self.assert_refused(Keys.b1.mint(email=None), "28000", "Missing or invalid 'user_id'")
        self.assert_refused(Keys.b1.mint(email="  "), "28000", "Missing or invalid 'user_id'")
        # C: both algorithms (test 5 does more).
        self.assert_user(Keys.c_rs.mint(), f"{ISS_C}#alice")
        self.assert_user(Keys.c_ec.mint(sub="dave"), f"{ISS_C}#dave")
        # H: inline HS256 key; the user id at an escaped pointer, default prefix.
        self.assert_user(h_token(), f"{ISS_H}#u-42")
        self.assert_refused(h_token(**{H_NAMESPACE: {"other": 1}}), "28000",
                            "Missing or invalid 'user_id'")
        self.assert_refused(h_token(**{H_NAMESPACE: {"uid": 42}}), "28000",
                            "Missing or invalid 'user_id'")
        # F: empty prefix, Electric's rule (sub, else user_id).
        self.assert_user(f_token(), "legacy-alice")
        self.assert_user(f_token(sub=None, claims={"sub": None}, user_id="legacy-bob"),
                         "legacy-bob")
        # G: a base64 HS384 secret (the decoded bytes sign, not the text), its own clock drift
        # (120 s: a token expired a minute ago verifies there, not at H with the default 2 s),
        # aud a string.
        self.assert_user(g_token(), f"{ISS_G}#alice")
        issued = int(time.time()) - 600
        self.assert_user(g_token(iat=issued, exp=issued + 540), f"{ISS_G}#alice")
        self.assert_refused(g_token(iat=issued, exp=issued + 420), "28000", "Expired token")
        self.assert_refused(h_token(iat=issued, exp=issued + 540), "28000", "Expired token")
        self.assert_refused(keep(mint_g(key=SECRET_G_TEXT)), "28000", "Invalid token signature")
        self.assert_refused(g_token(aud=None), "28000", 'Missing required "aud" claim')
        self.assert_refused(g_token(aud="aud-a1"), "28000", 'Invalid "aud" claim value: "aud-a1"')
        # verify() returns the payload unchanged; authenticate() and current_user_id() give
        # the prefixed user id.
        token = Keys.a1.mint()
        with MAIN.connect() as c:
            payload = c.execute("SELECT electric_auth.verify(%s)", (token,)).fetchone()[0]
            self.assertEqual((payload["sub"], payload["iss"], payload["aud"]),
                             ("alice", ISS_A, "aud-a1"))
            c.execute("BEGIN")
            self.assertEqual(c.execute("SELECT electric_auth.authenticate(%s)",
                                       (Keys.b1.mint(),)).fetchone()[0], "b:bob@example.com")
            self.assertEqual(c.execute("SELECT electric_auth.current_user_id()").fetchone()[0],
                             "b:bob@example.com")
            c.execute("COMMIT")
        # Each issuer's request to its own provider: discovery at A, JWKS at A, B, C and D.
        self.assertGreaterEqual(PROVIDERS["A"].requests["/.well-known/openid-configuration"], 1)
        for name, path in (("A", "/jwks"), ("B", "/jwks"), ("B", "/d/jwks"), ("C", "/jwks")):
            self.assertGreaterEqual(PROVIDERS[name].requests[path], 1, (name, path))

    def test_02_issuer_confusion_is_refused(self):
        a_pem = Keys.a1.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        claims = Keys.a1.minter.claims()
        payload = json.dumps(claims).encode()
        cases = [
            # (what, token, message)
            ("A's iss, B's key and kid", Keys.b1.mint(iss=ISS_A, aud="aud-a1"),
             "Invalid token signature"),
            ("A's iss, B's key, no kid", without_kid(Keys.b1, iss=ISS_A, aud="aud-a1"),
             "Invalid token signature"),
            ("A's iss, B's key, A's kid", Keys.b1.mint(kid="a1", iss=ISS_A, aud="aud-a1"),
             "Invalid token signature"),
            ("A's iss, C's ES256 key and alg", Keys.c_ec.mint(iss=ISS_A, aud="aud-a1"),
             "Signing algorithm mismatch"),
            ("A's iss, HS256 with H's secret",
             keep(mint_h(iss=ISS_A, aud="aud-a1", headers={"kid": "a1"})),
             "Signing algorithm mismatch"),
            ("A's iss, HS256 whose secret is A's public key PEM",
             keep(hand_signed(b'{"alg":"HS256","typ":"JWT","kid":"a1"}', payload, a_pem)),
             "Signing algorithm mismatch"),
            ("A's iss, unsigned", keep(Keys.a1.minter(alg="none", headers={"kid": "a1"})),
             "Signing algorithm mismatch"),
            ("B's iss, A's key and kid", Keys.a1.mint(iss=ISS_B, email="bob@example.com"),
             "Invalid token signature"),
            ("C's iss, A's key and kid", Keys.a1.mint(iss=ISS_C), "Invalid token signature"),
            ("D's iss, B's key and kid", Keys.b1.mint(iss=ISS_D), "Invalid token signature"),
            ("H's iss, RS256 with A's key", Keys.a1.mint(iss=ISS_H), "Signing algorithm mismatch"),
            ("H's iss, F's secret", keep(mint_h(key=SECRET_F)), "Invalid token signature"),
            ("F's iss, H's secret", keep(mint_f(key=SECRET_H)), "Invalid token signature"),
        ]
        for what, token, message in cases:
            with self.subTest(what):
                started = time.monotonic()
                self.assert_refused(token, "28000", message)
                # An unknown kid may wait for one refresh of the issuer's source, no more.
                self.assertLess(time.monotonic() - started, MIN_REFRESH + TIMEOUT + 1)
        # iss is compared byte for byte: near misses are no issuer at all.
        for near in (ISS_A + "/", " " + ISS_A, ISS_A.upper(), ISS_A[:-1]):
            with self.subTest(near=near):
                self.assert_refused(Keys.a1.mint(iss=near), "28000", "Unknown issuer")
        # A's own tokens still verify after all that.
        self.assert_user(Keys.a1.mint(), f"{ISS_A}#alice")

    def test_03_unknown_issuers_and_the_default_issuer(self):
        # No default issuer configured: unknown, absent and non-string iss are refused.
        for what, token in (("unknown iss", Keys.a1.mint(iss="https://unknown.example")),
                            ("no iss", Keys.a1.mint(iss=None)),
                            ("numeric iss", raw_token(Keys.a1, iss=42)),
                            ("iss an array", raw_token(Keys.a1, iss=[ISS_A])),
                            ("HS256, no iss", default_token()),
                            ("HS256, unknown iss", default_token(iss="https://unknown.example"))):
            with self.subTest(what):
                self.assert_refused(token, "28000", "Unknown issuer")
        # The default issuer (Electric's settings): tokens of no listed issuer go there.
        self.set_default_issuer(jwt_alg="HS256", jwt_key=DEFAULT_SECRET)
        try:
            self.assert_user(default_token(), "alice")
            self.assert_user(default_token(iss="https://unknown.example"), "alice")
            self.assert_user(default_token(ISS_A), ISS_A)  # not A's prefix: no "#"
            self.assert_user(default_token("b"), "b")
            # A user id in another issuer's prefix is reserved (default issuer, empty prefix).
            for what, token in (
                    ("default, A's prefix", default_token(f"{ISS_A}#alice")),
                    ("default, B's prefix", default_token("b:bob@example.com")),
                    ("default, H's prefix, legacy user_id",
                     default_token(claims={"sub": None}, user_id=f"{ISS_H}#u-42")),
                    ("F (empty prefix), A's prefix", f_token(f"{ISS_A}#alice")),
                    ("F (empty prefix), D's prefix", f_token(f"{ISS_D}#x"))):
                with self.subTest(what):
                    self.assert_refused(token, "28000", "User id is reserved for another issuer")
            # A listed issuer's iss still picks its entry: no fallback to the default issuer.
            self.assert_refused(default_token(iss=ISS_A, aud="aud-a1"), "28000",
                                "Signing algorithm mismatch")
            self.assert_refused(default_token(iss=ISS_H), "28000", "Invalid token signature")
            self.assert_user(Keys.a1.mint(), f"{ISS_A}#alice")
            self.assert_user(h_token(), f"{ISS_H}#u-42")
            # The default issuer's own jwt_iss applies to what reaches it.
            self.set_default_issuer(jwt_iss="https://default.example")
            self.assert_user(default_token(iss="https://default.example"), "alice")
            self.assert_refused(default_token(iss="https://unknown.example"), "28000",
                                'Invalid "iss" claim value: "https://unknown.example"')
        finally:
            self.set_default_issuer(jwt_iss=None, jwt_key=None, jwt_alg=None)
        self.assert_refused(default_token(), "28000", "Unknown issuer")

    def test_04_one_issuer_down_or_stale_leaves_the_others_working(self):
        d_token = Keys.d1.mint()
        # D's provider up: its tokens verify (its keys may be stale already: a token wakes
        # the worker, which fetches them again).
        wait_until(lambda: self.user_id(d_token) == (f"{ISS_D}#alice", None),
                   timeout=MIN_REFRESH + TIMEOUT + 5, what="D's token verifying")
        # D's JWKS answers 500: past D's jwks_max_stale, D's tokens are refused as stale.
        serve_b(d_route=status_500)
        try:
            result = wait_until(lambda: (r := self.user_id(d_token))[1] and r,
                                timeout=D_MAX_STALE + TIMEOUT + 10, what="D's keys stale")
            self.assertEqual(result[1][0], "22023", result)
            self.assertIn("stale", result[1][1])
            self.assertIn(f"{ISS_B}/d/jwks", result[1][1])
            sources = key_sources(MAIN)
            self.assertTrue(sources[ISS_D]["stale"])
            self.assertFalse(sources[ISS_A]["stale"])
            self.assertFalse(sources[ISS_B]["stale"])
            wait_until(lambda: "500" in (key_sources(MAIN)[ISS_D]["last_failure_reason"] or ""),
                       timeout=TIMEOUT + 5, what="D's failure reason")
            # Every other issuer verifies meanwhile, B on the same provider too.
            self.verify_all_others(but=("D",))
            # B's provider down altogether: B's known key still verifies (the last good set),
            # a new kid at B is refused within the wait; A, C, H and F are untouched.
            PROVIDERS["B"].stop()
            b_token = Keys.b1.mint()
            self.assert_user(b_token, "b:bob@example.com")
            time.sleep(MIN_REFRESH + 0.3)
            started = time.monotonic()
            self.assert_refused(Keys.b2.mint(), "28000", "Invalid token signature")
            self.assertLess(time.monotonic() - started, MIN_REFRESH + TIMEOUT + 1)
            wait_until(lambda: "Connection refused" in (
                key_sources(MAIN)[ISS_B]["last_failure_reason"] or ""),
                timeout=TIMEOUT + 5, what="B's failure reason")
            self.assertIsNone(key_sources(MAIN)[ISS_A]["last_failure_reason"])
            self.verify_all_others(but=("D",))
            self.assertEqual(self.user_id(d_token)[1][0], "22023")
        finally:
            serve_b()
            if PROVIDERS["B"].server is None:
                PROVIDERS["B"].start()
        # Back: D's token wakes the worker and verifies again; an unknown kid at B makes B's
        # worker fetch again (so no retry of B is pending for the tests after this one).
        time.sleep(MIN_REFRESH + 0.3)
        wait_until(lambda: self.user_id(d_token) == (f"{ISS_D}#alice", None),
                   timeout=TIMEOUT + 10, what="D's token verifying again")
        self.assert_refused(Keys.b2.mint(), "28000", "Invalid token signature")
        wait_until(lambda: (s := key_sources(MAIN)[ISS_B])["last_success"] > s["last_failure"],
                   timeout=TIMEOUT + 10, what="B's recovery")
        self.assert_user(Keys.b1.mint(), "b:bob@example.com")

    def test_05_an_algorithm_migration_verifies_both_side_by_side(self):
        source = key_sources(MAIN)[ISS_C]
        self.assertEqual(source["usable_keys"], 2)
        self.assertEqual(sorted(source["kids"]), ["c-ec", "c-rs"])
        before = dict(PROVIDERS["C"].requests)
        tokens = [Keys.c_rs.mint(sub=f"user-{i}") if i % 2 else Keys.c_ec.mint(sub=f"user-{i}")
                  for i in range(40)]
        tokens += [without_kid(Keys.c_rs, sub="no-kid-rs"), without_kid(Keys.c_ec, sub="no-kid-ec")]
        refused, accepted = [], 0
        with MAIN.connect() as c:
            for _ in range(5):
                for token in tokens:
                    try:
                        user = c.execute("SELECT electric_auth.user_id(%s)",
                                         (token,)).fetchone()[0]
                        self.assertTrue(user.startswith(f"{ISS_C}#"), user)
                        accepted += 1
                    except psycopg.Error as e:
                        refused.append((e.sqlstate, e.diag.message_primary))
        self.assertEqual(refused, [])
        self.assertEqual(accepted, 5 * len(tokens))
        self.assertEqual(dict(PROVIDERS["C"].requests), before, "no fetch on the request path")
        # Other algorithms still are not C's.
        self.assert_refused(keep(Minter(SECRET_H, iss=ISS_C)()), "28000",
                            "Signing algorithm mismatch")
        stranger = SigningKey("c-stranger", alg="ES256", iss=ISS_C)
        self.assert_refused(stranger.mint(), "28000", "Invalid token signature")

    def test_06_a_rotation_at_one_issuer_fetches_that_issuers_keys_only(self):
        time.sleep(MIN_REFRESH + 0.3)  # past every source's last wake-up's minimum interval
        before = {name: dict(p.requests) for name, p in PROVIDERS.items()}
        serve_a(Keys.a1, Keys.a2)
        started = time.monotonic()
        self.assert_user(Keys.a2.mint(), f"{ISS_A}#alice")  # the first try, not a retry
        self.assertLess(time.monotonic() - started, TIMEOUT + 1)
        self.assert_user(Keys.a1.mint(), f"{ISS_A}#alice")
        self.assertEqual(sorted(key_sources(MAIN)[ISS_A]["kids"]), ["a1", "a2"])
        after = {name: dict(p.requests) for name, p in PROVIDERS.items()}
        self.assertEqual(after["A"].get("/jwks", 0), before["A"].get("/jwks", 0) + 1,
                         (before["A"], after["A"]))
        self.assertEqual(after["B"].get("/jwks"), before["B"].get("/jwks"),
                         "B's JWKS was not fetched")
        self.assertEqual(after["C"], before["C"], "C's provider was not asked")

    def test_06b_a_hanging_provider_holds_up_no_other_issuers_rotation(self):
        # Red team (issue 32): B's provider hangs and any role keeps asking for B's keys with
        # junk kids; A adds a key and signs with it at once. Each source's fetch is published
        # as soon as it ends, so A's new key arrives within A's own fetch, not after B's
        # deadline (before the fix the worker waited for every fetch of a round: A's token was
        # refused after jwks_timeout).
        PROVIDERS["B"].routes = {"/jwks": hang, "/d/jwks": json_route(jwks(Keys.d1))}
        stop = threading.Event()

        def junk_kids():
            with MAIN.connect(user="ea_issuers_app") as c:
                c.autocommit = True
                while not stop.is_set():
                    try:
                        c.execute("SELECT electric_auth.user_id(%s)",
                                  (Keys.b1.mint(kid=f"junk-{uuid.uuid4()}"),))
                    except psycopg.Error:
                        pass

        flood = threading.Thread(target=junk_kids)
        flood.start()
        try:
            time.sleep(MIN_REFRESH + 0.5)  # B's fetch under way (hanging), more asked for
            serve_a(Keys.a1, Keys.a2, Keys.a3)
            for _ in range(3):
                started = time.monotonic()
                self.assert_user(Keys.a3.mint(), f"{ISS_A}#alice")
                self.assertLess(time.monotonic() - started, TIMEOUT - 0.5,
                                "A's new key waited for B's hanging fetch")
                time.sleep(0.2)
        finally:
            stop.set()
            flood.join()
            serve_b()

    # (what, value, names in the message: the entry, and where the culprit is clear its member)
    def invalid_values(self):
        s = BAD_CONFIG_SECRET
        hs = {"iss": "https://x.example", "key": s, "alg": "HS256"}
        fetched = {"iss": "https://y.example", "jwks_url": "https://localhost:1/jwks",
                   "alg": "RS256"}
        return [
            ("not JSON", json.dumps([hs])[:-2], ["electric_auth.issuers"]),
            ("not an array", json.dumps(hs), ["electric_auth.issuers"]),
            ("an array of strings", json.dumps([s]), ["electric_auth.issuers[0]"]),
            # The unknown name is not quoted (a secret pasted without its "key": label would be).
            ("unknown member", json.dumps([dict(hs, colour="blue")]),
             ["electric_auth.issuers[0]", "has a member that is not one of iss, key"]),
            ("a secret as a member name", json.dumps([dict(hs, **{s: 1})]),
             ["electric_auth.issuers[0]"]),
            ("a secret as alg", json.dumps([dict(hs, alg=s)]),
             ["electric_auth.issuers[0].alg", "names an algorithm that is not one of"]),
            ("U+0000 in a prefix", json.dumps([dict(hs, user_id_prefix="alice\u0000")]),
             ["electric_auth.issuers[0].user_id_prefix", "U+0000"]),
            ("an HS key too short for one of its algorithms",
             json.dumps([dict(hs, alg=["HS256", "HS512"])]),
             ["electric_auth.issuers[0].key", "for HS512"]),
            ("PEM text as an HS key", json.dumps([dict(hs, key=Keys.a1.private.public_key().public_bytes(
                 serialization.Encoding.PEM,
                 serialization.PublicFormat.SubjectPublicKeyInfo).decode())]),
             ["electric_auth.issuers[0].key", "PEM key text"]),
            ("missing iss", json.dumps([hs, {"key": s, "alg": "HS256"}]),
             ["electric_auth.issuers[1]", "iss"]),
            ("empty iss", json.dumps([dict(hs, iss="")]), ["electric_auth.issuers[0]", "iss"]),
            ("iss longer than 1024 bytes", json.dumps([dict(hs, iss="https://" + "x" * 1020)]),
             ["electric_auth.issuers[0]", "iss"]),
            ("duplicate iss", json.dumps([fetched, hs, dict(hs, key=s + "-2")]),
             ["electric_auth.issuers[2]"]),
            ("missing alg", json.dumps([{"iss": "https://x.example", "key": s}]),
             ["electric_auth.issuers[0]", "alg"]),
            ("unknown alg", json.dumps([dict(hs, alg="XX256")]),
             ["electric_auth.issuers[0]", "alg"]),
            ("empty alg array", json.dumps([dict(hs, alg=[])]),
             ["electric_auth.issuers[0]", "alg"]),
            ("no source", json.dumps([{"iss": "https://x.example", "alg": "RS256"}]),
             ["electric_auth.issuers[0]"]),
            ("two sources", json.dumps([dict(fetched, key=s)]), ["electric_auth.issuers[0]"]),
            ("jwks_url and oidc_issuer",
             json.dumps([dict(fetched, oidc_issuer="https://y.example")]),
             ["electric_auth.issuers[0]"]),
            ("HS with jwks_url", json.dumps([dict(fetched, alg="HS256")]),
             ["electric_auth.issuers[0]"]),
            ("HS mixed with RS", json.dumps([dict(hs, alg=["HS256", "RS256"])]),
             ["electric_auth.issuers[0]"]),
            ("key_is_base64 with jwks_url", json.dumps([dict(fetched, key_is_base64=True)]),
             ["electric_auth.issuers[0]"]),
            ("HS key too short", json.dumps([dict(hs, key=s[:20])]), ["electric_auth.issuers[0]"]),
            ("RS256 key not a key", json.dumps([dict(hs, alg="RS256")]),
             ["electric_auth.issuers[0]"]),
            ("aud an empty array", json.dumps([dict(hs, aud=[])]),
             ["electric_auth.issuers[0]", "aud"]),
            ("aud a number", json.dumps([dict(hs, aud=5)]), ["electric_auth.issuers[0]", "aud"]),
            ("clock_drift a string", json.dumps([dict(hs, clock_drift="60")]),
             ["electric_auth.issuers[0]", "clock_drift"]),
            ("clock_drift above 3600", json.dumps([dict(hs, clock_drift=3601)]),
             ["electric_auth.issuers[0]", "clock_drift"]),
            ("jwks_refresh_interval below 60",
             json.dumps([dict(fetched, jwks_refresh_interval=59)]),
             ["electric_auth.issuers[0]", "jwks_refresh_interval"]),
            ("jwks_max_stale 0", json.dumps([dict(fetched, jwks_max_stale=0)]),
             ["electric_auth.issuers[0]", "jwks_max_stale"]),
            ("user_id_claim not a JSON Pointer", json.dumps([dict(hs, user_id_claim="email")]),
             ["electric_auth.issuers[0]", "user_id_claim"]),
            ("role_claim not a JSON Pointer", json.dumps([dict(hs, role_claim="roles")]),
             ["electric_auth.issuers[0]", "role_claim"]),
            ("17 entries", json.dumps([dict(hs, iss=f"https://i{i}.example") for i in range(17)]),
             ["electric_auth.issuers", "16"]),
            ("overlapping user_id_prefix", json.dumps([
                dict(hs, user_id_prefix="tenant:"),
                dict(hs, iss="https://z.example", user_id_prefix="tenant:eu:")]),
             ["electric_auth.issuers[1]"]),
            ("a prefix inside a default prefix", json.dumps([
                hs, dict(hs, iss="https://z.example", user_id_prefix="https://x.example#eu:")]),
             ["electric_auth.issuers[1]"]),
        ]

    def test_07_invalid_values_are_refused_naming_the_entry(self):
        auto_conf = MAIN.data / "postgresql.auto.conf"
        texts = []
        with MAIN.connect() as su:
            for what, value, names in self.invalid_values():
                with self.subTest(what):
                    literal = psycopg.sql.Literal(value).as_string(su)
                    with self.assertRaises(psycopg.Error) as raised:
                        su.execute(f"ALTER SYSTEM SET electric_auth.issuers = {literal}")
                    diag = raised.exception.diag
                    message = diag.message_primary or ""
                    texts += [message, diag.message_detail or "", diag.message_hint or ""]
                    self.assertEqual(raised.exception.sqlstate, "22023", message)
                    for name in names:
                        self.assertIn(name, message)
                    for text in texts[-3:]:
                        self.assertNotIn(BAD_CONFIG_SECRET[:logs.SEARCH_PREFIX], text)
        self.assertNotIn("electric_auth.issuers", auto_conf.read_text())
        # At a reload of postgresql.conf: the invalid value is refused, the server keeps the
        # last good one (and runs), the log names the entry and not the key.
        conf_file = MAIN.data / "postgresql.conf"
        original = conf_file.read_text()
        before = len(MAIN.log())
        bad = [ISSUERS[0], {"iss": ISS_H, "key": TYPED["reload"], "alg": ["HS256", "ES256"]}]
        conf_file.write_text(original + conf_line(bad) + "\n")
        try:
            with MAIN.connect() as c:
                c.execute("SELECT pg_reload_conf()")
            added = wait_until(lambda: "electric_auth.issuers[1]" in (a := MAIN.log()[before:])
                               and a, timeout=5, what="the reload's error in the log")
            self.assertNotIn(TYPED["reload"][:logs.SEARCH_PREFIX], added)
            with MAIN.connect() as c:
                self.assertEqual(json.loads(c.execute("SHOW electric_auth.issuers").fetchone()[0]),
                                 ISSUERS)
            self.assert_user(h_token(), f"{ISS_H}#u-42")
            self.assert_user(Keys.a1.mint(), f"{ISS_A}#alice")
        finally:
            conf_file.write_text(original)
            MAIN.reload()
        log = MAIN.log()
        logs.assert_no_crash(log, "the server log")
        logs.assert_no_secret(log, [BAD_CONFIG_SECRET, TYPED["reload"]], "the server log")

    def test_07b_empty_values_and_a_shared_prefix_are_accepted(self):
        # The spec: empty (the default) or [] is today's behaviour exactly; issuers given the
        # same prefix share their user ids on purpose (a provider migration). Each is set and
        # reset without a reload: nothing changes in force.
        auto_conf = MAIN.data / "postgresql.auto.conf"
        shared = [{"iss": "https://old.example", "key": BAD_CONFIG_SECRET, "alg": "HS256",
                   "user_id_prefix": "acme:"},
                  {"iss": "https://new.example", "key": BAD_CONFIG_SECRET + "-new",
                   "alg": "HS256", "user_id_prefix": "acme:"}]
        with MAIN.connect() as su:
            for value in ("", "[]", " [ ] ", json.dumps(shared)):
                with self.subTest(value=value[:20]):
                    try:
                        su.execute("ALTER SYSTEM SET electric_auth.issuers = "
                                   + psycopg.sql.Literal(value).as_string(su))
                    except psycopg.Error as e:
                        self.fail(f"{value[:20]!r} refused: {e.sqlstate} "
                                  f"{e.diag.message_primary}")
                    finally:
                        su.execute("ALTER SYSTEM RESET electric_auth.issuers")
        self.assertNotIn("electric_auth.issuers", auto_conf.read_text())

    def test_08_the_setting_is_for_superusers_and_its_keys_stay_hidden(self):
        with MAIN.connect() as su:
            self.assertEqual(json.loads(su.execute("SHOW electric_auth.issuers").fetchone()[0]),
                             ISSUERS, "the superuser sees it: the checks below are not vacuous")
        app = Session(MAIN, user="ea_issuers_app")
        try:
            self.assertEqual(app.user_id(h_token()), ("ok", f"{ISS_H}#u-42"))
            for sql in ("SHOW electric_auth.issuers",
                        "SELECT current_setting('electric_auth.issuers')",
                        "SELECT current_setting('electric_auth.issuers', true)"):
                with self.subTest(sql=sql):
                    with self.assertRaises(psycopg.errors.InsufficientPrivilege) as raised:
                        app.execute(sql)
                    self.assertIn('"electric_auth.issuers"',
                                  raised.exception.diag.message_primary)
            rows = app.execute("SHOW ALL").fetchall()
            rows += app.execute("SELECT * FROM pg_settings").fetchall()
            self.assertTrue(any(r[0] == "electric_auth.mode" for r in rows))
            self.assertFalse(any(r[0] == "electric_auth.issuers" for r in rows))
            logs.assert_no_secret("\n".join(map(str, rows)), [SECRET_H, SECRET_F],
                                  "what a non-superuser reads")
            with self.assertRaises(psycopg.errors.InsufficientPrivilege):
                app.execute("ALTER SYSTEM SET electric_auth.issuers = '[]'")
        finally:
            app.close()
        # A key typed into ALTER SYSTEM, SET and set_config (both refused: a SIGHUP setting),
        # with every statement logged: not in the log, pg_stat_activity, pg_stat_statements.
        entries = ISSUERS + [{"iss": "https://typed.example", "key": TYPED["alter_system"],
                              "alg": "HS256"}]
        su = Session(MAIN)
        watcher = Session(MAIN, user="ea_issuers_stats")
        try:
            pid = su.execute("SELECT pg_backend_pid()").fetchone()[0]
            su.execute("SELECT pg_stat_statements_reset()")
            su.execute("SET log_statement = 'all'")
            su.execute("SET log_min_duration_statement = 0")

            def activity():
                return watcher.execute("SELECT query FROM pg_stat_activity WHERE pid = %s",
                                       pid).fetchone()[0]

            su.execute(f"ALTER SYSTEM SET electric_auth.issuers = '{json.dumps(entries)}'")
            self.assertIn("https://typed.example", (MAIN.data / "postgresql.auto.conf")
                          .read_text(), "the value was accepted (not vacuous)")
            seen = activity()
            self.assertNotIn(TYPED["alter_system"][:logs.SEARCH_PREFIX], seen)
            self.assertIn("hidden by electric_auth", seen)
            su.execute("ALTER SYSTEM RESET electric_auth.issuers")
            set_value = json.dumps([{"iss": "https://typed.example", "key": TYPED["set"],
                                     "alg": "HS256"}])
            with self.assertRaises(psycopg.Error) as raised:
                su.execute(f"SET electric_auth.issuers = '{set_value}'")
            self.assertEqual(raised.exception.sqlstate, "55P02")
            self.assertNotIn(TYPED["set"][:logs.SEARCH_PREFIX], activity())
            config_value = json.dumps([{"iss": "https://typed.example",
                                        "key": TYPED["set_config"], "alg": "HS256"}])
            with self.assertRaises(psycopg.Error) as raised:
                su.execute(f"SELECT set_config('electric_auth.issuers', '{config_value}', false)")
            self.assertEqual(raised.exception.sqlstate, "55P02")
            self.assertNotIn(TYPED["set_config"][:logs.SEARCH_PREFIX], activity())
            stored = "\n".join(r[0] for r in su.execute("SELECT query FROM pg_stat_statements"))
            self.assertIn("electric_auth.issuers", stored, "recorded (not vacuous)")
            logs.assert_no_secret(stored, TYPED.values(), "pg_stat_statements")
            logs.assert_no_secret("\n".join(su.texts()), TYPED.values(), "the messages")
        finally:
            su.close()
            watcher.close()
            with MAIN.connect() as c:  # whatever happened above: nothing left for a reload
                c.execute("ALTER SYSTEM RESET electric_auth.issuers")
        self.assertNotIn("electric_auth.issuers",
                         (MAIN.data / "postgresql.auto.conf").read_text())
        time.sleep(0.2)  # the backend's last lines reach the file
        log = MAIN.log()
        self.assertIn("hidden by electric_auth", log, "statements were logged (not vacuous)")
        logs.assert_no_secret(log, list(TYPED.values()) + [SECRET_H, SECRET_F],
                              "the server log")

    def stats(self):
        with MAIN.connect() as c:
            rows = c.execute("SELECT issuer, entry_point, outcome, reason, count "
                             "FROM electric_auth.stats WHERE datname = current_database()")
            return {tuple(r[:4]): r[4] for r in rows}

    def test_09_stats_and_key_source_have_an_issuer_column(self):
        with MAIN.connect() as c:
            c.execute("SELECT electric_auth.stats_reset()")
        for _ in range(3):
            self.assert_user(Keys.a1.mint(), f"{ISS_A}#alice")
        self.assert_user(Keys.b1.mint(), "b:bob@example.com")
        self.assert_refused(keep(mint_h(iss=ISS_A, aud="aud-a1")), "28000",
                            "Signing algorithm mismatch")
        self.assert_refused(Keys.a1.mint(iss="https://unknown.example"), "28000",
                            "Unknown issuer")
        self.assert_refused(default_token(), "28000", "Unknown issuer")
        self.assert_refused(f_token(f"{ISS_A}#alice"), "28000",
                            "User id is reserved for another issuer")
        self.set_default_issuer(jwt_alg="HS256", jwt_key=DEFAULT_SECRET)
        try:
            self.assert_user(default_token(), "alice")
            self.assert_user(default_token(iss="https://unknown.example"), "alice")
            self.assert_refused(default_token(f"{ISS_A}#alice"), "28000",
                                "User id is reserved for another issuer")
        finally:
            self.set_default_issuer(jwt_key=None, jwt_alg=None)
        self.assertEqual(self.stats(), {
            (ISS_A, "user_id", "accepted", None): 3,
            (ISS_A, "user_id", "refused", "wrong_algorithm"): 1,
            (ISS_B, "user_id", "accepted", None): 1,
            (None, "user_id", "refused", "unknown_issuer"): 2,
            (ISS_F, "user_id", "refused", "reserved_user_id"): 1,
            (None, "user_id", "accepted", None): 2,
            (None, "user_id", "refused", "reserved_user_id"): 1,
        })
        # key_source(): the default source's row, then one per fetched issuer.
        with MAIN.connect() as c:
            c.row_factory = psycopg.rows.dict_row
            rows = c.execute("SELECT * FROM electric_auth.key_source()").fetchall()
        self.assertEqual(len(rows), 5, rows)
        self.assertIsNone(rows[0]["issuer"])
        self.assertEqual(rows[0]["usable_keys"], 0)
        self.assertEqual([r["issuer"] for r in rows[1:]], [ISS_A, ISS_B, ISS_C, ISS_D])
        by_issuer = {r["issuer"]: r for r in rows}
        self.assertEqual(by_issuer[ISS_A]["source"], ISS_A)
        for issuer, url, kids in ((ISS_A, f"{ISS_A}/jwks", ["a1", "a2", "a3"]),
                                  (ISS_B, f"{ISS_B}/jwks", ["b1"]),
                                  (ISS_C, f"{ISS_C}/jwks", ["c-ec", "c-rs"]),
                                  (ISS_D, f"{ISS_B}/d/jwks", ["d1"])):
            with self.subTest(issuer=issuer):
                self.assertEqual(by_issuer[issuer]["jwks_url"], url)
                self.assertEqual(sorted(by_issuer[issuer]["kids"]), kids)
                self.assertEqual(by_issuer[issuer]["usable_keys"], len(kids))
                self.assertTrue(by_issuer[issuer]["worker_running"])
        self.assertNotIn(ISS_H, by_issuer, "an inline key is not a fetched source")
        self.assertNotIn(ISS_F, by_issuer)
        self.assertNotIn(ISS_G, by_issuer)

    def test_09b_an_issuer_added_at_a_reload_has_its_own_source(self):
        # E, fetched from C's provider where nothing is served yet: E's tokens are refused with
        # the configuration error naming E's URL; the others verify as before. Once the
        # provider serves E's keys, E's tokens verify. Removed again: E is no issuer.
        e_url = f"{ISS_C}/e/jwks"
        e_key = SigningKey("e1", iss="https://e.example")
        e_entry = {"iss": "https://e.example", "jwks_url": e_url, "alg": "RS256"}
        a_kids = key_sources(MAIN)[ISS_A]["kids"]
        MAIN.alter_system("electric_auth.issuers", json.dumps(ISSUERS + [e_entry]))
        try:
            result = wait_until(lambda: (r := self.user_id(e_key.mint()))[1] and r,
                                timeout=TIMEOUT + 5, what="E's refusal")
            self.assertEqual(result[1][0], "22023", result)
            self.assertIn(e_url, result[1][1])
            source = wait_until(lambda: (s := key_sources(MAIN).get("https://e.example"))
                                and s["last_failure_reason"] and s,
                                timeout=TIMEOUT + 5, what="E's failed fetch")
            self.assertEqual(source["source"], e_url)
            self.assertEqual(source["usable_keys"], 0)
            self.assertIn("404", source["last_failure_reason"])
            self.assertGreaterEqual(PROVIDERS["C"].requests["/e/jwks"], 1)
            self.verify_all_others()
            self.assertEqual(key_sources(MAIN)[ISS_A]["kids"], a_kids)
            PROVIDERS["C"].routes["/e/jwks"] = json_route(jwks(e_key))
            time.sleep(MIN_REFRESH + 0.3)
            wait_until(lambda: self.user_id(e_key.mint()) == ("https://e.example#alice", None),
                       timeout=TIMEOUT + 10, what="E's token verifying")
        finally:
            MAIN.alter_system("electric_auth.issuers", None)
            PROVIDERS["C"].routes.pop("/e/jwks", None)
        self.assert_refused(e_key.mint(), "28000", "Unknown issuer")
        self.assertNotIn("https://e.example", key_sources(MAIN))
        self.verify_all_others()

    def test_99_no_token_or_key_in_the_log(self):
        log = MAIN.log()
        logs.assert_no_crash(log, "the server log")
        logs.assert_no_secret(log, [SECRET_H, SECRET_F, SECRET_G_TEXT, DEFAULT_SECRET,
                                    BAD_CONFIG_SECRET, *TYPED.values()], "the server log")
        assert_no_signature(log, MINTED, "the server log")
        for key in (Keys.a1, Keys.a2, Keys.b1, Keys.c_rs, Keys.d1):
            self.assertNotIn(key.jwk["n"][:24], log)


# --- PostgreSQL 18 logins: one pg_hba.conf line per issuer -----------------------------------

@unittest.skipIf(MAJOR < 18, "the OAuth validator API is new in PostgreSQL 18")
class OAuthLogins(unittest.TestCase):
    """Two oauth lines in pg_hba.conf, issuer= A for database db_a and issuer= B for db_b,
    delegate_ident_mapping=1: each line takes its issuer's keys and role_claim."""

    @classmethod
    def setUpClass(cls):
        incdir, libdir = (pg_config_value(flag) for flag in ("--includedir", "--libdir"))
        cls.client = scratch_dir(f"{LOGINS.name}-oauth_client")
        subprocess.run(["cc", "-O1", str(ROOT / "tests/oauth/oauth_client.c"), "-o",
                        str(cls.client), f"-I{incdir}", f"-L{libdir}", "-lpq",
                        f"-Wl,-rpath,{libdir}"], check=True)
        serve_a(Keys.a1, Keys.a2)
        serve_b()
        LOGINS.fresh("\n".join(common_conf([A_ENTRY, B_ENTRY]) + [
            "oauth_validator_libraries = 'electric_auth'", "log_connections = on"]))
        try:
            require_the_feature(LOGINS)
            with LOGINS.connect() as c:
                for role in ("app_a", "app_b", "app_other"):
                    c.execute(f"CREATE ROLE {role} LOGIN")
                for db in ("db_a", "db_b"):
                    c.execute(f"CREATE DATABASE {db}")
            for db in ("db_a", "db_b"):
                with LOGINS.connect(dbname=db) as c:
                    c.execute("CREATE EXTENSION electric_auth")
            hba = LOGINS.data / "pg_hba.conf"
            hba.write_text(
                "local all postgres trust\n"
                f'local db_a all oauth issuer="{ISS_A}" scope="openid" '
                "delegate_ident_mapping=1\n"
                f'local db_b all oauth issuer="{ISS_B}" scope="openid" '
                "delegate_ident_mapping=1\n")
            LOGINS.reload()
            wait_for_first_fetches(LOGINS, "AB", dbname="db_a")
        except BaseException:
            LOGINS.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        LOGINS.stop()

    def login(self, token, dbname, user, issuer):
        run = subprocess.run(
            [self.client, f"host={LOGINS.sock} port={LOGINS.port} dbname={dbname} user={user} "
             f"oauth_issuer={issuer} oauth_client_id=electric",
             "SELECT current_user, electric_auth.current_user_id()"],
            capture_output=True, text=True, env=dict(os.environ, EA_TOKEN=token), timeout=60)
        return run.returncode, run.stdout.strip(), run.stderr

    def assert_refused(self, token, dbname, user, issuer, reason):
        before = len(LOGINS.log())
        status, out, err = self.login(token, dbname, user, issuer)
        self.assertEqual(status, 1, out)
        self.assertIn(f'OAuth bearer authentication failed for user "{user}"', err)
        time.sleep(0.2)  # the backend's last lines reach the file
        added = LOGINS.log()[before:]
        self.assertRegex(added, reason)
        assert_no_signature(added, [token], "the log")

    def a_token(self, **claims):
        return Keys.a1.mint(scope="openid", **{"roles": ["app_a"], **claims})

    def b_token(self, **claims):
        return Keys.b1.mint(scope="openid", **{"groups": {"db": ["app_b"]}, **claims})

    def test_10_each_line_takes_its_own_issuers_keys_and_role_claim(self):
        # A's token through A's line, B's through B's: each issuer's user id and role.
        self.assertEqual(self.login(self.a_token(), "db_a", "app_a", ISS_A)[:2],
                         (0, f"app_a\t{ISS_A}#alice"))
        self.assertEqual(self.login(self.b_token(), "db_b", "app_b", ISS_B)[:2],
                         (0, "app_b\tb:bob@example.com"))
        # The other issuer's token on a line is refused (its iss is not the line's issuer).
        self.assert_refused(self.a_token(roles=["app_a", "app_b"], groups={"db": ["app_b"]}),
                            "db_b", "app_b", ISS_B,
                            r"is not the issuer of this pg_hba\.conf line|"
                            r"Invalid \"iss\" claim value|Invalid token signature")
        self.assert_refused(self.b_token(roles=["app_a", "app_b"], groups={"db": ["app_a"]}),
                            "db_a", "app_a", ISS_A,
                            r"is not the issuer of this pg_hba\.conf line|"
                            r"Invalid \"iss\" claim value|Invalid token signature")
        # A's iss signed with B's key, on A's line: A's keys decide.
        self.assert_refused(Keys.b1.mint(iss=ISS_A, aud="aud-a1", scope="openid",
                                         roles=["app_a"]),
                            "db_a", "app_a", ISS_A, "Invalid token signature")
        # Each line's role claim is its issuer's pointer: A's roles at /roles, B's at /groups/db.
        self.assert_refused(self.a_token(roles=None, groups={"db": ["app_a"]}),
                            "db_a", "app_a", ISS_A, r'"/?roles"')
        self.assert_refused(self.a_token(roles=["app_other"]), "db_a", "app_a", ISS_A,
                            r'does not name role "app_a"')
        self.assert_refused(self.b_token(groups=None, roles=["app_b"]),
                            "db_b", "app_b", ISS_B, r'"/?groups(/db)?"')
        self.assertEqual(self.login(self.a_token(roles=["app_other", "app_a"]), "db_a", "app_a",
                                    ISS_A)[:2], (0, f"app_a\t{ISS_A}#alice"))
        log = LOGINS.log()
        logs.assert_no_crash(log, "the login cluster's log")
        assert_no_signature(log, MINTED, "the login cluster's log")


class HotStandby(unittest.TestCase):
    """A streaming standby (pg_basebackup of a primary with electric_auth.issuers) verifies
    each listed issuer's tokens: an inline key's at once, a fetched source's with keys it
    fetches for itself (its own key_source() row and request), and a rotation at one issuer is
    absorbed on the standby by its own unknown-kid refresh."""

    PRIMARY = Cluster("ea-issuers-primary", 54469)
    STANDBY = Cluster("ea-issuers-standby", 54470)

    @classmethod
    def setUpClass(cls):
        entries = [A_ENTRY, {"iss": ISS_H, "key": SECRET_H, "alg": "HS256",
                             "user_id_claim": "/https:~1~1first-party.example~1claims/uid"}]
        serve_a(Keys.a1)
        cls.PRIMARY.fresh("\n".join(common_conf(entries)))
        try:
            require_the_feature(cls.PRIMARY)
            with cls.PRIMARY.connect() as c:
                c.execute("CREATE EXTENSION electric_auth")
            wait_for_first_fetches(cls.PRIMARY, "A")
            cls.STANDBY.create_standby_of(cls.PRIMARY)
            cls.STANDBY.start()
        except BaseException:
            cls.STANDBY.stop()
            cls.PRIMARY.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.STANDBY.stop()
        cls.PRIMARY.stop()
        serve_a(Keys.a1)

    def test_11_the_standby_verifies_every_issuer_and_fetches_for_itself(self):
        with self.STANDBY.connect() as c:
            self.assertTrue(c.execute("SELECT pg_is_in_recovery()").fetchone()[0])
        self.assertEqual(user_id(self.STANDBY, h_token()), (f"{ISS_H}#u-42", None))
        before = PROVIDERS["A"].requests.get("/jwks", 0)
        row = wait_until(lambda: (r := key_sources(self.STANDBY).get(ISS_A)) and
                         r["last_success"] and r, what="the standby's own fetch of A's keys")
        self.assertEqual((row["kids"], row["setting"]), (["a1"], "electric_auth.issuers[0].oidc_issuer"))
        self.assertEqual(user_id(self.STANDBY, Keys.a1.mint()), (f"{ISS_A}#alice", None))
        # A rotates: the standby's own refresh (one more request) takes the new key.
        time.sleep(MIN_REFRESH + 0.3)
        serve_a(Keys.a1, Keys.a2)
        asked = PROVIDERS["A"].requests.get("/jwks", 0)
        self.assertGreaterEqual(asked, before)
        self.assertEqual(user_id(self.STANDBY, Keys.a2.mint()), (f"{ISS_A}#alice", None))
        self.assertEqual(PROVIDERS["A"].requests.get("/jwks", 0), asked + 1)
        self.assertEqual(sorted(key_sources(self.STANDBY)[ISS_A]["kids"]), ["a1", "a2"])
        # A token of another issuer signed with A's key is refused there too.
        self.assertEqual(user_id(self.STANDBY, Keys.a1.mint(iss=ISS_H)),
                         (None, ("28000", "Signing algorithm mismatch")))


if __name__ == "__main__":
    main()
