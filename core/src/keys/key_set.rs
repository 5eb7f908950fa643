//! The keys `electric_auth.jwt_key` holds (beyond Electric's one key): a secret or one PEM key
//! as before, several PEM blocks one after another, a JWK, or a JWKS (`{"keys": [...]}`, as an
//! identity provider serves it at `/.well-known/jwks.json`). Parsed once, with the settings.
//!
//! The algorithm stays pinned by `electric_auth.jwt_alg`: a JWK that cannot verify it (another
//! `kty` or curve, another `alg`, `use` other than `sig`, `key_ops` without `verify`, material
//! that does not parse) is left out with a reason, so an IdP's whole JWKS can be pasted as it
//! is. No usable key, or more than [`MAX_KEYS`], is a configuration error.
//!
//! Selection (see [`KeySet::verify`]): a token whose header names a `kid` is checked only with
//! the keys of that `kid` — and with keys that have none (PEM blocks, secrets, JWKs without a
//! `kid`), so a single configured key ignores `kid` exactly as Electric did. A token without a
//! `kid` is checked with every usable key, in order. A forged token therefore costs at most
//! [`MAX_KEYS`] signature checks.

use super::key::VerifyingKey;
use super::pem;
use crate::algorithm::{Algorithm, AlgorithmFamily};
use crate::error::ConfigError;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use serde_json::Value;

/// The most usable keys one setting may hold.
pub const MAX_KEYS: usize = 16;

/// One usable key and its `kid`, if it has one.
#[derive(Debug, Clone)]
struct SetKey {
    kid: Option<String>,
    key: VerifyingKey,
}

/// The usable keys of `electric_auth.jwt_key`, in the order the setting lists them.
#[derive(Debug, Clone)]
pub struct KeySet {
    keys: Vec<SetKey>,
}

impl KeySet {
    /// One key without a `kid`: Electric's configuration.
    pub fn single(key: VerifyingKey) -> KeySet {
        KeySet {
            keys: vec![SetKey { kid: None, key }],
        }
    }

    /// The keys of `text` for `alg` (see the module notes). `secret` reads an HS secret from
    /// the text (honouring `jwt_key_is_base64`); it is used when the text is not a JWK/JWKS.
    pub fn parse(
        alg: Algorithm,
        text: &str,
        secret: impl FnOnce(&str) -> Result<Vec<u8>, ConfigError>,
    ) -> Result<KeySet, ConfigError> {
        // Text that starts with "{" is a JWK or JWKS or an error, for HS* too: such text taken
        // as an HMAC secret would let anyone who has it (a JWKS is published) sign tokens, and
        // a JWKS with a typo, or a JWK without "kty", would become exactly that secret.
        if let Some(jwks) = json_keys(alg, text)? {
            return KeySet::from_jwks(alg, jwks);
        }
        match alg.family() {
            AlgorithmFamily::Hmac => Ok(KeySet::single(VerifyingKey::hmac(alg, &secret(text)?)?)),
            _ => KeySet::from_pem_blocks(alg, text),
        }
    }

