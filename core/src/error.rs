//! Error values. Every message is the spec's exact text; none ever contains key material.

use crate::algorithm::Algorithm;

/// Which side is at fault: the SQL layer maps this to a SQLSTATE without matching strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The settings are unusable (SQLSTATE 22023, invalid_parameter_value).
    Configuration,
    /// The token was rejected (SQLSTATE 28000, invalid_authorization_specification).
    RejectedToken,
}

/// Any failure of the core: a bad configuration or a rejected token.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Token(TokenError),
}

impl From<TokenError> for Error {
    /// A token refusal; an issuer that cannot verify now is the configuration error it is.
    fn from(error: TokenError) -> Error {
        match error {
            TokenError::IssuerUnavailable(config) => Error::Config(*config),
            token => Error::Token(token),
        }
    }
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_) => ErrorKind::Configuration,
            Error::Token(_) => ErrorKind::RejectedToken,
        }
    }

    /// A HINT line to show beside the message, where the spec gives one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Config(e) => e.hint(),
            Error::Token(_) => None,
        }
    }
}

/// The spec's §1 configuration errors, in the words Electric used for its env vars.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("electric_auth.jwt_alg not set")]
    AlgNotSet,
    /// `value` is rendered as a JSON string so that odd characters cannot garble the message.
    #[error("electric_auth.jwt_alg has invalid value: {}. Must be one of {}", json_string(.0), crate::algorithm::algorithm_list())]
    AlgInvalid(String),
    #[error("electric_auth.jwt_key not set")]
    KeyNotSet,
    #[error("electric_auth.jwt_key has invalid base64 encoding")]
    KeyInvalidBase64,
    #[error("electric_auth.jwt_key has to be at least {min_bytes} bytes long for {alg}")]
    KeyTooShort { alg: Algorithm, min_bytes: usize },
    /// The PEM is unparsable, of the wrong key type, or on the wrong curve.
    #[error("electric_auth.jwt_key is not a valid key for electric_auth.jwt_alg={alg} or it has invalid format")]
    KeyInvalid { alg: Algorithm },
    /// (deviation) RSA keys under 2048 bits, which Electric's docs forbid but its code accepted.
    #[error("electric_auth.jwt_key is not a valid key for electric_auth.jwt_alg={alg}: the RSA modulus has {bits} bits, at least {min_bits} are required")]
    RsaKeyTooSmall {
        alg: Algorithm,
        bits: u32,
        min_bits: u32,
    },
    /// A secure-mode-only setting is set while `electric_auth.mode = insecure`.
    #[error("{setting} is not valid in insecure mode")]
    NotValidInInsecureMode { setting: &'static str },
    /// One of several PEM blocks is not a key for the algorithm (or not PEM at all).
    #[error("electric_auth.jwt_key, PEM block {index} of {count}: {error}")]
    PemBlockInvalid {
        index: usize,
        count: usize,
        error: Box<ConfigError>,
    },
    /// A JWK or JWKS (`{"keys": [...]}`) that is not one: its `reason`, never key material.
    #[error("electric_auth.jwt_key is not a valid JWK or JWKS: {reason}")]
    /// `hmac`: the algorithm is HS*, whose secret could otherwise have been this text.
    JwkSetInvalid { reason: String, hmac: bool },
    /// A JWK or JWKS without a key that can verify the algorithm; `reasons` says why for each.
    #[error("electric_auth.jwt_key has no key usable for electric_auth.jwt_alg={alg}: {reasons}")]
    NoUsableKey { alg: Algorithm, reasons: String },
    /// More usable keys than a forged token may cost verifications.
    #[error("electric_auth.jwt_key has {count} keys usable for electric_auth.jwt_alg={alg}; at most {max} are allowed")]
    TooManyKeys {
        alg: Algorithm,
        count: usize,
        max: usize,
    },
    /// The inline keys and the fetched ones together: the limit holds for the merged set.
    #[error("electric_auth.jwt_key's {inline} keys and the {fetched} fetched from {url} are {} keys usable for electric_auth.jwt_alg={alg}; at most {max} are allowed", inline + fetched)]
    TooManyMergedKeys {
        alg: Algorithm,
        inline: usize,
        fetched: usize,
        url: String,
        max: usize,
    },
    /// `electric_auth.jwks_url` and `electric_auth.oidc_issuer` are both set.
    #[error(
        "electric_auth.jwks_url and electric_auth.oidc_issuer are both set; set only one of them"
    )]
    KeySourceConflict,
    /// `electric_auth.jwks_url`/`oidc_issuer` is set but no document has been fetched or loaded yet.
    #[error("no keys have been fetched yet from {url} ({setting}): the electric_auth key worker has not completed a refresh since the server started")]
    FetchedKeysPending { setting: &'static str, url: String },
    /// Every refresh failed for longer than `electric_auth.jwks_max_stale`.
    #[error("the keys fetched from {url} are stale: the last successful refresh was {age_secs} s ago, past electric_auth.jwks_max_stale ({max_stale_secs} s)")]
    FetchedKeysStale {
        url: String,
        age_secs: i64,
        max_stale_secs: i64,
    },
    /// `electric_auth.issuers` cannot be used: `at` is `[index]` or `[index].member` (empty
    /// for the whole setting); `reason` never quotes a member's value.
    #[error("electric_auth.issuers{at}: {reason}")]
    IssuersInvalid { at: String, reason: String },
    /// The fetched document has no key for the pinned algorithm (`jwt_alg` changed since).
    #[error("the keys fetched from {url} are not usable: {reason}")]
    FetchedKeysUnusable { url: String, reason: String },
}

