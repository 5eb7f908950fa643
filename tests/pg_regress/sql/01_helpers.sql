-- Helpers for reading outcomes: a result, or "ERROR <SQLSTATE>: <message>" (+ DETAIL, HINT).
CREATE EXTENSION electric_auth;
CREATE FUNCTION fx.outcome(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  result text; state text; msg text; detail text; hint text;
BEGIN
  EXECUTE query INTO result;
  RETURN coalesce(result, '(null)');
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                          detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
  RETURN 'ERROR ' || state || ': ' || msg
    || CASE WHEN detail <> '' THEN E'\nDETAIL: ' || detail ELSE '' END
    || CASE WHEN hint <> '' THEN E'\nHINT: ' || hint ELSE '' END;
END $$;
CREATE FUNCTION fx.try_user_id(token text) RETURNS text LANGUAGE sql
  RETURN fx.outcome(format('SELECT electric_auth.user_id(%L)', token));
CREATE FUNCTION fx.try_verify(token text) RETURNS text LANGUAGE sql
  RETURN fx.outcome(format('SELECT electric_auth.verify(%L)::text', token));
-- Configures secure mode with a fixture key, without printing the key.
CREATE FUNCTION fx.use_key(alg text, key_name text, form text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('electric_auth.mode', 'secure', false);
  PERFORM set_config('electric_auth.jwt_alg', alg, false);
  PERFORM set_config('electric_auth.jwt_key', (SELECT value FROM fx.keys k WHERE k.name = key_name AND k.form = use_key.form), false);
  RETURN format('%s with %s %s', alg, key_name, form);
END $$;
CREATE FUNCTION fx.token(scenario text, key text, library text) RETURNS text LANGUAGE sql STABLE
  RETURN (SELECT t.token FROM fx.tokens t WHERE t.scenario = token.scenario AND t.key = token.key AND t.library = token.library);
-- RESET ALL leaves electric_auth.* alone (GUC_NO_RESET_ALL, see 03_settings): reset them by name.
CREATE PROCEDURE fx.reset_settings() LANGUAGE plpgsql AS $$
DECLARE setting text;
BEGIN
  RESET ALL;
  FOR setting IN SELECT name FROM pg_settings
                  WHERE name LIKE 'electric_auth.%' AND name <> 'electric_auth.refused_setting'
                    AND context NOT IN ('sighup', 'postmaster') LOOP
    EXECUTE format('RESET %I', setting);
  END LOOP;
END $$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA fx TO PUBLIC;
-- The functions as the catalog sees them: STRICT, STABLE, PARALLEL SAFE.
SELECT p.oid::regprocedure AS function, p.prorettype::regtype AS returns,
       p.proisstrict AS strict, p.provolatile AS volatility, p.proparallel AS parallel
FROM pg_proc p WHERE p.pronamespace = 'electric_auth'::regnamespace ORDER BY p.proname;
SELECT electric_auth.user_id(NULL) IS NULL AS null_in_null_out, electric_auth.verify(NULL) IS NULL AS verify_null;