    /// One PEM key as before (its errors unchanged), or several, each of which must be a key
    /// for `alg`: PEM blocks are typed in on purpose, so a bad one is an error, not skipped.
    fn from_pem_blocks(alg: Algorithm, text: &str) -> Result<KeySet, ConfigError> {
        let blocks = pem::blocks(text);
        if blocks.len() <= 1 {
            return Ok(KeySet::single(VerifyingKey::from_pem(alg, text)?));
        }
        if blocks.len() > MAX_KEYS {
            return Err(ConfigError::TooManyKeys {
                alg,
                count: blocks.len(),
                max: MAX_KEYS,
            });
        }
        let count = blocks.len();
        let keys = blocks
            .iter()
            .enumerate()
            .map(|(i, block)| {
                VerifyingKey::from_pem(alg, block)
                    .map(|key| SetKey { kid: None, key })
                    .map_err(|error| ConfigError::PemBlockInvalid {
                        index: i + 1,
                        count,
                        error: Box::new(error),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(KeySet { keys })
    }

    /// The usable keys of a JWK list, with a reason for each one left out.
    pub(crate) fn from_jwks(alg: Algorithm, jwks: Vec<Value>) -> Result<KeySet, ConfigError> {
        let mut keys = Vec::new();
        let mut reasons = Vec::new();
        for (i, value) in jwks.iter().enumerate() {
            match usable_jwk(alg, value) {
                Ok(key) => keys.push(key),
                Err(reason) => reasons.push(format!("key {}{}: {reason}", i + 1, kid_label(value))),
            }
        }
        if keys.is_empty() {
            if reasons.is_empty() {
                reasons.push("the set is empty".to_owned());
            }
            return Err(ConfigError::NoUsableKey {
                alg,
                reasons: reasons.join("; "),
            });
        }
        if keys.len() > MAX_KEYS {
            return Err(ConfigError::TooManyKeys {
                alg,
                count: keys.len(),
                max: MAX_KEYS,
            });
        }
        Ok(KeySet { keys })
    }

    /// This set followed by `other`'s keys: the inline keys, then the fetched ones (see
    /// `jwks/document.rs`). Each part was parsed and bounded on its own.
    pub fn merged(mut self, other: KeySet) -> KeySet {
        self.keys.extend(other.keys);
        self
    }

    /// Whether a key of the set carries exactly this `kid` (keys without one do not count: a
    /// token naming a `kid` nobody has may mean the provider rotated).
    pub fn names_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// The `kid`s of the set's keys, in order (public values, for `key_source()`).
    pub fn kids(&self) -> Vec<String> {
        self.keys.iter().filter_map(|k| k.kid.clone()).collect()
    }

    /// How many usable keys the set holds (never none: such a setting is an error).
    pub fn count(&self) -> usize {
        self.keys.len()
    }

    /// The first key (Electric's configuration has exactly one).
    pub fn first(&self) -> &VerifyingKey {
        &self.keys[0].key
    }

    /// Whether a key selected by the token header's `kid` verifies the signature (see the
    /// module notes). `kid` is the header's value as it is: a `kid` that is not a string
    /// matches no key that has one.
    pub fn verify(
        &self,
        kid: Option<&Value>,
        message: &[u8],
        signature: &[u8],
        signature_b64: &str,
    ) -> bool {
        self.selected(kid)
            .any(|k| k.key.verify(message, signature, signature_b64))
    }

    /// Whether the token header's `kid` selects any key: false only for a `kid` that no key
    /// has, in a set where every key has one (a key rotated out, or another issuer's key).
    pub fn selects_any(&self, kid: Option<&Value>) -> bool {
        self.selected(kid).next().is_some()
    }

    fn selected<'a>(&'a self, kid: Option<&'a Value>) -> impl Iterator<Item = &'a SetKey> + 'a {
        self.keys.iter().filter(move |k| match (kid, &k.kid) {
            (None, _) | (_, None) => true,
            (Some(Value::String(wanted)), Some(have)) => wanted == have,
            (Some(_), Some(_)) => false,
        })
    }
}

/// The JWKs of `text` when it is a JWK or a JWKS: `None` when it is not JSON at all (a secret
/// or PEM), an error when it is JSON that is neither.
///
/// A byte-order mark before the JSON counts as white space (editors add one), and for the HMAC
/// algorithms a JSON array (a JWKS's `keys` list pasted alone) and any text holding a JWK member
/// name (`"kty`, `"keys`: a JWKS behind a comment, or quoted) are refused too: each would
/// otherwise become the HMAC secret, and a JWKS is public text anyone could sign with.
fn json_keys(alg: Algorithm, text: &str) -> Result<Option<Vec<Value>>, ConfigError> {
    let hmac = alg.family() == AlgorithmFamily::Hmac;
    let invalid = |reason: &str| ConfigError::JwkSetInvalid {
        reason: reason.to_owned(),
        hmac,
    };
    let text = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if hmac && text.starts_with('[') {
        return match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(_)) => Err(invalid(
                "it is a JSON array; a JWKS is an object, {\"keys\": [...]}",
            )),
            _ => Ok(None),
        };
    }
    if !text.starts_with('{') {
        // JWK text behind a comment, quoted as a JSON string, or otherwise wrapped: never a
        // secret either (no random secret holds a JWK member name in quotes).
        if hmac && (text.contains("\"kty") || text.contains("\"keys")) {
            return Err(invalid(
                "it holds a JWK member (\"kty\" or \"keys\"): key text is never an HMAC secret",
            ));
        }
        return Ok(None);
    }
    let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(text) else {
        return Err(invalid("it starts with \"{\" but is not a JSON object"));
    };
    match object.remove("keys") {
        Some(Value::Array(keys)) => Ok(Some(keys)),
        Some(_) => Err(invalid("\"keys\" must be an array of JWKs")),
        None if object.contains_key("kty") => Ok(Some(vec![Value::Object(object)])),
        None => Err(invalid("a JWK needs \"kty\", a JWKS a \"keys\" array")),
    }
}

/// ` (kid "…")` for messages: a `kid` is public; key material never appears.
fn kid_label(value: &Value) -> String {
    match value.get("kid") {
        Some(Value::String(kid)) => format!(" (kid {})", Value::String(kid.clone())),
        _ => String::new(),
    }
}

/// What a JWK's `kty`/`crv` is, for messages.
fn key_type(jwk: &Jwk) -> String {
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => "an RSA key".to_owned(),
        AlgorithmParameters::EllipticCurve(ec) => format!("an EC key on {}", curve_name(&ec.curve)),
        AlgorithmParameters::OctetKey(_) => "an oct (shared secret) key".to_owned(),
        AlgorithmParameters::OctetKeyPair(okp) => {
            format!("an OKP key on {}", curve_name(&okp.curve))
        }
        _ => "a key of another type".to_owned(),
    }
}

