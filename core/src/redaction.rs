//! What the server log, `pg_stat_activity` and `pg_stat_statements` must not show, decided on
//! raw bytes.
//!
//! Postgres log lines are in the database's encoding (a LATIN1 database writes bytes that are
//! not UTF-8), so every rule here works on bytes: a `&str` view would skip such lines. The
//! pgrx glue (`src/guard/`: `log.rs`, `activity.rs`, `utility.rs`) applies these rules;
//! nothing here knows about Postgres.
//!
//! Two kinds of secret are looked for:
//!
//! - **The key setting named in a statement** (`electric_auth.jwt_key`): such a statement may
//!   carry a new key. The name is matched in any letter case, and also after undoing what SQL
//!   lets a statement write indirectly: `U&"…\005F…"` and `U&'…'` escapes (with `UESCAPE`),
//!   `E'…\x5f…'` escapes, `"quoted"` identifiers, dollar quotes, and string concatenations
//!   (`'electric_auth.jwt' || '_key'`, or two literals separated by a line break).
//! - **Tokens**: JWT-shaped runs of text ([`jwt_ranges`]): two or three base64url segments
//!   separated by dots, the first two each decoding to the start of a JSON object (`{`). A
//!   token is a bearer credential, so a copy of one in a log line or `pg_stat_activity` could
//!   be replayed. Ordinary SQL (`a.b.c`, `schema.table.column`) never has that shape.

use std::ops::Range;

/// What replaces a statement's text where a log line would quote it.
pub const STATEMENT_HIDDEN: &[u8] =
    b"[statement hidden by electric_auth: it names a key setting (jwt_key, propagation_secret or issuers)]";

/// What replaces bind parameters (`parameters: $1 = '...'`) of such a statement.
pub const PARAMETERS_HIDDEN: &[u8] = b"parameters: [hidden by electric_auth]";

/// How Postgres introduces bind parameters in a log line's detail or context (any case).
const PARAMETERS: &[u8] = b"parameters: ";

/// What replaces the key in force wherever it appears.
pub const KEY_HIDDEN: &[u8] = b"[electric_auth.jwt_key hidden]";

/// What replaces a JWT-shaped run of text in log lines and `pg_stat_activity`.
pub const TOKEN_HIDDEN: &[u8] = b"[token hidden by electric_auth]";

/// What overwrites a secret where the text must keep its length (`pg_stat_statements` slices
/// the query string by byte offsets).
pub const FILL: u8 = b'*';

/// Keys shorter than this are not searched for: the search would redact ordinary words.
pub const MIN_KEY_BYTES_TO_SEARCH: usize = 8;

/// The settings whose value is a secret: the key, the session identity's carrier (a token;
/// Citus forwards it to workers as `SET LOCAL`, sealed), the cluster secret that seals it, and
/// the issuers (their inline keys may be HMAC secrets).
pub const SECRET_SETTINGS: [&str; 4] = [
    "electric_auth.jwt_key",
    "electric_auth.identity_token",
    "electric_auth.propagation_secret",
    "electric_auth.issuers",
];

/// What a statement must name, in any letter case, for the log to treat it as naming a key:
/// the tails of the key settings (the carrier's value is a token, masked wherever it shows).
/// `issuers` is a common word: a statement about a table of that name is hidden too, which
/// only costs a log line its text.
const KEY_NAMES: [&[u8]; 3] = [b"jwt_key", b"propagation_secret", b"issuers"];

/// Whether `name` (a setting name as Postgres resolved it from a parse tree) is one of
/// [`SECRET_SETTINGS`]; setting names are compared in any letter case, as Postgres does.
pub fn is_secret_setting(name: &[u8]) -> bool {
    SECRET_SETTINGS
        .iter()
        .any(|secret| secret.as_bytes().eq_ignore_ascii_case(name))
}

/// Whether `needle` occurs in `haystack`, in any ASCII letter case. Linear: candidates are
/// found by their first byte (either case) with `memchr2`, and each is compared over at most
/// `needle.len()` bytes (the needles here are setting names, a few dozen bytes).
pub fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || find_ignore_case(haystack, needle).is_some()
}

/// Where `needle` (not empty) first occurs in `haystack`, in any ASCII letter case; see
/// [`contains_ignore_case`].
fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let last_start = haystack.len().checked_sub(needle.len())?;
    memchr::memchr2_iter(
        first.to_ascii_lowercase(),
        first.to_ascii_uppercase(),
        haystack,
    )
    .take_while(|&at| at <= last_start)
    .find(|&at| haystack[at + 1..at + needle.len()].eq_ignore_ascii_case(rest))
}

/// Whether `text` names the key setting, in any letter case and in any of the indirect forms
/// of the module notes (`ALTER SYSTEM SET Electric_Auth.JWT_KEY`, `SET U&"electric_auth.jwt\005Fkey"`,
/// `set_config('electric_auth.jwt' || '_key', ...)`). Also true for `jwt_key_is_base64`, which
/// is harmless to hide.
pub fn names_jwt_key(text: &[u8]) -> bool {
    Statement::new(text).names_key
}

/// A statement being run, with what the log rules need to know about it (computed once).
#[derive(Debug, Clone, Copy)]
pub struct Statement<'a> {
    pub text: &'a [u8],
    /// It names the key setting (see [`names_jwt_key`]).
    pub names_key: bool,
    /// It calls `set_config` (whose name argument may be built in ways no text rule can
    /// follow, so its bind parameters are hidden whatever they are).
    pub calls_set_config: bool,
}

