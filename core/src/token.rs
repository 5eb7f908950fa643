//! Token verification in the spec's order (§3), for both modes.

use crate::claims;
use crate::config::{Config, Issuer, ModeConfig, Rules, UserIdRule};
use crate::error::{ConfigError, TokenError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

pub(crate) use numeric::numbers_fit;

/// Tokens longer than this are `Invalid token` before any decoding (spec §3.1).
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// What a successful verification yields.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    /// The resolved user id (spec §4), untrimmed.
    pub user_id: String,
    /// The whole payload object.
    pub claims: Map<String, Value>,
    /// The payload object's JSON text, exactly as signed (what `electric_auth.verify` returns,
    /// so numbers keep every digit).
    pub payload: String,
    /// The `exp` claim in Unix seconds, when present.
    pub expires_at: Option<f64>,
    /// The listed issuer (`electric_auth.issuers`' index) it verified under; `None`: the
    /// default issuer (Electric's settings).
    pub issuer: Option<usize>,
}

/// What the answer of [`Verifier::verify_with`] (the fast path, `fast/`) needs besides the user
/// id. Declared here, beside the verifier whose method takes it, so that this module need not
/// import the fast path's (which imports this one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The user id and the payload text.
    UserId,
    /// Also `verify`'s jsonb, built on the fast path from the same reading of the payload.
    Jsonb,
}

/// Checks tokens against one validated configuration. Build it once; it holds the parsed key.
#[derive(Debug, Clone)]
pub struct Verifier {
    config: Config,
}

impl Verifier {
    pub fn new(config: Config) -> Verifier {
        Verifier { config }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Verifies `token` at time `now` (Unix seconds). The first failing check decides the error.
    pub fn verify(&self, token: &str, now: i64) -> Result<VerifiedToken, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::InvalidToken);
        }
        let ModeConfig::Secure {
            default,
            issuers,
            scopes,
        } = &self.config.mode
        else {
            return self.verify_insecure(token, now);
        };
        // With listed issuers the payload is read once, before the signature, for its `iss`
        // (a payload that does not read leaves the order of errors to the default issuer).
        let mut decoded = None;
        let iss = || {
            if issuers.is_empty() {
                return Ok(None);
            }
            let payload = token.split('.').nth(1).ok_or(())?;
            let (claims, text) = decode_payload(payload).map_err(|_| ())?;
            let iss = claims.get("iss").and_then(Value::as_str).map(str::to_owned);
            decoded = Some((claims, text));
            Ok(iss)
        };
        let (issuer, rules) = match select(issuers, default.as_deref(), iss)? {
            Selected::Default(rules) => (None, rules),
            Selected::Listed(index, Ok(rules)) => (Some(index), rules),
            Selected::Listed(_, Err(error)) => {
                return Err(TokenError::IssuerUnavailable(Box::new(error.clone())))
            }
        };
        let (claims, payload) = verify_signed(rules, token, now, decoded)?;
        // 8. The user id, in its issuer's scope.
        let raw = match &rules.user_id {
            UserIdRule::Electric { namespace } => claims::user_id(&claims, namespace.as_deref()),
            UserIdRule::Pointer(pointer) => claims::user_id_at(&claims, pointer),
        }
        .ok_or(TokenError::MissingUserId)?;
        let user_id = format!("{}{raw}", rules.prefix);
        if scopes.reserved(&rules.prefix, &user_id) {
            return Err(TokenError::ReservedUserId);
        }
        let expires_at = claims.get("exp").and_then(Value::as_f64);
        Ok(VerifiedToken {
            user_id,
            claims,
            payload,
            expires_at,
            issuer,
        })
    }

    /// Insecure mode: `header.payload.signature` or `header.payload`; header and signature
    /// unread; the time claims and the user id only.
    fn verify_insecure(&self, token: &str, now: i64) -> Result<VerifiedToken, TokenError> {
        let mut parts = token.split('.');
        let (_header, payload_b64) = (parts.next(), parts.next().ok_or(TokenError::InvalidToken)?);
        let _signature = parts.next();
        if parts.next().is_some() {
            return Err(TokenError::InvalidToken);
        }
        let (claims, payload) = decode_payload(payload_b64)?;
        claims::check_time_claims(&claims, now, self.config.clock_drift)?;
        let user_id = claims::user_id(&claims, self.config.namespace.as_deref())
            .ok_or(TokenError::MissingUserId)?
            .to_owned();
        let expires_at = claims.get("exp").and_then(Value::as_f64);
        Ok(VerifiedToken {
            user_id,
            claims,
            payload,
            expires_at,
            issuer: None,
        })
    }

    /// The listed issuer `token` would be verified under (`None`: the default issuer, or none),
    /// read from its unverified `iss`; for counting a refusal by issuer.
    pub fn issuer_of(&self, token: &[u8]) -> Option<usize> {
        let ModeConfig::Secure { issuers, .. } = &self.config.mode else {
            return None;
        };
        if issuers.is_empty() {
            return None;
        }
        let token = std::str::from_utf8(token).ok()?;
        let iss = unverified_iss(token).ok()??;
        issuers.iter().position(|i| i.iss == iss)
    }
}

