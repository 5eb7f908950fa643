"""PostgreSQL 18: the database authenticates connecting clients by their Electric token, with
electric_auth as the OAuth validator module (pg_hba.conf method oauth, SASL OAUTHBEARER).

- The structs src/identity/oauth.rs declares for libpq/oauth.h match the PG 18 headers: abi.c, compiled
  against them, prints the layout src/identity/oauth.rs pins in LAYOUT. (The pg_hba.conf line's fields
  are read by csrc/oauth_hba.c, compiled against the same headers by build.rs.)
- A real PG 18 cluster with `oauth` lines in pg_hba.conf (map= and delegate_ident_mapping=1)
  and a libpq 18 client (oauth_client.c) that hands over a PyJWT token through
  PQsetAuthDataHook: good tokens connect as the mapped role, with the token as the session
  identity; bad ones get Postgres's FATAL and a reason in the log (never the token or key);
  a replication=database connection runs IDENTIFY_SYSTEM.
- Round 3: the line's issuer= and scope= are enforced (and must agree with jwt_iss); with
  delegate_ident_mapping=1 superuser, REPLICATION and BYPASSRLS roles are refused unless
  electric_auth.delegate_privileged_roles is on; role names compare as bytes; a token that does
  not verify under the session's own (ALTER DATABASE) settings raises 28000 on first use; the
  pinned identity cannot be cleared with SET; a configuration error is one WARNING (with its
  HINT) per reload, not a line per login.

Run by scripts/test_major.sh 18 (PG_CONFIG names Postgres 18's pg_config).
"""

import os
import pathlib
import re
import subprocess
import sys
import time
import unittest


sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
from electric_auth_test import ROOT, main, scratch_dir  # noqa: E402
from electric_auth_test.postgres import Cluster, pg_config_value, server_major  # noqa: E402
from electric_auth_test.tokens import Minter, now  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
SECRET = "oauth-secret-4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b"
ATTACKER = "oauth-attacker-secret-0a1b2c3d4e5f6a7b8c9d0e1f"
ISS, AUD = "https://issuer.example", "ea-oauth-audience"
SCOPE = "openid electric"
mint = Minter(SECRET, iss=ISS, aud=AUD, scope=SCOPE)


def compile_c(source, output, *flags):
    build = scratch_dir(f"ea-oauth-build-pg{server_major()}")
    build.mkdir(exist_ok=True)
    subprocess.run(["cc", "-O1", "-Wall", str(HERE / source), "-o", str(build / output), *flags],
                   check=True)
    return build / output


class ValidatorAbi(unittest.TestCase):
    def test_declarations_match_the_pg18_headers(self):
        abi = compile_c("abi.c", "abi", f"-I{pg_config_value('--includedir-server')}")
        header = dict(line.split("=", 1) for line in
                      subprocess.run([abi], capture_output=True, text=True, check=True)
                      .stdout.splitlines())
        source = (ROOT / "src/identity/oauth.rs").read_text()
        constants = {name: int(value.replace("_", ""), 0) for name, value in
                     re.findall(r"const (\w+): (?:usize|u32|c_int) = (0x[0-9a-fA-F_]+|\d+);",
                                source)}
        layout = source[source.index("pub const LAYOUT"):]
        layout = layout[:layout.index("];")]
        entries = re.findall(r'\(\s*"([^"]+)",\s*(\w+),?\s*\)', layout)
        self.assertEqual(len(entries), 11)
        for name, value in entries:
            ours = int(value) if value.isdigit() else constants[value]
            self.assertEqual(ours, int(header[name]), name)
        self.assertEqual(constants["PG_OAUTH_VALIDATOR_MAGIC"],
                         int(header["PG_OAUTH_VALIDATOR_MAGIC"]))
        self.assertEqual(header["sizeof(magic)"], "4", "magic is a uint32")
        self.assertIn("pub magic: u32,", source)