impl<'a> Statement<'a> {
    pub fn new(text: &'a [u8]) -> Statement<'a> {
        const SET_CONFIG: &[u8] = b"set_config";
        let names = |text: &[u8]| KEY_NAMES.iter().any(|key| contains_ignore_case(text, key));
        let mut names_key = names(text);
        let mut calls_set_config = contains_ignore_case(text, SET_CONFIG);
        // A statement naming the key has its bind parameters hidden anyway: only otherwise is
        // the decoded text read (a pass that allocates a copy of a text of any size).
        if !names_key {
            let decoded = decode_sql(text);
            names_key |= names(&decoded);
            calls_set_config |= contains_ignore_case(&decoded, SET_CONFIG);
        }
        Statement {
            text,
            names_key,
            calls_set_config,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A small SQL lexer: just enough to find literals, quoted identifiers and comments.

/// What a lexed piece of SQL text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `'…'` (standard conforming: a backslash is an ordinary character).
    Plain,
    /// `E'…'`, with backslash escapes.
    Escaped,
    /// `U&'…'`, with its escape character (`\` unless `UESCAPE` names another).
    Unicode(u8),
    /// `$tag$…$tag$`.
    Dollar,
    /// `"…"`.
    Ident,
    /// `U&"…"`, with its escape character.
    UnicodeIdent(u8),
    /// `-- …` or `/* … */`.
    Comment,
    /// Any other byte.
    Byte,
}

impl Kind {
    fn is_string(self) -> bool {
        matches!(
            self,
            Kind::Plain | Kind::Escaped | Kind::Unicode(_) | Kind::Dollar
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    kind: Kind,
    /// Where the token ends (exclusive).
    end: usize,
    /// A literal's or quoted identifier's text between its delimiters, still escaped.
    content: Range<usize>,
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'\x0b')
}

/// `'…'` or `"…"` whose body starts at `from`; a doubled `quote` stands for itself.
fn quoted(t: &[u8], from: usize, quote: u8, kind: Kind) -> Token {
    let mut j = from;
    while j < t.len() {
        if t[j] == quote {
            if t.get(j + 1) == Some(&quote) {
                j += 2;
                continue;
            }
            return Token {
                kind,
                end: j + 1,
                content: from..j,
            };
        }
        j += 1;
    }
    Token {
        kind,
        end: t.len(),
        content: from..t.len(),
    }
}

/// `E'…'` at `i`.
fn escaped(t: &[u8], i: usize) -> Token {
    escaped_from(t, i + 2)
}

/// A literal with backslash escapes whose body starts at `from`: `E'…'`, or a plain `'…'`
/// when `standard_conforming_strings` is off.
fn escaped_from(t: &[u8], from: usize) -> Token {
    let mut j = from;
    while j < t.len() {
        match t[j] {
            b'\\' => j += 2,
            b'\'' if t.get(j + 1) == Some(&b'\'') => j += 2,
            b'\'' => {
                return Token {
                    kind: Kind::Escaped,
                    end: j + 1,
                    content: from..j,
                }
            }
            _ => j += 1,
        }
    }
    Token {
        kind: Kind::Escaped,
        end: t.len(),
        content: from..t.len().min(j),
    }
}

/// Whitespace and comments from `k` on; where they end.
fn skip_space(t: &[u8], mut k: usize) -> usize {
    while k < t.len() {
        if is_space(t[k]) {
            k += 1;
        } else if let Some(comment) = comment(t, k) {
            k = comment.end;
        } else {
            break;
        }
    }
    k
}

/// `U&'…'` or `U&"…"` at `i`, with a `UESCAPE 'c'` clause after it if there is one.
fn unicode(t: &[u8], i: usize) -> Token {
    let quote = t[i + 2];
    let mut token = quoted(t, i + 3, quote, Kind::Byte);
    let mut escape = b'\\';
    let k = skip_space(t, token.end);
    const UESCAPE: &[u8] = b"uescape";
    if t.len() >= k + UESCAPE.len()
        && t[k..k + UESCAPE.len()].eq_ignore_ascii_case(UESCAPE)
        && !t.get(k + UESCAPE.len()).is_some_and(|&b| is_ident_byte(b))
    {
        let c = skip_space(t, k + UESCAPE.len());
        if t.get(c) == Some(&b'\'') && t.get(c + 2) == Some(&b'\'') {
            escape = t[c + 1];
            token.end = c + 3;
        }
    }
    token.kind = if quote == b'"' {
        Kind::UnicodeIdent(escape)
    } else {
        Kind::Unicode(escape)
    };
    token
}

/// `$tag$…$tag$` at `i`, or `None` when no dollar quote starts there (`$1`).
fn dollar(t: &[u8], i: usize) -> Option<Token> {
    let mut j = i + 1;
    if t.get(j).is_some_and(|b| b.is_ascii_digit()) {
        return None;
    }
    while j < t.len() && t[j] != b'$' && is_ident_byte(t[j]) {
        j += 1;
    }
    if t.get(j) != Some(&b'$') {
        return None;
    }
    let delimiter = &t[i..=j];
    let from = j + 1;
    let end = memchr::memmem::find(&t[from..], delimiter).map(|at| from + at);
    Some(match end {
        Some(at) => Token {
            kind: Kind::Dollar,
            end: at + delimiter.len(),
            content: from..at,
        },
        None => Token {
            kind: Kind::Dollar,
            end: t.len(),
            content: from..t.len(),
        },
    })
}

/// A comment at `k` (`--` to the end of the line, or a nested `/* */`).
fn comment(t: &[u8], k: usize) -> Option<Token> {
    match (t.get(k), t.get(k + 1)) {
        (Some(b'-'), Some(b'-')) => {
            // Postgres's scanner ends it at a line feed or a carriage return.
            let end = memchr::memchr2(b'\n', b'\r', &t[k..]).map_or(t.len(), |at| k + at);
            Some(Token {
                kind: Kind::Comment,
                end,
                content: k..end,
            })
        }
        (Some(b'/'), Some(b'*')) => {
            let (mut depth, mut j) = (1, k + 2);
            while j < t.len() && depth > 0 {
                if t[j] == b'/' && t.get(j + 1) == Some(&b'*') {
                    depth += 1;
                    j += 2;
                } else if t[j] == b'*' && t.get(j + 1) == Some(&b'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            Some(Token {
                kind: Kind::Comment,
                end: j.min(t.len()),
                content: k..j.min(t.len()),
            })
        }
        _ => None,
    }
}

/// The token starting at `i` (`i < t.len()`), reading `'…'` as Postgres does with
/// `standard_conforming_strings` on (`scs`: a backslash is an ordinary character) or off (it
/// escapes the next one).
///
/// `after_ident`: the byte before `i` ends an identifier (a word that does not start with a
/// digit): `$`, `E'` and `U&'` there are part of it. After a number they are not (`1$a$ …$a$`
/// is a number then a dollar quote, as Postgres reads it).
fn token_at(t: &[u8], i: usize, scs: bool, after_ident: bool) -> Token {
    let next = t.get(i + 1).copied();
    match t[i] {
        b'\'' if scs => quoted(t, i + 1, b'\'', Kind::Plain),
        b'\'' => escaped_from(t, i + 1),
        b'"' => quoted(t, i + 1, b'"', Kind::Ident),
        b'e' | b'E' if !after_ident && next == Some(b'\'') => escaped(t, i),
        b'u' | b'U'
            if !after_ident && next == Some(b'&') && matches!(t.get(i + 2), Some(b'\'' | b'"')) =>
        {
            unicode(t, i)
        }
        b'$' if !after_ident => dollar(t, i).unwrap_or(Token {
            kind: Kind::Byte,
            end: i + 1,
            content: i..i + 1,
        }),
        _ => comment(t, i).unwrap_or(Token {
            kind: Kind::Byte,
            end: i + 1,
            content: i..i + 1,
        }),
    }
}

/// Every token of `t` from `start` to `end`, with where each starts
/// (`standard_conforming_strings` on, Postgres's default since 9.1).
fn tokens(t: &[u8], start: usize, end: usize) -> impl Iterator<Item = (usize, Token)> + '_ {
    tokens_read(t, start, end, true)
}

/// [`tokens`], with `standard_conforming_strings` as `scs` says.
fn tokens_read(
    t: &[u8],
    start: usize,
    end: usize,
    scs: bool,
) -> impl Iterator<Item = (usize, Token)> + '_ {
    let mut i = start;
    // Whether the bytes read just before `i` are a word, and whether it began with a digit
    // (kept as the walk goes: looking back at every `$` would be quadratic in a long word).
    let mut word: Option<bool> = None;
    std::iter::from_fn(move || {
        if i >= end.min(t.len()) {
            return None;
        }
        let after_ident = word == Some(false);
        let token = token_at(t, i, scs, after_ident);
        let at = i;
        i = token.end.max(i + 1);
        word = if token.kind == Kind::Byte && is_ident_byte(t[at]) {
            Some(word.unwrap_or(t[at].is_ascii_digit()))
        } else {
            None
        };
        Some((at, token))
    })
}

fn push_char(out: &mut Vec<u8>, code: u32) {
    match char::from_u32(code) {
        Some(c) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        None => out.push(b'?'),
    }
}

fn hex(digits: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(digits).ok()?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

/// `body` with `quote` doubled undone.
fn undouble(body: &[u8], quote: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut j = 0;
    while j < body.len() {
        out.push(body[j]);
        j += if body[j] == quote && body.get(j + 1) == Some(&quote) {
            2
        } else {
            1
        };
    }
    out
}

/// A `U&` body's escapes (`\XXXX`, `\+XXXXXX`, a doubled escape) undone.
fn decode_unicode(body: &[u8], escape: u8, out: &mut Vec<u8>) {
    let mut j = 0;
    while j < body.len() {
        if body[j] != escape {
            out.push(body[j]);
            j += 1;
            continue;
        }
        let rest = &body[j + 1..];
        if rest.first() == Some(&escape) {
            out.push(escape);
            j += 2;
        } else if let Some(code) = rest.get(1..7).filter(|_| rest[0] == b'+').and_then(hex) {
            push_char(out, code);
            j += 8;
        } else if let Some(code) = rest.get(..4).and_then(hex) {
            j += 5;
            // A UTF-16 surrogate pair: two escapes.
            let low = body
                .get(j..j + 5)
                .filter(|w| w[0] == escape)
                .and_then(|w| hex(&w[1..]));
            match low {
                Some(low)
                    if (0xD800..0xDC00).contains(&code) && (0xDC00..0xE000).contains(&low) =>
                {
                    push_char(out, 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00));
                    j += 5;
                }
                _ => push_char(out, code),
            }
        } else {
            out.push(body[j]);
            j += 1;
        }
    }
}

/// An `E'…'` body's backslash escapes undone.
fn decode_escaped(body: &[u8], out: &mut Vec<u8>) {
    let mut j = 0;
    while j < body.len() {
        let b = body[j];
        if b == b'\'' && body.get(j + 1) == Some(&b'\'') {
            out.push(b'\'');
            j += 2;
            continue;
        }
        if b != b'\\' || j + 1 >= body.len() {
            out.push(b);
            j += 1;
            continue;
        }
        let c = body[j + 1];
        j += 2;
        match c {
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'0'..=b'7' => {
                let mut value = u32::from(c - b'0');
                for _ in 0..2 {
                    match body.get(j) {
                        Some(&d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            j += 1;
                        }
                        _ => break,
                    }
                }
                out.push(value as u8);
            }
            b'x' => {
                let digits = body[j..]
                    .iter()
                    .take(2)
                    .take_while(|d| d.is_ascii_hexdigit())
                    .count();
                match hex(&body[j..j + digits]) {
                    Some(value) => out.push(value as u8),
                    None => out.push(b'x'),
                }
                j += digits;
            }
            b'u' | b'U' => {
                let width = if c == b'u' { 4 } else { 8 };
                match body.get(j..j + width).and_then(hex) {
                    Some(code) => {
                        push_char(out, code);
                        j += width;
                    }
                    None => out.push(c),
                }
            }
            other => out.push(other),
        }
    }
}

/// The text `t` means once its literals and quoted identifiers are decoded, comments dropped,
/// and concatenated string literals (`'a' || 'b'`, or two literals separated only by white
/// space) joined: the form in which a setting's name is searched for.
pub fn decode_sql(t: &[u8]) -> Vec<u8> {
    decode_sql_nested(t, 0)
}

/// How deep dollar-quoted bodies are decoded in turn (a `DO $$ … $$` block's own literals,
/// `EXECUTE 'ALTER SYSTEM SET electric_auth.jwt' || '_key …'`); deeper ones are kept as they
/// are. Each level reads its body once more, so the work stays linear in the text.
const DOLLAR_DEPTH: u32 = 4;

fn decode_sql_nested(t: &[u8], depth: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(t.len());
    // Where the output stood right after the last string literal.
    let mut after_string: Option<usize> = None;
    for (at, token) in tokens(t, 0, t.len()) {
        let body = &t[token.content.clone()];
        if token.kind.is_string() {
            if let Some(mark) = after_string {
                if out[mark..].iter().all(|&b| is_space(b) || b == b'|') {
                    out.truncate(mark);
                }
            }
        }
        match token.kind {
            Kind::Plain => out.extend(undouble(body, b'\'')),
            Kind::Escaped => decode_escaped(body, &mut out),
            Kind::Unicode(escape) => decode_unicode(&undouble(body, b'\''), escape, &mut out),
            Kind::UnicodeIdent(escape) => decode_unicode(&undouble(body, b'"'), escape, &mut out),
            Kind::Dollar if depth < DOLLAR_DEPTH => {
                out.extend_from_slice(&decode_sql_nested(body, depth + 1))
            }
            Kind::Dollar => out.extend_from_slice(body),
            Kind::Ident => out.extend(undouble(body, b'"')),
            Kind::Comment => out.push(b' '),
            Kind::Byte => out.push(t[at]),
        }
        if token.kind.is_string() {
            after_string = Some(out.len());
        }
    }
    out
}

/// The bodies (between their delimiters) of the string literals in `t[range]`.
pub fn literal_bodies(t: &[u8], range: Range<usize>) -> Vec<Range<usize>> {
    tokens(t, range.start, range.end)
        .filter(|(_, token)| token.kind.is_string())
        .map(|(_, token)| token.content.start..token.content.end.min(range.end))
        .filter(|body| !body.is_empty())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tokens.

/// A header or payload segment shorter than this is not taken for one (`{"a` is four).
const MIN_JSON_SEGMENT: usize = 4;

fn base64url_value(b: u8) -> Option<u32> {
    Some(u32::from(match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    }))
}

fn is_run_byte(b: u8) -> bool {
    base64url_value(b).is_some() || b == b'.'
}

/// Whether base64url `segment` decodes to JSON white space then `{`: the start of an object,
/// as a JWT's header and payload are. Decodes only as far as that first byte.
fn opens_json_object(segment: &[u8]) -> bool {
    if segment.len() < MIN_JSON_SEGMENT {
        return false;
    }
    let (mut bits, mut width) = (0u32, 0u32);
    for &c in segment {
        let Some(value) = base64url_value(c) else {
            return false;
        };
        bits = (bits << 6) | value;
        width += 6;
        if width >= 8 {
            width -= 8;
            let byte = (bits >> width) as u8;
            bits &= (1 << width) - 1;
            match byte {
                b' ' | b'\t' | b'\n' | b'\r' => continue,
                b'{' => return true,
                _ => return false,
            }
        }
    }
    false
}

/// Whether the run of base64url characters and dots `run` is JWT-shaped: two or three
/// segments (a trailing dot, as an unsigned token has, or a sentence's full stop, is not a
/// segment), the first two opening JSON objects.
fn is_jwt_shaped(run: &[u8]) -> bool {
    let mut segments = run.split(|&b| b == b'.');
    let (Some(header), Some(payload)) = (segments.next(), segments.next()) else {
        return false;
    };
    let _signature = segments.next();
    segments.next().is_none() && opens_json_object(header) && opens_json_object(payload)
}

/// The byte ranges of the JWT-shaped runs in `text` (see the module notes).
pub fn jwt_ranges(text: &[u8]) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    for_each_jwt(text, |range| found.push(range));
    found
}

/// Calls `f` with each JWT-shaped run of `text`, in order: one pass, no memory of its own (a
/// statement of hundreds of MB holds millions of runs).
pub fn for_each_jwt(text: &[u8], mut f: impl FnMut(Range<usize>)) {
    let mut i = 0;
    while i < text.len() {
        if !is_run_byte(text[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < text.len() && is_run_byte(text[i]) {
            i += 1;
        }
        let run = &text[start..i];
        let leading = run.iter().take_while(|&&b| b == b'.').count();
        let trailing = run[leading..]
            .iter()
            .rev()
            .take_while(|&&b| b == b'.')
            .count();
        let core = &run[leading..run.len() - trailing];
        if is_jwt_shaped(core) || is_sealed_identity(core) {
            f(start + leading..i - trailing);
        }
    }
}

/// The JWT-shaped runs of a statement's text that can be tokens: those inside a string literal
/// or a comment. A run outside them is SQL — an identifier (`CREATE FUNCTION
/// eyJhIjoxfQ.eyJiIjoyMn0()`), which the log and `pg_stat_statements` must show, or the
/// statement would hide what it defines. A bind parameter's value is never in the statement's
/// text (the log's `parameters:` detail is masked by [`redact_field`]).
///
/// The text is read twice, with `standard_conforming_strings` on and off (`'a\' eyJ…'` is one
/// literal when it is off), and a run inside a literal or comment in either reading counts: a
/// statement cannot hide a literal from this rule by reading one way here and the other way in
/// Postgres. Linear in the text (two lexer passes, only when a JWT-shaped run is there at all).
pub fn statement_jwt_ranges(text: &[u8]) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    for_each_statement_jwt(text, |range| found.push(range));
    found
}

/// Calls `f` with each run [`statement_jwt_ranges`] finds, in order, in one pass over the runs
/// and the two readings' literals and comments side by side: no memory of its own.
pub fn for_each_statement_jwt(text: &[u8], mut f: impl FnMut(Range<usize>)) {
    let mut any = false;
    for_each_jwt(text, |_| any = true);
    if !any {
        return;
    }
    let spans = |scs: bool| {
        tokens_read(text, 0, text.len(), scs)
            .filter(|(_, token)| token.kind.is_string() || token.kind == Kind::Comment)
            .map(|(_, token)| token.content)
            .peekable()
    };
    let (mut on, mut off) = (spans(true), spans(false));
    // Whether a span of `spans` (sorted, not overlapping) overlaps `run`; spans that end at or
    // before the run's start are done with (the runs come in order too).
    fn overlaps(
        spans: &mut std::iter::Peekable<impl Iterator<Item = Range<usize>>>,
        run: &Range<usize>,
    ) -> bool {
        while spans.next_if(|span| span.end <= run.start).is_some() {}
        spans.peek().is_some_and(|span| span.start < run.end)
    }
    for_each_jwt(text, |run| {
        // Both readings are advanced for every run, so neither falls behind.
        let in_on = overlaps(&mut on, &run);
        let in_off = overlaps(&mut off, &run);
        if in_on || in_off {
            f(run);
        }
    });
}

/// Above this size a text's tokens are masked by overwriting them (see [`FILL`]) rather than
/// replacing them with [`TOKEN_HIDDEN`]: the copy is then no longer than the text (a statement
/// of many short runs would otherwise grow threefold in memory and in the log).
pub const REPLACE_UP_TO_BYTES: usize = 1 << 20;

/// `text` with each range `for_each` yields (in order, not overlapping) masked — replaced by
/// [`TOKEN_HIDDEN`], or overwritten for a text over [`REPLACE_UP_TO_BYTES`] — or `None` when
/// there is none. The copy is allocated fallibly, with room for a terminating NUL: when the
/// memory is not there, `Some(Err(()))` (the caller hides the text some other way; a failed
/// allocation must never abort the server process).
pub fn mask_with(
    text: &[u8],
    for_each: impl Fn(&[u8], &mut dyn FnMut(Range<usize>)),
) -> Option<Result<Vec<u8>, ()>> {
    let (mut count, mut covered) = (0usize, 0usize);
    for_each(text, &mut |range| {
        count += 1;
        covered += range.len();
    });
    if count == 0 {
        return None;
    }
    let replace = text.len() <= REPLACE_UP_TO_BYTES;
    let length = if replace {
        text.len() - covered + count * TOKEN_HIDDEN.len()
    } else {
        text.len()
    };
    let mut out = Vec::new();
    if out.try_reserve_exact(length + 1).is_err() {
        return Some(Err(()));
    }
    let mut from = 0;
    for_each(text, &mut |range| {
        out.extend_from_slice(&text[from..range.start]);
        if replace {
            out.extend_from_slice(TOKEN_HIDDEN);
        } else {
            out.resize(out.len() + range.len(), FILL);
        }
        from = range.end;
    });
    out.extend_from_slice(&text[from..]);
    Some(Ok(out))
}

/// `text` (a statement) with each run [`statement_jwt_ranges`] finds masked (see
/// [`mask_with`]), or `None` when it has none; a text whose copy cannot be allocated is hidden
/// whole.
pub fn mask_statement_jwts(text: &[u8]) -> Option<Vec<u8>> {
    mask_with(text, |t, f| for_each_statement_jwt(t, f))
        .map(|masked| masked.unwrap_or_else(|_| too_large()))
}

/// Overwrites (see [`FILL`]) the runs [`statement_jwt_ranges`] finds in `text` within `out`, a
/// copy of it of the same length; whether there was any. No memory of its own.
pub fn fill_statement_jwts(text: &[u8], out: &mut [u8]) -> bool {
    let mut any = false;
    for_each_statement_jwt(text, |range| {
        any = true;
        if let Some(bytes) = out.get_mut(range) {
            bytes.fill(FILL);
        }
    });
    any
}

/// Whether the text names one of the key settings as written (`jwt_key`, `propagation_secret`,
/// in any letter case): a cheap test for what a superuser honestly types — a `SELECT
/// set_config('electric_auth.jwt_key', …)` — that `pg_stat_activity` then hides whole.
pub fn names_key_plainly(text: &[u8]) -> bool {
    KEY_NAMES.iter().any(|key| contains_ignore_case(text, key))
}

/// Whether `run` is a sealed identity a Citus coordinator forwards (`crate::seal`): masked
/// like a token, since with its distributed transaction id it could be replayed on a worker.
fn is_sealed_identity(run: &[u8]) -> bool {
    run.strip_prefix(crate::seal::PREFIX.as_bytes())
        .is_some_and(|body| body.len() >= 16)
}

/// `text` with each JWT-shaped run (and each sealed identity) masked (see [`mask_with`]), or
/// `None` when it has none; a text whose copy cannot be allocated is hidden whole.
pub fn mask_jwts(text: &[u8]) -> Option<Vec<u8>> {
    mask_with(text, |t, f| for_each_jwt(t, f)).map(|masked| masked.unwrap_or_else(|_| too_large()))
}

/// What replaces a text too large to copy for masking.
pub const TOO_LARGE_HIDDEN: &[u8] = b"[text hidden by electric_auth: too large to mask]";

fn too_large() -> Vec<u8> {
    TOO_LARGE_HIDDEN.to_vec()
}

/// Overwrites each of `ranges` in `text` with [`FILL`], keeping the text's length.
pub fn fill(text: &mut [u8], ranges: &[Range<usize>]) {
    for range in ranges {
        let end = range.end.min(text.len());
        if range.start < end {
            text[range.start..end].fill(FILL);
        }
    }
}

/// What to overwrite (see [`fill`]) in a utility statement's text, so that
/// `pg_stat_statements` (which stores the text it is given) and `pg_stat_activity` keep no
/// secret. `statement` is the statement's range in the query string `text`.
///
/// `value_start` is given when the parse tree says the statement sets one of
/// [`SECRET_SETTINGS`] (`SET`, `ALTER SYSTEM SET`, …): where its value starts; everything from
/// there to the statement's end is overwritten (a quoted value keeps its quotes). Any other
/// statement has the bodies of its string literals overwritten when its text names the key
/// (a `DO` block calling `set_config`, say), and its JWT-shaped runs overwritten.
pub fn utility_ranges(
    text: &[u8],
    statement: Range<usize>,
    value_start: Option<usize>,
) -> Vec<Range<usize>> {
    let end = statement.end.min(text.len());
    let start = statement.start.min(end);
    if let Some(value) = value_start.filter(|v| (start..end).contains(v)) {
        let trimmed = end
            - text[value..end]
                .iter()
                .rev()
                .take_while(|&&b| is_space(b))
                .count();
        let quoted = trimmed >= value + 2 && text[value] == b'\'' && text[trimmed - 1] == b'\'';
        return vec![if quoted {
            value + 1..trimmed - 1
        } else {
            value..trimmed
        }];
    }
    let mut ranges = Vec::new();
    if Statement::new(&text[start..end]).names_key {
        ranges = literal_bodies(text, start..end);
    }
    ranges.extend(
        statement_jwt_ranges(&text[start..end])
            .into_iter()
            .map(|r| r.start + start..r.end + start),
    );
    ranges
}

// ---------------------------------------------------------------------------------------------
// Log lines.

/// Where `needle` first occurs in `haystack`. Linear in both lengths (Two-Way): a log line
/// quoting a statement of tens of MB is searched for that statement in one pass, never window
/// by window (that was quadratic, and a hook cannot be interrupted).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None; // (building a searcher reads the whole needle: a statement of MBs)
    }
    memchr::memmem::find(haystack, needle)
}

