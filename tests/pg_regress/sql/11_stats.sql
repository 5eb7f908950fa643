-- electric_auth.stats: verifications counted by database, entry point, outcome and reason (this
-- suite's cluster preloads the library). Tokens are minted here with pgcrypto's HMAC (HS256
-- over the fixture secret), one per refusal reason.
CREATE EXTENSION pgcrypto;
CREATE FUNCTION fx.b64url(data bytea) RETURNS text LANGUAGE sql IMMUTABLE
  RETURN translate(encode(data, 'base64'), E'+/=\n', '-_');
CREATE FUNCTION fx.hs256(payload text, header text DEFAULT '{"alg":"HS256","typ":"JWT"}',
                         secret text DEFAULT NULL) RETURNS text LANGUAGE sql STABLE
  RETURN (SELECT input || '.' || fx.b64url(hmac(input, coalesce(secret, (SELECT value FROM fx.keys WHERE name = 'HS256' AND form = 'secret')), 'sha256'))
            FROM (SELECT fx.b64url(convert_to(header, 'UTF8')) || '.' || fx.b64url(convert_to(payload, 'UTF8')) AS input) s);
CREATE FUNCTION fx.stats() RETURNS TABLE (entry_point text, outcome text, reason text, count bigint)
LANGUAGE sql AS $$
  SELECT entry_point, outcome, reason, count FROM electric_auth.stats
   WHERE datname = current_database() ORDER BY entry_point, outcome, reason NULLS FIRST $$;
-- The view's columns.
SELECT attname, atttypid::regtype FROM pg_attribute
 WHERE attrelid = 'electric_auth.stats'::regclass AND attnum > 0 ORDER BY attnum;
-- Reset: nothing counted, and the time recorded.
SELECT electric_auth.stats_reset();
SELECT electric_auth.stats_reset_time() BETWEEN now() - interval '1 minute' AND clock_timestamp() AS reset_just_now;
SELECT count(*) AS rows_after_reset FROM fx.stats();
SELECT fx.use_key('HS256', 'HS256', 'secret');
-- Accepted: two through user_id, one through verify.
SELECT electric_auth.user_id(fx.hs256('{"sub":"alice","iat":1700000000,"exp":4102444800}')) AS alice;
SELECT electric_auth.user_id(fx.hs256('{"sub":"bob","iat":1700000000,"exp":4102444800}')) AS bob;
SELECT electric_auth.verify(fx.hs256('{"sub":"carol","iat":1700000000,"exp":4102444800}'))->>'sub' AS carol;
-- One token per refusal, through user_id (the message is the spec's; the reason is counted).
SELECT fx.try_user_id('not a token') AS invalid_token;
SELECT fx.try_user_id(fx.hs256('{"sub":"a","iat":1700000000,"exp":4102444800}', '{"alg":"HS384"}')) AS wrong_algorithm;
SELECT fx.try_user_id(fx.hs256('{"sub":"a","iat":1700000000,"exp":4102444800}', secret => 'another-secret-another-secret-another')) AS bad_signature;
SELECT fx.try_user_id(fx.hs256('{"sub":"a","iat":1700000000,"exp":1700000001}')) AS expired;
SELECT fx.try_user_id(fx.hs256('{"sub":"a","iat":1700000000,"nbf":4102400000,"exp":4102444800}')) AS not_yet_valid;
SELECT fx.try_user_id(fx.hs256('{"sub":"a","iat":4102400000,"exp":4102444800}')) AS issued_in_future;
SELECT fx.try_user_id(fx.hs256('{"sub":"a","iat":"yesterday","exp":4102444800}')) AS invalid_claim;
SELECT fx.try_user_id(fx.hs256('{"sub":"a","iat":1700000000}')) AS missing_claim;
SELECT fx.try_user_id(fx.hs256('{"sub":"  ","iat":1700000000,"exp":4102444800}')) AS no_user_id;
SET electric_auth.jwt_iss = 'https://idp.example';
SELECT fx.try_user_id(fx.hs256('{"sub":"a","iss":"https://other.example","iat":1700000000,"exp":4102444800}')) AS wrong_issuer;
RESET electric_auth.jwt_iss;
SET electric_auth.jwt_aud = 'electric';
SELECT fx.try_user_id(fx.hs256('{"sub":"a","aud":["other"],"iat":1700000000,"exp":4102444800}')) AS wrong_audience;
RESET electric_auth.jwt_aud;
SELECT fx.use_jwks('RS256', 'idp');
SELECT fx.try_user_id(fx.token('kid_unknown', 'RS256', 'pyjwt')) AS unknown_key;
SET electric_auth.jwt_key = '';
SELECT fx.try_verify(fx.hs256('{"sub":"a","iat":1700000000,"exp":4102444800}')) AS configuration;
SELECT fx.use_key('HS256', 'HS256', 'secret');
-- authenticate: accepted once, refused for a NULL token and for a session scope (refused here).
BEGIN;
SELECT electric_auth.authenticate(fx.hs256('{"sub":"dave","iat":1700000000,"exp":4102444800}')) AS dave;
-- A setting assigned: the held identity is verified again (entry point identity).
SET LOCAL electric_auth.clock_drift = 3;
SELECT electric_auth.current_user_id() AS still_dave;
SELECT electric_auth.current_user_id() AS verified_once_only;
COMMIT;
SELECT fx.outcome('SELECT electric_auth.authenticate(NULL)') AS null_token;
SELECT fx.outcome($$SELECT electric_auth.authenticate(fx.hs256('{"sub":"a","iat":1700000000,"exp":4102444800}'), 'session')$$) AS session_scope;
SELECT * FROM fx.stats();
SELECT sum(count) AS total FROM fx.stats();
-- Unprivileged roles may neither read nor reset; a pg_monitor member reads, but may not reset.
SET ROLE ea_app;
SELECT fx.outcome('SELECT count(*) FROM electric_auth.stats') AS unprivileged_view;
SELECT fx.outcome('SELECT count(*) FROM electric_auth.stats_counts()') AS unprivileged_function;
SELECT fx.outcome('SELECT electric_auth.stats_reset_time()::text') AS unprivileged_reset_time;
SELECT fx.outcome('SELECT electric_auth.stats_reset()') AS unprivileged_reset;
RESET ROLE;
CREATE ROLE ea_stats_monitor IN ROLE pg_monitor;
SET ROLE ea_stats_monitor;
SELECT sum(count) AS monitor_reads FROM electric_auth.stats WHERE datname = current_database();
SELECT electric_auth.stats_reset_time() IS NOT NULL AS monitor_reads_reset_time;
SELECT fx.outcome('SELECT electric_auth.stats_reset()') AS monitor_reset;
RESET ROLE;
-- Both can be granted.
GRANT SELECT ON electric_auth.stats TO ea_app;
GRANT EXECUTE ON FUNCTION electric_auth.stats_reset() TO ea_app;
SET ROLE ea_app;
SELECT sum(count) > 0 AS granted_reads FROM electric_auth.stats WHERE datname = current_database();
SELECT fx.outcome('SELECT electric_auth.stats_reset()') AS granted_reset;
RESET ROLE;
SELECT count(*) AS rows_after_granted_reset FROM fx.stats();
REVOKE SELECT ON electric_auth.stats FROM ea_app;
REVOKE EXECUTE ON FUNCTION electric_auth.stats_reset() FROM ea_app;
DROP ROLE ea_stats_monitor;
-- The settings: counting on, the audit log off, ten lines a second.
SELECT name, setting, context FROM pg_settings
 WHERE name IN ('electric_auth.track_stats', 'electric_auth.log_refusals',
                'electric_auth.log_refusals_per_second', 'electric_auth.log_authentications')
 ORDER BY name;
-- Not counted while electric_auth.track_stats is off.
SET electric_auth.track_stats = off;
SELECT electric_auth.user_id(fx.hs256('{"sub":"erin","iat":1700000000,"exp":4102444800}')) AS erin;
RESET electric_auth.track_stats;
SELECT count(*) AS rows_with_tracking_off FROM fx.stats();
CALL fx.reset_settings();
DROP EXTENSION pgcrypto CASCADE;