impl ConfigError {
    pub fn hint(&self) -> Option<String> {
        match self {
            ConfigError::KeyInvalid { alg } | ConfigError::RsaKeyTooSmall { alg, .. } => {
                Some(pem_hint(*alg))
            }
            ConfigError::PemBlockInvalid { error, .. } => error.hint(),
            ConfigError::NoUsableKey { .. } => Some(
                "A usable key has the algorithm's key type (and curve), no \"alg\" or the same \"alg\", \
                 no \"use\" or \"use\": \"sig\", and no \"key_ops\" or one that lists \"verify\"."
                    .to_string(),
            ),
            ConfigError::TooManyKeys { .. } | ConfigError::TooManyMergedKeys { .. } => Some(
                "Keep only the keys that sign tokens now: a token without a matching kid may be \
                 checked against each usable key."
                    .to_string(),
            ),
            ConfigError::JwkSetInvalid { hmac: true, .. } => Some(
                "Text that starts with \"{\" is read as a JWK or JWKS, also for HS* algorithms; \
                 an HS secret may not start with \"{\" (use electric_auth.jwt_key_is_base64 for \
                 such a secret)."
                    .to_string(),
            ),
            ConfigError::FetchedKeysPending { .. } | ConfigError::FetchedKeysStale { .. } => Some(
                "See SELECT * FROM electric_auth.key_source() for the last failure's reason."
                    .to_string(),
            ),
            ConfigError::NotValidInInsecureMode { .. } => {
                Some("Did you forget to set electric_auth.mode = secure?".to_string())
            }
            _ => None,
        }
    }
}

fn pem_hint(alg: Algorithm) -> String {
    let what = match alg.family() {
        crate::algorithm::AlgorithmFamily::Rsa => "an RSA public key of at least 2048 bits",
        crate::algorithm::AlgorithmFamily::Ec => match alg {
            Algorithm::ES256 => "an EC public key on curve P-256 (prime256v1)",
            Algorithm::ES384 => "an EC public key on curve P-384 (secp384r1)",
            _ => "an EC public key on curve P-521 (secp521r1)",
        },
        crate::algorithm::AlgorithmFamily::Ed => "an Ed25519 public key",
        crate::algorithm::AlgorithmFamily::Hmac => "a shared secret",
    };
    format!(
        "Expected {what} in PEM format: \"-----BEGIN PUBLIC KEY-----\\n<base64>\\n-----END PUBLIC KEY-----\". \
         A private key or an X.509 certificate also works; line breaks may be written as \\n."
    )
}

/// The spec's §3 token rejections. Messages are exact; claim values are shown as JSON.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TokenError {
    #[error("Invalid token")]
    InvalidToken,
    #[error("Signing algorithm mismatch")]
    AlgorithmMismatch,
    #[error("Invalid token signature")]
    InvalidSignature,
    /// (beyond Electric) The header's `kid` names no configured key: the spec's message for a
    /// bad signature, kept apart so that it can be counted apart.
    #[error("Invalid token signature")]
    UnknownKey,
    /// `value` is the claim's JSON text, e.g. `1684749213` or `"https://other"`.
    #[error("Invalid \"{claim}\" claim value: {value}")]
    InvalidClaimValue { claim: &'static str, value: String },
    #[error("Token is not yet valid")]
    NotYetValid,
    #[error("Expired token")]
    Expired,
    #[error("Missing required \"{0}\" claim")]
    MissingClaim(&'static str),
    #[error("Missing or invalid 'user_id'")]
    MissingUserId,
    /// (beyond Electric, `electric_auth.issuers`) The token's `iss` names no listed issuer and
    /// no default issuer is configured.
    #[error("Unknown issuer")]
    UnknownIssuer,
    /// (beyond Electric) A user id from an issuer without a prefix that lies in another
    /// issuer's prefix (see `issuers.rs`): one provider may not produce another's user ids.
    #[error("User id is reserved for another issuer")]
    ReservedUserId,
    /// (beyond Electric) The token's issuer cannot verify now (its fetched keys are pending,
    /// stale or unusable): a configuration error of that issuer alone, which the glue reports
    /// as the configuration error it is (`From<TokenError> for Error`).
    #[error("{0}")]
    IssuerUnavailable(Box<ConfigError>),
    /// (beyond Electric) The token, or its user's tokens issued before a time, were revoked
    /// (`electric_auth.revoke_token` / `revoke_user`).
    #[error("Token has been revoked")]
    Revoked,
}

/// `s` as a JSON string literal (quoted and escaped), as messages quote claim values.
pub(crate) fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}
