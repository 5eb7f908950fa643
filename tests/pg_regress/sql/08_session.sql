-- The session identity: electric_auth.authenticate() once per transaction (or session), then
-- current_user_id() / current_claims() in policies, triggers and views.
SELECT fx.use_key('HS256', 'HS256', 'secret');
CREATE FUNCTION fx.whoami() RETURNS text LANGUAGE sql
  RETURN fx.outcome('SELECT electric_auth.current_user_id()');
GRANT EXECUTE ON FUNCTION fx.whoami() TO PUBLIC;
CREATE TABLE docs (id serial PRIMARY KEY, owner_id text NOT NULL, body text);
-- The trigger stamps the authenticated user and refuses rows from nobody.
CREATE FUNCTION stamp_doc_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.owner_id := electric_auth.current_user_id();
  IF NEW.owner_id IS NULL THEN
    RAISE EXCEPTION 'not authenticated' USING ERRCODE = 'invalid_authorization_specification';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER docs_stamp_owner BEFORE INSERT OR UPDATE ON docs FOR EACH ROW EXECUTE FUNCTION stamp_doc_owner();
ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY docs_owner ON docs USING (owner_id = electric_auth.current_user_id());
GRANT SELECT, INSERT, UPDATE ON docs TO ea_app;
GRANT USAGE ON SEQUENCE docs_id_seq TO ea_app;
CREATE VIEW whoami WITH (security_invoker) AS
  SELECT electric_auth.current_user_id() AS user_id, electric_auth.current_claims()->>'iss' AS issuer;
