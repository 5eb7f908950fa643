"""electric_auth on a real Citus cluster: a coordinator and two workers (Postgres 17, Citus built
from source by scripts/test_citus.sh), every node verifying.

- CREATE EXTENSION on the coordinator reaches the workers.
- A table distributed by id (so one user's rows live in shards on both workers), with an RLS
  policy on electric_auth.current_user_id() and a BEFORE INSERT trigger stamping the owner with
  electric_auth.user_id(token): router and multi-shard queries, a pushed-down aggregate and
  INSERT ... SELECT see or write exactly the authenticated user's rows; no identity, or
  another user's, sees none of them.
- The identity reaches the workers as a SET LOCAL that Citus forwards, sealed under the
  cluster's electric_auth.propagation_secret and bound to the distributed transaction; each
  worker opens it and verifies its token again: forging attempts on the coordinator and
  directly on a worker fail, and a sealed value replayed in another transaction is refused.
- The workers run pg_stat_statements (track = all) and log_statement = all: no fragment of a
  token given to authenticate() reaches either, nor the server log.
- Key rotation on every node (run_command_on_all_nodes: ALTER SYSTEM + reload): old tokens fail
  on router and multi-shard queries, also inside a transaction authenticated before.
- Keys from an identity provider (issue 22): every node switched (ALTER SYSTEM + reload on each)
  to RS256 keys fetched from a real HTTPS provider on 127.0.0.1 (electric_auth_test.provider,
  with a CA the test makes; each node from a URL of its own), then back to the inline key. Each
  node fetches for itself (its own request, key_source() success and kid, cache file); the
  workers verify the propagated identity with their fetched keys (router and multi-shard queries
  see exactly the user's rows; `propagated` accepted grows in electric_auth.stats); a key the
  provider adds and signs with at once is absorbed by each node's own unknown-kid refresh; no
  token reaches a worker's log or pg_stat_statements.

Nodes ea-citus-{coord,w1,w2} on base ports 54350-54352 and the provider on base port 54456
(tests/lib adds 100 per major above 15: 54550-54552 and 54656 on 17).

Run by `make test-citus CITUS_SRC=...` (PG_CONFIG names Postgres 17's pg_config).
"""

import base64
import json
import os
import pathlib
import re
import sys
import time
import unittest
import uuid

import psycopg
import psycopg.rows
import psycopg.sql
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
from electric_auth_test import main, scratch_dir, wait_until  # noqa: E402
from electric_auth_test.logs import fragments  # noqa: E402
from electric_auth_test.postgres import (OLDEST_MAJOR, PORT_STRIDE, Cluster,  # noqa: E402
                                         server_major)
from electric_auth_test.provider import (Provider, SigningKey, json_route, jwks,  # noqa: E402
                                         make_tls)
from electric_auth_test.tokens import Minter, now  # noqa: E402

OLD_KEY = "citus-old-secret-5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d"
NEW_KEY = "citus-new-secret-0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a"
ATTACKER = "citus-attacker-secret-99887766554433221100aabb"
ISS, AUD = "ea-citus-issuer", "ea-citus-audience"
DB = "ea_citus"
ROWS_EACH = 60
# Shared by every node (postgresql.conf); keys the sealed identity Citus forwards.
PROPAGATION_SECRET = "citus-propagation-secret-7e6d5c4b3a29180f7e6d5c4b3a29"
SEALED = re.compile(r"ea-sealed-v1\.[A-Za-z0-9_-]+")
# The identity provider every node fetches its keys from in
# test_keys_fetched_from_the_identity_provider_by_every_node: a base port, shifted per major as
# the clusters' are, and its CA.
PROVIDER_PORT = 54456 + PORT_STRIDE * (server_major() - OLDEST_MAJOR)
TLS_DIR = scratch_dir(f"ea-citus-pg{server_major()}-tls")
JWKS_TIMEOUT, JWKS_MIN_REFRESH = 2, 1  # electric_auth.jwks_timeout, ..._min_refresh_interval (s)


def seal(token, initiator, number, timestamp, secret=PROPAGATION_SECRET):
    """The sealed form of core/src/seal.rs, made independently with Python's `cryptography`:
    HKDF-SHA256 -> AES-256-GCM over the 20-byte distributed transaction id and the token."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"electric_auth.propagation_secret v1",
               info=b"electric_auth propagated identity v1").derive(secret.encode())
    nonce = os.urandom(12)
    binding = (initiator.to_bytes(4, "big", signed=True) + number.to_bytes(8, "big")
               + timestamp.to_bytes(8, "big", signed=True))
    sealed = AESGCM(key).encrypt(nonce, binding + token.encode(),
                                 b"electric_auth propagated identity v1")
    return "ea-sealed-v1." + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()
# Every token this suite gives authenticate() on the coordinator: none may reach a worker.
AUTHENTICATED = []


MINT = Minter(OLD_KEY, iss=ISS, aud=AUD)


def mint(sub, **extra):
    """A token of `sub`'s, each one distinct (a jti of its own)."""
    return MINT(sub, jti=uuid.uuid4().hex, **extra)