class OAuthConnections(unittest.TestCase):
    # The cluster's name and base port: another suite that borrows this recipe names its own.
    CLUSTER = ("ea-oauth", 54348)

    @classmethod
    def setUpClass(cls):
        libdir = pg_config_value("--libdir")
        cls.client = compile_c("oauth_client.c", "oauth_client",
                               f"-I{pg_config_value('--includedir')}", f"-L{libdir}", "-lpq",
                               f"-Wl,-rpath,{libdir}")
        conf = "\n".join([
            "oauth_validator_libraries = 'electric_auth'",
            "electric_auth.jwt_alg = 'HS256'",
            f"electric_auth.jwt_key = '{SECRET}'",
            f"electric_auth.jwt_iss = '{ISS}'",
            f"electric_auth.jwt_aud = '{AUD}'",
            "electric_auth.role_claim = 'db_roles'",
            "log_connections = on",
        ])
        cls.cluster = Cluster(*cls.CLUSTER).fresh(conf)
        try:
            with cls.cluster.connect() as c:
                c.execute("CREATE ROLE app_alice LOGIN")
                c.execute("CREATE ROLE app_bob LOGIN")
                c.execute("CREATE ROLE app_repl LOGIN REPLICATION")
                c.execute("CREATE ROLE app_super LOGIN SUPERUSER")
                c.execute("CREATE ROLE app_bypass LOGIN BYPASSRLS")
                # Privileged through membership: SET ROLE reaches the group's attributes.
                c.execute("CREATE ROLE app_bypass_group NOLOGIN BYPASSRLS")
                c.execute("CREATE ROLE app_member LOGIN IN ROLE app_bypass_group")
                c.execute("CREATE ROLE app_dba LOGIN IN ROLE app_super")
                c.execute("CREATE ROLE app_monitor LOGIN IN ROLE pg_monitor")
                c.execute("CREATE ROLE app_program LOGIN IN ROLE pg_execute_server_program")
                c.execute("CREATE ROLE app_creator LOGIN CREATEROLE")
                for db in ("map_db", "delegate_db"):
                    c.execute(f"CREATE DATABASE {db}")
            for db in ("map_db", "delegate_db"):
                with cls.cluster.connect(dbname=db) as c:
                    c.execute("CREATE EXTENSION electric_auth")
                    c.execute("CREATE TABLE notes (owner_id text, body text)")
                    c.execute("INSERT INTO notes SELECT CASE WHEN g % 2 = 0 THEN 'alice' "
                              "ELSE 'bob' END, 'note ' || g FROM generate_series(1, 4000) g")
                    c.execute("ALTER TABLE notes ENABLE ROW LEVEL SECURITY")
                    c.execute("CREATE POLICY own ON notes "
                              "USING (owner_id = electric_auth.current_user_id())")
                    c.execute("GRANT SELECT ON notes TO app_alice, app_bob")
                    c.execute("ANALYZE notes")
            oauth = f'oauth issuer="{ISS}" scope="{SCOPE}"'
            (cls.cluster.data / "pg_hba.conf").write_text(
                "local all postgres trust\n"
                f"local delegate_db all {oauth} delegate_ident_mapping=1\n"
                f"local all all {oauth} map=electric\n")
            (cls.cluster.data / "pg_ident.conf").write_text("electric alice app_alice\n"
                                                "electric alice app_repl\n"
                                                "electric bob app_bob\n")
            cls.cluster.reload()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def connect(self, token, *sql, user="app_alice", dbname="map_db", extra=""):
        conninfo = (f"host={self.cluster.sock} port={self.cluster.port} dbname={dbname} user={user} "
                    f"oauth_issuer={ISS} oauth_client_id=electric {extra}")
        run = subprocess.run([self.client, conninfo, *sql], capture_output=True, text=True,
                             env=dict(os.environ, EA_TOKEN=token), timeout=60)
        return run.returncode, run.stdout, run.stderr

    def log(self):
        return self.cluster.log()

    def assert_refused(self, token, reason, user="app_alice", dbname="map_db"):
        before = len(self.log())
        status, out, err = self.connect(token, "SELECT 1", user=user, dbname=dbname)
        self.assertEqual(status, 1, out)
        self.assertIn("FATAL", err)
        self.assertIn(f'OAuth bearer authentication failed for user "{user}"', err)
        self.assertNotIn(SECRET, err)
        time.sleep(0.2)  # let the backend's last log lines reach the file
        added = self.log()[before:]
        if reason is not None:
            self.assertIn(reason, added)
        self.assertNotIn(token[:40], added, "the token never reaches the log")
        self.assertNotIn(SECRET[:20], added, "nor the key")

    def assert_alive(self):
        with self.cluster.connect() as c:
            self.assertEqual(c.execute("SELECT 1").fetchone()[0], 1)

    def test_a_good_token_connects_as_the_mapped_role_with_its_identity(self):
        token = mint("alice")
        status, out, err = self.connect(
            token,
            "SELECT current_user, SYSTEM_USER, electric_auth.current_user_id(), "
            "electric_auth.current_claims()->>'aud'",
            "SELECT count(*), count(*) FILTER (WHERE owner_id <> 'alice') FROM notes",
            "DISCARD ALL",
            "SELECT electric_auth.current_user_id()",
            # The identity reaches parallel workers.
            "SET debug_parallel_query = on",
            "SELECT electric_auth.current_user_id(), count(*) FROM notes")
        self.assertEqual(status, 0, err)
        self.assertEqual(out.splitlines(), [
            f"app_alice\toauth:alice\talice\t{AUD}", "2000\t0", "alice", "alice\t2000"])
        self.assert_alive()

    def test_the_connections_identity_cannot_be_replaced(self):
        for sql in (f"SELECT electric_auth.authenticate('{mint('bob')}')",
                    "SELECT electric_auth.logout()",
                    f"SET electric_auth.identity_token = '{mint('bob')}'",
                    "SET electric_auth.identity_token = ''",
                    "SET electric_auth.identity_token = ' '",
                    "SELECT set_config('electric_auth.identity_token', '', false)",
                    "SET LOCAL electric_auth.identity_token = ''"):
            status, out, err = self.connect(mint("alice"), sql)
            self.assertEqual(status, 1, out)
            self.assertRegex(err, "cannot replace the identity of a connection authenticated "
                                  "by its token|cannot be changed on a connection "
                                  "authenticated by its token")
        # A refused SET leaves the identity in force; RESET and DISCARD ALL come back to it.
        status, out, err = self.connect(
            mint("alice"),
            "SELECT electric_auth.current_user_id()",
            "RESET electric_auth.identity_token",
            "SELECT electric_auth.current_user_id(), count(*) FROM notes",
            "DISCARD ALL",
            "SELECT electric_auth.current_user_id()")
        self.assertEqual((status, out.splitlines()), (0, ["alice", "alice\t2000", "alice"]), err)

    def test_the_line_issuer_and_scopes_are_required(self):
        # jwt_iss agrees with the line (postgresql.conf sets it to the line's issuer).
        self.assertEqual(self.connect(mint(scope=None, scp=["electric", "openid", "x"]),
                                      "SELECT current_user")[:2], (0, "app_alice\n"))
        self.assert_refused(mint(scope="openid"),
                            'the token does not grant the scope "electric" that this '
                            'pg_hba.conf line requires')
        self.assert_refused(mint(scope=None), 'does not grant the scopes "openid electric"')
        # With jwt_iss unset, the line's issuer alone decides.
        self.cluster.alter_system("electric_auth.jwt_iss", "")
        try:
            self.assert_refused(mint(iss="https://elsewhere.example"),
                                'the token\'s "iss" claim ("https://elsewhere.example") is not '
                                'the issuer of this pg_hba.conf line ("https://issuer.example")')
            self.assert_refused(mint(iss=None), 'the token has no "iss" claim')
            self.assertEqual(self.connect(mint(), "SELECT current_user")[1], "app_alice\n")
        finally:
            self.cluster.alter_system("electric_auth.jwt_iss", None)
        # jwt_iss set to another issuer: even a token of the line's own issuer is refused, and
        # the log says the two settings disagree.
        self.cluster.alter_system("electric_auth.jwt_iss", "https://other-issuer.example")
        try:
            self.assert_refused(mint(), "electric_auth.jwt_iss (\"https://other-issuer.example\") "
                                "and the issuer of this pg_hba.conf line "
                                "(\"https://issuer.example\") disagree")
            self.assert_refused(mint(iss="https://other-issuer.example"), None)
        finally:
            self.cluster.alter_system("electric_auth.jwt_iss", None)

    def test_privileged_roles_are_refused_when_ident_mapping_is_delegated(self):
        for role, what in (("app_super", "a superuser"), ("app_repl", "a REPLICATION role"),
                           ("app_bypass", "a BYPASSRLS role"),
                           ("app_member", 'a member of a BYPASSRLS role ("app_bypass_group")'),
                           ("app_dba", 'a member of a superuser ("app_super")'),
                           ("app_monitor", "a member of a privileged predefined role "
                                           '("pg_read_all_settings")'),
                           ("app_program", "a member of a privileged predefined role "
                                           '("pg_execute_server_program")'),
                           ("app_creator", "a CREATEROLE role")):
            with self.subTest(role=role):
                self.assert_refused(mint(db_roles=[role]),
                                    f'role "{role}" is {what}, and '
                                    'electric_auth.delegate_privileged_roles is off',
                                    user=role, dbname="delegate_db")
        self.cluster.alter_system("electric_auth.delegate_privileged_roles", "on")
        try:
            self.assertEqual(self.connect(mint(db_roles=["app_super"]), "SELECT current_user",
                                          user="app_super", dbname="delegate_db")[:2],
                             (0, "app_super\n"))
        finally:
            self.cluster.alter_system("electric_auth.delegate_privileged_roles", None)
        # The ident map (map=) is the DBA's own list: it still decides there.
        self.assertEqual(self.connect(mint(), "SELECT current_user", user="app_repl")[:2],
                         (0, "app_repl\n"))

    def test_role_names_are_compared_as_bytes(self):
        # A role whose name is not UTF-8 (made through a SQL_ASCII database) is never named by
        # a claim: "\ufffd" (what a lossy decoding makes of it) must not match.
        with self.cluster.connect() as c:
            c.execute("CREATE DATABASE ascii_db ENCODING 'SQL_ASCII' LC_COLLATE 'C' "
                      "LC_CTYPE 'C' TEMPLATE template0")

        def in_ascii_db(sql):
            self.cluster.psql(dbname="ascii_db", input=sql, capture_output=True)
        try:
            in_ascii_db(b'CREATE ROLE "\xfe" LOGIN;\n')
            token = mint(db_roles=["\ufffd"])
            before = len(self.log())
            conninfo = (f"host={self.cluster.sock} port={self.cluster.port} dbname=delegate_db user=\xfe "
                        f"oauth_issuer={ISS} oauth_client_id=electric").encode("latin-1")
            run = subprocess.run([self.client, conninfo, b"SELECT current_user"],
                                 capture_output=True, env=dict(os.environ, EA_TOKEN=token),
                                 timeout=60)
            self.assertEqual(run.returncode, 1, run.stdout)
            time.sleep(0.2)
            self.assertIn("is not UTF-8, so no claim can name it", self.log()[before:])
        finally:
            in_ascii_db(b'DROP ROLE IF EXISTS "\xfe";\n')
            with self.cluster.connect() as c:
                c.execute("DROP DATABASE ascii_db")

    def test_session_settings_that_refuse_the_token_raise_on_first_use(self):
        # Only postgresql.conf/ALTER SYSTEM are in force at login; the database's own audience
        # applies from the first statement, and the identity must then say why it is refused.
        with self.cluster.connect() as c:
            c.execute("ALTER DATABASE map_db SET electric_auth.jwt_aud = 'map-db-audience'")
        try:
            status, out, err = self.connect(mint(), "SELECT electric_auth.current_user_id()")
            self.assertEqual(status, 1, out)
            self.assertIn('Invalid "aud" claim value: "ea-oauth-audience"', err)
            status, out, err = self.connect(mint(), "SELECT count(*) FROM notes")
            self.assertEqual(status, 1, out)
            self.assertIn('Invalid "aud" claim value', err)
            # A token for both audiences verifies at login and in the session.
            status, out, err = self.connect(mint(aud=[AUD, "map-db-audience"]),
                                            "SELECT electric_auth.current_user_id()")
            self.assertEqual((status, out), (0, "alice\n"), err)
        finally:
            with self.cluster.connect() as c:
                c.execute("ALTER DATABASE map_db RESET electric_auth.jwt_aud")

    def test_a_configuration_error_is_one_warning_per_reload(self):
        before = len(self.log())
        self.cluster.alter_system("electric_auth.jwt_alg", "RS256")  # the HS secret is no RSA key
        try:
            for _ in range(3):
                self.assert_refused(mint(), None)
            added = self.log()[before:]
            warning = ("WARNING:  electric_auth cannot verify OAuth bearer tokens, so every "
                       "token login is refused: electric_auth.jwt_key is not a valid key for "
                       "electric_auth.jwt_alg=RS256")
            self.assertEqual(added.count(warning), 1, added[-3000:])
            self.assertIn("HINT:", added[added.index(warning):])
            self.cluster.reload()
            self.assert_refused(mint(), None)
            self.assertEqual(self.log()[before:].count(warning), 2)
        finally:
            self.cluster.alter_system("electric_auth.jwt_alg", None)

    def test_the_ident_map_decides_the_role(self):
        self.assertEqual(self.connect(mint("bob"), "SELECT current_user", user="app_bob")[1],
                         "app_bob\n")
        self.assert_refused(mint("alice"), None, user="app_bob")
        self.assert_refused(mint("carol"), None, user="app_alice")

    def test_bad_tokens_are_refused_with_the_spec_reason_in_the_log(self):
        unsigned = mint(alg="none", scope=None, exp=now() + 60)
        for token, reason in [
            (mint(exp=now() - 600), "Expired token"),
            (mint(key=ATTACKER), "Invalid token signature"),
            (unsigned, "Signing algorithm mismatch"),
            (mint(aud="someone-else"), 'Invalid "aud" claim value: "someone-else"'),
            (mint(iss="https://elsewhere.example"),
             'Invalid "iss" claim value: "https://elsewhere.example"'),
            ("not-a-jwt", "Invalid token"),
            ("a.b.c", "Invalid token"),
        ]:
            with self.subTest(reason=reason):
                self.assert_refused(token, f': {reason}')
        # The security suite's hostile payloads, correctly signed.
        issued = now()
        head = f'{{"sub":"alice","iat":{issued},"exp":{issued + 600},"iss":"{ISS}","aud":"{AUD}"'
        for payload in (head + ',"x":' + "[" * 20000 + "]" * 20000 + "}",
                        head + ',"x":"a\\u0000b"}',
                        head + ',"x":1e400}',
                        '{"sub":"alice","sub":"mallory"}'):
            token = mint.raw(payload.encode())
            self.assert_refused(token, None)
        # 70 KiB, correctly signed: refused (by Postgres's message limit or by the verifier).
        self.assert_refused(mint(padding="x" * 70 * 1024), None)
        self.assert_alive()
        self.assertNotIn("terminated by signal", self.log())

    def test_delegated_ident_mapping_needs_the_role_in_the_role_claim(self):
        ok = self.connect(mint("alice", db_roles=["app_alice", "reader"]),
                          "SELECT current_user, electric_auth.current_user_id()",
                          dbname="delegate_db")
        self.assertEqual(ok[:2], (0, "app_alice\talice\n"), ok[2])
        self.assertEqual(self.connect(mint("alice", db_roles="app_bob"), "SELECT current_user",
                                      user="app_bob", dbname="delegate_db")[1], "app_bob\n")
        self.assert_refused(mint("alice", db_roles=["app_alice"]),
                            'the token\'s "db_roles" claim does not name role "app_bob"',
                            user="app_bob", dbname="delegate_db")
        self.assert_refused(mint("alice"), 'the token has no "db_roles" claim',
                            dbname="delegate_db")
        self.cluster.alter_system("electric_auth.role_claim", "")
        try:
            self.assert_refused(mint("alice", db_roles=["app_alice"]),
                                "electric_auth.role_claim is not set", dbname="delegate_db")
        finally:
            self.cluster.alter_system("electric_auth.role_claim", None)  # postgresql.conf's

    def test_insecure_mode_refuses_every_connection(self):
        self.cluster.alter_system("electric_auth.mode", "insecure")
        try:
            self.assert_refused(mint("alice"), "electric_auth.mode is insecure")
        finally:
            self.cluster.alter_system("electric_auth.mode", None)

    def test_a_replication_connection_runs_identify_system(self):
        status, out, err = self.connect(mint("alice"), "IDENTIFY_SYSTEM", user="app_repl",
                                        extra="replication=database")
        self.assertEqual(status, 0, err)
        fields = out.strip().split("\t")
        self.assertEqual(len(fields), 4, out)
        self.assertEqual(fields[1], "1")  # timeline
        self.assertEqual(fields[3], "map_db")


if __name__ == "__main__":
    main()