/// A curve as JWKs name it.
fn curve_name(curve: &EllipticCurve) -> &'static str {
    match curve {
        EllipticCurve::P256 => "P-256",
        EllipticCurve::P384 => "P-384",
        EllipticCurve::P521 => "P-521",
        EllipticCurve::Ed25519 => "Ed25519",
        _ => "another curve",
    }
}

/// What `alg` needs, for messages.
fn wanted_type(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::ES256 => "an EC key on P-256",
        Algorithm::ES384 => "an EC key on P-384",
        Algorithm::ES512 => "an EC key on P-521",
        _ => match alg.family() {
            AlgorithmFamily::Hmac => "an oct key",
            AlgorithmFamily::Rsa => "an RSA key",
            AlgorithmFamily::Ed => "an OKP key on Ed25519",
            AlgorithmFamily::Ec => "an EC key",
        },
    }
}

/// One JWK as a usable key for `alg`, or why not: its key type (and curve), its `alg`, `use`
/// and `key_ops`, then its material, in that order.
fn usable_jwk(alg: Algorithm, value: &Value) -> Result<SetKey, String> {
    let Value::Object(object) = value else {
        return Err("not a JSON object".to_owned());
    };
    let jwk: Jwk = serde_json::from_value(value.clone())
        .map_err(|_| "not a JWK jsonwebtoken can read".to_owned())?;
    if !super::key::jwk_fits(alg, &jwk) {
        return Err(format!("{}, not {}", key_type(&jwk), wanted_type(alg)));
    }
    // The `alg` as written: jsonwebtoken reads names it does not know as "unknown".
    if let Some(named) = object.get("alg") {
        if named.as_str() != Some(alg.name()) {
            return Err(format!("\"alg\" is {named}, not \"{alg}\""));
        }
    }
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(PublicKeyUse::Encryption) => return Err("\"use\" is \"enc\", not \"sig\"".to_owned()),
        Some(PublicKeyUse::Other(other)) => {
            return Err(format!(
                "\"use\" is {}, not \"sig\"",
                Value::String(other.clone())
            ))
        }
    }
    if let Some(ops) = &jwk.common.key_operations {
        if !ops.contains(&KeyOperations::Verify) {
            return Err("\"key_ops\" does not list \"verify\"".to_owned());
        }
    }
    let key = VerifyingKey::from_jwk(alg, &jwk).map_err(|error| match error {
        ConfigError::KeyInvalid { .. } => {
            format!("{}: its material does not parse", key_type(&jwk))
        }
        // Too short a secret, too small an RSA modulus: the message says which.
        other => other.to_string(),
    })?;
    Ok(SetKey {
        kid: jwk.common.key_id.clone(),
        key,
    })
}