def authenticate(c, token, scope="transaction"):
    AUTHENTICATED.append(token)
    return c.execute("SELECT electric_auth.authenticate(%s, %s)", (token, scope))


def start_node(name, port, worker):
    """A node of the cluster (the coordinator unless `worker`), listening on localhost, where
    the other nodes reach it, with the database ea_citus and Citus in it."""
    conf = "\n".join([
        "electric_auth.mode = 'secure'",
        "electric_auth.jwt_alg = 'HS256'",
        f"electric_auth.jwt_key = '{OLD_KEY}'",
        f"electric_auth.jwt_iss = '{ISS}'",
        f"electric_auth.jwt_aud = '{AUD}'",
        # Citus: two-phase commit for multi-shard writes, triggers on distributed tables.
        "max_prepared_transactions = 20",
        "citus.enable_unsafe_triggers = on",
        f"electric_auth.propagation_secret = '{PROPAGATION_SECRET}'",
        # The coordinator forwards SET LOCAL (so authenticate()'s identity, sealed) to the
        # workers; the workers accept it when it opens and its token verifies there.
        "citus.propagate_set_commands = 'local'" if not worker
        else "electric_auth.accept_propagated_identity = on",
        # Direct connections here, one client each: session scope allowed (it stays on the
        # coordinator, which the test shows).
        "electric_auth.session_scope = allow",
        # Where a forwarded token would show: every statement, kept and logged.
        "pg_stat_statements.track = all",
        "log_statement = 'all'" if worker else "",
    ])
    node = Cluster(name, port, preload="citus,pg_stat_statements,electric_auth",
                   options=("-c listen_addresses=localhost",), dbname=DB).fresh(conf)
    with node.connect(dbname="postgres") as su:
        su.execute(f"CREATE DATABASE {DB}")
    with node.connect() as su:
        su.execute("CREATE EXTENSION citus")
        if worker:
            su.execute("CREATE EXTENSION pg_stat_statements")
    return node


