"""The session identity behind a real pooler: PgBouncer (Debian's package), started here on a
local port in front of a throwaway cluster of the server $PG_CONFIG names, stopped at the end.

- Transaction pooling: 20 clients x 200 transactions, concurrently, through 3 server
  connections. Each transaction checks that it starts with no identity, authenticates as its
  client's user (a token minted by PyJWT) and reads an RLS-protected table: it must see exactly
  that user's rows. Afterwards: the 3 server connections served every user, so identities really
  shared backends.
- Session pooling with server_reset_query = DISCARD ALL: a client authenticates with scope
  `session` and leaves; the next client, on the same server connection, starts with none. That
  database allows session scope (`ALTER DATABASE … SET electric_auth.session_scope = allow`).
- Transaction pooling through one server connection, session scope refused (the default): a
  hostile client's `authenticate(own_token, 'session')` is refused, so the next client's
  transaction has no identity and its INSERT is not stamped with the hostile user's id.

Run by scripts/test_major.sh on every major; alone: PG_CONFIG=... python3 tests/pooler/test_pgbouncer.py
"""

import pathlib
import shutil
import subprocess
import sys
import threading
import time
import unittest

import psycopg

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
from electric_auth_test import main, scratch_dir  # noqa: E402
from electric_auth_test.postgres import Cluster, postgres_command  # noqa: E402
from electric_auth_test.tokens import Minter  # noqa: E402

SECRET = "pooler-secret-7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d"
CLIENTS, TRANSACTIONS, SERVER_CONNECTIONS, ROWS_EACH = 20, 200, 3, 5
mint = Minter(SECRET)