/// `haystack` with every occurrence of `needle` replaced, or `None` when there is none. One
/// linear pass (the searcher is built once).
fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Option<Vec<u8>> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    let finder = memchr::memmem::Finder::new(needle);
    let mut found = finder.find_iter(haystack).peekable();
    found.peek()?;
    let mut out = Vec::with_capacity(haystack.len());
    let mut from = 0;
    for at in found {
        if at < from {
            continue; // overlaps the occurrence just replaced
        }
        out.extend_from_slice(&haystack[from..at]);
        out.extend_from_slice(with);
        from = at + needle.len();
    }
    out.extend_from_slice(&haystack[from..]);
    Some(out)
}

/// What to log in place of one field (message, detail, hint, context) of a log line, or `None`
/// to keep it. `statement` is the statement being run, if any; `key` the key in force, if any.
///
/// When the statement names `electric_auth.jwt_key` (so may carry a new key that is not in
/// force yet), its text is hidden wherever the field quotes it, bind parameters are hidden, and
/// a context line naming the key is hidden whole (PL/pgSQL quotes inner statements there).
/// Bind parameters of a statement calling `set_config` are hidden too (its setting's name may
/// be a parameter or an expression). JWT-shaped runs and the key in force are hidden
/// everywhere.
pub fn redact_field(
    field: &[u8],
    is_context: bool,
    statement: Option<&Statement>,
    key: Option<&[u8]>,
) -> Option<Vec<u8>> {
    let mut changed: Option<Vec<u8>> = None;
    if let Some(statement) = statement {
        if statement.names_key {
            if is_context && names_jwt_key(field) {
                changed = Some(STATEMENT_HIDDEN.to_vec());
            } else {
                changed = replace_all(field, statement.text, STATEMENT_HIDDEN);
            }
        }
        let current = changed.as_deref().unwrap_or(field);
        // "parameters: " (Postgres 16) or "Parameters: " (17 and later).
        if statement.names_key || statement.calls_set_config {
            if let Some(at) = find_ignore_case(current, PARAMETERS) {
                let mut hidden = current[..at].to_vec();
                hidden.extend_from_slice(PARAMETERS_HIDDEN);
                changed = Some(hidden);
            }
        }
    }
    let current = changed.as_deref().unwrap_or(field);
    if let Some(hidden) = mask_field_jwts(current, statement.map(|s| s.text)) {
        changed = Some(hidden);
    }
    hide_key(changed, field, key)
}

