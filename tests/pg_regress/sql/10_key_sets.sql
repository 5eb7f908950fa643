-- Beyond Electric: key sets in electric_auth.jwt_key (a JWK, a JWKS, several PEM blocks), kid
-- selection, and the PS256/384/512 and EdDSA algorithms. Tokens from 09_keyset_fixtures.sql,
-- signed by PyJWT, node's jsonwebtoken and node's jose.
CREATE FUNCTION fx.use_jwks(alg text, name text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('electric_auth.mode', 'secure', false);
  PERFORM set_config('electric_auth.jwt_alg', alg, false);
  PERFORM set_config('electric_auth.jwt_key', (SELECT value FROM fx.jwks j WHERE j.name = use_jwks.name), false);
  RETURN format('%s with JWKS %s', alg, name);
END $$;
CREATE FUNCTION fx.outcomes(alg text, scenarios text[]) RETURNS TABLE (scenario text, library text, outcome text)
LANGUAGE sql AS $$
  SELECT t.scenario, t.library, fx.try_user_id(t.token) FROM fx.tokens t
   WHERE t.key = alg AND t.scenario = ANY (scenarios) ORDER BY array_position(scenarios, t.scenario), t.library $$;
-- The algorithm list in messages has the new names.
SELECT fx.outcome($$SET electric_auth.jwt_alg = 'ES256K'$$);
-- PS256/384/512 with an RSA key in any PEM form; another key does not verify.
SELECT fx.use_key('PS256', 'RSA', 'public_spki');
SELECT * FROM fx.outcomes('PS256', '{standard}');
SELECT fx.use_key('PS384', 'RSA', 'certificate');
SELECT * FROM fx.outcomes('PS384', '{standard}');
SELECT fx.use_key('PS512', 'RSA', 'private_pkcs1');
SELECT * FROM fx.outcomes('PS512', '{standard}');
SELECT fx.use_key('PS256', 'rsa-2', 'public_spki');
SELECT * FROM fx.outcomes('PS256', '{standard}');
-- An RS256 token is not a PS256 one.
SELECT fx.try_user_id(fx.token('standard', 'RS256', 'pyjwt')) AS rs256_under_ps256;
-- EdDSA (Ed25519): public or private PEM.
SELECT fx.use_key('EdDSA', 'ed-1', 'public_spki');
SELECT * FROM fx.outcomes('EdDSA', '{standard}');
SELECT fx.use_key('EdDSA', 'ed-1', 'private_pkcs8');
SELECT * FROM fx.outcomes('EdDSA', '{standard}');
SELECT fx.use_key('EdDSA', 'ed-2', 'public_spki');
SELECT * FROM fx.outcomes('EdDSA', '{standard}');
SELECT fx.use_key('EdDSA', 'RSA', 'public_spki');
SELECT fx.try_user_id(fx.token('standard', 'EdDSA', 'jose')) AS rsa_key_for_eddsa;
-- A whole JWKS as an identity provider serves it: only keys that can verify the pinned
-- algorithm are used; a kid selects its key; without kid the usable keys are tried in order.
SELECT fx.use_jwks('RS256', 'idp');
SELECT * FROM fx.outcomes('RS256', '{kid_rsa_1,kid_rsa_2,no_kid_rsa_2,kid_rsa_1_signed_by_rsa_2,kid_unknown}');
SELECT fx.use_jwks('ES256', 'idp');
SELECT * FROM fx.outcomes('ES256', '{kid_ec_1,kid_ec_2}');
SELECT fx.use_jwks('EdDSA', 'idp');
SELECT * FROM fx.outcomes('EdDSA', '{standard,kid_ed_1,kid_ed_2}');
SELECT electric_auth.verify(fx.token('kid_ed_1', 'EdDSA', 'jose')) ->> 'sub' AS verified_sub;
-- No usable key: 22023, with the reason for each key.
SELECT fx.use_jwks('PS256', 'idp');
SELECT fx.try_user_id(fx.token('kid_ps_rsa_2', 'PS256', 'pyjwt'));
SELECT fx.use_jwks('HS256', 'idp');
SELECT fx.try_user_id(fx.token('kid_hs_2', 'HS256', 'pyjwt'));
SELECT fx.use_jwks('HS256', 'hs_pair');
SELECT * FROM fx.outcomes('HS256', '{kid_hs_2}');
SELECT fx.use_jwks('ES256', 'single_ec_jwk');
SELECT * FROM fx.outcomes('ES256', '{kid_ec_1,kid_ec_2}');
-- Keys without kid are tried in order, for tokens with or without kid.
SELECT fx.use_jwks('RS256', 'no_kid_pair');
SELECT * FROM fx.outcomes('RS256', '{no_kid_rsa_1,no_kid_rsa_2,kid_unknown}');
-- Several PEM blocks one after another; each must be a key for the algorithm.
SET electric_auth.jwt_alg = 'RS256';
SELECT set_config('electric_auth.jwt_key', (SELECT string_agg(value, '' ORDER BY name DESC) FROM fx.keys
  WHERE name IN ('rsa-1', 'rsa-2') AND form = 'public_spki'), false) IS NOT NULL AS two_pem_keys;
SELECT * FROM fx.outcomes('RS256', '{no_kid_rsa_1,no_kid_rsa_2}');
SELECT set_config('electric_auth.jwt_key', (SELECT string_agg(value, '' ORDER BY name DESC) FROM fx.keys
  WHERE name IN ('rsa-1', 'ec-1') AND form = 'public_spki'), false) IS NOT NULL AS rsa_and_ec_pem;
SELECT fx.try_user_id(fx.token('no_kid_rsa_1', 'RS256', 'pyjwt'));
SELECT set_config('electric_auth.jwt_key', repeat((SELECT value FROM fx.keys WHERE name = 'rsa-1' AND form = 'public_spki'), 17), false) IS NOT NULL AS seventeen_keys;
SELECT fx.try_user_id(fx.token('no_kid_rsa_1', 'RS256', 'pyjwt'));
SELECT set_config('electric_auth.jwt_key', '{"keys": 5}', false) IS NOT NULL AS not_a_jwks;
SELECT fx.try_user_id(fx.token('no_kid_rsa_1', 'RS256', 'pyjwt'));
-- Rotation: old and new keys, then the new one alone; a session identity and a cached token
-- signed by the old key fail on the next call.
SELECT fx.use_jwks('RS256', 'rotation_old');
SET electric_auth.session_scope = allow;
SELECT electric_auth.authenticate(fx.token('kid_rsa_1', 'RS256', 'node'), 'session') AS authenticated;
SELECT fx.use_jwks('RS256', 'rotation_both');
SELECT fx.whoami() AS identity_with_both_keys;
SELECT * FROM fx.outcomes('RS256', '{kid_rsa_1,kid_rsa_2}');
SELECT fx.use_jwks('RS256', 'rotation_new');
SELECT fx.whoami() AS identity_after_removal;
SELECT * FROM fx.outcomes('RS256', '{kid_rsa_1,kid_rsa_2}');
SELECT electric_auth.logout();
CALL fx.reset_settings();
