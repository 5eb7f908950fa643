-- electric_auth 0.3.0 -> 0.4.0: key_source() tells whether the key worker runs (and since
-- when), the last failure to write the cache file, and whether its kid list was cut short, and
-- gives one row per fetched source with its issuer (electric_auth.issuers); electric_auth.stats
-- counts by issuer.
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
	"last_persist_failure_reason" TEXT,
	"issuer" TEXT
)
STRICT VOLATILE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'key_source_wrapper';

REVOKE ALL ON FUNCTION electric_auth."key_source"() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION electric_auth."key_source"() TO pg_monitor;

-- electric_auth.stats gains the issuer of each count (electric_auth.issuers; NULL: the default
-- issuer). The view depends on stats_counts(), whose result columns change: both are dropped
-- and created again as a fresh 0.4.0 install creates them, and every privilege granted on the
-- view (beyond the pg_monitor grant the script itself repeats) is granted again.
CREATE TEMPORARY TABLE electric_auth_stats_grants ON COMMIT DROP AS
  SELECT a.grantee, a.privilege_type, a.is_grantable
    FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
   WHERE c.oid = 'electric_auth.stats'::pg_catalog.regclass AND a.grantee <> c.relowner;

DROP VIEW electric_auth.stats;
DROP FUNCTION electric_auth."stats_counts"();

CREATE FUNCTION electric_auth."stats_counts"() RETURNS TABLE (
	"dbid" oid,
	"entry_point" TEXT,
	"outcome" TEXT,
	"reason" TEXT,
	"count" bigint,
	"issuer" TEXT
)
STRICT VOLATILE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'stats_counts_wrapper';

CREATE VIEW electric_auth.stats AS
  SELECT d.datname, s.entry_point, s.outcome, s.reason, s.count, s.issuer
    FROM electric_auth.stats_counts() s
    LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid;
COMMENT ON VIEW electric_auth.stats IS 'Token verifications by database, entry point, outcome, reason and issuer (NULL: the default issuer) since electric_auth.stats_reset_time()';
REVOKE ALL ON electric_auth.stats FROM PUBLIC;
GRANT SELECT ON electric_auth.stats TO pg_monitor;

DO $grants$
DECLARE
  g record;
BEGIN
  FOR g IN SELECT * FROM electric_auth_stats_grants LOOP
    EXECUTE pg_catalog.format('GRANT %s ON electric_auth.stats TO %s%s', g.privilege_type,
      CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::pg_catalog.regrole::text END,
      CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
  END LOOP;
END
$grants$;
DROP TABLE electric_auth_stats_grants;

-- Revocation (src/sql/revocation.rs, src/revocation/): revoke a token or a user's tokens,
-- the list, and who may revoke users and read it.
CREATE FUNCTION electric_auth."revocation_list"() RETURNS TABLE (
	"kind" TEXT,
	"issuer" TEXT,
	"jti" TEXT,
	"signature" TEXT,
	"user_id" TEXT,
	"issued_before" timestamp with time zone,
	"expires_at" timestamp with time zone,
	"revoked_by" TEXT,
	"revoked_at" timestamp with time zone
)
STRICT VOLATILE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'revocation_list_wrapper';

CREATE FUNCTION electric_auth."unrevoke_user"(
	"user_id" TEXT
) RETURNS VOID
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'unrevoke_user_wrapper';

CREATE FUNCTION electric_auth."revoke_user"(
	"user_id" TEXT,
	"issued_before" timestamp with time zone DEFAULT now()
) RETURNS VOID
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'revoke_user_wrapper';

DO $revoker$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'electric_auth_revoker') THEN
    CREATE ROLE electric_auth_revoker NOLOGIN;
  END IF;
END
$revoker$;
CREATE VIEW electric_auth.revocations AS
  SELECT * FROM electric_auth.revocation_list();
COMMENT ON VIEW electric_auth.revocations IS 'What is revoked, by whom, when and until when (never a token)';
REVOKE ALL ON electric_auth.revocations FROM PUBLIC;
GRANT SELECT ON electric_auth.revocations TO electric_auth_revoker;
REVOKE ALL ON FUNCTION electric_auth.revocation_list() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION electric_auth.revocation_list() TO electric_auth_revoker;
REVOKE ALL ON FUNCTION electric_auth.revoke_user(text, timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION electric_auth.revoke_user(text, timestamp with time zone) TO electric_auth_revoker;
REVOKE ALL ON FUNCTION electric_auth.unrevoke_user(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION electric_auth.unrevoke_user(text) TO electric_auth_revoker;

CREATE FUNCTION electric_auth."revoke_token"(
	"token" text
) RETURNS VOID
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'revoke_token_wrapper';

-- logout() gains `revoke` (also revoke the token of the identity in force).
DROP FUNCTION electric_auth."logout"();
CREATE FUNCTION electric_auth."logout"(
	"revoke" bool DEFAULT false
) RETURNS VOID
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'logout_wrapper';