/// `changed` (or `field`, unchanged so far) with the key in force hidden, if it is there.
fn hide_key(changed: Option<Vec<u8>>, field: &[u8], key: Option<&[u8]>) -> Option<Vec<u8>> {
    let Some(key) = searchable(key) else {
        return changed;
    };
    let current = changed.as_deref().unwrap_or(field);
    replace_all(current, key, KEY_HIDDEN).or(changed)
}

/// A log field's JWT-shaped runs masked: where the field quotes the statement being run (the
/// `statement: …` of `log_statement`, `execute <unnamed>: …`), that quote by the statement rules
/// ([`statement_jwt_ranges`]: identifiers stay), everywhere else every run ([`jwt_ranges`]:
/// a message is no SQL to lex).
fn mask_field_jwts(field: &[u8], statement: Option<&[u8]>) -> Option<Vec<u8>> {
    let quoted = statement
        .filter(|s| !s.is_empty())
        .and_then(|s| find(field, s).map(|at| at..at + s.len()));
    let Some(quoted) = quoted else {
        return mask_jwts(field);
    };
    mask_with(field, |t, f| {
        for_each_jwt(&t[..quoted.start], &mut *f);
        let by = quoted.start;
        for_each_statement_jwt(&t[quoted.clone()], |r| f(r.start + by..r.end + by));
        let by = quoted.end;
        for_each_jwt(&t[quoted.end..], |r| f(r.start + by..r.end + by));
    })
    .map(|masked| masked.unwrap_or_else(|_| too_large()))
}

