//! Settings as Postgres holds them, and their validation into a usable [`Config`] (spec §1).

use crate::algorithm::Algorithm;
use crate::error::ConfigError;
use crate::jwks::document::key_set_with_fetched;
use crate::jwks::FetchedKeys;
use crate::keys::{KeySet, VerifyingKey};
use base64::Engine;

/// The raw values of the eight `electric_auth.*` settings, exactly as the GUCs hold them.
/// `None`, an empty string and an all-whitespace string all mean "not set".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub mode: Mode,
    pub jwt_alg: Option<String>,
    pub jwt_key: Option<String>,
    pub jwt_key_is_base64: bool,
    pub jwt_namespace: Option<String>,
    pub jwt_iss: Option<String>,
    pub jwt_aud: Option<String>,
    /// Leeway in seconds for `iat`, `nbf` and `exp` (the GUC bounds it to 0..=3600).
    pub clock_drift: i64,
}

impl Settings {
    /// The defaults of the GUCs: secure mode, nothing else set, two seconds of clock drift.
    pub fn new() -> Self {
        Settings {
            clock_drift: 2,
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Secure,
    Insecure,
}

/// A validated configuration: the mode, and in secure mode the parsed key.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) mode: ModeConfig,
    pub(crate) namespace: Option<String>,
    pub(crate) clock_drift: i64,
}

#[derive(Debug, Clone)]
pub(crate) enum ModeConfig {
    Secure {
        alg: Algorithm,
        keys: Box<KeySet>,
        iss: Option<String>,
        aud: Option<String>,
    },
    Insecure,
}

/// `None` for a value that is absent, empty or only whitespace; the value untrimmed otherwise.
fn set_value(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.trim().is_empty())
}

impl Config {
    /// Validates the settings in the spec's order and parses the key. Fails with exactly the
    /// first configuration error the spec lists for these settings.
    pub fn from_settings(settings: &Settings) -> Result<Config, ConfigError> {
        Config::from_settings_and_fetched(settings, None)
    }

    /// As [`Config::from_settings`], with the keys fetched from an identity provider (see
    /// `jwks/`) joining the inline `jwt_key` keys; `jwt_key` may then be unset.
    pub fn from_settings_and_fetched(
        settings: &Settings,
        fetched: Option<&FetchedKeys>,
    ) -> Result<Config, ConfigError> {
        let namespace = set_value(&settings.jwt_namespace).map(str::to_owned);
        let clock_drift = settings.clock_drift.max(0);
        let mode = match settings.mode {
            Mode::Insecure => {
                let offending = [
                    (
                        "electric_auth.jwt_alg",
                        set_value(&settings.jwt_alg).is_some(),
                    ),
                    (
                        "electric_auth.jwt_key",
                        set_value(&settings.jwt_key).is_some(),
                    ),
                    (
                        "electric_auth.jwt_key_is_base64",
                        settings.jwt_key_is_base64,
                    ),
                    (
                        "electric_auth.jwt_iss",
                        set_value(&settings.jwt_iss).is_some(),
                    ),
                    (
                        "electric_auth.jwt_aud",
                        set_value(&settings.jwt_aud).is_some(),
                    ),
                    (
                        fetched.map_or("electric_auth.jwks_url", |f| f.setting),
                        fetched.is_some(),
                    ),
                ];
                if let Some((setting, _)) = offending.iter().find(|(_, is_set)| *is_set) {
                    return Err(ConfigError::NotValidInInsecureMode { setting });
                }
                ModeConfig::Insecure
            }
            Mode::Secure => {
                let alg_name = set_value(&settings.jwt_alg).ok_or(ConfigError::AlgNotSet)?;
                let alg = Algorithm::from_name(alg_name)
                    .ok_or_else(|| ConfigError::AlgInvalid(alg_name.to_owned()))?;
                let inline = match set_value(&settings.jwt_key) {
                    Some(key_text) => Some(KeySet::parse(alg, key_text, |secret| {
                        if settings.jwt_key_is_base64 {
                            decode_base64_key(secret)
                        } else {
                            Ok(secret.as_bytes().to_vec())
                        }
                    })?),
                    None if fetched.is_none() => return Err(ConfigError::KeyNotSet),
                    None => None,
                };
                let keys = match fetched {
                    Some(fetched) => key_set_with_fetched(alg, inline, fetched)?,
                    None => inline.ok_or(ConfigError::KeyNotSet)?,
                };
                ModeConfig::Secure {
                    alg,
                    keys: Box::new(keys),
                    iss: set_value(&settings.jwt_iss).map(str::to_owned),
                    aud: set_value(&settings.jwt_aud).map(str::to_owned),
                }
            }
        };
        Ok(Config {
            mode,
            namespace,
            clock_drift,
        })
    }

    pub fn mode(&self) -> Mode {
        match self.mode {
            ModeConfig::Secure { .. } => Mode::Secure,
            ModeConfig::Insecure => Mode::Insecure,
        }
    }

    /// Seconds of leeway for `iat`, `nbf` and `exp`.
    pub fn clock_drift(&self) -> i64 {
        self.clock_drift
    }

    /// The first parsed key (Electric's configuration has one), in secure mode.
    pub fn verifying_key(&self) -> Option<&VerifyingKey> {
        self.key_set().map(KeySet::first)
    }

    /// Every usable key, in secure mode.
    pub fn key_set(&self) -> Option<&KeySet> {
        match &self.mode {
            ModeConfig::Secure { keys, .. } => Some(keys),
            ModeConfig::Insecure => None,
        }
    }

    /// The configured algorithm, in secure mode.
    pub fn algorithm(&self) -> Option<Algorithm> {
        match &self.mode {
            ModeConfig::Secure { alg, .. } => Some(*alg),
            ModeConfig::Insecure => None,
        }
    }
}

/// Standard alphabet, padding optional (as Elixir's `Base.decode64(key, padding: false)` and
/// the padded form both are accepted by Electric). Surrounding whitespace is ignored.
fn decode_base64_key(text: &str) -> Result<Vec<u8>, ConfigError> {
    use base64::engine::{
        general_purpose::GeneralPurpose, DecodePaddingMode, GeneralPurposeConfig,
    };
    const STANDARD_PADDING_OPTIONAL: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    STANDARD_PADDING_OPTIONAL
        .decode(text.trim())
        .map_err(|_| ConfigError::KeyInvalidBase64)
}
