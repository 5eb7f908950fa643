#!/usr/bin/env bash
# make demo: electric_auth's main job on a throwaway cluster, in a few minutes:
#   - the basics: a token verified (its claims, its user id) and an expired one rejected;
#   - the session identity behind a row-level security policy: authenticate() in a transaction
#     shows that user's rows only, a second user sees only theirs, no identity sees nothing;
#   - a JWKS with two keys in electric_auth.jwt_key: each token is checked with the key its
#     `kid` names;
#   - a key rotation (ALTER SYSTEM + reload): the old kid is refused, the new one accepted.
# Keys and tokens are minted here by PyJWT (RS256, two fresh key pairs). Every token reaches the
# server as a bind parameter (psql's \bind, 16 or later), never inside the statement text. The
# cluster (port $EA_DEMO_PORT, default 54330) is stopped and removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
source scripts/pg_versions.sh
PORT=${EA_DEMO_PORT:-54330}
NAME=${EA_DEMO_NAME:-ea-demo}
SOCK=/tmp/$NAME-sock
BIN=$("${PG_CONFIG:-/usr/bin/pg_config}" --bindir)

# psql 16 or later, for \bind: the server's own, else the newest one scripts/bootstrap.sh
# installed (any of them talks to a Postgres 15 server).
psql_major() { "$1" --version 2>/dev/null | sed -nE 's/^psql \(PostgreSQL\) ([0-9]+).*/\1/p'; }
PSQL=$BIN/psql
if [ "$(psql_major "$PSQL")" -lt 16 ] 2>/dev/null || [ -z "$(psql_major "$PSQL")" ]; then
  for major in 18 17 16; do
    candidate=$PG_WHEEL_ROOT/$major/bin/psql
    [ -x "$candidate" ] && PSQL=$candidate && break
  done
fi
[ "$(psql_major "$PSQL")" -ge 16 ] 2>/dev/null ||
  { echo "demo: needs psql 16 or later (\\bind); run scripts/bootstrap.sh" >&2; exit 1; }

cleanup() {
  scripts/cluster.sh stop "$NAME"
  rm -rf "/tmp/$NAME-data" "$SOCK"
  echo "demo: cluster stopped and removed"
}
trap cleanup EXIT

# Two RS256 key pairs, kid "2026-05" (the current key) and "2026-11" (the next one), the JWKS
# documents of the rotation, and the tokens: psql \set lines, read by every session below before
# it starts echoing, so no token is printed, and none is in a command line or the environment.
# Private keys never leave this Python process.
VARIABLES=$(python3 - <<'PY'
import json, time
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

keys = {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048)
        for kid in ("2026-05", "2026-11")}
def jwk(kid):
    return dict(RSAAlgorithm.to_jwk(keys[kid].public_key(), as_dict=True),
                kid=kid, use="sig", alg="RS256")
def token(sub, kid, signed_by=None, lifetime=3600):
    now = int(time.time())
    claims = {"sub": sub, "iat": now - 60, "exp": now + lifetime}
    return jwt.encode(claims, keys[signed_by or kid], algorithm="RS256", headers={"kid": kid})

variables = {
    "jwks_old": {"keys": [jwk("2026-05")]},
    "jwks_both": {"keys": [jwk("2026-11"), jwk("2026-05")]},
    "jwks_new": {"keys": [jwk("2026-11")]},
    "alice_token": token("alice", "2026-05"),
    "bob_token": token("bob", "2026-05"),
    "expired_token": token("alice", "2026-05", lifetime=-3600),
    "alice_new_token": token("alice", "2026-11"),
    "forged_kid_token": token("mallory", "2026-11", signed_by="2026-05"),
}
for name, value in variables.items():
    if not isinstance(value, str):
        value = json.dumps(value, separators=(",", ":"))
    assert "'" not in value and "\\" not in value
    print(f"\\set {name} '{value}'")
PY
)

# sql: one psql session as `postgres` (run from /, which it can enter, whatever this checkout's
# permissions), reading the SQL on stdin and echoing it. Errors do not stop it: the demo shows
# some on purpose.
sql() {
  { printf '%s\n' "$VARIABLES" '\pset null (null)' '\set ECHO all'; cat; } |
    (cd / && as_postgres "$PSQL" -X -q -h "$SOCK" -p "$PORT" -d postgres -v ON_ERROR_STOP=0 2>&1)
}
# query SQL: one value, from a new session. after_reload T0: returns once new sessions see a
# configuration loaded after T0 (a pg_conf_load_time()).
query() { (cd / && as_postgres "$PSQL" -X -qAt -h "$SOCK" -p "$PORT" -d postgres -c "$1"); }
conf_load_time() { query 'SELECT pg_conf_load_time()'; }
after_reload() {
  for _ in $(seq 100); do
    [ "$(query "SELECT pg_conf_load_time() > '$1'")" = t ] && return
    sleep 0.1
  done
  echo "demo: the configuration was not reloaded within 10 s" >&2
  exit 1
}
section() { printf '\n== %s ==\n' "$*"; }

