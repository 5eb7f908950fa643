"""Keys from an identity provider (electric_auth.oidc_issuer / jwks_url), against a real HTTPS
server on loopback with a CA and certificates this test generates (the test library's
electric_auth_test.provider: Python's http.server + ssl, the `cryptography` package), tokens
minted by PyJWT (and node's jose where installed).

What it proves, on one preloaded cluster: discovery -> JWKS -> tokens verify; a provider's
rotation is absorbed without a refused client (unknown-kid refresh); a flood of random kids costs
the provider at most one request per jwks_min_refresh_interval; hostile providers (invalid JSON,
10 MiB, a trickling body, a redirect to http://, a certificate for another name or from an
untrusted CA, an issuer that differs, 10,000 keys, keys of the wrong type, not JSON) each keep the
last good set and log their reason once; a request or a hanging provider never delays user_id()
beyond the wait; the provider down keeps the last good set, a restart while down verifies from the
persisted file (mode 0600), past jwks_max_stale tokens are refused with the stale message; a hot
standby made by pg_basebackup fetches for itself (its own requests, its own cache file); no
token or key reaches the log. And without shared_preload_libraries, jwks_url is refused.

Clusters ea-jwks-* on base ports 54420, 54424, 54426, 54427 and the HTTPS providers on base
ports 54453-54455 (tests/lib adds 100 per major above 15, to these too). Run by
scripts/test_major.sh on every major; alone: python3 tests/security/test_jwks.py --major NN
"""

import base64
import contextlib
import datetime
import json
import os
import pathlib
import stat
import subprocess
import sys
import threading
import time
import unittest
import uuid

import jwt
import psycopg

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
from electric_auth_test import ROOT, main, scratch_dir, wait_until  # noqa: E402
from electric_auth_test import provider as idp  # noqa: E402
from electric_auth_test.postgres import (OLDEST_MAJOR, PORT_STRIDE, Cluster,  # noqa: E402
                                         pg_config_value, server_major)
from electric_auth_test.provider import Provider, json_route, jwks  # noqa: E402

MAJOR = server_major()
# The preloaded cluster most tests share, and one without shared_preload_libraries.
JWKS = Cluster("ea-jwks", 54420)
PLAIN = Cluster("ea-jwks-nopreload", 54424, preload="")
# One HTTPS port per major for the provider, one with a certificate for another name, one with a
# certificate from a CA the server does not trust (base ports, shifted per major as clusters').
HTTPS_PORT = 54453 + PORT_STRIDE * (MAJOR - OLDEST_MAJOR)
WRONG_NAME_PORT, ROGUE_CA_PORT = HTTPS_PORT + 1, HTTPS_PORT + 2
ISSUER = f"https://localhost:{HTTPS_PORT}"
TLS_DIR = scratch_dir(f"ea-jwks-pg{MAJOR}-tls")
MIN_REFRESH = 3  # electric_auth.jwks_min_refresh_interval in this cluster, seconds
TIMEOUT = 2  # electric_auth.jwks_timeout, seconds
MINTED = []  # every token this test made, to search the log for


def make_tls():
    """The provider's CA (TLS_DIR/ca.pem) and certificates: good, wrong_name, rogue."""
    return idp.make_tls(TLS_DIR, label="ea-jwks")


def SigningKey(kid, **options):  # noqa: N802 (a class to its callers)
    """An RS256 key (or as `options` say) whose tokens are kept in MINTED, for the log search
    at the end."""
    return idp.SigningKey(kid, minted=MINTED, **options)


# --- The provider's documents ---------------------------------------------------------------------

def discovery(issuer=ISSUER, jwks_uri=f"{ISSUER}/jwks"):
    return json.dumps({"issuer": issuer, "jwks_uri": jwks_uri,
                       "authorization_endpoint": f"{ISSUER}/authorize"}).encode()


