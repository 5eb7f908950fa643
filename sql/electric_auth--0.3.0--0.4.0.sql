-- electric_auth 0.3.0 -> 0.4.0: key_source() tells whether the key worker runs (and since
-- when), the last failure to write the cache file, and whether its kid list was cut short.
--
-- Run by ALTER EXTENSION electric_auth UPDATE (complain if sourced in psql instead).
\echo Use "ALTER EXTENSION electric_auth UPDATE" to load this file. \quit

-- A function's result columns cannot change in place: dropped and created again, as a fresh
-- 0.4.0 install creates it (pgrx generates that from src/sql/key_source.rs), with its grants;
-- tests/upgrade/test_upgrade.py proves the upgraded catalog equals a fresh install.
DROP FUNCTION electric_auth."key_source"();

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
	"from_cache_file" bool,
	"kids_truncated" bool,
	"worker_running" bool,
	"worker_started" timestamp with time zone,
	"last_persist_failure" timestamp with time zone,
	"last_persist_failure_reason" TEXT
)
STRICT VOLATILE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'key_source_wrapper';

REVOKE ALL ON FUNCTION electric_auth."key_source"() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION electric_auth."key_source"() TO pg_monitor;