/// Which issuer's rules verify a token.
pub(crate) enum Selected<'a> {
    Default(&'a Rules),
    Listed(usize, &'a Result<Rules, ConfigError>),
}

/// The issuer whose `iss` is exactly the token's (read by `iss`, only when issuers are
/// listed), else the default issuer; none configured is `Unknown issuer` — unless the payload
/// cannot be read at all, which is `Invalid token` as it would be under any issuer.
pub(crate) fn select<'a, S: AsRef<str>>(
    issuers: &'a [Issuer],
    default: Option<&'a Rules>,
    iss: impl FnOnce() -> Result<Option<S>, ()>,
) -> Result<Selected<'a>, TokenError> {
    if issuers.is_empty() {
        return default
            .map(Selected::Default)
            .ok_or(TokenError::UnknownIssuer);
    }
    let iss = iss();
    if let Ok(Some(iss)) = &iss {
        let iss = iss.as_ref();
        if let Some(index) = issuers.iter().position(|i| i.iss == iss) {
            return Ok(Selected::Listed(index, &issuers[index].rules));
        }
    }
    match (default, iss) {
        (Some(rules), _) => Ok(Selected::Default(rules)),
        (None, Err(())) => Err(TokenError::InvalidToken),
        (None, Ok(_)) => Err(TokenError::UnknownIssuer),
    }
}

/// The token payload's `iss` when it is a string, before any check: `Err` when the payload
/// cannot be read as a JSON object.
fn unverified_iss(token: &str) -> Result<Option<String>, ()> {
    let mut parts = token.splitn(3, '.');
    let (Some(_), Some(payload)) = (parts.next(), parts.next()) else {
        return Err(());
    };
    match decode_json_object(payload) {
        Ok(mut claims) => Ok(match claims.remove("iss") {
            Some(Value::String(iss)) => Some(iss),
            _ => None,
        }),
        Err(_) => Err(()),
    }
}

/// Secure mode's checks 1.–7. under one issuer's rules: the claims and the payload text.
/// `decoded`: the payload, when the selection has already read it.
fn verify_signed(
    rules: &Rules,
    token: &str,
    now: i64,
    decoded: Option<(Map<String, Value>, String)>,
) -> Result<(Map<String, Value>, String), TokenError> {
    let (signing_input, signature_b64) = token.rsplit_once('.').ok_or(TokenError::InvalidToken)?;
    let (header_b64, payload_b64) = signing_input
        .split_once('.')
        .ok_or(TokenError::InvalidToken)?;
    if payload_b64.contains('.') {
        return Err(TokenError::InvalidToken);
    }
    // 1. Shape: the header must decode to a JSON object. (Deviation) A header with
    // `crit` names extensions the recipient must understand (RFC 7515 §4.1.11);
    // we understand none, so the token is refused, as PyJWT refuses it.
    let header = decode_json_object(header_b64)?;
    if header.contains_key("crit") {
        return Err(TokenError::InvalidToken);
    }
    // 2. Algorithm: one of the issuer's (Electric's settings: exactly the configured one);
    // the key never comes from the token.
    let (_, keys) = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(|alg| rules.keys_for(alg))
        .ok_or(TokenError::AlgorithmMismatch)?;
    // 3. Signature over `header.payload`.
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| TokenError::InvalidSignature)?;
    // The key: chosen by `kid` among the configured ones (never from the token).
    // A `kid` that selects none is refused with the same message, as its own error
    // (counted apart: a key rotated out, or another issuer's).
    if !signature.is_empty() && !keys.selects_any(header.get("kid")) {
        return Err(TokenError::UnknownKey);
    }
    if signature.is_empty()
        || !keys.verify(
            header.get("kid"),
            signing_input.as_bytes(),
            &signature,
            signature_b64,
        )
    {
        return Err(TokenError::InvalidSignature);
    }
    // 4. Payload.
    let (claims, payload) = match decoded {
        Some(decoded) => decoded,
        None => decode_payload(payload_b64)?,
    };
    // 5.–7. Time claims, then iss/aud, then the required claims.
    claims::check_time_claims(&claims, now, rules.clock_drift)?;
    claims::check_issuer_and_audience(&claims, rules.iss.as_deref(), &rules.aud)?;
    claims::check_required(&claims, rules.iss.is_some(), !rules.aud.is_empty())?;
    Ok((claims, payload))
}

