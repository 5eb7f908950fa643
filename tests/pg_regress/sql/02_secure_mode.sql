-- Secure mode: all nine algorithms, each with tokens from PyJWT and node's jsonwebtoken.
SELECT fx.use_key('HS256', 'HS256', 'secret');
SELECT library, electric_auth.user_id(token) FROM fx.tokens WHERE scenario = 'standard' AND key = 'HS256' ORDER BY library;
SELECT fx.use_key('HS384', 'HS384', 'secret');
SELECT library, electric_auth.user_id(token) FROM fx.tokens WHERE scenario = 'standard' AND key = 'HS384' ORDER BY library;
SELECT fx.use_key('HS512', 'HS512', 'secret');
SELECT library, electric_auth.user_id(token) FROM fx.tokens WHERE scenario = 'standard' AND key = 'HS512' ORDER BY library;
SELECT fx.use_key('RS256', 'RSA', 'public_spki');
SELECT library, electric_auth.user_id(token) FROM fx.tokens WHERE scenario = 'standard' AND key = 'RS256' ORDER BY library;
SELECT fx.use_key('RS384', 'RSA', 'public_pkcs1');
SELECT library, electric_auth.user_id(token) FROM fx.tokens WHERE scenario = 'standard' AND key = 'RS384' ORDER BY library;
SELECT fx.use_key('RS512', 'RSA', 'certificate');
SELECT library, electric_auth.user_id(token) FROM fx.tokens WHERE scenario = 'standard' AND key = 'RS512' ORDER BY library;
SELECT fx.use_key('ES256', 'P-256', 'public_spki');
SELECT library, electric_auth.user_id(token) FROM fx.tokens WHERE scenario = 'standard' AND key = 'ES256' ORDER BY library;
SELECT fx.use_key('ES384', 'P-384', 'private_sec1');
SELECT library, electric_auth.user_id(token) FROM fx.tokens WHERE scenario = 'standard' AND key = 'ES384' ORDER BY library;
SELECT fx.use_key('ES512', 'P-521', 'private_pkcs8');
SELECT library, electric_auth.user_id(token) FROM fx.tokens WHERE scenario = 'standard' AND key = 'ES512' ORDER BY library;
-- verify() returns the whole payload as jsonb.
SELECT electric_auth.verify(fx.token('standard', 'ES512', 'pyjwt'));
SELECT electric_auth.verify(fx.token('standard', 'ES512', 'node'))->>'iss' AS iss;
-- Rejections: SQLSTATE 28000 with the spec's messages, in the spec's order.
SELECT fx.use_key('HS256', 'HS256', 'secret');
SELECT fx.try_user_id('');
SELECT fx.try_user_id('not-a-token');
SELECT fx.try_user_id('eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.e30.');
SELECT fx.try_user_id(fx.token('standard', 'RS256', 'pyjwt'));
SELECT fx.try_user_id(fx.token('standard', 'HS256', 'pyjwt') || 'x');
SELECT fx.try_user_id(fx.token('expired', 'HS256', 'node'));
SELECT fx.try_user_id(fx.token('not_yet_valid', 'HS256', 'pyjwt'));
SELECT fx.try_user_id(fx.token('no_exp', 'HS256', 'node'));
SELECT fx.try_user_id(fx.token('namespaced', 'HS256', 'pyjwt'));
SELECT fx.try_user_id(repeat('a', 65537));
SELECT fx.try_verify(fx.token('unsigned', 'none', 'node'));
-- Legacy user_id claim; namespace; audience as an array.
SELECT electric_auth.user_id(fx.token('legacy_user_id', 'HS256', 'node'));
SET electric_auth.jwt_namespace = 'https://example.com/jwt/claims';
SELECT electric_auth.user_id(fx.token('namespaced', 'HS256', 'node'));
SELECT fx.try_user_id(fx.token('standard', 'HS256', 'node'));
RESET electric_auth.jwt_namespace;
SET electric_auth.jwt_aud = 'electric';
SELECT electric_auth.user_id(fx.token('aud_array', 'HS256', 'pyjwt'));
SET electric_auth.jwt_iss = 'https://someone-else.example';
SELECT fx.try_user_id(fx.token('standard', 'HS256', 'pyjwt'));
RESET electric_auth.jwt_iss;
RESET electric_auth.jwt_aud;
-- A base64-encoded HS key.
SELECT set_config('electric_auth.jwt_key', (SELECT value FROM fx.keys WHERE name = 'HS256-base64'), false) IS NOT NULL AS key_set;
SELECT fx.try_user_id(fx.token('base64_key', 'HS256-base64', 'pyjwt'));
SET electric_auth.jwt_key_is_base64 = on;
SELECT electric_auth.user_id(fx.token('base64_key', 'HS256-base64', 'pyjwt'));
RESET electric_auth.jwt_key_is_base64;
-- Spec §5: the docs' ES256 token with the docs' key is expired, which proves its signature verified.
SET electric_auth.jwt_alg = 'ES256';
SET electric_auth.jwt_key = E'-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgW2MZVQ7AU4H+nt4C\n04gbp2z7RW2x9nq3TyrhE8HmKG+hRANCAARzSZvWgxQXm/Ijh2c7CmxF95UGuAe5\nukKuQqBjA9f1kESEBwiVcNmwQwaIiOS84a+K/w3MgP9I2PRKHvAOd+Pf\n-----END PRIVATE KEY-----';
SELECT fx.try_user_id('eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.eyJ1c2VyX2lkIjoiMSIsImlhdCI6MTY4NDc0OTIxMywiZXhwIjoxNjg0NzU5MjEzfQ.dLd_bG5_VayLzTemgATu566NP3itwafMbu1zgef_8mB6VGHojczsXyh3g7QE4GM_l8kUQm9MJN7OWg8Kf-40YQ');
SELECT fx.use_key('ES256', 'P-256', 'public_spki');
SELECT fx.try_user_id('eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.eyJ1c2VyX2lkIjoiMSIsImlhdCI6MTY4NDc0OTIxMywiZXhwIjoxNjg0NzU5MjEzfQ.dLd_bG5_VayLzTemgATu566NP3itwafMbu1zgef_8mB6VGHojczsXyh3g7QE4GM_l8kUQm9MJN7OWg8Kf-40YQ');
CALL fx.reset_settings();
