-- electric_auth verifies on AWS-LC, linked into electric_auth.so with prefixed symbols; Postgres
-- and pgcrypto use the system's OpenSSL. Used in one session, in both orders, neither may
-- disturb the other.
CREATE EXTENSION pgcrypto;
-- electric_auth first, then pgcrypto.
SELECT fx.use_key('ES256', 'P-256', 'public_spki');
SELECT electric_auth.user_id(fx.token('standard', 'ES256', 'node')) AS electric_auth_first;
SELECT encode(digest('electric', 'sha256'), 'hex') AS pgcrypto_digest;
SELECT encode(hmac('electric', 'key', 'sha512'), 'hex') AS pgcrypto_hmac;
SELECT crypt('pw', stored) = stored AS pgcrypto_crypt FROM (SELECT crypt('pw', gen_salt('bf', 4)) AS stored) s;
SELECT length(gen_random_bytes(32)) AS pgcrypto_random_bytes;
SELECT fx.use_key('RS256', 'RSA', 'certificate');
SELECT electric_auth.user_id(fx.token('standard', 'RS256', 'pyjwt')) AS electric_auth_again;
\c
-- A new session: pgcrypto first, then electric_auth.
SELECT encode(digest('electric', 'sha256'), 'hex') AS pgcrypto_first;
SELECT length(gen_random_bytes(16)) AS pgcrypto_random_bytes;
SELECT crypt('pw', stored) = stored AS pgcrypto_crypt FROM (SELECT crypt('pw', gen_salt('md5')) AS stored) s;
SELECT fx.use_key('ES512', 'P-521', 'private_pkcs8');
SELECT electric_auth.user_id(fx.token('standard', 'ES512', 'pyjwt')) AS electric_auth_then;
SELECT fx.use_key('HS256', 'HS256', 'secret');
SELECT electric_auth.user_id(fx.token('standard', 'HS256', 'node')) AS electric_auth_hs256;
SELECT fx.try_user_id(fx.token('standard', 'ES256', 'node')) AS wrong_algorithm;
SELECT encode(digest('electric', 'sha256'), 'hex') AS pgcrypto_still_works;
DROP EXTENSION pgcrypto;