/// base64url without padding, decoding to a JSON object; anything else is `Invalid token`.
///
/// serde_json refuses what RFC 8259 refuses (bytes that are not UTF-8, raw control characters,
/// lone surrogate escapes, numbers beyond an `f64`) and nesting deeper than 128 levels. A key
/// given twice keeps its last value, as `JSON.parse`, Python's `json` and Postgres `jsonb` do.
fn decode_json_object(part: &str) -> Result<Map<String, Value>, TokenError> {
    decode_json_object_bytes(part).map(|(map, _)| map)
}

fn decode_json_object_bytes(part: &str) -> Result<(Map<String, Value>, Vec<u8>), TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::InvalidToken)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok((map, bytes)),
        _ => Err(TokenError::InvalidToken),
    }
}

/// The payload object (spec §3.4). Beyond [`decode_json_object`], what Postgres `jsonb` cannot
/// hold is `Invalid token`, so that every token `user_id()` accepts `verify()` can return and
/// both functions refuse the same tokens: a string or key holding U+0000 (written `\u0000`;
/// `text` and `jsonb` cannot hold it), and a number `numeric` cannot hold (see
/// [`numeric`]).
fn decode_payload(part: &str) -> Result<(Map<String, Value>, String), TokenError> {
    let (claims, json) = decode_json_object_bytes(part)?;
    if text_holds_nul(&json) {
        return Err(TokenError::InvalidToken);
    }
    if !numeric::numbers_fit(&json) {
        return Err(TokenError::InvalidToken);
    }
    // serde_json has already refused anything that is not UTF-8.
    let text = String::from_utf8(json).map_err(|_| TokenError::InvalidToken)?;
    Ok((claims, text))
}

/// Whether a string or key of valid JSON text holds U+0000 (only ever written `\u0000`: raw
/// control characters are not JSON). Read from the text, not the parsed map, since `jsonb_in`
/// reads every value of a key given twice, also the ones the map dropped (found by the red
/// team: `{"x":"\u0000","x":1}` passed `user_id` and failed `verify` with 22P05).
fn text_holds_nul(json: &[u8]) -> bool {
    let mut in_string = false;
    let mut at = 0;
    while at < json.len() {
        match (in_string, json[at]) {
            (false, b'"') => in_string = true,
            (true, b'"') => in_string = false,
            (true, b'\\') => {
                if json
                    .get(at + 1..)
                    .is_some_and(|rest| rest.starts_with(b"u0000"))
                {
                    return true;
                }
                at += 1; // the escaped character is never a quote that ends the string
            }
            _ => {}
        }
        at += 1;
    }
    false
}

#[cfg(test)]
mod nul_tests {
    use super::*;