class CitusCluster(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        try:
            cls.build_cluster()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def build_cluster(cls):
        cls.coordinator = start_node("ea-citus-coord", 54350, worker=False)
        cls.workers = [start_node("ea-citus-w1", 54351, worker=True),
                       start_node("ea-citus-w2", 54352, worker=True)]
        cls.nodes = [cls.coordinator, *cls.workers]
        with cls.coordinator.connect() as su:
            su.execute("SELECT citus_set_coordinator_host('localhost', %s)",
                       (cls.coordinator.port,))
            for worker in cls.workers:
                su.execute("SELECT citus_add_node('localhost', %s)", (worker.port,))
            su.execute("CREATE ROLE ea_app LOGIN")  # Citus creates it on the workers too
            su.execute("CREATE EXTENSION electric_auth")
            # One statement per call: Citus forwards a utility statement's text to the workers.
            for statement in [
                "CREATE TABLE docs (id bigint PRIMARY KEY, owner_id text NOT NULL, body text, "
                "token text)",
                """CREATE FUNCTION stamp_owner() RETURNS trigger LANGUAGE plpgsql AS $$
                   BEGIN
                     NEW.owner_id := electric_auth.user_id(NEW.token);
                     NEW.token := NULL;
                     RETURN NEW;
                   END $$""",
                "SELECT create_distributed_table('docs', 'id')",
                "CREATE TRIGGER docs_stamp_owner BEFORE INSERT ON docs "
                "FOR EACH ROW EXECUTE FUNCTION stamp_owner()",
                "ALTER TABLE docs ENABLE ROW LEVEL SECURITY",
                "CREATE POLICY docs_owner ON docs "
                "USING (owner_id = electric_auth.current_user_id()) "
                "WITH CHECK (owner_id = electric_auth.current_user_id())",
                "GRANT SELECT, INSERT ON docs TO ea_app",
                "CREATE TABLE docs_copy (id bigint PRIMARY KEY, owner_id text, body text)",
                "SELECT create_distributed_table('docs_copy', 'id', colocate_with => 'docs')",
                "GRANT SELECT, INSERT ON docs_copy TO ea_app",
            ]:
                su.execute(statement)
        # Each user writes their rows through the trigger, which runs on the shards.
        for number, user in enumerate(("alice", "bob")):
            with cls.coordinator.connect(user="ea_app") as c, c.transaction():
                authenticate(c, mint(user))
                # Row by row (Citus would COPY an INSERT ... SELECT into shards, which RLS
                # does not allow); each row routed to its shard, where the trigger runs.
                token = mint(user)
                with c.cursor() as cur:
                    cur.executemany("INSERT INTO docs (id, body, token) VALUES (%s, %s, %s)",
                                    [(i, f"doc {i}", token) for i in
                                     range(number * ROWS_EACH + 1, (number + 1) * ROWS_EACH + 1)])

    @classmethod
    def tearDownClass(cls):
        for node in getattr(cls, "nodes", ()):
            node.stop()

    def app(self):
        return self.coordinator.connect(user="ea_app")

    def test_the_extension_reached_every_worker(self):
        with self.coordinator.connect() as su:
            results = su.execute(
                "SELECT nodeport, success, result FROM run_command_on_workers("
                "$$SELECT extversion FROM pg_extension WHERE extname = 'electric_auth'$$) "
                "ORDER BY nodeport").fetchall()
            version = su.execute("SELECT extversion FROM pg_extension "
                                 "WHERE extname = 'electric_auth'").fetchone()[0]
        self.assertEqual(results, [(worker.port, True, version) for worker in self.workers])

    def test_the_trigger_stamped_owners_on_shards_on_both_workers(self):
        with self.coordinator.connect() as su:
            self.assertEqual(su.execute("SELECT owner_id, count(*), count(token) FROM docs "
                                        "GROUP BY owner_id ORDER BY 1").fetchall(),
                             [("alice", ROWS_EACH, 0), ("bob", ROWS_EACH, 0)])
            ports = su.execute("""
                SELECT DISTINCT p.nodeport FROM docs d
                  JOIN pg_dist_placement pl
                    ON pl.shardid = get_shard_id_for_distribution_column('docs', d.id)
                  JOIN pg_dist_node p ON p.groupid = pl.groupid
                 WHERE d.owner_id = 'alice' ORDER BY 1""").fetchall()
        self.assertEqual(ports, [(worker.port,) for worker in self.workers])

    def test_every_query_shape_sees_only_the_authenticated_users_rows(self):
        with self.app() as c:
            with c.transaction():
                authenticate(c, mint("alice"))
                # Router queries: one shard each.
                self.assertEqual(c.execute("SELECT owner_id FROM docs WHERE id = 7").fetchall(),
                                 [("alice",)])
                self.assertEqual(c.execute("SELECT owner_id FROM docs WHERE id = %s",
                                           (ROWS_EACH + 7,)).fetchall(), [])
                # Multi-shard.
                self.assertEqual(c.execute(
                    "SELECT count(*), count(*) FILTER (WHERE owner_id <> 'alice') FROM docs")
                    .fetchone(), (ROWS_EACH, 0))
                # A pushed-down aggregate (grouped by the distribution column's shards).
                self.assertEqual(c.execute(
                    "SELECT owner_id, count(*), min(id), max(id) FROM docs GROUP BY owner_id")
                    .fetchall(), [("alice", ROWS_EACH, 1, ROWS_EACH)])
                plan = "\n".join(r[0] for r in c.execute(
                    "EXPLAIN SELECT owner_id, count(*) FROM docs GROUP BY owner_id"))
                self.assertIn("Task Count: 32", plan)
                # INSERT ... SELECT between colocated tables, pushed down to the shards.
                c.execute("INSERT INTO docs_copy SELECT id, owner_id, body FROM docs")
        with self.coordinator.connect() as su:
            self.assertEqual(su.execute("SELECT owner_id, count(*) FROM docs_copy "
                                        "GROUP BY owner_id").fetchall(), [("alice", ROWS_EACH)])
            su.execute("TRUNCATE docs_copy")

    def test_the_workers_count_the_forwarded_identity(self):
        """electric_auth.stats on the workers: each worker connection of the transaction checks
        the forwarded identity once (entry point propagated), and verifies it again when a
        policy reads it (identity); nothing is refused."""
        for worker in self.workers:
            with worker.connect() as su:
                su.execute("SELECT electric_auth.stats_reset()")
        with self.app() as c, c.transaction():
            authenticate(c, mint("alice"))
            self.assertEqual(c.execute("SELECT count(*) FROM docs").fetchone()[0], ROWS_EACH)
        counts = self.worker_counts()
        self.assertGreaterEqual(counts.get(("propagated", "accepted", None), 0),
                                len(self.workers), counts)
        self.assertEqual([k for k in counts if k[1] == "refused"], [], counts)

    def worker_counts(self):
        """electric_auth.stats of this database, summed over the workers:
        {(entry_point, outcome, reason): count}."""
        counts = {}
        for worker in self.workers:
            with worker.connect() as su:
                rows = su.execute("SELECT entry_point, outcome, reason, count "
                                  "FROM electric_auth.stats WHERE datname = %s", (DB,))
                for entry, outcome, reason, n in rows:
                    counts[(entry, outcome, reason)] = counts.get((entry, outcome, reason), 0) + n
        return counts

    def test_no_identity_or_another_users_sees_none_of_them(self):
        with self.app() as c:
            self.assertEqual(c.execute("SELECT count(*) FROM docs").fetchone()[0], 0)
            self.assertEqual(c.execute("SELECT count(*) FROM docs WHERE id = 7").fetchone()[0], 0)
            with c.transaction():
                authenticate(c, mint("bob"))
                self.assertEqual(c.execute("SELECT count(*) FROM docs WHERE owner_id = 'alice'")
                                 .fetchone()[0], 0)
                self.assertEqual(c.execute("SELECT count(*) FROM docs WHERE id = 7")
                                 .fetchone()[0], 0)
                self.assertEqual(c.execute("SELECT owner_id, count(*) FROM docs "
                                           "GROUP BY owner_id").fetchall(), [("bob", ROWS_EACH)])
                # Writing as another user is refused on the shard: the trigger stamps bob, the
                # policy requires bob.
                with self.assertRaises(psycopg.errors.InsufficientPrivilege):
                    with c.transaction():
                        c.execute("INSERT INTO docs (id, body, token) VALUES (999, 'x', %s)",
                                  (mint("alice"),))
            # The transaction's identity ended with it, on the workers too.
            self.assertEqual(c.execute("SELECT count(*) FROM docs").fetchone()[0], 0)
            # A session-scope identity stays on the coordinator (Citus forwards SET LOCAL
            # only): the workers' policy sees none, so nothing is shown.
            notices = []
            c.add_notice_handler(lambda d: notices.append(d.message_primary))
            authenticate(c, mint("alice"), "session")
            self.assertEqual(c.execute("SELECT count(*) FROM docs").fetchone()[0], 0)
            self.assertIn("a session-scope identity does not reach Citus workers", notices)
            c.execute("SELECT electric_auth.logout()")

    def test_logout_inside_a_transaction_reaches_the_workers(self):
        with self.app() as c, c.transaction():
            authenticate(c, mint("alice"))
            self.assertEqual(c.execute("SELECT count(*) FROM docs").fetchone()[0], ROWS_EACH)
            c.execute("SELECT electric_auth.logout()")
            self.assertEqual(c.execute("SELECT count(*) FROM docs").fetchone()[0], 0)
            self.assertEqual(c.execute("SELECT count(*) FROM docs WHERE id = 7").fetchone()[0], 0)

    def assert_refused(self, c, sql, *params, sqlstate):
        with self.assertRaises(psycopg.Error) as caught:
            with c.transaction():
                c.execute(sql, params)
        self.assertEqual(caught.exception.sqlstate, sqlstate, caught.exception)

    def test_forging_on_the_coordinator_fails(self):
        carrier = "electric_auth.identity_token"
        with self.app() as c:
            for value in (mint("alice"), "alice", mint("alice", key=ATTACKER)):
                self.assert_refused(c, f"SET LOCAL {carrier} = '{value}'", sqlstate="42501")
                self.assert_refused(c, "SELECT set_config(%s, %s, true)", carrier, value,
                                    sqlstate="42501")
            self.assert_refused(c, f"ALTER ROLE ea_app SET {carrier} = '{mint('alice')}'",
                                sqlstate="42501")
            # Citus's own forwarding needs the coordinator to accept the SET first.
            self.assert_refused(c, f"SET LOCAL {carrier} = '{mint('alice')}'", sqlstate="42501")
            self.assertEqual(c.execute("SELECT count(*) FROM docs").fetchone()[0], 0)
        with self.assertRaises(psycopg.OperationalError):
            self.coordinator.connect(user="ea_app",
                                     options=f"-c {carrier}={mint('alice')}").close()

    def worker_shard(self, worker):
        """A shard of docs on `worker`, readable by ea_app there."""
        with worker.connect() as su:
            shard = su.execute("SELECT shardid FROM pg_dist_placement pl "
                               "JOIN pg_dist_node n USING (groupid) "
                               "JOIN pg_dist_shard s USING (shardid) "
                               "WHERE n.nodeport = %s AND s.logicalrelid = 'docs'::regclass "
                               "LIMIT 1", (worker.port,)).fetchone()[0]
            su.execute(f"GRANT SELECT ON docs_{shard} TO ea_app")
        return shard

    def test_forging_directly_on_a_worker_fails(self):
        carrier = "electric_auth.identity_token"
        worker = self.workers[0]
        shard = self.worker_shard(worker)
        # These tokens are typed into statements on the worker itself, so they are logged
        # there: they are not in AUTHENTICATED.
        with worker.connect(user="ea_app") as c:
            # A token is never accepted as itself, not even one that verifies here.
            for value in (mint("alice", key=ATTACKER), "alice",
                          mint("alice", exp=now() - 600), mint("alice")):
                with self.assertRaises(psycopg.errors.InvalidAuthorizationSpecification) as caught:
                    with c.transaction():
                        c.execute(f"SET LOCAL {carrier} = '{value}'")
                self.assertEqual(caught.exception.diag.message_primary,
                                 "the propagated identity is not a sealed value")
                self.assertEqual(c.execute(f"SELECT count(*) FROM docs_{shard}").fetchone()[0], 0)
            # Nor anything that looks sealed but was not sealed with the cluster's secret.
            for value in ("ea-sealed-v1.", "ea-sealed-v1." + "A" * 120):
                with self.assertRaises(psycopg.errors.InvalidAuthorizationSpecification) as caught:
                    with c.transaction():
                        c.execute(f"SET LOCAL {carrier} = '{value}'")
                self.assertIn("does not open", caught.exception.diag.message_primary)
            self.assert_refused(c, f"ALTER ROLE ea_app SET {carrier} = '{mint('alice')}'",
                                sqlstate="42501")
        with self.assertRaises(psycopg.OperationalError):
            worker.connect(user="ea_app", options=f"-c {carrier}={mint('alice')}").close()

    def test_no_token_reaches_a_workers_statistics_or_log(self):
        with self.app() as c, c.transaction():
            authenticate(c, mint("alice"))
            self.assertEqual(c.execute("SELECT count(*) FROM docs").fetchone()[0], ROWS_EACH)
        # Payloads and signatures, whole (every HS256 header is the same).
        pieces = {part for token in AUTHENTICATED for part in fragments(token, length=None)[1:]}
        self.assertTrue(pieces)
        for worker in self.workers:
            name = worker.name
            with worker.connect() as su:
                texts = [r[0] for r in su.execute("SELECT query FROM pg_stat_statements")]
            log = worker.log()
            for fragment in pieces:
                self.assertFalse([t for t in texts if fragment in t], name)
                self.assertNotIn(fragment, log, name)
            # The identity did travel (the forwarded SET LOCAL is there), but not even its
            # sealed form is kept where a role could read it: the value is overwritten.
            forwarded = [t for t in texts if "SET LOCAL electric_auth.identity_token TO '***" in t]
            self.assertTrue(forwarded, name)
            self.assertFalse([t for t in texts if SEALED.search(t)], name)
            self.assertNotRegex(log, SEALED)
            self.assertNotIn(PROPAGATION_SECRET, log)

    def test_a_sealed_value_replayed_in_another_transaction_is_refused(self):
        # Sealed values are never shown to a role (see the test above); these are made here,
        # independently, with the cluster's secret, as a replay would carry them.
        carrier = "electric_auth.identity_token"
        worker = self.workers[0]
        shard = self.worker_shard(worker)
        with worker.connect() as su:
            stamp = su.execute("SELECT now()").fetchone()[0]
        # Postgres TimestampTz: microseconds since 2000-01-01 UTC.
        micros = int(stamp.timestamp() * 1_000_000) - 946_684_800 * 1_000_000
        value = seal(mint("alice"), 0, 4242424241, micros)
        with worker.connect(user="ea_app") as c:
            # In a transaction of its own (no distributed transaction id): refused on use
            # (28000), policies included.
            for query in ("SELECT electric_auth.current_user_id()",
                          f"SELECT count(*) FROM docs_{shard}"):
                with self.assertRaises(psycopg.errors.InvalidAuthorizationSpecification):
                    with c.transaction():
                        c.execute(f"SET LOCAL {carrier} = '{value}'")
                        c.execute(query)
            # In another distributed transaction: refused at once.
            with self.assertRaises(psycopg.errors.InvalidAuthorizationSpecification) as caught:
                with c.transaction():
                    c.execute("SELECT assign_distributed_transaction_id(0, 4242424242, now())")
                    c.execute(f"SET LOCAL {carrier} = '{value}'")
            self.assertEqual(caught.exception.diag.message_primary,
                             "the propagated identity belongs to another distributed "
                             "transaction")
            # Sealed under another secret: refused at once, whatever the binding.
            forged = seal(mint("alice"), 0, 4242424243, micros, secret="x" * 40)
            with self.assertRaises(psycopg.errors.InvalidAuthorizationSpecification):
                with c.transaction():
                    c.execute(f"SET LOCAL {carrier} = '{forged}'")
            self.assertEqual(c.execute(f"SELECT count(*) FROM docs_{shard}").fetchone()[0], 0)
        # On the coordinator a sealed value is no token at all.
        with self.app() as c:
            self.assert_refused(c, f"SET LOCAL {carrier} = '{value}'", sqlstate="42501")
            self.assert_refused(c, "SELECT electric_auth.authenticate(%s)", value,
                                sqlstate="28000")

    def test_the_secret_is_superuser_only_and_never_stored_where_roles_read(self):
        with self.app() as c:
            self.assert_refused(c, "SHOW electric_auth.propagation_secret", sqlstate="42501")
        with self.coordinator.connect() as su:
            # A configuration-file-only setting: never stored in pg_db_role_setting.
            with self.assertRaises(psycopg.errors.CantChangeRuntimeParam):
                su.execute("ALTER ROLE ea_app SET electric_auth.propagation_secret = "
                           f"'{'x' * 40}'")
            with self.assertRaises(psycopg.errors.InvalidParameterValue) as caught:
                su.execute("ALTER SYSTEM SET electric_auth.propagation_secret = 'short'")
            self.assertIn("shorter than 32 bytes", caught.exception.diag.message_primary)

    def reload_every_node(self, su, sql):
        """`sql` on every node through Citus (run_command_on_all_nodes), then a reload there,
        returning once every node has reloaded."""
        before = [node.reload_time() for node in self.nodes]
        self.assertTrue(su.execute("SELECT bool_and(success) FROM "
                                   "run_command_on_all_nodes(%s)", (sql,)).fetchone()[0])
        self.assertTrue(su.execute("SELECT bool_and(success) FROM "
                                   "run_command_on_all_nodes('SELECT pg_reload_conf()')")
                        .fetchone()[0])
        for node, load in zip(self.nodes, before):
            node.wait_for_reload(load)

    def test_key_rotation_on_every_node(self):
        old = mint("alice")
        with self.app() as before_rotation:
            before_rotation.execute("BEGIN")
            authenticate(before_rotation, old)
            self.assertEqual(before_rotation.execute("SELECT count(*) FROM docs").fetchone()[0],
                             ROWS_EACH)
            with self.coordinator.connect() as su:
                self.reload_every_node(
                    su, f"ALTER SYSTEM SET electric_auth.jwt_key = '{NEW_KEY}'")
            try:
                # The transaction authenticated before: on its next statement the workers
                # verify again and refuse the identity with the reason (never "no rows").
                with self.assertRaises(psycopg.errors.InvalidAuthorizationSpecification) as e:
                    before_rotation.execute("SELECT count(*) FROM docs WHERE id = 7")
                self.assertEqual(e.exception.diag.message_primary, "Invalid token signature")
                before_rotation.execute("ROLLBACK")
                with self.app() as c:
                    self.assert_refused(c, "SELECT electric_auth.authenticate(%s)", old,
                                        sqlstate="28000")
                    with c.transaction():
                        authenticate(c, mint("alice", key=NEW_KEY))
                        self.assertEqual(c.execute("SELECT count(*) FROM docs WHERE id = 7")
                                         .fetchone()[0], 1)
                        self.assertEqual(c.execute("SELECT count(*) FROM docs").fetchone()[0],
                                         ROWS_EACH)
            finally:
                with self.coordinator.connect() as su:
                    self.reload_every_node(
                        su, f"ALTER SYSTEM SET electric_auth.jwt_key = '{OLD_KEY}'")

    # -- keys from an identity provider (issue 22) -----------------------------------------------

    @staticmethod
    def configure(node, settings):
        """ALTER SYSTEM SET (value None: RESET) each of `settings` on `node`, in a session of its
        own, then a reload that has reached every backend there."""
        with node.connect() as su:
            su.execute("LOAD 'electric_auth'")  # preloaded here; the settings are known anyway
            for name, value in settings.items():
                if value is None:
                    su.execute(f"ALTER SYSTEM RESET {name}")
                else:
                    su.execute(f"ALTER SYSTEM SET {name} = %s" % psycopg.sql.Literal(value)
                               .as_string(su))
        node.reload()

    @staticmethod
    def key_source(node):
        with node.connect() as su:
            su.row_factory = psycopg.rows.dict_row
            return su.execute("SELECT * FROM electric_auth.key_source()").fetchone()

    def test_a_listed_issuer_on_every_node(self):
        """electric_auth.issuers (issue 32) on every node: a second provider's token (its own
        HS256 key, its own iss, user ids shared with the default issuer by an empty prefix)
        authenticates on the coordinator, and each worker verifies the forwarded identity under
        that listed issuer (the default issuer there, with jwt_iss, would refuse its iss), and
        counts it under the issuer; a token naming that issuer but signed with the default
        issuer's key is refused on the coordinator. Then the setting is removed again."""
        iss = "ea-citus-second-provider"
        secret = "citus-second-provider-hs256-secret-0a1b2c3d4e5f"
        entry = [{"iss": iss, "key": secret, "alg": "HS256", "aud": AUD, "user_id_prefix": ""}]
        second = Minter(secret, iss=iss, aud=AUD)
        try:
            counts_before = self.worker_issuer_counts(iss)
            for node in self.nodes:
                self.configure(node, {"electric_auth.issuers": json.dumps(entry)})
            for user, first in (("alice", 1), ("bob", ROWS_EACH + 1)):
                token = second(user, jti=uuid.uuid4().hex)
                AUTHENTICATED.append(token)
                with self.app() as c, c.transaction():
                    self.assertEqual(authenticate(c, token).fetchone()[0], user)
                    self.assertEqual(c.execute("SELECT owner_id, count(*), min(id), max(id) "
                                               "FROM docs GROUP BY owner_id").fetchall(),
                                     [(user, ROWS_EACH, first, first + ROWS_EACH - 1)])
            counts = self.worker_issuer_counts(iss)
            self.assertGreaterEqual(counts - counts_before, 2 * len(self.workers), counts)
            forged = MINT("alice", iss=iss, jti=uuid.uuid4().hex)
            with self.app() as c, c.transaction():
                with self.assertRaises(psycopg.Error) as refused:
                    authenticate(c, forged)
                self.assertEqual((refused.exception.sqlstate,
                                  refused.exception.diag.message_primary),
                                 ("28000", "Invalid token signature"))
        finally:
            for node in self.nodes:
                self.configure(node, {"electric_auth.issuers": None})

    def test_a_revoked_token_reaches_no_worker(self):
        """Revocation (issue 33) under Citus: a token revoked on the coordinator (in another
        session, committed) ends the identity a transaction holds at its next read there, so no
        distributed query forwards it: the workers count no further accepted propagated
        identity, and a new transaction cannot authenticate with it."""
        token = mint("alice")
        with self.app() as c, c.transaction():
            authenticate(c, token)
            self.assertEqual(c.execute("SELECT count(*) FROM docs").fetchone()[0], ROWS_EACH)
            with self.coordinator.connect() as su:
                su.execute("SELECT electric_auth.revoke_token(%s)", (token,))
            before = self.worker_counts()
            with self.assertRaises(psycopg.Error) as refused:
                c.execute("SELECT count(*) FROM docs")
            self.assertEqual((refused.exception.sqlstate,
                              refused.exception.diag.message_primary),
                             ("28000", "Token has been revoked"))
        self.assertEqual(self.worker_counts(), before, "no worker checked a forwarded identity")
        with self.app() as c, c.transaction():
            with self.assertRaises(psycopg.Error) as refused:
                authenticate(c, token)
            self.assertEqual(refused.exception.diag.message_primary, "Token has been revoked")

    def worker_issuer_counts(self, iss):
        """Accepted propagated identities the workers counted under the listed issuer `iss`."""
        total = 0
        for worker in self.workers:
            with worker.connect() as su:
                total += su.execute(
                    "SELECT coalesce(sum(count), 0) FROM electric_auth.stats WHERE datname = %s "
                    "AND issuer = %s AND entry_point = 'propagated' AND outcome = 'accepted'",
                    (DB, iss)).fetchone()[0]
        return total

    def test_keys_fetched_from_the_identity_provider_by_every_node(self):
        """Every node switched from the inline HS256 key to RS256 keys fetched from an HTTPS
        provider (a CA this test makes), each node from a path of its own, so the provider's
        counts tell who asked: each node fetches for itself, the workers verify the propagated
        identity with the keys they fetched, a rotation at the provider is absorbed by each
        node's own unknown-kid refresh, and no token reaches a worker's log. Then back to the
        inline key, as the other tests expect."""
        tls = make_tls(TLS_DIR, label="ea-citus")
        k1 = SigningKey("citus-k1", iss=ISS, aud=AUD)
        k2 = SigningKey("citus-k2", iss=ISS, aud=AUD)
        served = [k1]
        provider = Provider(PROVIDER_PORT, tls["good"])
        paths = {node.name: f"/{node.name}/jwks" for node in self.nodes}
        provider.routes = {path: json_route(lambda: jwks(*served), "application/jwk-set+json")
                           for path in paths.values()}
        provider.start()
        fetched = {"electric_auth.jwt_alg": "RS256", "electric_auth.jwt_key": "",
                   "electric_auth.jwks_ca_file": str(TLS_DIR / "ca.pem"),
                   "electric_auth.jwks_timeout": f"{JWKS_TIMEOUT}s",
                   "electric_auth.jwks_min_refresh_interval": f"{JWKS_MIN_REFRESH}s"}
        tokens = []

        def token(key, sub):
            tokens.append(key.mint(sub=sub, jti=uuid.uuid4().hex))
            return tokens[-1]

        def url(node):
            return f"https://localhost:{PROVIDER_PORT}{paths[node.name]}"

        with self.coordinator.connect() as su:
            # For each user, a row of theirs in a shard on each worker (router queries there).
            on_each_worker = {user: [r[0] for r in su.execute("""
                SELECT DISTINCT ON (n.nodeport) d.id FROM docs d
                  JOIN pg_dist_placement pl
                    ON pl.shardid = get_shard_id_for_distribution_column('docs', d.id)
                  JOIN pg_dist_node n ON n.groupid = pl.groupid
                 WHERE d.owner_id = %s ORDER BY n.nodeport, d.id""", (user,))]
                for user in ("alice", "bob")}
        self.assertEqual([len(ids) for ids in on_each_worker.values()], [2, 2])
        try:
            counts_before = self.worker_counts()
            for node in self.nodes:
                self.configure(node, {**fetched, "electric_auth.jwks_url": url(node)})

            # (a) Each node fetched for itself: its own success, the kid, its own request at
            # the provider, its own cache file; and no inline key is left to verify with.
            for node in self.nodes:
                src = wait_until(lambda: (s := self.key_source(node))["usable_keys"] == 1 and s,
                                 what=f"{node.name}'s first fetch")
                self.assertEqual((src["setting"], src["jwks_url"], src["kids"], src["stale"]),
                                 ("electric_auth.jwks_url", url(node), ["citus-k1"], False),
                                 node.name)
                self.assertIsNotNone(src["last_success"], node.name)
                self.assertGreaterEqual(provider.requests[paths[node.name]], 1, node.name)
                cache = node.data / "electric_auth_jwks_cache.json"
                wait_until(lambda: cache.exists(), what=f"{node.name}'s cache file")
                self.assertIn(k1.jwk["n"][:40], cache.read_text(), node.name)
                with node.connect() as su:
                    self.assertEqual(su.execute("SELECT current_setting('electric_auth.jwt_key')")
                                     .fetchone()[0], "", node.name)

            # (b) Authenticated on the coordinator with a fetched key: router and multi-shard
            # queries see exactly the user's rows, so each worker verified the propagated
            # identity with its fetched keys.
            for user, first in (("alice", 1), ("bob", ROWS_EACH + 1)):
                with self.app() as c, c.transaction():
                    self.assertEqual(authenticate(c, token(k1, user)).fetchone()[0], user)
                    self.assertEqual(c.execute("SELECT owner_id, count(*), min(id), max(id) "
                                               "FROM docs GROUP BY owner_id").fetchall(),
                                     [(user, ROWS_EACH, first, first + ROWS_EACH - 1)])
                    other = "bob" if user == "alice" else "alice"
                    for mine, theirs in zip(on_each_worker[user], on_each_worker[other]):
                        self.assertEqual(c.execute("SELECT owner_id FROM docs WHERE id = %s",
                                                   (mine,)).fetchall(), [(user,)])
                        self.assertEqual(c.execute("SELECT count(*) FROM docs WHERE id = %s",
                                                   (theirs,)).fetchone()[0], 0)
            counts = self.worker_counts()
            accepted = ("propagated", "accepted", None)
            self.assertGreaterEqual(counts.get(accepted, 0) - counts_before.get(accepted, 0),
                                    2 * len(self.workers), counts)
            self.assertEqual({k: n - counts_before.get(k, 0) for k, n in counts.items()
                              if k[1] == "refused" and n > counts_before.get(k, 0)}, {}, counts)

            # (c) The provider rotates and signs with the new key before any interval elapses:
            # each node's unknown-kid refresh (its own request) absorbs it, nothing is refused.
            time.sleep(JWKS_MIN_REFRESH + 0.3)
            requests_before = {path: provider.requests[path] for path in paths.values()}
            served[:] = [k1, k2]
            with self.app() as c, c.transaction():
                started = time.monotonic()
                self.assertEqual(authenticate(c, token(k2, "alice")).fetchone()[0], "alice")
                self.assertEqual(c.execute("SELECT count(*), count(*) FILTER "
                                           "(WHERE owner_id <> 'alice') FROM docs").fetchone(),
                                 (ROWS_EACH, 0))
                for mine in on_each_worker["alice"]:
                    self.assertEqual(c.execute("SELECT owner_id FROM docs WHERE id = %s",
                                               (mine,)).fetchall(), [("alice",)])
                self.assertLess(time.monotonic() - started, 3 * (JWKS_TIMEOUT + 1))
            for node in self.nodes:
                self.assertGreater(provider.requests[paths[node.name]],
                                   requests_before[paths[node.name]], node.name)
                self.assertEqual(self.key_source(node)["kids"], ["citus-k1", "citus-k2"],
                                 node.name)

            # (d) No token reached a worker's log or statistics; nor did a refresh fail.
            pieces = {part for t in tokens for part in fragments(t, length=None)[1:]}
            for worker in self.workers:
                with worker.connect() as su:
                    texts = [r[0] for r in su.execute("SELECT query FROM pg_stat_statements")]
                log = worker.log()
                for fragment in pieces:
                    self.assertFalse([t for t in texts if fragment in t], worker.name)
                    self.assertNotIn(fragment, log, worker.name)
                self.assertNotIn("could not refresh its keys", log, worker.name)
        finally:
            for node in self.nodes:
                self.configure(node, {name: None for name in
                                      [*fetched, "electric_auth.jwks_url"]})
            provider.stop()
        # Back to the inline key on every node: its tokens verify there again, fetched ones not.
        with self.app() as c:
            with c.transaction():
                authenticate(c, mint("alice"))
                self.assertEqual(c.execute("SELECT count(*) FROM docs").fetchone()[0], ROWS_EACH)
            self.assert_refused(c, "SELECT electric_auth.authenticate(%s)", token(k1, "alice"),
                                sqlstate="28000")


if __name__ == "__main__":
    main()
