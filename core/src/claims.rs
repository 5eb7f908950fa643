//! Claim rules (spec §3 steps 5–7) and the user id lookup (spec §4).

use crate::error::TokenError;
use serde_json::{Map, Value};

type Claims = Map<String, Value>;

/// A claim's value as JSON text, for the `Invalid "<claim>" claim value: <value>` messages.
fn invalid(claim: &'static str, value: &Value) -> TokenError {
    TokenError::InvalidClaimValue {
        claim,
        value: value.to_string(),
    }
}

/// A time claim as seconds, with its JSON value; integer or fractional JSON numbers only.
fn seconds<'a>(
    claims: &'a Claims,
    claim: &'static str,
) -> Result<Option<(f64, &'a Value)>, TokenError> {
    match claims.get(claim) {
        None => Ok(None),
        Some(value) => match value.as_f64() {
            Some(secs) => Ok(Some((secs, value))),
            None => Err(invalid(claim, value)),
        },
    }
}

/// `iat`, `nbf`, `exp`, each checked only when present, with `drift` seconds of leeway.
pub(crate) fn check_time_claims(claims: &Claims, now: i64, drift: i64) -> Result<(), TokenError> {
    let (now_secs, drift_secs) = (now as f64, drift as f64);
    if let Some((iat, value)) = seconds(claims, "iat")? {
        if iat - drift_secs > now_secs {
            return Err(invalid("iat", value));
        }
    }
    if let Some((nbf, _)) = seconds(claims, "nbf")? {
        if nbf - drift_secs > now_secs {
            return Err(TokenError::NotYetValid);
        }
    }
    if let Some((exp, _)) = seconds(claims, "exp")? {
        if expired(exp, now, drift) {
            return Err(TokenError::Expired);
        }
    }
    Ok(())
}

/// Whether `exp` is past at `now`: valid iff `exp + drift >= now` (spec §3.5). Also the rule
/// a session identity is checked against on every call.
pub(crate) fn expired(exp: f64, now: i64, drift: i64) -> bool {
    exp + (drift as f64) < (now as f64)
}

/// `iss` and `aud`, only when configured. `aud` may be a string or (RFC 7519) an array; it
/// must hold one of the configured audiences (Electric's settings configure one).
pub(crate) fn check_issuer_and_audience(
    claims: &Claims,
    iss: Option<&str>,
    aud: &[String],
) -> Result<(), TokenError> {
    if let (Some(expected), Some(value)) = (iss, claims.get("iss")) {
        if value.as_str() != Some(expected) {
            return Err(invalid("iss", value));
        }
    }
    if let (false, Some(value)) = (aud.is_empty(), claims.get("aud")) {
        let accepted = |s: &str| aud.iter().any(|expected| expected == s);
        let matches = match value {
            Value::String(s) => accepted(s),
            Value::Array(items) => items.iter().any(|item| item.as_str().is_some_and(accepted)),
            _ => false,
        };
        if !matches {
            return Err(invalid("aud", value));
        }
    }
    Ok(())
}

/// Secure mode's required claims: `iat` and `exp`, plus `iss`/`aud` when configured.
pub(crate) fn check_required(
    claims: &Claims,
    iss_required: bool,
    aud_required: bool,
) -> Result<(), TokenError> {
    let required = [
        ("iat", true),
        ("exp", true),
        ("iss", iss_required),
        ("aud", aud_required),
    ];
    for (claim, is_required) in required {
        if is_required && !claims.contains_key(claim) {
            return Err(TokenError::MissingClaim(claim));
        }
    }
    Ok(())
}

/// `sub`, or the legacy `user_id` when `sub` is absent or null, looked up at the top level or
/// inside the object at the literal key `namespace`. Valid iff a string that is not blank.
pub(crate) fn user_id<'a>(claims: &'a Claims, namespace: Option<&str>) -> Option<&'a str> {
    let scope = match namespace {
        None => claims,
        Some(ns) => claims.get(ns)?.as_object()?,
    };
    let value = match scope.get("sub") {
        None | Some(Value::Null) => scope.get("user_id")?,
        Some(sub) => sub,
    };
    value.as_str().filter(|id| !id.trim().is_empty())
}

/// The user id at a JSON Pointer (RFC 6901) of the payload: a string that is not blank.
pub(crate) fn user_id_at<'a>(claims: &'a Claims, pointer: &str) -> Option<&'a str> {
    at_pointer(claims, pointer)?
        .as_str()
        .filter(|id| !id.trim().is_empty())
}

/// The value at a JSON Pointer (RFC 6901) of the payload: its first token names a member of
/// the payload object (a map, not a `Value`), the rest is serde_json's `pointer`.
pub(crate) fn at_pointer<'a>(claims: &'a Claims, pointer: &str) -> Option<&'a Value> {
    let rest = pointer.strip_prefix('/')?;
    let (first, deeper) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let value = claims.get(&first.replace("~1", "/").replace("~0", "~"))?;
    if deeper.is_empty() {
        Some(value)
    } else {
        value.pointer(deeper)
    }
}