    #[test]
    fn u0000_is_refused_also_under_a_key_given_twice() {
        let payload = |json: &str| decode_payload(&URL_SAFE_NO_PAD.encode(json));
        for json in [
            r#"{"sub":"a","x":"\u0000","x":1}"#,
            r#"{"sub":"a","o":{"k":"\u0000","k":1}}"#,
            r#"{"sub":"a","\u0000":1,"\u0000":2}"#,
            r#"{"sub":"a\u0000"}"#,
        ] {
            assert_eq!(payload(json), Err(TokenError::InvalidToken), "{json}");
        }
        // An escaped backslash followed by the text u0000 is no U+0000.
        assert!(payload(r#"{"sub":"a","x":"\\u0000"}"#).is_ok());
        assert!(payload(r#"{"sub":"a","x":"\"\\","y":"u0000"}"#).is_ok());
    }
}

/// What Postgres's `numeric` can hold, which is how `jsonb` stores every JSON number (`jsonb_in`
/// reads each number with `numeric_in`, duplicated keys included, and raises 22003 "value
/// overflows numeric format" for one it cannot hold). serde_json reads numbers as `f64`, which
/// quietly underflows `1e-20000` to 0 and keeps every digit of a long fraction out of sight,
/// so the payload's text is read here.
///
/// Postgres's limits (src/backend/utils/adt/numeric.c): the display scale (digits after the
/// point once the exponent is applied) is at most `NUMERIC_DSCALE_MAX` = 0x3FFF; the weight (of
/// the first non-zero base-10000 digit) fits an `int16`; and the written exponent is refused
/// beyond `PG_INT32_MAX / 2` (Postgres 16 and later) or from `INT_MAX / 2` on (15), so the
/// stricter bound is used.
mod numeric {
    /// `NUMERIC_DSCALE_MAX`.
    pub const MAX_DISPLAY_SCALE: i64 = 0x3FFF;
    /// The largest exponent magnitude every supported Postgres major reads.
    pub const MAX_EXPONENT: i64 = i32::MAX as i64 / 2 - 1;
    /// Decimal digits per `numeric` digit (`DEC_DIGITS`).
    const DEC_DIGITS: i64 = 4;

    /// Whether every number in the JSON text `json` (already validated as JSON) fits.
    pub fn numbers_fit(json: &[u8]) -> bool {
        !may_not_fit(json) || scan(json)
    }

    /// A cheap test that is true for every payload holding a number that may not fit: such a
    /// number has an exponent (a digit followed by `e`/`E`), or more digits after its point
    /// than [`MAX_DISPLAY_SCALE`], which a shorter text cannot hold.
    fn may_not_fit(json: &[u8]) -> bool {
        if json.len() as i64 > MAX_DISPLAY_SCALE {
            return true;
        }
        // No early exit, so that the loop compiles to vector code.
        let mut found = false;
        for w in json.windows(2) {
            found |= w[0].is_ascii_digit() & (w[1] | 0x20 == b'e');
        }
        found
    }

    /// Reads every number outside strings; false at the first that does not fit.
    fn scan(json: &[u8]) -> bool {
        let mut i = 0;
        while i < json.len() {
            match json[i] {
                b'"' => {
                    i += 1;
                    while i < json.len() && json[i] != b'"' {
                        i += if json[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 1;
                }
                b'-' | b'0'..=b'9' => {
                    let (fits, end) = number(json, i);
                    if !fits {
                        return false;
                    }
                    i = end;
                }
                _ => i += 1,
            }
        }
        true
    }

    fn digits(json: &[u8], from: usize) -> usize {
        json[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    }

    /// Whether the JSON number at `start` fits, and where it ends.
    fn number(json: &[u8], start: usize) -> (bool, usize) {
        let mut i = start + usize::from(json[start] == b'-');
        let integer = i..i + digits(json, i);
        i = integer.end;
        let mut fraction = i..i;
        if json.get(i) == Some(&b'.') {
            fraction = i + 1..i + 1 + digits(json, i + 1);
            i = fraction.end;
        }
        let mut exponent: i64 = 0;
        if matches!(json.get(i), Some(b'e' | b'E')) {
            i += 1;
            let negative = json.get(i) == Some(&b'-');
            if matches!(json.get(i), Some(b'-' | b'+')) {
                i += 1;
            }
            let count = digits(json, i);
            for &d in &json[i..i + count] {
                // Saturates well past the limit, whatever the number of digits.
                exponent = (exponent * 10 + i64::from(d - b'0')).min(i64::from(i32::MAX));
            }
            i += count;
            if negative {
                exponent = -exponent;
            }
        }
        (fits(json, integer, fraction, exponent), i)
    }

    /// Postgres's rules for a number `<integer>.<fraction>e<exponent>` (digit ranges of `json`).
    pub(super) fn fits(
        json: &[u8],
        integer: std::ops::Range<usize>,
        fraction: std::ops::Range<usize>,
        exponent: i64,
    ) -> bool {
        if exponent.abs() > MAX_EXPONENT {
            return false;
        }
        let scale = (fraction.len() as i64 - exponent).max(0);
        if scale > MAX_DISPLAY_SCALE {
            return false;
        }
        // The power of ten of the first non-zero digit; a zero has no weight to overflow.
        let first = |range: std::ops::Range<usize>| json[range].iter().position(|&d| d != b'0');
        let power = match first(integer.clone()) {
            Some(at) => (integer.len() - 1 - at) as i64 + exponent,
            None => match first(fraction) {
                Some(at) => -(at as i64) - 1 + exponent,
                None => return true,
            },
        };
        let weight = power.div_euclid(DEC_DIGITS);
        (i64::from(i16::MIN)..=i64::from(i16::MAX)).contains(&weight)
    }
}

/// The `kid` a token's header names, if it is a string; `None` for anything unreadable (the
/// verifier then refuses the token on its own). Used to decide whether a refused token names a
/// key the provider may have just added.
pub fn header_kid(token: &str) -> Option<String> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let header_b64 = token.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(header_b64).ok()?;
    match serde_json::from_slice::<Value>(&bytes).ok()? {
        Value::Object(mut header) => match header.remove("kid") {
            Some(Value::String(kid)) => Some(kid),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::numeric::{numbers_fit, MAX_DISPLAY_SCALE, MAX_EXPONENT};

    fn fits(number: &str) -> bool {
        numbers_fit(format!(r#"{{"n":{number}}}"#).as_bytes())
    }

    #[test]
    fn ordinary_numbers_fit() {
        for n in [
            "0",
            "-0",
            "1",
            "1700000000",
            "1700000000.5",
            "1e300",
            "-1.5e-300",
            "0.1",
            "1E+5",
            "18446744073709551615",
            "0e0",
            "1.7976931348623157e308",
        ] {
            assert!(fits(n), "{n}");
        }
        assert!(
            numbers_fit(br#"{"s":"1e-99999","t":"\"1e-99999"}"#),
            "strings are skipped"
        );
    }

    #[test]
    fn the_display_scale_is_at_most_16383_digits() {
        let limit = MAX_DISPLAY_SCALE as usize;
        assert!(fits(&format!("1e-{limit}")));
        assert!(!fits(&format!("1e-{}", limit + 1)));
        assert!(!fits("1e-20000"));
        assert!(!fits("0e-20000"), "a zero keeps its scale too");
        assert!(fits(&format!("0.{}", "0".repeat(limit))));
        assert!(!fits(&format!("0.{}", "0".repeat(limit + 1))));
        assert!(!fits(&format!("1.{}1", "0".repeat(limit))));
        // The exponent moves the point: the same digits fit once it is positive enough.
        assert!(fits(&format!("1.{}1e2", "0".repeat(limit))));
    }

    #[test]
    fn exponents_beyond_int32_max_over_two_do_not_fit() {
        assert!(fits(&format!("0e{MAX_EXPONENT}")));
        assert!(!fits(&format!("0e{}", MAX_EXPONENT + 1)));
        assert!(!fits(&format!("0e-{}", MAX_EXPONENT + 1)));
        assert!(!fits("0e99999999999999999999999999"));
        assert!(fits("0e000000000000000000000000005"), "leading zeros");
    }

    #[test]
    fn the_weight_fits_an_int16() {
        // serde_json refuses such values before this is reached (beyond an f64), but the rule
        // stands on its own: 10^131071 has weight 32767; 10^131072 weight 32768.
        assert!(super::numeric::fits(b"1", 0..1, 1..1, 131_071));
        assert!(!super::numeric::fits(b"1", 0..1, 1..1, 131_072));
    }

    #[test]
    fn a_number_under_a_duplicated_key_is_read_too() {
        assert!(!numbers_fit(br#"{"n":1e-20000,"n":1}"#));
        assert!(!numbers_fit(br#"{"a":[1,{"b":[0.5e-16384]}]}"#));
    }

    #[test]
    fn header_kid_reads_only_a_string_kid() {
        use base64::Engine;
        let header = |json: &str| format!("{}.e30.sig", super::URL_SAFE_NO_PAD.encode(json));
        assert_eq!(
            super::header_kid(&header(r#"{"alg":"EdDSA","kid":"k1"}"#)),
            Some("k1".into())
        );
        assert_eq!(
            super::header_kid(&header(r#"{"alg":"EdDSA","kid":7}"#)),
            None
        );
        assert_eq!(super::header_kid(&header(r#"{"alg":"EdDSA"}"#)), None);
        assert_eq!(super::header_kid(&header("[1]")), None);
        assert_eq!(super::header_kid("%%%.e30.sig"), None);
        assert_eq!(super::header_kid(""), None);
    }
}