scripts/cluster.sh start "$NAME" "$PORT"
echo "demo: Postgres $("$BIN/postgres" --version | sed -E 's/^postgres \(PostgreSQL\) ([^ ]+).*/\1/') on port $PORT (socket $SOCK)," \
  "shared_preload_libraries = 'electric_auth', psql $(psql_major "$PSQL") as postgres"

section "1. Setup: the extension, the signer's key set (one key, kid 2026-05), reload"
t0=$(conf_load_time)
sql <<'SQL'
CREATE EXTENSION electric_auth;
-- Keys live in postgresql.conf or ALTER SYSTEM (files only the server's OS user reads).
-- Here the library is preloaded; in a session that has not loaded it, run LOAD 'electric_auth' first.
ALTER SYSTEM SET electric_auth.jwt_alg = 'RS256';
ALTER SYSTEM SET electric_auth.jwt_key = :'jwks_old';
SELECT pg_reload_conf();
SQL
after_reload "$t0"

section "2. The basics: verify(), user_id(), a rejection (tokens as bind parameters)"
sql <<'SQL'
SELECT jsonb_pretty(electric_auth.verify($1)) AS claims \bind :alice_token \g
SELECT electric_auth.user_id($1) \bind :alice_token \g
-- A token past its exp is rejected (SQLSTATE 28000):
SELECT electric_auth.user_id($1) \bind :expired_token \g
SQL

section "3. The session identity behind a row-level security policy"
sql <<'SQL'
CREATE TABLE notes (
  id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  owner_id text NOT NULL DEFAULT electric_auth.current_user_id(),
  body     text
);
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY notes_owner ON notes
  USING (owner_id = electric_auth.current_user_id())
  WITH CHECK (owner_id = electric_auth.current_user_id());
-- The application's role: not the table's owner and not a superuser, so the policy applies.
CREATE ROLE app;
GRANT SELECT, INSERT ON notes TO app;
SET ROLE app;
-- Alice: authenticate once in the transaction, then plain SQL.
BEGIN;
SELECT electric_auth.authenticate($1) \bind :alice_token \g
INSERT INTO notes (body) VALUES ('alice: buy milk'), ('alice: call the bank');
SELECT id, owner_id, body FROM notes ORDER BY id;
COMMIT;
-- Bob, a second user, sees only his rows:
BEGIN;
SELECT electric_auth.authenticate($1) \bind :bob_token \g
INSERT INTO notes (body) VALUES ('bob: fix the bike');
SELECT id, owner_id, body FROM notes ORDER BY id;
COMMIT;
-- The identity ended with each transaction. With none, nothing is visible, nothing can be written:
SELECT electric_auth.current_user_id();
SELECT id, owner_id, body FROM notes ORDER BY id;
INSERT INTO notes (body) VALUES ('nobody: hello');
-- The table's owner (here a superuser, which bypasses RLS) sees every row:
RESET ROLE;
SELECT id, owner_id, body FROM notes ORDER BY id;
SQL

section "4. A JWKS with two keys: rotation step 1 publishes the next key (kid 2026-11) beside 2026-05"
t0=$(conf_load_time)
sql <<'SQL'
ALTER SYSTEM SET electric_auth.jwt_key = :'jwks_both';
SELECT pg_reload_conf();
SQL
after_reload "$t0"
sql <<'SQL'
-- A token is checked only with the key its header's kid names. Both keys verify their tokens:
SELECT electric_auth.user_id($1) AS kid_2026_05 \bind :alice_token \g
SELECT electric_auth.user_id($1) AS kid_2026_11 \bind :alice_new_token \g
-- A token signed with the 2026-05 key but naming kid 2026-11 is refused:
SELECT electric_auth.user_id($1) \bind :forged_kid_token \g
SQL

section "5. Rotation step 4: the signer uses 2026-11 and old tokens have expired; remove 2026-05"
t0=$(conf_load_time)
sql <<'SQL'
ALTER SYSTEM SET electric_auth.jwt_key = :'jwks_new';
SELECT pg_reload_conf();
SQL
after_reload "$t0"
sql <<'SQL'
-- The old kid is refused from the next statement on; the new one is accepted:
SELECT electric_auth.user_id($1) \bind :alice_token \g
SELECT electric_auth.user_id($1) AS kid_2026_11 \bind :alice_new_token \g
-- Alice, with her new token, still sees her rows:
SET ROLE app;
BEGIN;
SELECT electric_auth.authenticate($1) \bind :alice_new_token \g
SELECT id, owner_id, body FROM notes ORDER BY id;
COMMIT;
SQL
echo
