-- electric_auth 0.2.0 -> 0.3.0: the session identity (authenticate once, then ask who anywhere).
--
-- Run by ALTER EXTENSION electric_auth UPDATE (complain if sourced in psql instead).
\echo Use "ALTER EXTENSION electric_auth UPDATE" to load this file. \quit

-- The same definitions a fresh 0.3.0 install creates (pgrx generates those from src/api.rs);
-- tests/upgrade/test_upgrade.py proves the upgraded catalog equals a fresh install.
CREATE FUNCTION electric_auth."authenticate"(
	"token" text,
	"scope" TEXT DEFAULT 'transaction'
) RETURNS TEXT
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'authenticate_wrapper';

CREATE FUNCTION electric_auth."current_user_id"() RETURNS TEXT
STRICT STABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'current_user_id_wrapper';

CREATE FUNCTION electric_auth."current_claims"() RETURNS jsonb
STRICT STABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'current_claims_wrapper';

CREATE FUNCTION electric_auth."logout"() RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'logout_wrapper';

-- Keys from an identity provider (src/keys/sql.rs): the key worker's state, for superusers and
-- pg_monitor only.
CREATE FUNCTION electric_auth."key_source"() RETURNS TABLE (
	"setting" TEXT,
	"source" TEXT,
	"jwks_url" TEXT,
	"last_success" timestamp with time zone,
	"last_failure" timestamp with time zone,
	"last_failure_reason" TEXT,
	"usable_keys" INT,
	"kids" TEXT[],
	"generation" bigint,
	"next_refresh" timestamp with time zone,
	"stale" bool,
	"from_cache_file" bool
)
STRICT VOLATILE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'key_source_wrapper';

REVOKE ALL ON FUNCTION electric_auth."key_source"() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION electric_auth."key_source"() TO pg_monitor;