class PgBouncer(unittest.TestCase):
    pooler = None

    @classmethod
    def through_pooler(cls, database):
        # PgBouncer 1.18 (Debian 12) cannot keep server-side prepared statements in transaction
        # pooling: psycopg must not prepare (prepare_threshold=None).
        return psycopg.connect(host="127.0.0.1", port=cls.pooler_port, user="ea_app",
                               dbname=database, autocommit=True, prepare_threshold=None)

    @classmethod
    def setUpClass(cls):
        cls.cluster = cluster = Cluster("ea-pooler", 54345)
        # PgBouncer listens on 127.0.0.1, on a port of this major's own (as the cluster's is).
        cls.pooler_port = cluster.port + 1
        pool_dir = scratch_dir(f"ea-pgbouncer-pg{cluster.major}")
        cluster.fresh("electric_auth.jwt_alg = 'HS256'\n"
                      f"electric_auth.jwt_key = '{SECRET}'")
        with cluster.connect() as su:
            su.execute("CREATE ROLE ea_app LOGIN")
            su.execute("CREATE DATABASE ea_pool")
            # Session pooling: each server connection belongs to one client at a time.
            su.execute("CREATE DATABASE ea_pool_session")
            su.execute("ALTER DATABASE ea_pool_session SET electric_auth.session_scope = allow")
        for database in ("ea_pool", "ea_pool_session"):
            with cluster.connect(dbname=database) as su:
                su.execute("CREATE EXTENSION electric_auth")
                su.execute("CREATE TABLE notes (owner_id text NOT NULL, body text)")
                su.execute("INSERT INTO notes SELECT 'user-' || c, 'note ' || n "
                           "FROM generate_series(0, %s) c, generate_series(1, %s) n",
                           (CLIENTS - 1, ROWS_EACH))
                su.execute("ALTER TABLE notes ENABLE ROW LEVEL SECURITY")
                su.execute("CREATE POLICY own_notes ON notes "
                           "USING (owner_id = electric_auth.current_user_id())")
                su.execute("GRANT SELECT ON notes TO ea_app")
                # Rows stamped with the identity in force (NULL: none).
                su.execute("CREATE TABLE stamped (owner_id text "
                           "DEFAULT electric_auth.current_user_id(), body text)")
                su.execute("GRANT SELECT, INSERT ON stamped TO ea_app")
        shutil.rmtree(pool_dir, ignore_errors=True)
        pool_dir.mkdir()
        (pool_dir / "userlist.txt").write_text('"ea_app" ""\n')
        (pool_dir / "pgbouncer.ini").write_text(f"""\
[databases]
pool_tx = host={cluster.sock} port={cluster.port} dbname=ea_pool pool_mode=transaction pool_size={SERVER_CONNECTIONS}
pool_tx_one = host={cluster.sock} port={cluster.port} dbname=ea_pool pool_mode=transaction pool_size=1
pool_session = host={cluster.sock} port={cluster.port} dbname=ea_pool_session pool_mode=session pool_size=1

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {cls.pooler_port}
unix_socket_dir =
auth_type = trust
auth_file = {pool_dir}/userlist.txt
max_client_conn = 100
server_reset_query = DISCARD ALL
logfile = {pool_dir}/pgbouncer.log
pidfile = {pool_dir}/pgbouncer.pid
""")
        shutil.chown(pool_dir, "postgres")
        for f in pool_dir.iterdir():
            shutil.chown(f, "postgres")
        cls.pooler = subprocess.Popen(
            postgres_command("pgbouncer", pool_dir / "pgbouncer.ini"), cwd="/",
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                cls.through_pooler("pool_tx").close()
                break
            except psycopg.OperationalError:
                time.sleep(0.1)
        else:
            raise AssertionError("PgBouncer did not start: "
                                 + (pool_dir / "pgbouncer.log").read_text(errors="replace"))

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.pooler is not None:
                cls.pooler.terminate()
                cls.pooler.wait(timeout=30)
        finally:
            cls.cluster.stop()

    def test_transaction_pooling_never_mixes_identities(self):
        failures, served = [], {}  # served: backend pid -> users it authenticated
        lock = threading.Lock()

        def client(number):
            user = f"user-{number}"
            token = mint(user)
            try:
                with self.through_pooler("pool_tx") as conn:
                    for _ in range(TRANSACTIONS):
                        with conn.transaction():
                            before = conn.execute(
                                "SELECT electric_auth.current_user_id()").fetchone()[0]
                            got = conn.execute("SELECT electric_auth.authenticate(%s)",
                                               (token,)).fetchone()[0]
                            row = conn.execute(
                                "SELECT electric_auth.current_user_id(), count(*), "
                                "count(*) FILTER (WHERE owner_id <> %s), pg_backend_pid() "
                                "FROM notes", (user,)).fetchone()
                        if before is not None or got != user or row[:3] != (user, ROWS_EACH, 0):
                            with lock:
                                failures.append((user, before, got, row))
                        with lock:
                            served.setdefault(row[3], set()).add(user)
            except Exception as e:  # reported below, with the others
                with lock:
                    failures.append((user, repr(e)))

        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        print(f"\n{CLIENTS} clients x {TRANSACTIONS} transactions through "
              f"{len(served)} server connections in {elapsed:.1f} s", flush=True)
        self.assertEqual(failures[:5], [], f"{len(failures)} transactions saw a wrong identity")
        self.assertLessEqual(len(served), SERVER_CONNECTIONS)
        users_seen = set().union(*served.values())
        self.assertEqual(len(users_seen), CLIENTS)
        self.assertTrue(any(len(users) > 1 for users in served.values()),
                        "some server connection served several users in turn")
        # And nothing is left behind: a transaction without authenticate() sees no identity
        # and no row, whichever server connection it lands on.
        with self.through_pooler("pool_tx") as conn:
            for _ in range(3 * SERVER_CONNECTIONS):
                with conn.transaction():
                    self.assertEqual(conn.execute(
                        "SELECT electric_auth.current_user_id(), count(*) FROM notes")
                        .fetchone(), (None, 0))

    def test_a_hostile_client_cannot_hand_its_identity_to_the_next_client(self):
        with self.through_pooler("pool_tx_one") as hostile, \
                self.through_pooler("pool_tx_one") as victim:
            pid = hostile.execute("SELECT pg_backend_pid()").fetchone()[0]
            with self.assertRaises(psycopg.errors.InsufficientPrivilege) as refused:
                hostile.execute("SELECT electric_auth.authenticate(%s, 'session')",
                                (mint("mallory"),))
            self.assertIn("electric_auth.session_scope", refused.exception.diag.message_primary)
            with victim.transaction():
                self.assertEqual(victim.execute("SELECT pg_backend_pid()").fetchone()[0], pid,
                                 "the same server connection (pool_size = 1)")
                self.assertEqual(victim.execute(
                    "SELECT electric_auth.current_user_id(), count(*) FROM notes").fetchone(),
                    (None, 0))
                victim.execute("INSERT INTO stamped (body) VALUES ('no identity')")
            self.assertEqual(victim.execute(
                "SELECT owner_id FROM stamped WHERE body = 'no identity'").fetchall(), [(None,)])
            # A transaction identity is still the way: it ends with the transaction.
            with hostile.transaction():
                hostile.execute("SELECT electric_auth.authenticate(%s)", (mint("mallory"),))
            with victim.transaction():
                self.assertIsNone(victim.execute(
                    "SELECT electric_auth.current_user_id()").fetchone()[0])

    def test_session_pooling_resets_the_identity_with_discard_all(self):
        with self.through_pooler("pool_session") as first:
            self.assertEqual(first.execute("SELECT electric_auth.authenticate(%s, 'session')",
                                           (mint("user-1"),)).fetchone()[0], "user-1")
            pid = first.execute("SELECT pg_backend_pid()").fetchone()[0]
            self.assertEqual(first.execute(
                "SELECT electric_auth.current_user_id(), count(*) FROM notes").fetchone(),
                ("user-1", ROWS_EACH))
        with self.through_pooler("pool_session") as second:
            self.assertEqual(second.execute("SELECT pg_backend_pid()").fetchone()[0], pid,
                             "the same server connection (pool_size = 1)")
            self.assertEqual(second.execute(
                "SELECT electric_auth.current_user_id(), electric_auth.current_claims(), "
                "count(*) FROM notes").fetchone(), (None, None, 0))


if __name__ == "__main__":
    main()
