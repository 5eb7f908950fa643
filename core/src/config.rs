//! Settings as Postgres holds them, and their validation into a usable [`Config`] (spec §1).

use crate::algorithm::Algorithm;
use crate::error::ConfigError;
use crate::issuers::{parse_issuers, IssuerSource, IssuerSpec, UserIdScopes};
use crate::jwks::document::key_set_with_fetched;
use crate::jwks::{parse_fetched, FetchedKeys, FetchedState};
use crate::keys::{KeySet, VerifyingKey, MAX_KEYS};
use base64::Engine;

/// The raw values of Electric's eight `electric_auth.*` settings and `electric_auth.issuers`, exactly as the GUCs hold them.
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
    /// `electric_auth.issuers` (beyond Electric): several issuers, chosen by `iss`.
    pub issuers: Option<String>,
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

/// A validated configuration: the mode, and in secure mode how each issuer's tokens are
/// verified (the default issuer's from Electric's settings, the listed ones' from
/// `electric_auth.issuers`).
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) mode: ModeConfig,
    /// Insecure mode's: the namespace and drift (secure mode keeps them per issuer).
    pub(crate) namespace: Option<String>,
    pub(crate) clock_drift: i64,
}

#[derive(Debug, Clone)]
pub(crate) enum ModeConfig {
    Secure {
        /// Electric's single-issuer settings, when configured (with `electric_auth.issuers`
        /// they may be left unset; then only listed issuers verify).
        default: Option<Box<Rules>>,
        /// `electric_auth.issuers`, in the setting's order.
        issuers: Vec<Issuer>,
        scopes: UserIdScopes,
    },
    Insecure,
}

/// How the tokens of one issuer are verified.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    /// The algorithms a token may use, each with the keys that verify it (never empty).
    pub(crate) keys: Vec<(Algorithm, KeySet)>,
    /// The `iss` a token must carry (required then).
    pub(crate) iss: Option<String>,
    /// The token's `aud` must hold one of these (required then); empty: not checked.
    pub(crate) aud: Vec<String>,
    pub(crate) clock_drift: i64,
    pub(crate) user_id: UserIdRule,
    /// Put before the claim's value (empty for the default issuer).
    pub(crate) prefix: String,
}

/// Where the user id is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UserIdRule {
    /// Electric's: `sub`, else `user_id`, at the top level or under a namespace claim.
    Electric { namespace: Option<String> },
    /// A JSON Pointer (RFC 6901) into the payload.
    Pointer(String),
}

/// One listed issuer.
#[derive(Debug, Clone)]
pub(crate) struct Issuer {
    pub(crate) iss: String,
    /// An error when its fetched keys cannot verify now (pending, stale, unusable): its own
    /// tokens are refused with it, every other issuer's still verify.
    pub(crate) rules: Result<Rules, ConfigError>,
    /// A JSON Pointer for PostgreSQL 18 logins (`None`: `electric_auth.role_claim`).
    pub(crate) role_claim: Option<String>,
}

impl Rules {
    /// The keys for the token header's `alg`, when it is one of this issuer's algorithms.
    #[inline]
    pub(crate) fn keys_for(&self, alg: &str) -> Option<(Algorithm, &KeySet)> {
        self.keys
            .iter()
            .find(|(a, _)| a.name() == alg)
            .map(|(a, keys)| (*a, keys))
    }

    /// Whether a key of any algorithm names `kid`.
    pub(crate) fn names_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|(_, keys)| keys.names_kid(kid))
    }
}

/// `None` for a value that is absent, empty or only whitespace; the value untrimmed otherwise.
fn set_value(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.trim().is_empty())
}

/// Fetched keys for a listed issuer's source, by the issuer's index and spec (the glue reads
/// them from shared memory; `None`: none yet).
pub type IssuerFetched<'a> = &'a dyn Fn(usize, &IssuerSpec) -> Option<FetchedKeys>;

impl Config {
    /// Validates the settings in the spec's order and parses the key. Fails with exactly the
    /// first configuration error the spec lists for these settings.
    pub fn from_settings(settings: &Settings) -> Result<Config, ConfigError> {
        Config::build(settings, None, &|_, _| None)
    }