/// What to log in place of the inner statement an error came from (`QUERY:`, Postgres's
/// `internalquery`: what PL/pgSQL or `EXECUTE` ran), or `None` to keep it. Hidden whole when it
/// or the statement being run names the key (either may carry a new one: `EXECUTE
/// format('ALTER SYSTEM SET electric_auth.jwt_key = %L', …)`); otherwise its tokens masked by
/// the statement rules and the key in force hidden.
pub fn redact_inner_statement(
    query: &[u8],
    statement: Option<&Statement>,
    key: Option<&[u8]>,
) -> Option<Vec<u8>> {
    if statement.is_some_and(|s| s.names_key) || names_jwt_key(query) {
        return Some(STATEMENT_HIDDEN.to_vec());
    }
    hide_key(mask_statement_jwts(query), query, key)
}

/// Whether the statement text itself must be left out of a log line (`STATEMENT:`).
pub fn hide_statement(statement: &Statement, key: Option<&[u8]>) -> bool {
    statement.names_key || searchable(key).is_some_and(|k| find(statement.text, k).is_some())
}

/// The key in force, when it is long enough to search for.
fn searchable(key: Option<&[u8]>) -> Option<&[u8]> {
    key.filter(|k| k.trim_ascii().len() >= MIN_KEY_BYTES_TO_SEARCH)
}

#[cfg(test)]
mod sealed_identity_tests {
    use super::*;

    #[test]
    fn sealed_identities_are_masked_like_tokens() {
        let line = b"BEGIN;SET LOCAL electric_auth.identity_token TO 'ea-sealed-v1.Md2fuiJ0AVGJBPjGL9wLfX8vzyPy6v2iC6n9';SELECT 1";
        let masked = mask_jwts(line).unwrap();
        let masked = String::from_utf8(masked).unwrap();
        assert!(!masked.contains("ea-sealed-v1.Md2f"), "{masked}");
        assert!(masked.contains("SELECT 1"));
        // The prefix alone, or a short tail, is no sealed value.
        assert!(mask_jwts(b"see ea-sealed-v1. and ea-sealed-v1.abc").is_none());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"the-key-in-force-0123456789";
    /// A real HS256 token's shape (header, payload, signature).
    const TOKEN: &[u8] = b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0.c2lnbmF0dXJlLWJ5dGVzLWhlcmUtMDEyMzQ1Njc4OQ";

    fn redact(field: &[u8], statement: Option<&[u8]>) -> Option<Vec<u8>> {
        let statement = statement.map(Statement::new);
        redact_field(field, false, statement.as_ref(), Some(KEY))
    }

    fn b64(data: &[u8]) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        URL_SAFE_NO_PAD.encode(data)
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
        // The Citus propagation secret is a key too.
        assert!(names_jwt_key(
            b"ALTER SYSTEM SET electric_auth.Propagation_Secret = 'x'"
        ));
        assert!(names_jwt_key(
            b"SELECT set_config('electric_auth.propagation' || '_secret', $1, false)"
        ));
        assert!(is_secret_setting(b"ELECTRIC_AUTH.PROPAGATION_SECRET"));
        assert!(!names_jwt_key(b"SET electric_auth.jwt_alg = 'HS256'"));
        assert!(!names_jwt_key(b"jwt_ke"));
    }

