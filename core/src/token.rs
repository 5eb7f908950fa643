//! Token verification in the spec's order (§3), for both modes.

use crate::claims;
use crate::config::{Config, ModeConfig};
use crate::error::TokenError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

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
        let (claims, payload) = match &self.config.mode {
            ModeConfig::Secure {
                alg,
                keys,
                iss,
                aud,
            } => {
                let (signing_input, signature_b64) =
                    token.rsplit_once('.').ok_or(TokenError::InvalidToken)?;
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
                // 2. Algorithm: exactly the configured one; the key never comes from the token.
                if header.get("alg").and_then(Value::as_str) != Some(alg.name()) {
                    return Err(TokenError::AlgorithmMismatch);
                }
                // 3. Signature over `header.payload`.
                let signature = URL_SAFE_NO_PAD
                    .decode(signature_b64)
                    .map_err(|_| TokenError::InvalidSignature)?;
                // The key: chosen by `kid` among the configured ones (never from the token).
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
                let (claims, payload) = decode_payload(payload_b64)?;
                // 5.–7. Time claims, then iss/aud, then the required claims.
                claims::check_time_claims(&claims, now, self.config.clock_drift)?;
                claims::check_issuer_and_audience(&claims, iss.as_deref(), aud.as_deref())?;
                claims::check_required(&claims, iss.is_some(), aud.is_some())?;
                (claims, payload)
            }
            ModeConfig::Insecure => {
                // `header.payload.signature` or `header.payload`; header and signature unread.
                let mut parts = token.split('.');
                let (_header, payload_b64) =
                    (parts.next(), parts.next().ok_or(TokenError::InvalidToken)?);
                let _signature = parts.next();
                if parts.next().is_some() {
                    return Err(TokenError::InvalidToken);
                }
                let (claims, payload) = decode_payload(payload_b64)?;
                claims::check_time_claims(&claims, now, self.config.clock_drift)?;
                (claims, payload)
            }
        };
        // 8. The user id.
        let user_id = claims::user_id(&claims, self.config.namespace.as_deref())
            .ok_or(TokenError::MissingUserId)?
            .to_owned();
        let expires_at = claims.get("exp").and_then(Value::as_f64);
        Ok(VerifiedToken {
            user_id,
            claims,
            payload,
            expires_at,
        })
    }
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

/// The payload object (spec §3.4). Beyond [`decode_json_object`], a string or key holding U+0000
/// (written `\u0000`) is `Invalid token`: Postgres `text` and `jsonb` cannot hold it, so such a
/// token could never be returned by `verify()` and is refused by both functions alike.
fn decode_payload(part: &str) -> Result<(Map<String, Value>, String), TokenError> {
    let (claims, json) = decode_json_object_bytes(part)?;
    let may_hold_nul = json.windows(6).any(|w| w == b"\\u0000");
    if may_hold_nul && map_holds_nul(&claims) {
        return Err(TokenError::InvalidToken);
    }
    // serde_json has already refused anything that is not UTF-8.
    let text = String::from_utf8(json).map_err(|_| TokenError::InvalidToken)?;
    Ok((claims, text))
}

fn map_holds_nul(map: &Map<String, Value>) -> bool {
    map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v))
}

fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map_holds_nul(map),
        _ => false,
    }
}
