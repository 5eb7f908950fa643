-- Settings from every place a superuser can put them; changes apply on the very next call.
-- SET LOCAL lasts for the transaction; a rolled-back SET is undone.
SET electric_auth.jwt_alg = 'HS256';
SELECT set_config('electric_auth.jwt_key', (SELECT value FROM fx.keys WHERE name = 'HS256'), false) IS NOT NULL AS key_set;
SELECT electric_auth.user_id(fx.token('standard', 'HS256', 'node'));
BEGIN;
SET LOCAL electric_auth.jwt_key = 'a-different-key-of-at-least-32-bytes';
SELECT fx.try_user_id(fx.token('standard', 'HS256', 'node'));
COMMIT;
SELECT electric_auth.user_id(fx.token('standard', 'HS256', 'node')) AS after_set_local;
BEGIN;
SET electric_auth.jwt_alg = 'RS256';
ROLLBACK;
SELECT electric_auth.user_id(fx.token('standard', 'HS256', 'node')) AS after_rollback;
CALL fx.reset_settings();
-- ALTER DATABASE ... SET and ALTER ROLE ... SET apply to new sessions.
CREATE DATABASE ea_other;
ALTER DATABASE ea_other SET electric_auth.jwt_alg = 'ES256';
ALTER ROLE ea_app SET electric_auth.jwt_namespace = 'https://example.com/jwt/claims';
-- A key is refused wherever every role could read it: pg_db_role_setting (ALTER ROLE/DATABASE
-- ... SET) and pg_proc.proconfig (a function's SET clause). Keys belong in postgresql.conf or
-- ALTER SYSTEM.
SELECT fx.outcome(format('ALTER DATABASE ea_other SET electric_auth.jwt_key = %L', (SELECT value FROM fx.keys WHERE name = 'P-256' AND form = 'private_pkcs8')));
SELECT fx.outcome($$ALTER ROLE ea_app SET electric_auth.jwt_key = 'a-role-secret-of-at-least-32-bytes!'$$);
SELECT fx.outcome($$ALTER ROLE ea_app IN DATABASE ea_other SET electric_auth.jwt_key = 'a-role-secret-of-at-least-32-bytes!'$$);
SELECT fx.outcome($$ALTER ROLE ALL SET electric_auth.jwt_key = 'a-role-secret-of-at-least-32-bytes!'$$);
SELECT fx.outcome($$CREATE FUNCTION fx.definer() RETURNS text LANGUAGE sql SECURITY DEFINER SET electric_auth.jwt_key = 'a-function-secret-of-32-bytes!!!' RETURN 'x'$$);
CREATE FUNCTION fx.definer() RETURNS text LANGUAGE sql SECURITY DEFINER RETURN 'x';
SELECT fx.outcome($$ALTER FUNCTION fx.definer() SET electric_auth.jwt_key = 'a-function-secret-of-32-bytes!!!'$$);
SELECT count(*) AS keys_in_pg_db_role_setting FROM pg_db_role_setting, unnest(setconfig) c WHERE c LIKE 'electric_auth.jwt_key=%';
SELECT count(*) AS keys_in_pg_proc FROM pg_proc, unnest(proconfig) c WHERE c LIKE 'electric_auth.jwt_key=%';
-- No key (an empty value) may be set anywhere.
ALTER DATABASE ea_other SET electric_auth.jwt_key = '';
ALTER DATABASE ea_other RESET electric_auth.jwt_key;
DROP FUNCTION fx.definer();
\c ea_other
CREATE EXTENSION electric_auth;
SHOW electric_auth.jwt_alg;
SELECT electric_auth.user_id('eyJhbGciOiJub25lIn0.e30.') IS NULL;
\c electric_auth_regress
SET ROLE ea_app;
SHOW electric_auth.jwt_namespace;
RESET ROLE;
\c electric_auth_regress ea_app
SHOW electric_auth.jwt_namespace;
\c electric_auth_regress postgres
ALTER ROLE ea_app RESET ALL;
-- ALTER SYSTEM (postgresql.auto.conf) with a PEM whose line breaks are written as \n.
SELECT format('ALTER SYSTEM SET electric_auth.jwt_key = %L', replace(rtrim(value, E'\n'), E'\n', '\n'))
  FROM fx.keys WHERE name = 'P-384' AND form = 'public_spki' \gexec
ALTER SYSTEM SET electric_auth.jwt_alg = 'ES384';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SHOW electric_auth.jwt_alg;
SELECT library, electric_auth.user_id(token) FROM fx.tokens WHERE scenario = 'standard' AND key = 'ES384' ORDER BY library;
ALTER SYSTEM RESET electric_auth.jwt_key;
ALTER SYSTEM RESET electric_auth.jwt_alg;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT fx.try_user_id(fx.token('standard', 'ES384', 'node'));