    #[test]
    fn the_key_setting_is_named_through_unicode_escapes() {
        for text in [
            &b"SET U&\"electric_auth.jwt\\005Fkey\" = 's'"[..],
            b"SET U&\"electric_auth\".U&\"jwt\\005Fkey\" TO 's'",
            b"SET U&\"electric_auth.jwt!005Fkey\" UESCAPE '!' = 's'",
            b"SET u&\"electric_auth.jwt\\+00005Fkey\" = 's'",
            b"ALTER SYSTEM SET U&\"electric_auth.jwt#005fkey\"  /* c */ UESCAPE\n'#' = 's'",
            b"SELECT set_config(U&'electric_auth.jwt\\005Fkey', 's', false)",
            b"SELECT set_config(U&'electric_auth.jwt\\005F\\006B\\0065\\0079', 's', false)",
            b"SELECT set_config(U&'\\D800\\DC00electric_auth.jwt\\005Fkey', 's', false)",
            b"SELECT set_config(E'electric_auth.jwt\\x5fkey', 's', false)",
            b"SELECT set_config(e'electric_auth.jwt\\137key', 's', false)",
            b"SELECT set_config(E'electric_auth.jwt\\u005Fkey', 's', false)",
            b"SELECT set_config(E'electric_auth.jwt\\U0000005Fkey', 's', false)",
            b"SELECT set_config(E'electric_auth.jwt\\_key', 's', false)",
        ] {
            assert!(names_jwt_key(text), "{}", String::from_utf8_lossy(text));
        }
        // A different name, escaped the same ways, is not the key.
        assert!(!names_jwt_key(
            b"SET U&\"electric_auth.jwt\\005Falg\" = 'HS256'"
        ));
        assert!(!names_jwt_key(b"SELECT E'jwt\\x5fkez'"));
    }

    #[test]
    fn the_key_setting_is_named_through_concatenation() {
        for text in [
            &b"SELECT set_config('electric_auth.jwt' || '_key', 's', false)"[..],
            b"SELECT set_config('electric_auth.' || 'jwt_' || $$key$$, 's', false)",
            b"SELECT set_config('electric_auth.jwt_'||'key', 's', false)",
            b"SELECT set_config('electric_auth.jwt_' /* c */ || -- c\n 'key', 's', false)",
            b"SELECT set_config('electric_auth.jwt_'\n  'key', 's', false)",
            b"SELECT set_config('electric_auth.jwt' || U&'\\005Fkey', 's', false)",
            b"SELECT set_config($tag$electric_auth.jwt_$tag$ || E'k\\x65y', 's', false)",
        ] {
            assert!(names_jwt_key(text), "{}", String::from_utf8_lossy(text));
        }
        // Only literals are joined: a column between them is no concatenation of names.
        assert!(!names_jwt_key(b"SELECT 'jwt_' || col || 'key'"));
    }

    #[test]
    fn the_lexer_respects_quoting() {
        // A quote inside a literal, a comment marker inside a literal, nested comments.
        assert_eq!(
            decode_sql(b"SELECT 'it''s -- no' /* a /* b */ c */ x"),
            b"SELECT it's -- no   x"
        );
        assert_eq!(decode_sql(b"E'a\\'b' \"q\"\"x\""), b"a'b q\"x");
        assert_eq!(decode_sql(b"$1 || $a$ $ $a$"), b"$1 ||  $ ");
        // Unterminated literals and comments end at the end of the text.
        assert_eq!(decode_sql(b"SELECT 'abc"), b"SELECT abc");
        assert_eq!(decode_sql(b"SELECT E'a\\"), b"SELECT a\\");
        assert_eq!(decode_sql(b"x /* never closed"), b"x  ");
        assert_eq!(decode_sql(b"$q$ never closed"), b" never closed");
        // An identifier ending in e or u is no escape prefix.
        assert_eq!(decode_sql(b"some'x'"), b"somex");
        let set = b"SET a = 'x', E'y\\'', $$z$$";
        assert_eq!(
            literal_bodies(set, 0..set.len()),
            vec![9..10, 15..18, 23..24]
        );
    }

