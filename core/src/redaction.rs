//! What the server log must not show, decided on raw bytes.
//!
//! Postgres log lines are in the database's encoding (a LATIN1 database writes bytes that are
//! not UTF-8), so every rule here works on bytes: a `&str` view would skip such lines. The
//! pgrx glue (`log_redaction.rs`) applies these to each field of a log line before it is
//! written; nothing here knows about Postgres.

/// What replaces a statement's text where a log line would quote it.
pub const STATEMENT_HIDDEN: &[u8] =
    b"[statement hidden by electric_auth: it names electric_auth.jwt_key]";

/// What replaces bind parameters (`parameters: $1 = '...'`) of such a statement.
pub const PARAMETERS_HIDDEN: &[u8] = b"parameters: [hidden by electric_auth]";

/// How Postgres introduces bind parameters in a log line's detail or context (any case).
const PARAMETERS: &[u8] = b"parameters: ";

/// What replaces the key in force wherever it appears.
pub const KEY_HIDDEN: &[u8] = b"[electric_auth.jwt_key hidden]";

/// Keys shorter than this are not searched for: the search would redact ordinary words.
pub const MIN_KEY_BYTES_TO_SEARCH: usize = 8;

/// Whether `text` names the key setting, in any letter case (`ALTER SYSTEM SET
/// Electric_Auth.JWT_KEY`, `set_config('electric_auth.jwt_key', ...)`, a quoted
/// `"electric_auth"."jwt_key"`). Also true for `jwt_key_is_base64`, which is harmless to hide.
pub fn names_jwt_key(text: &[u8]) -> bool {
    const NAME: &[u8] = b"jwt_key";
    text.windows(NAME.len())
        .any(|w| w.eq_ignore_ascii_case(NAME))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `haystack` with every occurrence of `needle` replaced, or `None` when there is none.
fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Option<Vec<u8>> {
    let mut at = find(haystack, needle)?;
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    loop {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
        match find(rest, needle) {
            Some(next) => at = next,
            None => break,
        }
    }
    out.extend_from_slice(rest);
    Some(out)
}

/// What to log in place of one field (message, detail, hint, context) of a log line, or `None`
/// to keep it. `statement` is the statement being run, if any; `key` the key in force, if any.
///
/// When the statement names `electric_auth.jwt_key` (so may carry a new key that is not in
/// force yet), its text is hidden wherever the field quotes it, bind parameters are hidden, and
/// a context line naming the key is hidden whole (PL/pgSQL quotes inner statements there).
/// The key in force is hidden everywhere.
pub fn redact_field(
    field: &[u8],
    is_context: bool,
    statement: Option<&[u8]>,
    key: Option<&[u8]>,
) -> Option<Vec<u8>> {
    let mut changed: Option<Vec<u8>> = None;
    if let Some(statement) = statement.filter(|s| names_jwt_key(s)) {
        if is_context && names_jwt_key(field) {
            changed = Some(STATEMENT_HIDDEN.to_vec());
        } else {
            changed = replace_all(field, statement, STATEMENT_HIDDEN);
        }
        let current = changed.as_deref().unwrap_or(field);
        // "parameters: " (Postgres 16) or "Parameters: " (17 and later).
        if let Some(at) = current
            .windows(PARAMETERS.len())
            .position(|w| w.eq_ignore_ascii_case(PARAMETERS))
        {
            let mut hidden = current[..at].to_vec();
            hidden.extend_from_slice(PARAMETERS_HIDDEN);
            changed = Some(hidden);
        }
    }
    if let Some(key) = searchable(key) {
        let current = changed.as_deref().unwrap_or(field);
        if let Some(hidden) = replace_all(current, key, KEY_HIDDEN) {
            changed = Some(hidden);
        }
    }
    changed
}

/// Whether the statement text itself must be left out of a log line (`STATEMENT:`).
pub fn hide_statement(statement: &[u8], key: Option<&[u8]>) -> bool {
    names_jwt_key(statement) || searchable(key).is_some_and(|k| find(statement, k).is_some())
}

/// The key in force, when it is long enough to search for.
fn searchable(key: Option<&[u8]>) -> Option<&[u8]> {
    key.filter(|k| k.trim_ascii().len() >= MIN_KEY_BYTES_TO_SEARCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"the-key-in-force-0123456789";

    fn redact(field: &[u8], statement: Option<&[u8]>) -> Option<Vec<u8>> {
        redact_field(field, false, statement, Some(KEY))
    }

    #[test]
    fn the_key_setting_is_named_in_any_case() {
        assert!(names_jwt_key(
            b"ALTER SYSTEM SET Electric_Auth.JWT_KEY = 'x'"
        ));
        assert!(names_jwt_key(
            b"select set_config('electric_auth.jwt_key', $1, false)"
        ));
        assert!(names_jwt_key(b"SET \"electric_auth\".\"jwt_key\" TO 'x'"));
        assert!(!names_jwt_key(b"SET electric_auth.jwt_alg = 'HS256'"));
        assert!(!names_jwt_key(b"jwt_ke"));
    }

    #[test]
    fn a_statement_naming_the_key_is_hidden_where_quoted() {
        let statement: &[u8] = b"ALTER SYSTEM SET electric_auth.jwt_key = 'new-secret'";
        let logged = [b"duration: 0.1 ms  statement: ".as_slice(), statement].concat();
        let hidden = redact(&logged, Some(statement)).unwrap();
        assert_eq!(
            hidden,
            [
                b"duration: 0.1 ms  statement: ".as_slice(),
                STATEMENT_HIDDEN
            ]
            .concat()
        );
        assert!(hide_statement(statement, None));
    }

    #[test]
    fn bind_parameters_of_such_a_statement_are_hidden() {
        let statement: &[u8] = b"SELECT set_config('electric_auth.jwt_key', $1, false)";
        let hidden = redact(b"parameters: $1 = 'new-secret'", Some(statement)).unwrap();
        assert_eq!(hidden, PARAMETERS_HIDDEN);
        let context = b"unnamed portal with parameters: $1 = 'new-sec...'";
        let hidden = redact_field(context, true, Some(statement), None).unwrap();
        assert_eq!(
            hidden,
            [b"unnamed portal with ".as_slice(), PARAMETERS_HIDDEN].concat()
        );
        let hidden = redact(b"Parameters: $1 = 'new-secret'", Some(statement)).unwrap();
        assert_eq!(hidden, PARAMETERS_HIDDEN, "Postgres 17 capitalises it");
        // Another statement's parameters are left alone.
        assert_eq!(redact(b"parameters: $1 = 'x'", Some(b"SELECT $1")), None);
    }

    #[test]
    fn a_context_naming_the_key_is_hidden_whole() {
        let statement: &[u8] =
            b"DO $$ BEGIN EXECUTE 'ALTER SYSTEM SET electric_auth.jwt_key = ''s'''; END $$";
        let context = b"SQL statement \"ALTER SYSTEM SET electric_auth.jwt_key = 's'\"\nPL/pgSQL function inline_code_block line 1 at EXECUTE";
        assert_eq!(
            redact_field(context, true, Some(statement), None).unwrap(),
            STATEMENT_HIDDEN
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_searched_too() {
        // A LATIN1 database logs 'é' as the single byte 0xE9.
        let statement: &[u8] = b"SET electric_auth.jwt_key = 's\xe9cret-0123456789'";
        let logged = [b"statement: ".as_slice(), statement].concat();
        assert!(std::str::from_utf8(&logged).is_err());
        assert_eq!(
            redact(&logged, Some(statement)).unwrap(),
            [b"statement: ".as_slice(), STATEMENT_HIDDEN].concat()
        );
        let key = b"k\xe9y-in-force-0123";
        let hidden =
            redact_field(b"detail k\xe9y-in-force-0123 end", false, None, Some(key)).unwrap();
        assert_eq!(
            hidden,
            [b"detail ".as_slice(), KEY_HIDDEN, b" end"].concat()
        );
    }

    #[test]
    fn the_key_in_force_is_hidden_everywhere_and_short_keys_are_not_searched() {
        let field = [b"a ".as_slice(), KEY, b" b ", KEY].concat();
        assert_eq!(
            redact(&field, None).unwrap(),
            [b"a ".as_slice(), KEY_HIDDEN, b" b ", KEY_HIDDEN].concat()
        );
        assert_eq!(redact(b"nothing secret here", None), None);
        assert_eq!(
            redact_field(b"a short one", false, None, Some(b"short")),
            None
        );
        assert!(hide_statement(
            &[b"SELECT '".as_slice(), KEY, b"'"].concat(),
            Some(KEY)
        ));
        assert!(!hide_statement(b"SELECT 1", Some(KEY)));
    }

    #[test]
    fn unrelated_lines_are_kept() {
        assert_eq!(redact(b"statement: SELECT 1", Some(b"SELECT 1")), None);
        assert_eq!(
            redact_field(
                b"electric_auth.jwt_key not set",
                false,
                Some(b"SELECT electric_auth.user_id($1)"),
                None
            ),
            None
        );
    }
}
