-- electric_auth 0.2.0 -> 0.3.0: the session identity (authenticate once, then ask who anywhere)
-- and the verification statistics.
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

-- Verification statistics (src/stats/mod.rs): the counters in shared memory, the view over
-- them, and who may read and reset them (superusers and pg_monitor; reset superusers only).
CREATE FUNCTION electric_auth."stats_reset"() RETURNS VOID
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'stats_reset_wrapper';

CREATE FUNCTION electric_auth."stats_reset_time"() RETURNS timestamp with time zone
STRICT VOLATILE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'stats_reset_time_wrapper';

CREATE FUNCTION electric_auth."stats_counts"() RETURNS TABLE (
	"dbid" oid,
	"entry_point" TEXT,
	"outcome" TEXT,
	"reason" TEXT,
	"count" bigint
)
STRICT VOLATILE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'stats_counts_wrapper';

CREATE VIEW electric_auth.stats AS
  SELECT d.datname, s.entry_point, s.outcome, s.reason, s.count
    FROM electric_auth.stats_counts() s
    LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid;
COMMENT ON VIEW electric_auth.stats IS 'Token verifications by database, entry point, outcome and reason since electric_auth.stats_reset_time()';
REVOKE ALL ON electric_auth.stats FROM PUBLIC;
GRANT SELECT ON electric_auth.stats TO pg_monitor;
REVOKE ALL ON FUNCTION electric_auth.stats_reset() FROM PUBLIC;
