-- Where users put it: a trigger, a row-level security policy and a view, run as an
-- unprivileged role.
SET electric_auth.jwt_alg = 'HS256';
SELECT set_config('electric_auth.jwt_key', (SELECT value FROM fx.keys WHERE name = 'HS256'), false) IS NOT NULL AS key_set;
CREATE TABLE todos (id serial PRIMARY KEY, title text NOT NULL, owner_id text NOT NULL, token text);
-- The trigger stamps owner_id from the token the client sent with the row, whatever owner the
-- client named, and fails closed: no token, no row (user_id(NULL) is NULL: the check must be
-- explicit). The rows are append-only: an UPDATE or a DELETE carries no token that proves who
-- asks (an UPDATE may leave the column out, a DELETE has no new row), so the application's role
-- gets neither; rows writable by their owner only need the session identity and RLS (the
-- README's owner-stamping trigger).
CREATE FUNCTION stamp_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.token IS NULL THEN
    RAISE EXCEPTION 'a token is required to insert into %', TG_TABLE_NAME
      USING ERRCODE = 'invalid_authorization_specification';
  END IF;
  NEW.owner_id := electric_auth.user_id(NEW.token);
  NEW.token := NULL;
  RETURN NEW;
END $$;
CREATE TRIGGER todos_stamp_owner BEFORE INSERT ON todos FOR EACH ROW EXECUTE FUNCTION stamp_owner();
GRANT SELECT, INSERT ON todos TO ea_app;
GRANT USAGE ON SEQUENCE todos_id_seq TO ea_app;
SET ROLE ea_app;
INSERT INTO todos (title, token) VALUES ('from pyjwt', fx.token('standard', 'HS256', 'pyjwt'));
INSERT INTO todos (title, owner_id, token) VALUES ('from node', 'mallory', fx.token('legacy_user_id', 'HS256', 'node'));
INSERT INTO todos (title, token) VALUES ('forged', fx.token('standard', 'HS256', 'pyjwt') || 'x');
INSERT INTO todos (title, token) VALUES ('expired', fx.token('expired', 'HS256', 'node'));
INSERT INTO todos (title, owner_id) VALUES ('no token', 'user-HS256');
-- Nobody rewrites or deletes a row, with a token or without.
SELECT fx.outcome('UPDATE todos SET title = ''renamed'' WHERE id = 1 RETURNING title');
SELECT fx.outcome(format('UPDATE todos SET title = ''renamed'', token = %L WHERE id = 1 RETURNING title', fx.token('standard', 'HS256', 'pyjwt')));
SELECT fx.outcome('DELETE FROM todos WHERE id = 1 RETURNING title');
SELECT id, title, owner_id, token FROM todos ORDER BY id;
RESET ROLE;
-- RLS: a session presents its token in a custom setting; rows are visible to their owner only.
CREATE TABLE notes (id int, owner_id text, body text);
INSERT INTO notes VALUES (1, 'user-HS256', 'mine'), (2, 'someone-else', 'theirs');
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY notes_owner ON notes USING (owner_id = electric_auth.user_id(current_setting('app.token', true)));
GRANT SELECT ON notes TO ea_app;
CREATE VIEW my_identity WITH (security_invoker) AS
  SELECT electric_auth.user_id(current_setting('app.token', true)) AS user_id,
         electric_auth.verify(current_setting('app.token', true))->>'iss' AS issuer;
GRANT SELECT ON my_identity TO ea_app;
SET ROLE ea_app;
SELECT set_config('app.token', fx.token('standard', 'HS256', 'node'), false) IS NOT NULL AS token_presented;
SELECT * FROM notes;
SELECT * FROM my_identity;
SELECT set_config('app.token', fx.token('standard', 'HS256', 'node') || 'x', false) IS NOT NULL AS bad_token_presented;
SELECT fx.outcome('SELECT body FROM notes');
RESET ROLE;
CALL fx.reset_settings();