    /// As [`Config::from_settings`], with the keys fetched from an identity provider (see
    /// `jwks/`) joining the inline `jwt_key` keys; `jwt_key` may then be unset.
    pub fn from_settings_and_fetched(
        settings: &Settings,
        fetched: Option<&FetchedKeys>,
    ) -> Result<Config, ConfigError> {
        Config::build(settings, fetched, &|_, _| None)
    }

    /// As [`Config::from_settings_and_fetched`], with each listed issuer's fetched keys.
    pub fn build(
        settings: &Settings,
        fetched: Option<&FetchedKeys>,
        issuer_fetched: IssuerFetched<'_>,
    ) -> Result<Config, ConfigError> {
        let namespace = set_value(&settings.jwt_namespace).map(str::to_owned);
        let clock_drift = settings.clock_drift.max(0);
        let specs = match set_value(&settings.issuers) {
            Some(text) => parse_issuers(text)?,
            None => Vec::new(),
        };
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
                    ("electric_auth.issuers", !specs.is_empty()),
                ];
                if let Some((setting, _)) = offending.iter().find(|(_, is_set)| *is_set) {
                    return Err(ConfigError::NotValidInInsecureMode { setting });
                }
                ModeConfig::Insecure
            }
            Mode::Secure => {
                // With listed issuers, Electric's settings are the default issuer only when
                // something of them is set; without, they are required as Electric required them.
                let default_configured = specs.is_empty()
                    || set_value(&settings.jwt_alg).is_some()
                    || set_value(&settings.jwt_key).is_some()
                    || fetched.is_some();
                let default = if default_configured {
                    Some(Box::new(default_rules(settings, fetched, &namespace)?))
                } else {
                    None
                };
                let issuers = specs
                    .iter()
                    .enumerate()
                    .map(|(index, spec)| issuer(index, spec, clock_drift, issuer_fetched))
                    .collect::<Result<Vec<_>, _>>()?;
                ModeConfig::Secure {
                    default,
                    scopes: UserIdScopes::new(&specs)?,
                    issuers,
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

    /// The default issuer's rules (Electric's settings), in secure mode when configured.
    pub(crate) fn default_rules(&self) -> Option<&Rules> {
        match &self.mode {
            ModeConfig::Secure { default, .. } => default.as_deref(),
            ModeConfig::Insecure => None,
        }
    }

    /// Seconds of leeway for `iat`, `nbf` and `exp` (the default issuer's, or insecure mode's).
    pub fn clock_drift(&self) -> i64 {
        self.default_rules()
            .map_or(self.clock_drift, |rules| rules.clock_drift)
    }

    /// The leeway of the issuer a token verified under (`None`: the default issuer).
    pub fn clock_drift_of(&self, issuer: Option<usize>) -> i64 {
        match (issuer, &self.mode) {
            (Some(index), ModeConfig::Secure { issuers, .. }) => issuers
                .get(index)
                .and_then(|i| i.rules.as_ref().ok())
                .map_or(self.clock_drift, |rules| rules.clock_drift),
            _ => self.clock_drift(),
        }
    }

    /// The first parsed key of the default issuer (Electric's configuration has one).
    pub fn verifying_key(&self) -> Option<&VerifyingKey> {
        self.key_set().map(KeySet::first)
    }

    /// The default issuer's usable keys, in secure mode.
    pub fn key_set(&self) -> Option<&KeySet> {
        self.default_rules()
            .and_then(|rules| rules.keys.first())
            .map(|(_, keys)| keys)
    }

    /// The default issuer's algorithm, in secure mode.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.default_rules()
            .and_then(|rules| rules.keys.first())
            .map(|(alg, _)| *alg)
    }

    /// Whether tokens are verified (secure mode), whoever issues them.
    pub fn is_secure(&self) -> bool {
        self.mode() == Mode::Secure
    }

    /// The listed issuers' `iss` values, in the setting's order.
    pub fn issuer_names(&self) -> Vec<&str> {
        match &self.mode {
            ModeConfig::Secure { issuers, .. } => issuers.iter().map(|i| i.iss.as_str()).collect(),
            ModeConfig::Insecure => Vec::new(),
        }
    }

    /// Whether a key of the issuer `issuer` (`None`: the default one) names `kid`.
    pub fn names_kid(&self, issuer: Option<usize>, kid: &str) -> bool {
        match issuer {
            None => self.default_rules().is_some_and(|r| r.names_kid(kid)),
            Some(index) => match &self.mode {
                ModeConfig::Secure { issuers, .. } => issuers
                    .get(index)
                    .and_then(|i| i.rules.as_ref().ok())
                    .is_some_and(|r| r.names_kid(kid)),
                ModeConfig::Insecure => false,
            },
        }
    }

    /// The role claim pointer of listed issuer `index`, when it has one.
    pub fn role_claim_of(&self, index: usize) -> Option<&str> {
        match &self.mode {
            ModeConfig::Secure { issuers, .. } => issuers.get(index)?.role_claim.as_deref(),
            ModeConfig::Insecure => None,
        }
    }

    /// The index of the listed issuer whose `iss` is exactly `iss`.
    pub fn issuer_index(&self, iss: &str) -> Option<usize> {
        match &self.mode {
            ModeConfig::Secure { issuers, .. } => issuers.iter().position(|i| i.iss == iss),
            ModeConfig::Insecure => None,
        }
    }
}