    #[test]
    fn jwts_are_found_and_masked() {
        let statement = [
            b"SELECT electric_auth.authenticate('".as_slice(),
            TOKEN,
            b"')",
        ]
        .concat();
        let ranges = jwt_ranges(&statement);
        assert_eq!(ranges.len(), 1);
        assert_eq!(&statement[ranges[0].clone()], TOKEN);
        assert_eq!(
            mask_jwts(&statement).unwrap(),
            [
                b"SELECT electric_auth.authenticate('".as_slice(),
                TOKEN_HIDDEN,
                b"')"
            ]
            .concat()
        );
        // Two-segment and unsigned (trailing dot) tokens, a token at the end of a sentence,
        // a token cut short (log_parameter_max_length) and one with white space before `{`.
        let header = b64(br#"{"alg":"none"}"#);
        let payload = b64(br#"{"sub":"1"}"#);
        for text in [
            format!("x {header}.{payload} y"),
            format!("x {header}.{payload}. y"),
            format!("token {header}.{payload}.sig."),
            format!("$1 = '{header}.{}...'", &payload[..6]),
            format!("{}.{}", b64(b" \n{\"alg\":1}"), b64(b"\t{}")),
        ] {
            let masked = mask_jwts(text.as_bytes()).expect(&text);
            let masked = String::from_utf8(masked).unwrap();
            assert!(!masked.contains(&payload[..6]), "{text} -> {masked}");
        }
    }

    #[test]
    fn ordinary_sql_is_never_taken_for_a_jwt() {
        for text in [
            &b"SELECT a.b.c FROM s.t WHERE x.y = 1.5"[..],
            b"SELECT electric_auth.user_id($1), pg_catalog.now()",
            b"SELECT 'e30.e30'", // `{}` . `{}`: too short to be a header
            b"SELECT eyJhbGciOiJIUzI1NiJ9", // one segment
            b"x.eyJhbGciOiJIUzI1NiJ9.eyJhbGciOiJIUzI1NiJ9.eyJhbGciOiJIUzI1NiJ9", // four
            b"abcd.efgh.ijkl",   // decodes, but not to `{`
            b"eyJhbGciOiJIUzI1NiJ9.abcd.ijkl", // a payload that is no object
            b"version 1.2.3, 10.0.0.1",
        ] {
            assert!(
                jwt_ranges(text).is_empty(),
                "{}",
                String::from_utf8_lossy(text)
            );
            assert_eq!(mask_jwts(text), None);
        }
    }

    #[test]
    fn utility_statements_are_filled_where_they_hold_secrets() {
        let fill_of = |text: &[u8], statement: Range<usize>, value: Option<usize>| {
            let mut copy = text.to_vec();
            fill(&mut copy, &utility_ranges(text, statement, value));
            String::from_utf8(copy).unwrap()
        };
        let text = b"ALTER SYSTEM SET electric_auth.jwt_key = 'new-secret'";
        let value = text.iter().position(|&b| b == b'\'');
        assert_eq!(
            fill_of(text, 0..text.len(), value),
            "ALTER SYSTEM SET electric_auth.jwt_key = '**********'"
        );
        // Several statements in one string: only the statement's own range.
        let text = b"SET electric_auth.jwt_key TO secret ; SELECT 'secret'";
        assert_eq!(
            fill_of(text, 0..36, Some(29)),
            "SET electric_auth.jwt_key TO ****** ; SELECT 'secret'"
        );
        // No value (RESET), nothing named: nothing filled.
        assert_eq!(fill_of(b"RESET x", 0..7, None), "RESET x");
        // A statement whose text names the key: its literals' bodies.
        let text = b"DO $$BEGIN PERFORM set_config('electric_auth.jwt_key', 's', false); END$$";
        let filled = fill_of(text, 0..text.len(), None);
        assert_eq!(filled.len(), text.len());
        assert!(filled.starts_with("DO $$***") && filled.ends_with("***$$"));
        // A token in any utility statement.
        let text = [b"CALL p('".as_slice(), TOKEN, b"')"].concat();
        let filled = fill_of(&text, 0..text.len(), None);
        assert_eq!(filled, format!("CALL p('{}')", "*".repeat(TOKEN.len())));
    }

    /// Arbitrary text of the characters the lexer and the token search care about: nothing
    /// panics, ranges stay inside the text, and filling keeps its length.
    #[test]
    fn arbitrary_text_never_panics() {
        const ALPHABET: &[u8] = b"'\"$Uu&Ee\\-/*| \n.{}eyJ0x5F+!UESCAPEjwt_key";
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize
        };
        for _ in 0..20_000 {
            let len = next() % 48;
            let text: Vec<u8> = (0..len)
                .map(|_| ALPHABET[next() % ALPHABET.len()])
                .collect();
            decode_sql(&text);
            Statement::new(&text);
            mask_jwts(&text);
            let end = if len == 0 { 0 } else { next() % (len + 1) };
            let start = if end == 0 { 0 } else { next() % (end + 1) };
            for range in literal_bodies(&text, start..end)
                .into_iter()
                .chain(jwt_ranges(&text))
            {
                assert!(range.start <= range.end && range.end <= text.len());
            }
            let value = (len > 0).then(|| next() % len);
            let ranges = utility_ranges(&text, start..end, value);
            let mut copy = text.clone();
            fill(&mut copy, &ranges);
            assert_eq!(copy.len(), text.len());
        }
    }

    #[test]
    fn secret_settings_are_recognised_in_any_case() {
        assert!(is_secret_setting(b"electric_auth.jwt_key"));
        assert!(is_secret_setting(b"Electric_Auth.JWT_KEY"));
        assert!(is_secret_setting(b"electric_auth.identity_token"));
        assert!(!is_secret_setting(b"electric_auth.jwt_key_is_base64"));
        assert!(!is_secret_setting(b"electric_auth.jwt_alg"));
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
        assert!(hide_statement(&Statement::new(statement), None));
        let escaped: &[u8] = b"SET U&\"electric_auth.jwt\\005Fkey\" = 'new-secret'";
        assert!(hide_statement(&Statement::new(escaped), None));
    }

    #[test]
    fn bind_parameters_of_such_a_statement_are_hidden() {
        let statement: &[u8] = b"SELECT set_config('electric_auth.jwt_key', $1, false)";
        let hidden = redact(b"parameters: $1 = 'new-secret'", Some(statement)).unwrap();
        assert_eq!(hidden, PARAMETERS_HIDDEN);
        let context = b"unnamed portal with parameters: $1 = 'new-sec...'";
        let parsed = Statement::new(statement);
        let hidden = redact_field(context, true, Some(&parsed), None).unwrap();
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
    fn bind_parameters_of_any_set_config_call_are_hidden() {
        for statement in [
            &b"SELECT set_config($1, $2, false)"[..],
            b"SELECT pg_catalog.SET_CONFIG($1 || $2, $3, true)",
            b"SELECT \"set_config\"($1, $2, false)",
            b"SELECT U&\"set\\005Fconfig\"($1, $2, false)",
        ] {
            assert_eq!(
                redact(b"parameters: $1 = 'x', $2 = 'y'", Some(statement)).unwrap(),
                PARAMETERS_HIDDEN,
                "{}",
                String::from_utf8_lossy(statement)
            );
            // The statement itself names no key, so it is logged.
            assert!(!hide_statement(&Statement::new(statement), None));
        }
    }

    #[test]
    fn tokens_are_masked_in_every_field() {
        let statement = b"SELECT electric_auth.authenticate($1)";
        let detail = [b"parameters: $1 = '".as_slice(), TOKEN, b"'"].concat();
        assert_eq!(
            redact(&detail, Some(statement)).unwrap(),
            [b"parameters: $1 = '".as_slice(), TOKEN_HIDDEN, b"'"].concat()
        );
        let message = [
            b"statement: SELECT electric_auth.user_id('".as_slice(),
            TOKEN,
            b"')",
        ]
        .concat();
        let masked = redact(&message, None).unwrap();
        assert!(find(&masked, TOKEN_HIDDEN).is_some());
        assert!(find(&masked, &TOKEN[..20]).is_none());
    }

    #[test]
    fn a_context_naming_the_key_is_hidden_whole() {
        let statement: &[u8] =
            b"DO $$ BEGIN EXECUTE 'ALTER SYSTEM SET electric_auth.jwt_key = ''s'''; END $$";
        let context = b"SQL statement \"ALTER SYSTEM SET electric_auth.jwt_key = 's'\"\nPL/pgSQL function inline_code_block line 1 at EXECUTE";
        let parsed = Statement::new(statement);
        assert_eq!(
            redact_field(context, true, Some(&parsed), None).unwrap(),
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
        assert!(names_jwt_key(
            b"SET U&\"\xe9\" = 'x'; SELECT set_config(E'electric_auth.jwt\\x5Fkey', 'y', false)"
        ));
        assert_eq!(decode_sql(br"U&'\D83D\DE00'"), "\u{1F600}".as_bytes());
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
            &Statement::new(&[b"SELECT '".as_slice(), KEY, b"'"].concat()),
            Some(KEY)
        ));
        assert!(!hide_statement(&Statement::new(b"SELECT 1"), Some(KEY)));
    }

    #[test]
    fn unrelated_lines_are_kept() {
        assert_eq!(redact(b"statement: SELECT 1", Some(b"SELECT 1")), None);
        let statement = Statement::new(b"SELECT electric_auth.user_id($1)");
        assert_eq!(
            redact_field(
                b"electric_auth.jwt_key not set",
                false,
                Some(&statement),
                None
            ),
            None
        );
    }

    #[test]
    fn in_a_statement_only_literals_and_comments_are_tokens() {
        let token = std::str::from_utf8(TOKEN).unwrap();
        // Identifiers stay: a function named like a token is shown for what it is.
        let name = "eyJhIjoxfQ.eyJiIjoyMn0";
        for text in [
            format!("CREATE FUNCTION {name}() RETURNS int LANGUAGE sql AS 'SELECT 1'"),
            format!("SELECT \"{name}\"()"),
            format!("SELECT {token}"), // not SQL, but no literal either
        ] {
            assert_eq!(mask_statement_jwts(text.as_bytes()), None, "{text}");
            assert!(mask_jwts(text.as_bytes()).is_some(), "{text}");
        }
        // Literals of every kind, comments, and a literal only a reading with
        // standard_conforming_strings off sees (`'a\' <token>'`).
        for text in [
            format!("SELECT electric_auth.user_id('{token}')"),
            format!("SELECT user_id(E'{token}')"),
            format!("SELECT user_id($x${token}$x$)"),
            format!("SELECT user_id(U&'{token}')"),
            format!("SELECT now() /* {token} */"),
            format!("SELECT now() -- {token}"),
            format!("SELECT 'a\\' {token} '"),
            format!("SELECT '{token}' || f({name})"),
        ] {
            let masked = mask_statement_jwts(text.as_bytes()).expect(&text);
            let masked = String::from_utf8(masked).unwrap();
            assert!(!masked.contains(&token[40..60]), "{text} -> {masked}");
            assert_eq!(masked.contains(name), text.contains(name), "{masked}");
        }
        // A log field quoting the statement: the quote by the statement rules, the rest not.
        let statement = format!("SELECT {name}('{token}')");
        let field = format!("statement: {statement}");
        let masked = redact_field(
            field.as_bytes(),
            false,
            Some(&Statement::new(statement.as_bytes())),
            None,
        )
        .unwrap();
        let masked = String::from_utf8(masked).unwrap();
        assert_eq!(
            masked,
            format!("statement: SELECT {name}('[token hidden by electric_auth]')")
        );
        let message = format!("function {name}(unknown) does not exist");
        assert!(redact_field(message.as_bytes(), false, None, None).is_some());
    }

    #[test]
    fn an_inner_statement_is_hidden_or_masked() {
        let key = b"the-key-in-force-0123456789";
        let inner = b"ALTER SYSTEM SET electric_auth.jwt_key = 'new-key-1234567890'";
        assert_eq!(
            redact_inner_statement(inner, None, None).unwrap(),
            STATEMENT_HIDDEN
        );
        let outer = Statement::new(b"DO $$ BEGIN EXECUTE f('electric_auth.jwt' || '_key'); END $$");
        assert_eq!(
            redact_inner_statement(b"SELECT 1/0", Some(&outer), None).unwrap(),
            STATEMENT_HIDDEN
        );
        let with_token = [b"SELECT user_id('".as_slice(), TOKEN, b"')"].concat();
        let masked = redact_inner_statement(&with_token, None, None).unwrap();
        assert_eq!(
            masked,
            [b"SELECT user_id('".as_slice(), TOKEN_HIDDEN, b"')"].concat()
        );
        let with_key = [b"SELECT '".as_slice(), key, b"'"].concat();
        assert_eq!(
            redact_inner_statement(&with_key, None, Some(key)).unwrap(),
            [b"SELECT '".as_slice(), KEY_HIDDEN, b"'"].concat()
        );
        assert_eq!(redact_inner_statement(b"SELECT 1/0", None, Some(key)), None);
    }

    /// Hardening round 4: a statement of MBs naming the key, quoted in an error message that
    /// repeats most of it (`' ' * N + SELECT repeat(' ', M)::int /* electric_auth.jwt_key */`),
    /// was searched window by window: hours for tens of MB, in a hook nothing interrupts. Every
    /// rule now reads such text in linear time; 16 MiB is done in well under a second here
    /// (the bound below is only a guard against the quadratic search coming back).
    #[test]
    fn the_rules_are_linear_in_the_statement_and_the_line() {
        let mut statement = vec![b' '; 16 << 20];
        statement
            .extend_from_slice(b"SELECT repeat(' ', 2097152)::int /* electric_auth.jwt_key */");
        let mut message = b"invalid input syntax for type integer: \"".to_vec();
        message.extend(std::iter::repeat_n(b' ', 18 << 20));
        message.push(b'"');
        let started = std::time::Instant::now();
        let parsed = Statement::new(&statement);
        assert!(parsed.names_key);
        let key = Some(&b"some-key-in-force-1234"[..]);
        assert_eq!(redact_field(&message, false, Some(&parsed), key), None);
        assert!(hide_statement(&parsed, key));
        assert_eq!(mask_statement_jwts(&statement), None);
        assert_eq!(
            redact_inner_statement(&statement, None, key).unwrap(),
            STATEMENT_HIDDEN
        );
        let mut dollars = b"$".to_vec();
        dollars.extend(std::iter::repeat_n(b'a', 4 << 20));
        dollars.push(b'$');
        dollars.extend(std::iter::repeat_n(b'a', 4 << 20));
        assert!(!names_jwt_key(&dollars));
        let elapsed = started.elapsed();
        assert!(elapsed.as_secs() < 20, "took {elapsed:?}");
    }

    /// Red team, round 4: Postgres ends a `--` comment at a carriage return too; the lexer ended
    /// it at a line feed only, so `-- \r, 'q\n', user_id('<token>')` hid a literal from it.
    #[test]
    fn a_line_comment_ends_at_a_carriage_return() {
        let token = std::str::from_utf8(TOKEN).unwrap();
        for text in [
            format!("select 1 -- \r, 'q\n' as y, electric_auth.user_id('{token}') as z, 'w'"),
            format!("select 2 -- x\r/*\n {token} */"),
        ] {
            let masked = mask_statement_jwts(text.as_bytes()).expect(&text);
            let masked = String::from_utf8(masked).unwrap();
            assert!(!masked.contains(&token[40..60]), "{text:?} -> {masked:?}");
        }
    }

    /// The streaming walk finds exactly what a collected list would, and a text over
    /// REPLACE_UP_TO_BYTES is masked in place (no longer than it was).
    #[test]
    fn masking_is_streamed_and_never_grows_a_large_text() {
        let token = std::str::from_utf8(TOKEN).unwrap();
        let small = format!("select '{token}', x.y /* {token} */ -- {token}\n, \"{token}\"");
        assert_eq!(statement_jwt_ranges(small.as_bytes()).len(), 3);
        let big = format!("select 1 /* {} */", "eyJ7.eyJ7 ".repeat(200_000));
        let masked = mask_statement_jwts(big.as_bytes()).unwrap();
        assert_eq!(masked.len(), big.len());
        assert!(!masked.windows(9).any(|w| w == b"eyJ7.eyJ7"));
        let mut out = big.as_bytes().to_vec();
        assert!(fill_statement_jwts(big.as_bytes(), &mut out));
        assert_eq!(out, masked);
        assert!(names_key_plainly(
            b"select set_config('electric_auth.JWT_KEY', 'k', false)"
        ));
        assert!(!names_key_plainly(b"select 1"));
    }

    /// Red team, round 4 (second pass): `1$a$ ' $a$` is a number then a dollar quote to
    /// Postgres; the lexer took `$a$` after the digit for part of a word, and the quote inside
    /// the dollar body then opened a literal that swallowed the real one after it.
    #[test]
    fn a_dollar_quote_after_a_number_opens() {
        let token = std::str::from_utf8(TOKEN).unwrap();
        for text in [
            format!("select 1$a$ ' $a$, electric_auth.user_id('{token}')"),
            format!("select electric_auth.user_id($a$x$a$ || 1$a$ ' $a$ || '{token}')"),
        ] {
            let masked = mask_statement_jwts(text.as_bytes()).expect(&text);
            let masked = String::from_utf8(masked).unwrap();
            assert!(!masked.contains(&token[40..60]), "{text:?} -> {masked:?}");
        }
        // In an identifier, `$` is part of the word: `x1$a$` names a column, and the literal
        // after it is still one.
        let text = format!("select x1$a$, 'abc $a$ {token}'");
        let masked = String::from_utf8(mask_statement_jwts(text.as_bytes()).unwrap()).unwrap();
        assert!(!masked.contains(&token[40..60]), "{masked}");
    }
}