def huge_body(h):
    size = 10 * 1024 * 1024
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(size))
    h.end_headers()
    chunk = b" " * 65536
    for _ in range(size // len(chunk)):
        h.wfile.write(chunk)


def trickle(h):
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", "1000")
    h.end_headers()
    for _ in range(30):
        h.wfile.write(b" ")
        h.wfile.flush()
        time.sleep(1)


def hang(h):
    time.sleep(20)


def redirect_to_http(h):
    h.send_response(302)
    h.send_header("Location", f"http://localhost:{HTTPS_PORT}/jwks")
    h.send_header("Content-Length", "0")
    h.end_headers()


# --- The cluster ------------------------------------------------------------------------------------

class Jwks(unittest.TestCase):
    """One cluster and one provider; the tests run in their numbered order and build on it."""

    @classmethod
    def setUpClass(cls):
        tls = make_tls()
        cls.k1, cls.k2, cls.k3 = SigningKey("k1"), SigningKey("k2"), SigningKey("k3")
        cls.provider = Provider(HTTPS_PORT, tls["good"])
        cls.wrong_name = Provider(WRONG_NAME_PORT, tls["wrong_name"])
        cls.rogue = Provider(ROGUE_CA_PORT, tls["rogue"])
        cls.serve_good([cls.k1])
        for p in (cls.provider, cls.wrong_name, cls.rogue):
            p.start()
        cls.conf = "\n".join([
            "electric_auth.jwt_alg = 'RS256'",
            f"electric_auth.oidc_issuer = '{ISSUER}'",
            f"electric_auth.jwks_ca_file = '{TLS_DIR}/ca.pem'",
            f"electric_auth.jwks_timeout = '{TIMEOUT}s'",
            f"electric_auth.jwks_min_refresh_interval = '{MIN_REFRESH}s'",
        ] + (["oauth_validator_libraries = 'electric_auth'"] if MAJOR >= 18 else []))
        JWKS.fresh(cls.conf)
        with JWKS.connect() as c:
            c.execute("CREATE EXTENSION electric_auth")

    @classmethod
    def tearDownClass(cls):
        JWKS.stop()
        for p in (cls.provider, cls.wrong_name, cls.rogue):
            p.stop()

    @classmethod
    def serve_good(cls, keys, jwks_uri=f"{ISSUER}/jwks"):
        cls.provider.routes = {
            "/.well-known/openid-configuration": json_route(discovery(jwks_uri=jwks_uri)),
            "/jwks": json_route(jwks(*keys), "application/jwk-set+json"),
        }
        for p in (cls.wrong_name, cls.rogue):
            p.routes = {"/jwks": json_route(jwks(*keys))}

    # helpers

    def source(self):
        with JWKS.connect() as c:
            c.row_factory = psycopg.rows.dict_row
            return c.execute("SELECT * FROM electric_auth.key_source()").fetchone()

    def user_id(self, token):
        """(user id, None) or (None, (sqlstate, message))."""
        with JWKS.connect() as c:
            try:
                return c.execute("SELECT electric_auth.user_id(%s)", (token,)).fetchone()[0], None
            except psycopg.Error as e:
                return None, (e.sqlstate, e.diag.message_primary)

    def assert_verifies(self, token, user="alice"):
        self.assertEqual(self.user_id(token), (user, None))

    def log(self):
        return JWKS.log()

    def random_kid(self):
        return self.k1.mint(kid=f"junk-{uuid.uuid4()}")

    def wait_for_failure(self, reason):
        return wait_until(lambda: (self.source()["last_failure_reason"] or "").find(reason) >= 0
                          and self.source(), timeout=TIMEOUT + 10, what=f"failure {reason!r}")

    # tests

    def test_01_discovery_then_jwks_then_tokens_verify(self):
        src = wait_until(lambda: (s := self.source())["usable_keys"] == 1 and s,
                         what="the first fetch")
        self.assertEqual(src["setting"], "electric_auth.oidc_issuer")
        self.assertEqual(src["source"], ISSUER)
        self.assertEqual(src["jwks_url"], f"{ISSUER}/jwks")
        self.assertEqual(src["kids"], ["k1"])
        self.assertFalse(src["stale"])
        self.assertIsNotNone(src["last_success"])
        self.assertGreater(src["next_refresh"], src["last_success"])
        self.assertGreaterEqual(self.provider.requests["/.well-known/openid-configuration"], 1)
        self.assert_verifies(self.k1.mint())
        with JWKS.connect() as c:
            payload = c.execute("SELECT electric_auth.verify(%s)", (self.k1.mint(),)).fetchone()[0]
        self.assertEqual(payload["sub"], "alice")
        jose_token = self.k1.mint_with_jose()
        if jose_token is None:
            self.skipTest("node's jose is not installed (npm ci in tests/lib/node)")
        self.assert_verifies(jose_token, "jose-user")

    def test_02_rotation_is_absorbed_without_a_refused_client(self):
        before = self.source()["generation"]
        self.serve_good([self.k1, self.k2])
        # The new key is used before the next scheduled refresh (5 min away): the unknown kid
        # wakes the worker and the backend waits for it.
        started = time.monotonic()
        self.assert_verifies(self.k2.mint())
        self.assertLess(time.monotonic() - started, TIMEOUT + 1)
        self.assertGreater(self.source()["generation"], before)
        self.assert_verifies(self.k1.mint())
        # The provider retires k1; the next refresh (woken here by an unknown kid after the
        # minimum interval) drops it.
        self.serve_good([self.k2])
        time.sleep(MIN_REFRESH + 0.2)
        self.assertEqual(self.user_id(self.random_kid())[1][0], "28000")
        wait_until(lambda: self.source()["kids"] == ["k2"], what="k1 retired")
        self.assert_verifies(self.k2.mint())
        self.assertEqual(self.user_id(self.k1.mint())[1][0], "28000")

    def test_03_a_flood_of_random_kids_costs_one_request_per_interval(self):
        time.sleep(MIN_REFRESH + 0.2)
        start_requests = self.provider.requests["/jwks"]
        refusals, slowest = [], [0.0]
        stop_at = time.monotonic() + 2 * MIN_REFRESH + 0.5

        def flood():
            with JWKS.connect() as c:
                while time.monotonic() < stop_at:
                    t = time.monotonic()
                    try:
                        c.execute("SELECT electric_auth.user_id(%s)", (self.random_kid(),))
                    except psycopg.Error as e:
                        refusals.append(e.sqlstate)
                    slowest[0] = max(slowest[0], time.monotonic() - t)

        threads = [threading.Thread(target=flood) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        fetched = self.provider.requests["/jwks"] - start_requests
        self.assertGreater(len(refusals), 20)
        self.assertEqual(set(refusals), {"28000"})
        # 6.5 s with a 3 s minimum interval: at most three refreshes.
        self.assertGreaterEqual(fetched, 1)
        self.assertLessEqual(fetched, 3, f"{fetched} fetches for {len(refusals)} tokens")
        self.assertLess(slowest[0], TIMEOUT + 1)

    HOSTILE = [
        # (name, route changes, reason in key_source() and the log)
        ("invalid JSON", {"/jwks": json_route(b"{\"keys\": [")}, "not valid JSON"),
        ("10 MiB body", {"/jwks": huge_body}, "larger than 1048576 bytes"),
        ("trickling body", {"/jwks": trickle}, "no complete answer within"),
        ("redirect to http://", {"/jwks": redirect_to_http}, "not https"),
        ("not JSON", {"/jwks": json_route(b"<html></html>", "text/html")}, "is not JSON"),
        ("certificate for another name", {"/.well-known/openid-configuration": json_route(
            discovery(jwks_uri=f"https://localhost:{WRONG_NAME_PORT}/jwks"))},
         "certificate not valid for name"),
        ("untrusted CA", {"/.well-known/openid-configuration": json_route(
            discovery(jwks_uri=f"https://localhost:{ROGUE_CA_PORT}/jwks"))}, "UnknownIssuer"),
        ("issuer differs", {"/.well-known/openid-configuration": json_route(
            discovery(issuer=f"{ISSUER}/other"))}, "§4.3"),
        ("10,000 keys", {"/jwks": json_route(lambda: json.dumps(
            {"keys": [{"kty": "RSA", "kid": f"x{i}", "n": "AQAB", "e": "AQAB"}
                      for i in range(10_000)]}).encode())}, "more than 100"),
        ("keys of the wrong type", {"/jwks": json_route(json.dumps({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "ec",
             "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
             "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}).encode())},
         "no key is usable"),
    ]

    def test_04_a_hostile_provider_keeps_the_last_good_set(self):
        good = self.k2.mint()
        for name, routes, reason in self.HOSTILE:
            with self.subTest(name):
                self.serve_good([self.k2])
                self.provider.routes.update(routes)
                time.sleep(MIN_REFRESH + 0.2)
                started = time.monotonic()
                self.assertEqual(self.user_id(self.random_kid())[1][0], "28000")
                self.assertLess(time.monotonic() - started, TIMEOUT + 1, "the wait is bounded")
                src = self.wait_for_failure(reason)
                self.assertEqual(src["kids"], ["k2"], "the last good set stays")
                self.assert_verifies(good)
                if name == "invalid JSON":
                    # The same failure again: not logged again.
                    time.sleep(MIN_REFRESH + 0.2)
                    attempts_before = self.provider.requests["/jwks"]
                    self.user_id(self.random_kid())
                    wait_until(lambda: self.provider.requests["/jwks"] > attempts_before,
                               what="a second attempt")
                    time.sleep(0.5)
                logged = [line for line in self.log().splitlines()
                          if "could not refresh its keys" in line and reason in line]
                self.assertEqual(len(logged), 1, logged)
        self.serve_good([self.k2])
        time.sleep(MIN_REFRESH + 0.2)
        self.user_id(self.random_kid())
        wait_until(lambda: (s := self.source())["last_success"] > s["last_failure"],
                   what="recovery")

    def test_05_no_fetch_on_the_request_path_and_a_hanging_provider_delays_nothing(self):
        token = self.k2.mint()
        before = dict(self.provider.requests)
        started = time.monotonic()
        with JWKS.connect() as c:
            for _ in range(200):
                self.assertEqual(
                    c.execute("SELECT electric_auth.user_id(%s)", (token,)).fetchone()[0],
                    "alice")
        elapsed = time.monotonic() - started
        self.assertEqual(dict(self.provider.requests), before, "no request from a backend")
        self.provider.routes["/jwks"] = hang
        time.sleep(MIN_REFRESH + 0.2)
        # An unknown kid wakes the worker, which then hangs on the provider: meanwhile known
        # keys still verify at once, and the unknown kid is refused within the configured wait.
        unknown = {}

        def refused_after():
            started = time.monotonic()
            unknown["result"] = self.user_id(self.random_kid())
            unknown["waited"] = time.monotonic() - started

        waiting = threading.Thread(target=refused_after)
        waiting.start()
        time.sleep(0.5)
        started = time.monotonic()
        for _ in range(20):
            self.assert_verifies(token)
        self.assertLess(time.monotonic() - started, max(1.0, 20 * elapsed / 200 * 10))
        self.assertTrue(waiting.is_alive() or unknown["waited"] > 1.5,
                        "the worker was hanging meanwhile")
        waiting.join()
        self.assertEqual(unknown["result"][1][0], "28000")
        self.assertLess(unknown["waited"], TIMEOUT + 1)
        self.wait_for_failure("no complete answer within")
        self.serve_good([self.k2])

    def test_06_provider_down_restart_from_the_persisted_set_then_stale(self):
        token = self.k2.mint()
        self.provider.stop()
        try:
            time.sleep(MIN_REFRESH + 0.2)
            self.assertEqual(self.user_id(self.random_kid())[1][0], "28000")
            self.wait_for_failure("Connection refused")
            self.assert_verifies(token)
            cache = JWKS.data / "electric_auth_jwks_cache.json"
            self.assertEqual(stat.S_IMODE(cache.stat().st_mode), 0o600)
            self.assertEqual(json.loads(json.loads(cache.read_text())["document"]),
                             json.loads(jwks(self.k2)))
            # Restart while the provider is down: the persisted set is loaded before any fetch.
            JWKS.stop()
            JWKS.start()
            src = wait_until(lambda: (s := self.source())["usable_keys"] == 1 and s,
                             what="the persisted set")
            self.assertTrue(src["from_cache_file"])
            self.assert_verifies(token)
            # Past jwks_max_stale: refused, saying why.
            with JWKS.connect() as c:
                c.execute("ALTER SYSTEM SET electric_auth.jwks_max_stale = '1s'")
                c.execute("SELECT pg_reload_conf()")
            time.sleep(2.5)
            result = self.user_id(token)
            self.assertEqual(result[1][0], "22023", result)
            self.assertIn("stale", result[1][1])
            self.assertIn("electric_auth.jwks_max_stale", result[1][1])
            self.assertTrue(self.source()["stale"])
        finally:
            with JWKS.connect() as c:
                c.execute("ALTER SYSTEM RESET electric_auth.jwks_max_stale")
                c.execute("SELECT pg_reload_conf()")
            self.provider.start()
        time.sleep(0.5)
        self.assert_verifies(token)

    def test_07_both_sources_are_a_configuration_error(self):
        with JWKS.connect() as c:
            c.execute(f"ALTER SYSTEM SET electric_auth.jwks_url = '{ISSUER}/jwks'")
            c.execute("SELECT pg_reload_conf()")
        try:
            time.sleep(0.5)
            result = self.user_id(self.k2.mint())
            self.assertEqual(result[1][0], "22023", result)
            self.assertIn("both set", result[1][1])
        finally:
            with JWKS.connect() as c:
                c.execute("ALTER SYSTEM RESET electric_auth.jwks_url")
                c.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)
        wait_until(lambda: self.user_id(self.k2.mint())[0] == "alice", what="recovery")

    def test_08_key_source_is_for_superusers_and_pg_monitor(self):
        with JWKS.connect() as c:
            c.execute("DROP ROLE IF EXISTS ea_jwks_app, ea_jwks_monitor")
            c.execute("CREATE ROLE ea_jwks_app LOGIN")
            c.execute("CREATE ROLE ea_jwks_monitor LOGIN IN ROLE pg_monitor")
        with JWKS.connect(user="ea_jwks_monitor") as c:
            self.assertEqual(c.execute("SELECT kids FROM electric_auth.key_source()")
                             .fetchone()[0], ["k2"])
        with JWKS.connect(user="ea_jwks_app") as c:
            with self.assertRaises(psycopg.errors.InsufficientPrivilege):
                c.execute("SELECT * FROM electric_auth.key_source()")

    @unittest.skipIf(MAJOR < 18, "the OAuth validator API is new in PostgreSQL 18")
    def test_10_oauth_logins_use_the_fetched_keys_and_never_wait_on_the_network(self):
        incdir, libdir = (pg_config_value(flag) for flag in ("--includedir", "--libdir"))
        client = scratch_dir(f"{JWKS.name}-oauth_client")
        subprocess.run(["cc", "-O1", str(ROOT / "tests/oauth/oauth_client.c"), "-o", str(client),
                        f"-I{incdir}", f"-L{libdir}", "-lpq", f"-Wl,-rpath,{libdir}"],
                       check=True)
        data = JWKS.data
        hba = (data / "pg_hba.conf").read_text()
        with JWKS.connect() as c:
            c.execute("DROP ROLE IF EXISTS app_alice")
            c.execute("CREATE ROLE app_alice LOGIN")
        (data / "pg_hba.conf").write_text(
            f'local all app_alice oauth issuer="{ISSUER}" scope="openid" map=electric\n' + hba)
        (data / "pg_ident.conf").write_text("electric alice app_alice\n")
        with JWKS.connect() as c:
            c.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)

        def login(token):
            started = time.monotonic()
            run = subprocess.run(
                [client, f"host={JWKS.sock} port={JWKS.port} dbname=postgres user=app_alice "
                 f"oauth_issuer={ISSUER} oauth_client_id=electric",
                 "SELECT current_user, electric_auth.current_user_id()"],
                capture_output=True, text=True, env=dict(os.environ, EA_TOKEN=token),
                timeout=60)
            return run.returncode, run.stdout.strip(), run.stderr, time.monotonic() - started

        def oauth_token(key):
            return key.mint(iss=ISSUER, scope="openid")

        try:
            status, out, err, _ = login(oauth_token(self.k2))
            self.assertEqual((status, out), (0, "app_alice\talice"), err)
            # The provider rotates: a login with the new key is absorbed by the unknown-kid
            # refresh, without a refused connection.
            self.serve_good([self.k2, self.k3])
            time.sleep(MIN_REFRESH + 0.2)
            status, out, err, _ = login(oauth_token(self.k3))
            self.assertEqual((status, out), (0, "app_alice\talice"), err)
            # A hanging provider: a login with an unknown kid wakes the worker, which then hangs
            # on the provider; meanwhile a login with a known key is not delayed, and the
            # unknown kid is refused after at most the configured wait.
            self.provider.routes["/jwks"] = hang
            time.sleep(MIN_REFRESH + 0.2)
            unknown = {}
            waiting = threading.Thread(target=lambda: unknown.update(result=login(
                self.k1.mint(iss=ISSUER, scope="openid", kid="k-unknown"))))
            waiting.start()
            time.sleep(0.5)
            status, out, err, elapsed = login(oauth_token(self.k3))
            self.assertEqual(status, 0, err)
            self.assertLess(elapsed, 1.5)
            waiting.join()
            status, out, err, elapsed = unknown["result"]
            self.assertEqual(status, 1, out)
            self.assertLess(elapsed, TIMEOUT + 1.5)
        finally:
            (data / "pg_hba.conf").write_text(hba)
            with JWKS.connect() as c:
                c.execute("SELECT pg_reload_conf()")
            self.serve_good([self.k2])

    def test_11_the_session_identity_is_verified_again_with_fetched_keys_in_parallel_workers(self):
        with JWKS.connect() as c:
            c.execute("BEGIN")
            self.assertEqual(c.execute("SELECT electric_auth.authenticate(%s)",
                                       (self.k2.mint(),)).fetchone()[0], "alice")
            # Postgres 16 renamed force_parallel_mode to debug_parallel_query.
            force = "force_parallel_mode" if MAJOR < 16 else "debug_parallel_query"
            c.execute(f"SET LOCAL {force} = on")
            c.execute("SET LOCAL parallel_setup_cost = 0")
            plan = "\n".join(r[0] for r in c.execute(
                "EXPLAIN (COSTS OFF) SELECT electric_auth.current_user_id()"))
            self.assertIn("Single Copy", plan)
            self.assertEqual(c.execute("SELECT electric_auth.current_user_id()").fetchone()[0],
                             "alice")
            c.execute("COMMIT")

    def test_12_a_jwks_url_without_discovery_and_the_worker_follows_a_reload(self):
        with self.jwks_url_instead("/jwks"):
            src = wait_until(lambda: (s := self.source())["setting"] == "electric_auth.jwks_url"
                             and s["usable_keys"] == 1 and s, what="the jwks_url source")
            self.assertEqual(src["jwks_url"], f"{ISSUER}/jwks")
            self.assert_verifies(self.k2.mint())
        self.assert_verifies(self.k2.mint())

    @contextlib.contextmanager
    def jwks_url_instead(self, path, timeout=15, **settings):
        """electric_auth.jwks_url = ISSUER + `path` instead of discovery, with `settings` (e.g.
        jwt_alg) too, for the block; then back to discovery, once its key is in use again."""
        assignments = {"oidc_issuer": "", "jwks_url": f"{ISSUER}{path}", **settings}
        with JWKS.connect() as c:
            for name, value in assignments.items():
                c.execute(f"ALTER SYSTEM SET electric_auth.{name} = '{value}'")
            c.execute("SELECT pg_reload_conf()")
        try:
            yield
        finally:
            with JWKS.connect() as c:
                for name in assignments:
                    c.execute(f"ALTER SYSTEM RESET electric_auth.{name}")
                c.execute("SELECT pg_reload_conf()")
        wait_until(lambda: (s := self.source())["setting"] == "electric_auth.oidc_issuer"
                   and s["usable_keys"] == 1, timeout=timeout, what="back to discovery")

    def set_and_reload(self, setting, value=None):
        with JWKS.connect() as c:
            if value is None:
                c.execute(f"ALTER SYSTEM RESET {setting}")
            else:
                c.execute(f"ALTER SYSTEM SET {setting} = '{value}'")
            c.execute("SELECT pg_reload_conf()")

    def test_13_a_changed_jwt_alg_rechecks_the_stored_document_at_once(self):
        # The provider hangs, and the next scheduled refresh is minutes away: only a re-check of
        # the stored document can change what key_source() reports.
        self.assertEqual(self.source()["kids"], ["k2"])
        self.provider.routes = {path: hang for path in self.provider.routes}
        try:
            self.set_and_reload("electric_auth.jwt_alg", "ES256")
            src = wait_until(lambda: (s := self.source())["usable_keys"] == 0 and s, timeout=5,
                             what="the stored RSA keys re-checked for ES256")
            self.assertEqual(src["kids"], [])
            self.assertIn("ES256", src["last_failure_reason"])
            self.set_and_reload("electric_auth.jwt_alg")
            src = wait_until(lambda: (s := self.source())["usable_keys"] == 1 and s, timeout=5,
                             what="the stored keys re-checked for RS256")
            self.assertEqual(src["kids"], ["k2"])
            self.assert_verifies(self.k2.mint())
        finally:
            self.set_and_reload("electric_auth.jwt_alg")
            self.serve_good([self.k2])

    def test_14_a_changed_refresh_interval_takes_effect_at_the_reload(self):
        def until_next():
            return (self.source()["next_refresh"]
                    - datetime.datetime.now(datetime.timezone.utc)).total_seconds()

        self.assertGreater(until_next(), 90)  # the default 5 min, from the last success
        try:
            self.set_and_reload("electric_auth.jwks_refresh_interval", "1min")
            wait_until(lambda: until_next() <= 60, timeout=5,
                       what="the next refresh rescheduled with 1 min")
            self.set_and_reload("electric_auth.jwks_refresh_interval")
            wait_until(lambda: until_next() > 90, timeout=5,
                       what="the next refresh rescheduled with 5 min")
        finally:
            self.set_and_reload("electric_auth.jwks_refresh_interval")

    def test_15_a_shared_secret_published_at_the_url_is_never_a_key(self):
        # A JWKS URL is public: an `oct` key served there would let anyone who reads it sign
        # tokens for any user. With jwt_alg = HS256 and no inline secret, a token signed with
        # the published secret must be refused, and key_source() must say why.
        secret = os.urandom(32)
        oct_key = {"kty": "oct", "kid": "published", "alg": "HS256", "use": "sig",
                   "k": base64.urlsafe_b64encode(secret).rstrip(b"=").decode()}
        self.provider.routes["/published"] = json_route(json.dumps({"keys": [oct_key]}).encode())
        token = jwt.encode({"sub": "mallory", "iat": int(time.time()),
                            "exp": int(time.time()) + 600}, secret, algorithm="HS256",
                           headers={"kid": "published"})
        MINTED.append(token)
        # A new URL is fetched at the reload.
        with self.jwks_url_instead("/published", timeout=TIMEOUT + 10, jwt_alg="HS256"):
            # The worker has judged the new document: it took it, or it said why not.
            src = wait_until(lambda: (s := self.source())["source"] == f"{ISSUER}/published"
                             and (s["usable_keys"] or s["last_failure_reason"]) and s,
                             timeout=TIMEOUT + 10, what="the document at the new URL judged")
            user, error = self.user_id(token)
            self.assertIsNone(user, "a token signed with a published secret was accepted")
            self.assertEqual(error[0], "22023", error)
            self.assertEqual((src["usable_keys"], src["kids"]), (0, []))
            self.assertIn("shared secret", src["last_failure_reason"])
        self.assert_verifies(self.k2.mint())

    def test_16_a_retired_fetched_key_ends_the_identities_it_made(self):
        # Found by the red team: a session identity made with a fetched key stayed in force
        # after the provider retired the key (the usual answer to a leaked key), while new
        # checks of the same token were refused. It must end as it does for an inline key.
        leaked = SigningKey("leaked")
        self.serve_good([self.k2, leaked])
        token = leaked.mint(sub="alice", exp=int(time.time()) + 10 * 365 * 86400)
        self.set_and_reload("electric_auth.session_scope", "allow")
        try:
            time.sleep(MIN_REFRESH + 0.5)  # past the last wake-up's minimum interval
            self.assert_verifies(token)  # an unknown kid: the worker fetches, the key is found
            with JWKS.connect(user="ea_jwks_app") as held:
                self.assertEqual(held.execute("SELECT electric_auth.authenticate(%s, 'session')",
                                              (token,)).fetchone()[0], "alice")
                self.serve_good([self.k2])  # the provider retires the leaked key
                time.sleep(MIN_REFRESH + 0.5)  # past the last wake-up's minimum interval
                self.user_id(self.random_kid())  # wakes the worker
                wait_until(lambda: self.source()["kids"] == ["k2"], timeout=TIMEOUT + 10,
                           what="the leaked key retired")
                self.assertEqual(self.user_id(token)[1][0], "28000", "new checks refuse it")
                with self.assertRaises(psycopg.Error) as refused:
                    held.execute("SELECT electric_auth.current_user_id()").fetchone()
                self.assertEqual(refused.exception.sqlstate, "28000")
        finally:
            self.set_and_reload("electric_auth.session_scope")
            self.serve_good([self.k2])

    def test_17_a_new_kid_during_a_fetch_that_began_before_it_waits_for_the_next(self):
        # Found by the red team: a wake-up made while a fetch was under way was taken as
        # answered by that fetch, which began before the provider published the new key, so
        # the first token with the new kid was refused. It must wait for a fetch that began
        # after it. Here the fetch under way is the one a new jwks_url starts, made slow.
        new_key = SigningKey("k-during")

        def slow(h):  # answers, 1.5 s late, what the provider had when the request came
            body = jwks(self.k2)
            time.sleep(1.5)
            idp.send(h, body)

        self.provider.routes["/slow"] = slow
        time.sleep(MIN_REFRESH + 0.5)  # past the last wake-up's minimum interval
        with self.jwks_url_instead("/slow", timeout=TIMEOUT + 10):
            wait_until(lambda: self.provider.requests["/slow"] == 1, timeout=5,
                       what="the fetch of the new URL under way")
            self.provider.routes["/slow"] = json_route(jwks(self.k2, new_key))  # published now
            self.assert_verifies(new_key.mint())
            self.assertEqual(self.provider.requests["/slow"], 2, "one more fetch, no more")

    def test_18_a_retirement_landing_during_authenticate_is_enforced(self):
        # Found by the second red team: authenticate() read what the identity was verified
        # under AFTER verifying, so a retirement landing in between was taken as checked and the
        # identity kept. A race: a tight loop of authenticate() while the worker fetches the
        # retirement; each trial caught it about one time in four before the fix.
        leaked = SigningKey("leaked-race")
        token = leaked.mint(sub="alice", exp=int(time.time()) + 10 * 365 * 86400)
        batch = f"BEGIN; SELECT electric_auth.authenticate('{token}', 'session'); COMMIT; " * 200
        self.set_and_reload("electric_auth.session_scope", "allow")
        try:
            for trial in range(5):
                self.serve_good([self.k2, leaked])
                time.sleep(MIN_REFRESH + 0.3)
                wait_until(lambda: self.user_id(token)[0] == "alice", timeout=TIMEOUT + 10,
                           what="the leaked key published")
                self.serve_good([self.k2])  # the provider retires it
                with JWKS.connect(user="ea_jwks_app",
                                  cursor_factory=psycopg.ClientCursor) as held:
                    stop = threading.Event()

                    def retire():
                        time.sleep(0.2)
                        while not stop.is_set() and self.source()["kids"] != ["k2"]:
                            self.user_id(self.random_kid())  # wakes the worker
                            time.sleep(0.5)

                    waker = threading.Thread(target=retire)
                    waker.start()
                    try:
                        while True:  # a batch stops at its first refusal
                            held.execute(batch)
                    except psycopg.Error:
                        held.execute("ROLLBACK")
                    finally:
                        stop.set()
                        waker.join()
                    self.assertEqual(self.user_id(token)[1][0], "28000")
                    with self.assertRaises(psycopg.Error, msg=f"trial {trial}: identity kept"):
                        held.execute("SELECT electric_auth.current_user_id()").fetchone()
        finally:
            self.set_and_reload("electric_auth.session_scope")
            self.serve_good([self.k2])

    # --- Hardening round 4 (each failed on 0.3.0) ---------------------------------------------

    def wait_for_success_since(self, moment):
        return wait_until(lambda: (s := self.source())["last_success"] is not None
                          and s["last_success"] >= moment and s,
                          timeout=TIMEOUT + 10, what="a successful refresh")

    def test_19_switching_jwt_alg_fetches_keys_for_it(self):
        # 0.3.0: the stored document holds only RSA keys; the provider publishes an EC key and
        # jwt_alg becomes ES256. Every token got 22023 "not usable" until the next scheduled
        # refresh (minutes away): an unusable stored set did not wake the worker.
        ec_key = SigningKey("ec-new", alg="ES256")
        self.assertEqual(self.source()["kids"], ["k2"])
        self.serve_good([self.k2, ec_key])
        time.sleep(MIN_REFRESH + 0.3)  # past the last wake-up's minimum interval
        try:
            self.set_and_reload("electric_auth.jwt_alg", "ES256")
            wait_until(lambda: self.source()["usable_keys"] == 0, timeout=5,
                       what="the stored RSA keys re-checked for ES256")
            started = time.monotonic()
            self.assert_verifies(ec_key.mint())
            self.assertLess(time.monotonic() - started, TIMEOUT + 1)
            self.assertEqual(self.source()["kids"], ["ec-new"])
        finally:
            self.set_and_reload("electric_auth.jwt_alg")
            self.serve_good([self.k2])
        wait_until(lambda: self.source()["kids"] == ["k2"], timeout=5, what="RS256 again")

    def test_20_junk_kids_do_not_hold_off_a_rotation(self):
        # 0.3.0: while one session sent a random kid every 0.2 s, a new key (published and used
        # at once) was refused until the minimum interval let its own request through. Now a
        # request the limit holds back runs as soon as it allows, and waits for it; the
        # provider still gets at most one request per interval. Measured with the defaults
        # (jwks_min_refresh_interval 2 s, jwks_timeout 5 s).
        self.set_and_reload("electric_auth.jwks_min_refresh_interval", "2s")
        self.set_and_reload("electric_auth.jwks_timeout", "5s")
        stop = threading.Event()
        refusals = []

        def flood():
            with JWKS.connect() as c:
                while not stop.is_set():
                    try:
                        c.execute("SELECT electric_auth.user_id(%s)", (self.random_kid(),))
                    except psycopg.Error as e:
                        refusals.append(e.sqlstate)
                    time.sleep(0.2)

        flooder = threading.Thread(target=flood)
        try:
            time.sleep(MIN_REFRESH + 0.3)
            with JWKS.connect() as c:  # the new settings are in force in new sessions
                self.assertEqual(c.execute("SHOW electric_auth.jwks_min_refresh_interval")
                                 .fetchone()[0], "2s")
            started_requests = self.provider.requests["/jwks"]
            started_flood = time.monotonic()
            flooder.start()
            # A junk kid has just made the provider answer: the limit is taken.
            wait_until(lambda: self.provider.requests["/jwks"] > started_requests, timeout=5,
                       what="a fetch woken by the flood")
            rotated = SigningKey("k-rotated")
            self.serve_good([self.k2, rotated])
            published = time.monotonic()
            self.assert_verifies(rotated.mint())  # the first try, not a retry
            absorbed = time.monotonic() - published
            time.sleep(3)
            stop.set()
            flooder.join()
            elapsed = time.monotonic() - started_flood
            fetched = self.provider.requests["/jwks"] - started_requests
            self.assertLess(absorbed, 5, "absorbed within jwks_timeout")
            self.assertLessEqual(fetched, elapsed / 2 + 1, f"{fetched} fetches in {elapsed:.1f} s")
            self.assertTrue(refusals and set(refusals) == {"28000"}, refusals)
            print(f"rotation absorbed {absorbed:.2f} s after publication during a flood of "
                  f"{len(refusals)} junk kids; {fetched} fetches in {elapsed:.1f} s",
                  file=sys.stderr)
        finally:
            stop.set()
            if flooder.is_alive():
                flooder.join()
            self.set_and_reload("electric_auth.jwks_min_refresh_interval")
            self.set_and_reload("electric_auth.jwks_timeout")
            self.serve_good([self.k2])
        time.sleep(MIN_REFRESH + 0.3)
        self.user_id(self.random_kid())
        wait_until(lambda: self.source()["kids"] == ["k2"], timeout=TIMEOUT + 10,
                   what="the rotated key retired")

    def test_21_lowering_max_stale_reaches_open_sessions_and_recovery_wakes_the_worker(self):
        # 0.3.0: a session open before jwks_max_stale was lowered kept its verifier (Electric's
        # eight settings were unchanged) and accepted tokens new sessions refused as stale; and
        # once stale, a token did not wake the worker, so the provider coming back was noticed
        # up to a retry interval later.
        token = self.k2.mint()
        with JWKS.connect() as open_session:
            self.assertEqual(open_session.execute("SELECT electric_auth.user_id(%s)", (token,))
                             .fetchone()[0], "alice")
            self.provider.stop()
            try:
                self.set_and_reload("electric_auth.jwks_max_stale", "1s")
                time.sleep(2.5)
                for who, run in (("the open session", open_session), ("a new one", None)):
                    with self.subTest(who):
                        if run is None:
                            result = self.user_id(token)
                        else:
                            try:
                                result = (run.execute("SELECT electric_auth.user_id(%s)",
                                                      (token,)).fetchone()[0], None)
                            except psycopg.Error as e:
                                result = (None, (e.sqlstate, e.diag.message_primary))
                        self.assertEqual(result[1][0] if result[1] else result, "22023",
                                         result)
                        self.assertIn("stale", result[1][1])
                self.assertTrue(self.source()["stale"])
            finally:
                self.provider.start()
            # The provider is back: the next token wakes the worker (past the minimum
            # interval) and verifies, not a retry interval later.
            time.sleep(MIN_REFRESH + 0.3)
            started = time.monotonic()
            self.assertEqual(open_session.execute("SELECT electric_auth.user_id(%s)", (token,))
                             .fetchone()[0], "alice")
            self.assertLess(time.monotonic() - started, TIMEOUT + 1)
        self.set_and_reload("electric_auth.jwks_max_stale")
        self.assertFalse(wait_until(lambda: not (s := self.source())["stale"] and [s],
                                    what="fresh keys")[0]["stale"])

    def worker_pid(self):
        """The key worker's process id (it has no pg_stat_activity row: it opens no database
        connection), found among the postmaster's children by its title."""
        postmaster = int((JWKS.data / "postmaster.pid").read_text().split()[0])
        for entry in pathlib.Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except (OSError, IndexError, ValueError):
                continue
            if parent == postmaster and b"electric_auth key worker" in title:
                return int(entry.name)
        return None

    def refetch(self, kids):
        """A refresh woken by an unknown kid (past the minimum interval), until the worker
        holds `kids`."""
        time.sleep(MIN_REFRESH + 0.3)
        self.user_id(self.random_kid())
        return wait_until(lambda: (s := self.source())["kids"] == kids and s,
                          timeout=TIMEOUT + 10, what=f"the kids {kids}")

    def test_22_a_stopped_worker_comes_back_and_key_source_says_so(self):
        # 0.3.0: kill -TERM of the worker ended it for good (exit status 0, "done"), silently;
        # key_source() kept showing the old success. Now it is restarted, says so in the log,
        # and key_source() shows whether a worker runs. SIGKILL makes the postmaster restart
        # the whole server (as for any crashed child); the worker is back with it.
        src = self.source()
        self.assertTrue(src["worker_running"])
        first_started = src["worker_started"]
        self.assertIsNotNone(first_started)
        token = self.k2.mint()
        stop, answers = threading.Event(), []

        def load():  # verification goes on meanwhile
            while not stop.is_set():
                try:
                    answers.append(self.user_id(token)[0])
                except psycopg.OperationalError:
                    answers.append("reconnecting")
                time.sleep(0.05)

        loader = threading.Thread(target=load)
        loader.start()
        try:
            pid = self.worker_pid()
            os.kill(pid, 15)
            wait_until(lambda: not self.source()["worker_running"], timeout=5,
                       what="key_source() saying no worker runs")
            wait_until(lambda: (p := self.worker_pid()) and p != pid, timeout=15,
                       what="the worker restarted")
            self.assertIn("electric_auth key worker: SIGTERM received", self.log())
            src = wait_until(lambda: (s := self.source())["worker_running"] and s, timeout=5,
                             what="key_source() saying the worker runs")
            self.assertGreaterEqual(src["worker_started"], first_started)
            # A new kid verifies again within jwks_timeout of the restart.
            fresh = SigningKey("k-after-restart")
            self.serve_good([self.k2, fresh])
            time.sleep(MIN_REFRESH + 0.3)
            started = time.monotonic()
            self.assert_verifies(fresh.mint())
            self.assertLess(time.monotonic() - started, TIMEOUT + 1)
            # SIGKILL: the server restarts; the worker with it.
            os.kill(self.worker_pid(), 9)
            time.sleep(1)
            src = wait_until(lambda: self._source_or_none(), timeout=30,
                             what="the server back after the crash restart")
            src = wait_until(lambda: (s := self.source())["worker_running"] and s, timeout=15,
                             what="the worker back after the crash restart")
            newer = SigningKey("k-after-kill")
            self.serve_good([self.k2, fresh, newer])
            time.sleep(MIN_REFRESH + 0.3)
            self.assert_verifies(newer.mint())
        finally:
            stop.set()
            loader.join()
            self.serve_good([self.k2])
        self.assertIn("alice", answers)

    def _source_or_none(self):
        try:
            return self.source()
        except psycopg.OperationalError:
            return None

    def test_23_a_cache_file_write_failure_shows_in_key_source(self):
        # 0.3.0: a failure while writing the temporary file was reported under the cache file's
        # name, the temporary file was left behind, and key_source() never showed it.
        cache = JWKS.data / "electric_auth_jwks_cache.json"
        temporary = JWKS.data / "electric_auth_jwks_cache.json.tmp"

        def refresh():
            time.sleep(MIN_REFRESH + 0.3)
            self.user_id(self.random_kid())

        try:
            # The temporary file cannot be created (a directory is in its place).
            temporary.mkdir()
            refresh()
            src = wait_until(lambda: (s := self.source())["last_persist_failure_reason"] and s,
                             timeout=TIMEOUT + 5, what="the persist failure shown")
            self.assertIn(str(temporary), src["last_persist_failure_reason"])
            self.assertIsNotNone(src["last_persist_failure"])
            temporary.rmdir()
            # The rename fails (a non-empty directory in the cache file's place): the
            # temporary file written meanwhile is removed.
            cache.unlink()
            cache.mkdir()
            (cache / "keep").write_text("x")
            refresh()
            src = wait_until(lambda: "renaming" in (
                (s := self.source())["last_persist_failure_reason"] or "") and s,
                timeout=TIMEOUT + 5, what="the rename failure shown")
            self.assertFalse(temporary.exists(), "the temporary file is left behind")
        finally:
            if temporary.is_dir():
                temporary.rmdir()
            if cache.is_dir():
                (cache / "keep").unlink(missing_ok=True)
                cache.rmdir()
        refresh()
        wait_until(lambda: self.source()["last_persist_failure_reason"] is None,
                   timeout=TIMEOUT + 5, what="the failure cleared by a good write")
        self.assertTrue(cache.is_file())

    def test_24_the_key_limit_holds_for_inline_and_fetched_keys_together(self):
        # 0.3.0: 16 inline keys plus 16 fetched made a 32-key set (a forged token without kid
        # then cost 32 signature checks). 15 inline + 2 fetched are refused as 17.
        inline = [SigningKey(f"inline-{i}") for i in range(15)]
        extra = SigningKey("k-extra")
        self.serve_good([self.k2, extra])
        time.sleep(MIN_REFRESH + 0.3)
        self.user_id(self.random_kid())
        wait_until(lambda: self.source()["usable_keys"] == 2, timeout=TIMEOUT + 5,
                   what="two fetched keys")
        self.set_and_reload("electric_auth.jwt_key",
                            json.dumps({"keys": [k.jwk for k in inline]}))
        try:
            result = wait_until(lambda: (r := self.user_id(self.k2.mint()))[1] and r, timeout=5,
                                what="the merged set refused")
            self.assertEqual(result[1][0], "22023", result)
            self.assertIn("are 17 keys", result[1][1])
            self.assertIn("at most 16", result[1][1])
        finally:
            self.set_and_reload("electric_auth.jwt_key")
            self.serve_good([self.k2])
        wait_until(lambda: self.user_id(self.k2.mint())[0] == "alice", timeout=5,
                   what="the fetched keys alone again")
        self.refetch(["k2"])

    def test_25_a_published_private_key_is_refused_with_a_reason(self):
        # 0.3.0: a JWKS publishing an RSA private key (d, p, q, ...) was accepted silently.
        leaked = SigningKey("k-private")
        self.provider.routes["/jwks"] = json_route(
            json.dumps({"keys": [self.k2.jwk, leaked.private_jwk]}).encode())
        try:
            time.sleep(MIN_REFRESH + 0.3)
            self.assertEqual(self.user_id(leaked.mint())[1][0], "28000")
            src = self.wait_for_failure("private key")
            self.assertEqual(src["kids"], ["k2"], "the last good set stays")
            self.assertNotIn(leaked.private_jwk["d"][:24], self.log())
        finally:
            self.serve_good([self.k2])

    def test_26_a_redirect_to_a_url_with_credentials_is_not_followed(self):
        # 0.3.0: ureq followed a redirect to https://user:pw@host/... and sent
        # "Authorization: Basic ..." there.
        def redirect_with_credentials(h):
            h.send_response(302)
            h.send_header("Location", f"https://user:secret-pw@localhost:{HTTPS_PORT}/jwks")
            h.send_header("Content-Length", "0")
            h.end_headers()

        self.provider.authorizations.clear()
        self.provider.routes["/jwks"] = redirect_with_credentials
        try:
            time.sleep(MIN_REFRESH + 0.3)
            self.user_id(self.random_kid())
            src = self.wait_for_failure("user information")
            self.assertEqual(src["kids"], ["k2"])
            self.assertEqual(self.provider.authorizations, [])
            self.assertNotIn("secret-pw", self.log())
        finally:
            self.serve_good([self.k2])

    def test_27_times_in_the_cache_file_are_trusted_no_further_than_the_clock(self):
        # 0.3.0: fetched_at in the future (2100, i64::MAX) kept keys from ever going stale;
        # fetched_at = 0 made key_source() say "not stale" while verification refused the keys
        # as stale. Each case: the provider down, the server restarted on an edited file.
        cache = JWKS.data / "electric_auth_jwks_cache.json"
        token = self.k2.mint()
        self.provider.stop()
        original = cache.read_text()
        try:
            for fetched_at in (4102444800, 2**63 - 1, 0):
                with self.subTest(fetched_at=fetched_at):
                    JWKS.stop()
                    content = json.loads(original)
                    content["fetched_at"] = fetched_at
                    cache.write_text(json.dumps(content))
                    JWKS.append_conf("electric_auth.jwks_max_stale = '3s'")
                    JWKS.start()
                    time.sleep(4)
                    src = self.source()
                    user, error = self.user_id(token)
                    refused_as_stale = error is not None and "stale" in error[1]
                    self.assertEqual(src["stale"], refused_as_stale, (src, error))
                    if fetched_at:
                        self.assertIsNone(user, "keys from the file never went stale")
                        self.assertTrue(refused_as_stale, error)
                    else:
                        self.assertFalse(src["from_cache_file"], "fetched_at 0 is refused")
                        self.assertIn("not a time", self.log())
        finally:
            JWKS.stop()
            cache.write_text(original)
            conf = (JWKS.data / "postgresql.conf").read_text()
            (JWKS.data / "postgresql.conf").write_text(
                conf.replace("electric_auth.jwks_max_stale = '3s'\n", ""))
            self.provider.start()
            JWKS.start()
        wait_until(lambda: self.user_id(self.k2.mint())[0] == "alice", timeout=TIMEOUT + 10,
                   what="fresh keys again")

    def test_28_a_kid_list_too_long_for_key_source_says_it_is_cut(self):
        # 0.3.0: key_source() showed usable_keys = 16, kids = [] when the kids did not fit its
        # 4096-byte buffer.
        keys = []
        for i in range(16):
            jwk = dict(self.k2.jwk, kid=f"{i:02d}-" + "x" * 300)
            keys.append(jwk)
        self.provider.routes["/jwks"] = json_route(json.dumps({"keys": keys}).encode())
        try:
            time.sleep(MIN_REFRESH + 0.3)
            self.user_id(self.random_kid())
            src = wait_until(lambda: (s := self.source())["usable_keys"] == 16 and s,
                             timeout=TIMEOUT + 5, what="16 long kids")
            self.assertTrue(src["kids_truncated"])
            self.assertGreater(len(src["kids"]), 0)
            self.assertLess(len(src["kids"]), 16)
            self.assertEqual(src["kids"], [k["kid"] for k in keys[:len(src["kids"])]])
        finally:
            self.serve_good([self.k2])
        time.sleep(MIN_REFRESH + 0.3)
        self.user_id(self.random_kid())
        src = wait_until(lambda: (s := self.source())["kids"] == ["k2"] and s,
                         timeout=TIMEOUT + 5, what="one kid again")
        self.assertFalse(src["kids_truncated"])

    def test_29_a_fast_shutdown_does_not_wait_for_a_fetch(self):
        # 0.3.0: a fast shutdown waited for the fetch under way (57 s with jwks_timeout 60 s).
        self.set_and_reload("electric_auth.jwks_timeout", "60s")
        self.provider.routes["/jwks"] = hang
        try:
            time.sleep(MIN_REFRESH + 0.3)
            before = self.provider.requests["/jwks"]
            waiting = threading.Thread(target=lambda: self.user_id(self.random_kid()))
            waiting.start()
            wait_until(lambda: self.provider.requests["/jwks"] > before, timeout=5,
                       what="a fetch under way")
            time.sleep(0.5)
            started = time.monotonic()
            JWKS.stop("fast")
            stopped_in = time.monotonic() - started
            waiting.join()
            self.assertLess(stopped_in, 5, f"fast shutdown took {stopped_in:.1f} s")
        finally:
            self.serve_good([self.k2])
            JWKS.start()
            self.set_and_reload("electric_auth.jwks_timeout")
        wait_until(lambda: self.user_id(self.k2.mint())[0] == "alice", timeout=TIMEOUT + 10,
                   what="verification after the restart")

    def test_30_a_reload_during_a_fetch_is_applied_when_it_ends(self):
        # Found by this round's own run on 18: the fetch runs on a thread while the worker waits
        # on its latch, which reset the latch a reload had set; the worker then slept until its
        # next retry (30 s) before following the reload.
        self.provider.routes["/hang-jwks"] = hang
        self.provider.routes["/other-jwks"] = json_route(jwks(self.k2))
        with self.jwks_url_instead("/hang-jwks", timeout=TIMEOUT + 10):
            wait_until(lambda: self.provider.requests["/hang-jwks"] >= 1, timeout=5,
                       what="the fetch of the new URL under way (it hangs)")
            started = time.monotonic()
            self.set_and_reload("electric_auth.jwks_url", f"{ISSUER}/other-jwks")
            wait_until(lambda: (s := self.source())["source"] == f"{ISSUER}/other-jwks"
                       and s["usable_keys"] == 1, timeout=TIMEOUT + 10,
                       what="the reload followed once the fetch ended")
            self.assertLess(time.monotonic() - started, TIMEOUT + 3)

    def test_99_no_token_or_key_in_the_log(self):
        log = self.log()
        self.assertIn("could not refresh its keys", log)  # the log is the one written to
        for token in MINTED:
            self.assertNotIn(token.split(".")[2][:24], log)
        for key in (self.k1, self.k2, self.k3):
            self.assertNotIn(key.jwk["n"][:24], log)


class HotStandby(unittest.TestCase):
    """A streaming standby (pg_basebackup of a preloaded primary with jwks_url) fetches for
    itself: it verifies with fetched keys, absorbs a rotation by its own request to the provider
    while the primary's set stays as it was, and writes its own cache file."""

    PRIMARY = Cluster("ea-jwks-primary", 54426)
    STANDBY = Cluster("ea-jwks-standby", 54427)

    @classmethod
    def setUpClass(cls):
        tls = make_tls()
        cls.k1, cls.k2 = SigningKey("k1"), SigningKey("k2")
        cls.provider = Provider(HTTPS_PORT, tls["good"])
        cls.serve([cls.k1])
        cls.provider.start()
        cls.PRIMARY.fresh("\n".join([
            "electric_auth.jwt_alg = 'RS256'",
            f"electric_auth.jwks_url = '{ISSUER}/jwks'",
            f"electric_auth.jwks_ca_file = '{TLS_DIR}/ca.pem'",
            f"electric_auth.jwks_timeout = '{TIMEOUT}s'",
            f"electric_auth.jwks_min_refresh_interval = '{MIN_REFRESH}s'",
        ]))
        with cls.PRIMARY.connect() as c:
            c.execute("CREATE EXTENSION electric_auth")
        wait_until(lambda: cls.source(cls.PRIMARY)["usable_keys"] == 1, what="primary's fetch")
        cls.data = cls.STANDBY.data
        cls.STANDBY.create_standby_of(cls.PRIMARY)
        # The primary's cache file came along in the base backup: take the copy's content so
        # the test can tell the standby's own writes from it.
        cls.copied = (cls.data / "electric_auth_jwks_cache.json").read_bytes()
        cls.requests_before_standby = cls.provider.requests["/jwks"]
        cls.STANDBY.start()

    @classmethod
    def tearDownClass(cls):
        cls.STANDBY.stop()
        cls.PRIMARY.stop()
        cls.provider.stop()

    @classmethod
    def serve(cls, keys):
        cls.provider.routes = {"/jwks": json_route(jwks(*keys), "application/jwk-set+json")}

    @staticmethod
    def source(node):
        with node.connect() as c:
            c.row_factory = psycopg.rows.dict_row
            return c.execute("SELECT * FROM electric_auth.key_source()").fetchone()

    def user_id(self, node, token):
        with node.connect() as c:
            try:
                return c.execute("SELECT electric_auth.user_id(%s)", (token,)).fetchone()[0], None
            except psycopg.Error as e:
                return None, (e.sqlstate, e.diag.message_primary)

    def test_the_standby_fetches_for_itself(self):
        with self.STANDBY.connect() as c:
            self.assertTrue(c.execute("SELECT pg_is_in_recovery()").fetchone()[0])
        # Its own first fetch: one more request to the provider, and a success of its own.
        src = wait_until(lambda: (s := self.source(self.STANDBY))["last_success"] and s,
                         what="the standby's first fetch")
        self.assertEqual(src["kids"], ["k1"])
        self.assertEqual(src["setting"], "electric_auth.jwks_url")
        self.assertGreaterEqual(self.provider.requests["/jwks"], self.requests_before_standby + 1)
        self.assertEqual(self.user_id(self.STANDBY, self.k1.mint()), ("alice", None))

        # The provider rotates; a token with the new key reaches the standby only. The standby's
        # unknown-kid refresh asks the provider itself, while the primary's set is unchanged.
        time.sleep(MIN_REFRESH + 0.2)
        self.serve([self.k1, self.k2])
        before = self.provider.requests["/jwks"]
        self.assertEqual(self.user_id(self.STANDBY, self.k2.mint()), ("alice", None))
        self.assertEqual(self.provider.requests["/jwks"], before + 1)
        self.assertEqual(self.source(self.STANDBY)["kids"], ["k1", "k2"])
        self.assertEqual(self.source(self.PRIMARY)["kids"], ["k1"])

        # And it wrote its own cache file (the primary's file is not WAL-logged, and the
        # primary never saw k2): 0600, with the new key.
        cache = self.data / "electric_auth_jwks_cache.json"
        content = wait_until(lambda: (b := cache.read_bytes()) != self.copied and b,
                             what="the standby's cache file")
        self.assertIn(self.k2.jwk["n"][:40].encode(), content)
        self.assertEqual(stat.S_IMODE(cache.stat().st_mode), 0o600)
        primary_cache = self.PRIMARY.data / "electric_auth_jwks_cache.json"
        self.assertNotIn(self.k2.jwk["n"][:40].encode(), primary_cache.read_bytes())


class WithoutPreload(unittest.TestCase):
    def test_jwks_url_requires_shared_preload_libraries(self):
        PLAIN.fresh()
        try:
            with PLAIN.connect() as c:
                c.execute("CREATE EXTENSION electric_auth")
                with self.assertRaises(psycopg.Error) as raised:
                    c.execute("ALTER SYSTEM SET electric_auth.jwks_url = "
                              "'https://idp.example.com/jwks'")
                self.assertEqual(raised.exception.sqlstate, "55000")
                self.assertIn("shared_preload_libraries", raised.exception.diag.message_primary)
                row = c.execute("SELECT last_failure_reason FROM electric_auth.key_source()")
                self.assertIn("not in shared_preload_libraries", row.fetchone()[0])
        finally:
            PLAIN.stop()


if __name__ == "__main__":
    main()