GRANT SELECT ON whoami TO ea_app;
SET ROLE ea_app;
-- No identity until authenticate().
SELECT * FROM whoami;
SELECT electric_auth.current_claims() IS NULL AS no_claims;
SELECT fx.outcome($$INSERT INTO docs (body) VALUES ('from nobody') RETURNING id$$);
-- Transaction scope (the default): like SET LOCAL.
BEGIN;
SELECT electric_auth.authenticate(fx.token('standard', 'HS256', 'pyjwt')) AS authenticated;
INSERT INTO docs (body) VALUES ('written by user-HS256');
SELECT * FROM whoami;
SELECT electric_auth.current_claims() = electric_auth.verify(fx.token('standard', 'HS256', 'pyjwt')) AS claims_as_verify;
SELECT owner_id, body FROM docs;
COMMIT;
SELECT * FROM whoami;
SELECT count(*) AS rows_seen_without_identity FROM docs;
BEGIN;
SELECT electric_auth.authenticate(fx.token('legacy_user_id', 'HS256', 'node'), 'transaction') AS authenticated;
INSERT INTO docs (body) VALUES ('written by legacy-user');
SELECT owner_id, body FROM docs;
-- An UPDATE keeps the row with its owner: the trigger stamps the same user.
UPDATE docs SET body = body || ' (edited)';
SELECT owner_id, body FROM docs;
ROLLBACK;
SELECT * FROM whoami;
-- Savepoints: a rolled-back subtransaction restores the identity that was in force before it.
BEGIN;
SELECT electric_auth.authenticate(fx.token('standard', 'HS256', 'node')) AS authenticated;
SAVEPOINT s1;
SELECT electric_auth.authenticate(fx.token('legacy_user_id', 'HS256', 'pyjwt')) AS authenticated;
SELECT fx.whoami() AS inside_savepoint;
ROLLBACK TO SAVEPOINT s1;
SELECT fx.whoami() AS after_rollback_to;
SAVEPOINT s2;
SELECT electric_auth.authenticate(fx.token('legacy_user_id', 'HS256', 'pyjwt')) AS authenticated;
RELEASE SAVEPOINT s2;
SELECT fx.whoami() AS after_release;
SAVEPOINT s3;
SELECT electric_auth.logout();
SELECT fx.whoami() AS after_logout;
ROLLBACK TO SAVEPOINT s3;
SELECT fx.whoami() AS logout_rolled_back;
-- An error in a subtransaction restores it too.
SELECT fx.outcome(format('SELECT electric_auth.authenticate(%L)', fx.token('expired', 'HS256', 'node')));
SELECT fx.whoami() AS after_rejected_token;
COMMIT;
-- Session scope: refused unless a superuser allows it (behind a transaction pooler a session
-- identity would act for the next client of the server connection); then like SET.
SHOW electric_auth.session_scope;
SELECT fx.outcome(format('SELECT electric_auth.authenticate(%L, %L)', fx.token('standard', 'HS256', 'pyjwt'), 'session')) AS refused_by_default;
RESET ROLE;
SET electric_auth.session_scope = allow; -- a superuser's choice (RESET ALL keeps it)
SET ROLE ea_app;
SELECT electric_auth.authenticate(fx.token('standard', 'HS256', 'pyjwt'), 'session') AS authenticated;
SELECT fx.whoami() AS next_statement;
SELECT owner_id, body FROM docs;
BEGIN;
SELECT electric_auth.authenticate(fx.token('legacy_user_id', 'HS256', 'node')) AS authenticated;
SELECT fx.whoami() AS transaction_over_session;
COMMIT;
SELECT fx.whoami() AS session_identity_again;
BEGIN;
SELECT electric_auth.authenticate(fx.token('legacy_user_id', 'HS256', 'node'), 'session') AS authenticated;
ROLLBACK;
SELECT fx.whoami() AS session_scope_rolled_back;
BEGIN;
SELECT electric_auth.logout();
SELECT fx.whoami() AS logged_out;
COMMIT;
SELECT fx.whoami() AS still_logged_out;
SELECT electric_auth.authenticate(fx.token('standard', 'HS256', 'pyjwt'), 'SESSION') AS authenticated;
DISCARD ALL;
SELECT fx.whoami() AS after_discard_all;
SET ROLE ea_app; -- DISCARD ALL also reset the role
-- Bad arguments.
SELECT fx.outcome('SELECT electric_auth.authenticate(NULL)');
SELECT fx.outcome(format('SELECT electric_auth.authenticate(%L, %L)', fx.token('standard', 'HS256', 'pyjwt'), 'forever'));
SELECT fx.outcome(format('SELECT electric_auth.authenticate(%L, NULL)', fx.token('standard', 'HS256', 'pyjwt')));
SELECT fx.outcome(format('SELECT electric_auth.authenticate(%L)', fx.token('not_yet_valid', 'HS256', 'pyjwt')));
SELECT fx.whoami() AS nothing_in_force;
-- Unforgeable: only authenticate() fills the carrier, and only a superuser may even read it.
SELECT fx.outcome(format('SET electric_auth.identity_token = %L', fx.token('standard', 'HS256', 'pyjwt')));
SELECT fx.outcome(format('SELECT set_config(%L, %L, false)', 'electric_auth.identity_token', fx.token('standard', 'HS256', 'pyjwt')));
SELECT fx.outcome(format('SELECT set_config(%L, %L, true)', 'electric_auth.identity_token', 'user-HS256'));
SELECT fx.outcome('SHOW electric_auth.identity_token');
SELECT count(*) AS listed_in_pg_settings FROM pg_settings WHERE name = 'electric_auth.identity_token';
SELECT fx.outcome(format('ALTER ROLE ea_app SET electric_auth.identity_token = %L', fx.token('standard', 'HS256', 'pyjwt')));
SELECT fx.whoami() AS nothing_forged;
RESET ROLE;
-- Not even a superuser can store one where a session would pick it up.
SELECT fx.outcome(format('ALTER ROLE ea_app SET electric_auth.identity_token = %L', fx.token('standard', 'HS256', 'pyjwt')));
SELECT fx.outcome(format('ALTER DATABASE %I SET electric_auth.identity_token = %L', current_database(), fx.token('standard', 'HS256', 'pyjwt')));
SELECT fx.outcome(format('CREATE FUNCTION fx.as_someone() RETURNS text LANGUAGE sql SET electric_auth.identity_token = %L RETURN electric_auth.current_user_id()', fx.token('standard', 'HS256', 'pyjwt')));
SELECT fx.outcome(format('SET electric_auth.identity_token = %L', fx.token('standard', 'HS256', 'pyjwt')));
SELECT count(*) AS stored_settings FROM pg_db_role_setting WHERE array_to_string(setconfig, ',') LIKE '%identity_token%';
-- Key rotation: the identity is verified again under the settings in force; while it does not
-- verify it raises why (never NULL), and it verifies again when the settings come back.
SELECT electric_auth.authenticate(fx.token('standard', 'HS256', 'pyjwt'), 'session') AS authenticated;
SELECT fx.use_key('HS256', 'HS256', 'secret') AS same_key_again;
SELECT fx.whoami() AS verified_again;
SELECT fx.use_key('HS256', 'HS384', 'secret') AS rotated_key;
SELECT fx.whoami() AS refused;
SELECT fx.use_key('HS256', 'HS256', 'secret') AS key_back;
SELECT fx.whoami() AS verified_again;
SELECT electric_auth.authenticate(fx.token('standard', 'HS256', 'pyjwt'), 'session') AS authenticated;
SET electric_auth.jwt_aud = 'someone-else';
SELECT fx.whoami() AS refused_by_audience;
RESET electric_auth.jwt_aud;
SELECT electric_auth.logout();
-- Expiry is checked against each statement's time: a token minted here (with pgcrypto, not by
-- electric_auth) that expires two seconds from now.
CREATE EXTENSION pgcrypto;
CREATE FUNCTION fx.hs256(payload jsonb) RETURNS text LANGUAGE sql AS $$
  WITH parts AS (
    SELECT translate(encode(convert_to('{"alg":"HS256","typ":"JWT"}', 'UTF8'), 'base64'), E'+/=\n', '-_') || '.' ||
           translate(encode(convert_to(payload::text, 'UTF8'), 'base64'), E'+/=\n', '-_') AS signing_input)
  SELECT signing_input || '.' ||
         translate(encode(hmac(signing_input, (SELECT value FROM fx.keys WHERE name = 'HS256'), 'sha256'), 'base64'), E'+/=\n', '-_')
  FROM parts $$;
SET electric_auth.clock_drift = 0;
SELECT electric_auth.authenticate(fx.hs256(jsonb_build_object('sub', 'short-lived',
  'iat', floor(extract(epoch FROM statement_timestamp())), 'exp', floor(extract(epoch FROM statement_timestamp())) + 2)), 'session') AS authenticated;
SELECT fx.whoami() AS before_expiry;
SELECT pg_sleep(3.1);
SELECT fx.whoami() AS after_expiry;
SELECT fx.outcome('SELECT electric_auth.current_claims()::text') AS claims_after_expiry;
SELECT electric_auth.logout();
SELECT fx.whoami() AS after_logout;
DROP EXTENSION pgcrypto CASCADE;
CALL fx.reset_settings();