/// The default issuer: Electric's settings, in the spec's order of errors.
fn default_rules(
    settings: &Settings,
    fetched: Option<&FetchedKeys>,
    namespace: &Option<String>,
) -> Result<Rules, ConfigError> {
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
    Ok(Rules {
        keys: vec![(alg, keys)],
        iss: set_value(&settings.jwt_iss).map(str::to_owned),
        aud: set_value(&settings.jwt_aud)
            .map(str::to_owned)
            .into_iter()
            .collect(),
        clock_drift: settings.clock_drift.max(0),
        user_id: UserIdRule::Electric {
            namespace: namespace.clone(),
        },
        prefix: String::new(),
    })
}

/// A listed issuer: its keys parsed (an inline key's error is the setting's; a fetched
/// source's state only this issuer's).
fn issuer(
    index: usize,
    spec: &IssuerSpec,
    default_drift: i64,
    issuer_fetched: IssuerFetched<'_>,
) -> Result<Issuer, ConfigError> {
    let keys = match &spec.source {
        IssuerSource::Key { text, base64 } => Ok(inline_issuer_keys(index, spec, text, *base64)?),
        IssuerSource::JwksUrl(_) | IssuerSource::OidcIssuer(_) => {
            let (member, url) = spec.source.fetched().expect("a fetched source");
            fetched_issuer_keys(spec, issuer_fetched(index, spec), member, url)
        }
    };
    Ok(Issuer {
        iss: spec.iss.clone(),
        role_claim: spec.role_claim.clone(),
        rules: keys.map(|keys| Rules {
            keys,
            iss: Some(spec.iss.clone()),
            aud: spec.aud.clone(),
            clock_drift: spec.clock_drift.unwrap_or(default_drift),
            user_id: match &spec.user_id_claim {
                Some(pointer) => UserIdRule::Pointer(pointer.clone()),
                None => UserIdRule::Electric { namespace: None },
            },
            prefix: spec.user_id_prefix.clone(),
        }),
    })
}

/// An error of issuer `index`'s key, in the setting's words (the key parser names
/// `electric_auth.jwt_key`/`jwt_alg`; here they are the entry's `key`/`alg`).
fn key_error(index: usize, error: &ConfigError) -> ConfigError {
    ConfigError::IssuersInvalid {
        at: format!("[{index}].key"),
        reason: error
            .to_string()
            .replace("electric_auth.jwt_key", "the key")
            .replace("electric_auth.jwt_alg", "alg"),
    }
}

