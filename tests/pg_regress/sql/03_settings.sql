-- The settings (the carrier of the session identity is hidden), their defaults, and what is refused at SET time (SQLSTATE 22023).
SELECT name, setting, unit, context, vartype FROM pg_settings WHERE name LIKE 'electric_auth.%' ORDER BY name;
SELECT fx.outcome($$SET electric_auth.jwt_alg = 'ES256K'$$);
SELECT fx.outcome($$SET electric_auth.jwt_alg = 'hs256'$$);
SELECT fx.outcome($$SET electric_auth.mode = 'debug'$$);
SELECT fx.outcome($$SET electric_auth.clock_drift = 3601$$);
SELECT fx.outcome($$SET electric_auth.clock_drift = -1$$);
-- The prefix is reserved: a typo is an error, not a silent placeholder.
SELECT fx.outcome($$SET electric_auth.jwt_algo = 'HS256'$$);
-- Configuration problems found when a token is checked: SQLSTATE 22023, naming the setting.
SELECT fx.try_user_id('a.b.c');
SET electric_auth.jwt_alg = 'HS256';
SELECT fx.try_user_id('a.b.c');
SET electric_auth.jwt_key = 'only-20-bytes-long!!';
SELECT fx.try_user_id('a.b.c');
SET electric_auth.jwt_alg = 'HS512';
SET electric_auth.jwt_key = 'a-32-byte-key-that-is-fine-for-HS256-only';
SELECT fx.try_user_id('a.b.c');
SET electric_auth.jwt_key_is_base64 = on;
SET electric_auth.jwt_key = 'not base64 at all!';
SELECT fx.try_user_id('a.b.c');
RESET electric_auth.jwt_key_is_base64;
SET electric_auth.jwt_alg = 'RS256';
SET electric_auth.jwt_key = 'this is not a PEM';
SELECT fx.try_user_id('a.b.c');
SELECT fx.use_key('RS256', 'RSA1024', 'public_spki');
SELECT fx.try_user_id('a.b.c');
SELECT fx.use_key('ES384', 'P-256', 'public_spki');
SELECT fx.try_user_id('a.b.c');
SET electric_auth.mode = insecure;
SELECT fx.try_user_id('a.b.c');
CALL fx.reset_settings();
SET electric_auth.mode = insecure;
SET electric_auth.jwt_aud = 'electric';
SELECT fx.try_user_id('a.b.c');
CALL fx.reset_settings();
-- An unprivileged role can neither change the settings nor read the key.
CREATE ROLE ea_app LOGIN;
SET electric_auth.jwt_alg = 'HS256';
SELECT set_config('electric_auth.jwt_key', (SELECT value FROM fx.keys WHERE name = 'HS256'), false) IS NOT NULL AS key_set;
SET ROLE ea_app;
SELECT fx.outcome($$SET electric_auth.mode = 'insecure'$$);
SELECT fx.outcome($$SET LOCAL electric_auth.jwt_key = 'attacker-controlled-key-32-bytes'$$);
SELECT fx.outcome($$SELECT set_config('electric_auth.clock_drift', '3600', false)$$);
SELECT fx.outcome($$SHOW electric_auth.jwt_key$$);
SELECT fx.outcome($$SELECT current_setting('electric_auth.jwt_key')$$);
SELECT count(*) AS key_rows_visible FROM pg_settings WHERE name = 'electric_auth.jwt_key';
SHOW electric_auth.jwt_alg;
SELECT electric_auth.user_id(fx.token('standard', 'HS256', 'node')) AS verified_as_app;
RESET ROLE;
SELECT name FROM pg_settings WHERE name = 'electric_auth.jwt_key';
CALL fx.reset_settings();
-- RESET ALL and DISCARD ALL leave electric_auth.* as they are (GUC_NO_RESET_ALL): Postgres runs
-- them without a privilege check, so an unprivileged role could otherwise drop a superuser's
-- session-level iss/aud check. RESET of one setting needs the privilege to set it.
SET electric_auth.jwt_aud = 'kept-audience';
SET ROLE ea_app;
RESET ALL;
SHOW electric_auth.jwt_aud;
SELECT fx.outcome($$RESET electric_auth.jwt_aud$$);
RESET ROLE;
DISCARD ALL;
SHOW electric_auth.jwt_aud;
RESET electric_auth.jwt_aud;
SHOW electric_auth.jwt_aud;
-- electric_auth.refused_setting is set only by the library (see README, Security).
SHOW electric_auth.refused_setting;
SELECT fx.outcome($$SET electric_auth.refused_setting = 'electric_auth.jwt_iss'$$);
SELECT fx.outcome($$SELECT set_config('electric_auth.refused_setting', 'x', false)$$);
