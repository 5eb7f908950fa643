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
RESET ALL;
-- ALTER DATABASE ... SET and ALTER ROLE ... SET apply to new sessions.
CREATE DATABASE ea_other;
DO $$ BEGIN
  EXECUTE format('ALTER DATABASE ea_other SET electric_auth.jwt_alg = %L', 'ES256');
  EXECUTE format('ALTER DATABASE ea_other SET electric_auth.jwt_key = %L', (SELECT value FROM fx.keys WHERE name = 'P-256' AND form = 'public_spki'));
  EXECUTE format('ALTER ROLE ea_app SET electric_auth.jwt_namespace = %L', 'https://example.com/jwt/claims');
END $$;
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