/// The keys of an inline `key` for each of the issuer's algorithms: every listed algorithm
/// must have a usable key in the text (a JWKS may hold an RSA and an EC key for a migration);
/// the first that has none is the error, named. At most [`MAX_KEYS`] keys in all. An HS secret
/// that is PEM key text is refused: a public key taken as an HMAC secret lets anyone who has it
/// sign tokens.
fn inline_issuer_keys(
    index: usize,
    spec: &IssuerSpec,
    text: &str,
    base64: bool,
) -> Result<Vec<(Algorithm, KeySet)>, ConfigError> {
    let mut keys = Vec::new();
    for &alg in &spec.algs {
        let parsed = KeySet::parse(alg, text, |secret| {
            let bytes = if base64 {
                decode_base64_key(secret)?
            } else {
                secret.as_bytes().to_vec()
            };
            if bytes.windows(10).any(|w| w == b"-----BEGIN") {
                return Err(ConfigError::IssuersInvalid {
                    at: format!("[{index}].key"),
                    reason: "is PEM key text, and an HS algorithm's key is a shared secret: a \
                             public key taken as an HMAC secret lets anyone sign tokens"
                        .to_owned(),
                });
            }
            Ok(bytes)
        });
        match parsed {
            Ok(set) => keys.push((alg, set)),
            Err(error @ ConfigError::IssuersInvalid { .. }) => return Err(error),
            Err(error) if spec.algs.len() == 1 => return Err(key_error(index, &error)),
            Err(error) => {
                let mut error = key_error(index, &error);
                if let ConfigError::IssuersInvalid { reason, .. } = &mut error {
                    *reason = format!("for {alg}: {reason}");
                }
                return Err(error);
            }
        }
    }
    let count: usize = keys.iter().map(|(_, set)| set.count()).sum();
    if count > MAX_KEYS {
        return Err(ConfigError::IssuersInvalid {
            at: format!("[{index}].key"),
            reason: format!(
                "{count} keys usable for its algorithms (counted per algorithm); at most {MAX_KEYS} are allowed"
            ),
        });
    }
    Ok(keys)
}

/// `url` for a message that may reach any role (a listed issuer's URL is in a setting only
/// superusers read): without its query, which could hold a credential.
fn shown_url(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_owned(),
    }
}

/// The keys of a fetched document for each of the issuer's algorithms, or why this issuer
/// cannot verify now.
fn fetched_issuer_keys(
    spec: &IssuerSpec,
    fetched: Option<FetchedKeys>,
    member: &'static str,
    url: &str,
) -> Result<Vec<(Algorithm, KeySet)>, ConfigError> {
    let url = &shown_url(url);
    let fetched = fetched.unwrap_or(FetchedKeys {
        setting: member,
        source: url.to_owned(),
        state: FetchedState::Pending,
    });
    let body = match &fetched.state {
        FetchedState::Document(body) => body,
        FetchedState::Pending => {
            return Err(ConfigError::FetchedKeysPending {
                setting: member,
                url: url.to_owned(),
            })
        }
        FetchedState::Stale {
            age_secs,
            max_stale_secs,
        } => {
            return Err(ConfigError::FetchedKeysStale {
                url: url.to_owned(),
                age_secs: *age_secs,
                max_stale_secs: *max_stale_secs,
            })
        }
    };
    let mut keys = Vec::new();
    let mut reasons = Vec::new();
    for &alg in &spec.algs {
        match parse_fetched(alg, body.as_bytes()) {
            Ok(set) => keys.push((alg, set)),
            Err(reason) => reasons.push(format!("for {alg}: {reason}")),
        }
    }
    let count: usize = keys.iter().map(|(_, set)| set.count()).sum();
    if keys.is_empty() || count > MAX_KEYS {
        if count > MAX_KEYS {
            reasons.push(format!(
                "{count} keys usable for its algorithms (counted per algorithm); at most {MAX_KEYS} are allowed"
            ));
        }
        return Err(ConfigError::FetchedKeysUnusable {
            url: url.to_owned(),
            reason: reasons.join("; "),
        });
    }
    Ok(keys)
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
