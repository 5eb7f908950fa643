//! `electric_auth.issuers` (issue 32): several identity providers, each with its own keys,
//! algorithms, audience and claims, chosen by the token's `iss`. This module reads the
//! setting's JSON into [`IssuerSpec`]s and checks every rule that does not need a key parsed
//! (`config.rs` parses the keys, `token.rs` and `fast/` select and verify).
//!
//! The setting may hold HMAC secrets: no message here ever quotes a member's value, only the
//! entry's index and the member's name (`electric_auth.issuers[1].alg: ...`).
//!
//! **User ids.** A listed issuer's user id is its `user_id_prefix` followed by the claim's
//! value; the prefix defaults to the `iss` and `#`, so two providers never produce the same
//! user id: distinct non-empty prefixes may not be prefixes of one another, and a user id from
//! an issuer without a prefix (the default issuer, or `"user_id_prefix": ""`) that starts with
//! another issuer's prefix is refused ([`UserIdScopes`]). Issuers given the same prefix share
//! their user ids on purpose (a provider migration).

use crate::algorithm::{Algorithm, AlgorithmFamily};
use crate::error::ConfigError;
use serde::de::{Deserializer, Error as _, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

/// The members an entry may have.
const MEMBERS: &str = "iss, key, key_is_base64, jwks_url, oidc_issuer, alg, aud, clock_drift, \
                       user_id_claim, role_claim, jwks_refresh_interval, jwks_max_stale, \
                       user_id_prefix";

/// The most issuers the setting may list.
pub const MAX_ISSUERS: usize = 16;
/// The longest `iss`, `user_id_prefix`, URL or claim pointer the setting may hold.
pub const MAX_TEXT_BYTES: usize = 1024;

/// Where an issuer's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerSource {
    /// Inline key text, as `electric_auth.jwt_key` takes it; `base64` for an HS secret.
    Key { text: String, base64: bool },
    /// A JWKS URL the key worker fetches.
    JwksUrl(String),
    /// An OpenID issuer whose discovery document names the JWKS the key worker fetches.
    OidcIssuer(String),
}

impl IssuerSource {
    /// For a fetched source: the member's name and the URL.
    pub fn fetched(&self) -> Option<(&'static str, &str)> {
        match self {
            IssuerSource::Key { .. } => None,
            IssuerSource::JwksUrl(url) => Some(("jwks_url", url)),
            IssuerSource::OidcIssuer(url) => Some(("oidc_issuer", url)),
        }
    }
}

/// One entry of `electric_auth.issuers`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerSpec {
    pub iss: String,
    pub source: IssuerSource,
    /// At least one; HMAC ones only with an inline key and never beside another family.
    pub algs: Vec<Algorithm>,
    /// Empty: `aud` is not checked.
    pub aud: Vec<String>,
    pub clock_drift: Option<i64>,
    /// RFC 6901 pointers; `None`: Electric's rule (`sub`, else `user_id`) / `electric_auth.role_claim`.
    pub user_id_claim: Option<String>,
    pub role_claim: Option<String>,
    pub refresh_interval: Option<i64>,
    pub max_stale: Option<i64>,
    pub user_id_prefix: String,
}

/// The members as written, each any JSON value (types are checked here, so no message quotes
/// a value); serde refuses unknown and duplicated members.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIssuer {
    iss: Option<Value>,
    key: Option<Value>,
    key_is_base64: Option<Value>,
    jwks_url: Option<Value>,
    oidc_issuer: Option<Value>,
    alg: Option<Value>,
    aud: Option<Value>,
    clock_drift: Option<Value>,
    user_id_claim: Option<Value>,
    role_claim: Option<Value>,
    jwks_refresh_interval: Option<Value>,
    jwks_max_stale: Option<Value>,
    user_id_prefix: Option<Value>,
}

/// The array, entry by entry: an entry's serde error (an unknown or duplicated member, a syntax
/// error) is named by its index.
struct Entries(Vec<RawIssuer>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON array of issuer objects")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                loop {
                    if entries.len() > MAX_ISSUERS {
                        return Err(A::Error::custom(format!(
                            "more than {MAX_ISSUERS} issuers; at most {MAX_ISSUERS} are allowed"
                        )));
                    }
                    let index = entries.len();
                    match seq.next_element::<RawIssuer>() {
                        Ok(Some(entry)) => entries.push(entry),
                        Ok(None) => return Ok(Entries(entries)),
                        // An entry that is not an object: serde would quote it.
                        // Never the unknown name itself: a secret pasted without its "key":
                        // label would be that name.
                        Err(e) if e.to_string().starts_with("unknown field") => {
                            return Err(A::Error::custom(format!(
                                "[{index}]: has a member that is not one of {MEMBERS}"
                            )))
                        }
                        Err(e) if e.to_string().starts_with("invalid type") => {
                            return Err(A::Error::custom(format!(
                                "[{index}]: must be a JSON object of issuer members"
                            )))
                        }
                        Err(e) => return Err(A::Error::custom(format!("[{index}]: {e}"))),
                    }
                }
            }
        }
        deserializer.deserialize_seq(EntriesVisitor)
    }
}

/// An error about the whole setting.
fn setting_error(reason: impl Into<String>) -> ConfigError {
    ConfigError::IssuersInvalid {
        at: String::new(),
        reason: reason.into(),
    }
}

/// An error about entry `index`, member `member` (`""`: the entry).
fn entry_error(index: usize, member: &str, reason: impl Into<String>) -> ConfigError {
    let at = if member.is_empty() {
        format!("[{index}]")
    } else {
        format!("[{index}].{member}")
    };
    ConfigError::IssuersInvalid {
        at,
        reason: reason.into(),
    }
}

/// Reads the setting: `Ok(vec![])` for an empty or all-whitespace value or `[]`.
pub fn parse_issuers(text: &str) -> Result<Vec<IssuerSpec>, ConfigError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    if !text.trim_start().starts_with('[') {
        return Err(setting_error("must be a JSON array of issuer objects"));
    }
    let Entries(raw) = serde_json::from_str::<Entries>(text).map_err(|e| {
        // serde_json's messages name positions and members, never a value of ours (every
        // member is read as any JSON value).
        let message = e.to_string();
        match message.strip_prefix('[') {
            Some(_) => ConfigError::IssuersInvalid {
                at: message[..message.find(']').map_or(0, |i| i + 1)].to_owned(),
                reason: message[message.find(": ").map_or(0, |i| i + 2)..].to_owned(),
            },
            None => setting_error(message),
        }
    })?;
    let specs = raw
        .into_iter()
        .enumerate()
        .map(|(index, entry)| checked(index, entry))
        .collect::<Result<Vec<_>, _>>()?;
    for (index, spec) in specs.iter().enumerate() {
        if let Some(first) = specs[..index].iter().position(|s| s.iss == spec.iss) {
            return Err(entry_error(
                index,
                "iss",
                format!("the same as issuers[{first}].iss; each issuer is listed once"),
            ));
        }
    }
    UserIdScopes::new(&specs)?;
    Ok(specs)
}

fn text_member(index: usize, member: &str, value: &Value) -> Result<String, ConfigError> {
    match value {
        Value::String(s) if s.len() > MAX_TEXT_BYTES => Err(entry_error(
            index,
            member,
            format!("longer than {MAX_TEXT_BYTES} bytes"),
        )),
        // U+0000: a text holding it reads as shorter wherever Postgres passes it as a C string
        // (`set_config`, `name`), where `alice\0x` would be `alice`.
        Value::String(s) if s.contains('\0') => {
            Err(entry_error(index, member, "must not hold U+0000"))
        }
        Value::String(s) => Ok(s.clone()),
        _ => Err(entry_error(index, member, "must be a string")),
    }
}

fn int_member(
    index: usize,
    member: &str,
    value: &Value,
    (min, max): (i64, i64),
) -> Result<i64, ConfigError> {
    match value.as_i64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(entry_error(
            index,
            member,
            format!("must be an integer number of seconds from {min} to {max}"),
        )),
    }
}

fn pointer_member(index: usize, member: &str, value: &Value) -> Result<String, ConfigError> {
    let pointer = text_member(index, member, value)?;
    if !pointer.starts_with('/') {
        return Err(entry_error(
            index,
            member,
            "must be a JSON Pointer (RFC 6901) starting with \"/\", such as \"/sub\"",
        ));
    }
    // "~" must be followed by "0" or "1".
    let bytes = pointer.as_bytes();
    let bad_escape = bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'~' && !matches!(bytes.get(i + 1), Some(b'0' | b'1')));
    if bad_escape {
        return Err(entry_error(
            index,
            member,
            "\"~\" in a JSON Pointer must be written \"~0\" (and \"/\" in a name \"~1\")",
        ));
    }
    Ok(pointer)
}

fn url_member(index: usize, member: &str, value: &Value) -> Result<String, ConfigError> {
    let url = text_member(index, member, value)?;
    crate::jwks::url::check_https_url(&url).map_err(|reason| entry_error(index, member, reason))?;
    Ok(url)
}

/// One entry's members, checked (keys are parsed later, by `config.rs`).
fn checked(index: usize, raw: RawIssuer) -> Result<IssuerSpec, ConfigError> {
    let iss = match &raw.iss {
        None => return Err(entry_error(index, "iss", "is required")),
        Some(value) => text_member(index, "iss", value)?,
    };
    if iss.is_empty() {
        return Err(entry_error(index, "iss", "must not be empty"));
    }
    let source = match (&raw.key, &raw.jwks_url, &raw.oidc_issuer) {
        (Some(key), None, None) => match key {
            Value::String(text) if !text.trim().is_empty() => IssuerSource::Key {
                text: text.clone(),
                base64: match &raw.key_is_base64 {
                    None => false,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => {
                        return Err(entry_error(index, "key_is_base64", "must be true or false"))
                    }
                },
            },
            // Never quote it: it may be a secret.
            _ => return Err(entry_error(index, "key", "must be a non-empty string")),
        },
        (None, Some(url), None) => IssuerSource::JwksUrl(url_member(index, "jwks_url", url)?),
        (None, None, Some(url)) => {
            IssuerSource::OidcIssuer(url_member(index, "oidc_issuer", url)?)
        }
        (None, None, None) => {
            return Err(entry_error(
                index,
                "",
                "needs a key source: one of \"key\", \"jwks_url\", \"oidc_issuer\"",
            ))
        }
        _ => {
            return Err(entry_error(
                index,
                "",
                "has more than one key source; give exactly one of \"key\", \"jwks_url\", \"oidc_issuer\"",
            ))
        }
    };
    if raw.key_is_base64.is_some() && !matches!(source, IssuerSource::Key { .. }) {
        return Err(entry_error(
            index,
            "key_is_base64",
            "applies only to an inline \"key\"",
        ));
    }
    let algs = algorithms(index, raw.alg.as_ref())?;
    let hmac = algs.iter().any(|a| a.family() == AlgorithmFamily::Hmac);
    if hmac && algs.iter().any(|a| a.family() != AlgorithmFamily::Hmac) {
        return Err(entry_error(
            index,
            "alg",
            "an HS algorithm cannot be listed beside another family: a public key would then \
             be taken as an HMAC secret (algorithm confusion)",
        ));
    }
    if hmac && !matches!(source, IssuerSource::Key { .. }) {
        return Err(entry_error(
            index,
            "alg",
            "HS algorithms need an inline \"key\": an HMAC secret is never taken from a fetched document",
        ));
    }
    if let (Some(_), IssuerSource::Key { base64: true, .. }) = (&raw.key_is_base64, &source) {
        if !hmac {
            return Err(entry_error(
                index,
                "key_is_base64",
                "applies only to HS algorithms",
            ));
        }
    }
    let aud = match &raw.aud {
        None => Vec::new(),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|item| match item {
                Value::String(s)
                    if !s.is_empty() && s.len() <= MAX_TEXT_BYTES && !s.contains('\0') =>
                {
                    Ok(s.clone())
                }
                _ => Err(entry_error(
                    index,
                    "aud",
                    "must be a non-empty string or a non-empty array of them",
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(Value::String(s))
            if !s.is_empty() && s.len() <= MAX_TEXT_BYTES && !s.contains('\0') =>
        {
            vec![s.clone()]
        }
        Some(_) => {
            return Err(entry_error(
                index,
                "aud",
                "must be a non-empty string or a non-empty array of them",
            ))
        }
    };
    let fetched = source.fetched().is_some();
    let fetched_only = |member: &str| {
        entry_error(
            index,
            member,
            "applies only to a fetched source (\"jwks_url\" or \"oidc_issuer\")",
        )
    };
    let refresh_interval = match &raw.jwks_refresh_interval {
        None => None,
        Some(_) if !fetched => return Err(fetched_only("jwks_refresh_interval")),
        Some(v) => Some(int_member(index, "jwks_refresh_interval", v, (60, 86_400))?),
    };
    let max_stale = match &raw.jwks_max_stale {
        None => None,
        Some(_) if !fetched => return Err(fetched_only("jwks_max_stale")),
        Some(v) => Some(int_member(
            index,
            "jwks_max_stale",
            v,
            (1, i64::from(i32::MAX)),
        )?),
    };
    let user_id_prefix = match &raw.user_id_prefix {
        None => format!("{iss}#"),
        Some(v) => text_member(index, "user_id_prefix", v)?,
    };
    Ok(IssuerSpec {
        source,
        algs,
        aud,
        clock_drift: raw
            .clock_drift
            .as_ref()
            .map(|v| int_member(index, "clock_drift", v, (0, 3600)))
            .transpose()?,
        user_id_claim: raw
            .user_id_claim
            .as_ref()
            .map(|v| pointer_member(index, "user_id_claim", v))
            .transpose()?,
        role_claim: raw
            .role_claim
            .as_ref()
            .map(|v| pointer_member(index, "role_claim", v))
            .transpose()?,
        refresh_interval,
        max_stale,
        user_id_prefix,
        iss,
    })
}

/// `alg`: one name or a non-empty array of distinct names.
fn algorithms(index: usize, value: Option<&Value>) -> Result<Vec<Algorithm>, ConfigError> {
    let names: Vec<&Value> = match value {
        None => return Err(entry_error(index, "alg", "is required")),
        Some(Value::Array(items)) if !items.is_empty() => items.iter().collect(),
        Some(v @ Value::String(_)) => vec![v],
        Some(_) => {
            return Err(entry_error(
                index,
                "alg",
                "must be an algorithm name or a non-empty array of them",
            ))
        }
    };
    let mut algs = Vec::new();
    for name in names {
        let alg = name
            .as_str()
            .and_then(Algorithm::from_name)
            .ok_or_else(|| {
                entry_error(
                    index,
                    "alg",
                    // Not the value: a secret put in the wrong member would be quoted.
                    format!(
                        "names an algorithm that is not one of {}",
                        crate::algorithm::algorithm_list()
                    ),
                )
            })?;
        if algs.contains(&alg) {
            return Err(entry_error(index, "alg", format!("lists {alg} twice")));
        }
        algs.push(alg);
    }
    Ok(algs)
}

/// The user-id prefixes of the listed issuers, and the rule that keeps one issuer from
/// producing another's user ids (see the module notes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserIdScopes {
    /// The distinct non-empty prefixes.
    prefixes: Vec<String>,
}

impl UserIdScopes {
    /// Refuses prefixes of which one is a proper prefix of another.
    pub fn new(specs: &[IssuerSpec]) -> Result<UserIdScopes, ConfigError> {
        let mut prefixes: Vec<(usize, &str)> = Vec::new();
        for (index, spec) in specs.iter().enumerate() {
            let prefix = spec.user_id_prefix.as_str();
            if prefix.is_empty() || prefixes.iter().any(|(_, p)| *p == prefix) {
                continue;
            }
            if let Some((other, _)) = prefixes
                .iter()
                .find(|(_, p)| p.starts_with(prefix) || prefix.starts_with(p))
            {
                return Err(entry_error(
                    index,
                    "user_id_prefix",
                    format!(
                        "overlaps issuers[{other}]'s (one starts with the other), so the two \
                         issuers could produce the same user id; give one of them another \
                         \"user_id_prefix\""
                    ),
                ));
            }
            prefixes.push((index, prefix));
        }
        Ok(UserIdScopes {
            prefixes: prefixes.into_iter().map(|(_, p)| p.to_owned()).collect(),
        })
    }

    /// Whether `user_id`, from an issuer whose own prefix is `own`, lies in another issuer's
    /// scope: only possible when `own` is empty (prefixes do not overlap).
    pub fn reserved(&self, own: &str, user_id: &str) -> bool {
        // Leading white space too: an application that trims user ids would see the prefix.
        let trimmed = user_id.trim_start();
        own.is_empty()
            && self
                .prefixes
                .iter()
                .any(|p| user_id.starts_with(p.as_str()) || trimmed.starts_with(p.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<IssuerSpec>, String> {
        parse_issuers(text).map_err(|e| e.to_string())
    }

    #[test]
    fn empty_values_mean_no_issuers() {
        assert_eq!(parse(""), Ok(vec![]));
        assert_eq!(parse("  "), Ok(vec![]));
        assert_eq!(parse("[]"), Ok(vec![]));
    }

    #[test]
    fn an_entry_with_defaults() {
        let specs = parse(
            r#"[{"iss":"https://a.example","oidc_issuer":"https://a.example","alg":"RS256"}]"#,
        )
        .unwrap();
        assert_eq!(specs[0].iss, "https://a.example");
        assert_eq!(specs[0].algs, vec![Algorithm::RS256]);
        assert_eq!(specs[0].user_id_prefix, "https://a.example#");
        assert!(specs[0].aud.is_empty());
        let specs = parse(
            r#"[{"iss":"b","jwks_url":"https://b.example/jwks","alg":["RS256","ES256"],
                 "aud":["x","y"],"clock_drift":5,"user_id_claim":"/https:~1~1e.com~1c/uid",
                 "role_claim":"/roles","jwks_refresh_interval":600,"jwks_max_stale":60,
                 "user_id_prefix":""}]"#,
        )
        .unwrap();
        let b = &specs[0];
        assert_eq!(b.algs, vec![Algorithm::RS256, Algorithm::ES256]);
        assert_eq!(b.aud, vec!["x".to_owned(), "y".to_owned()]);
        assert_eq!(
            (b.clock_drift, b.refresh_interval, b.max_stale),
            (Some(5), Some(600), Some(60))
        );
        assert_eq!(b.user_id_claim.as_deref(), Some("/https:~1~1e.com~1c/uid"));
        assert_eq!(b.user_id_prefix, "");
    }

    #[test]
    fn errors_name_the_entry_and_member_never_the_value() {
        let secret = "a-very-secret-hmac-key-of-32-bytes!!";
        let cases = [
            (
                "{}".to_owned(),
                "electric_auth.issuers: must be a JSON array",
            ),
            (
                format!(r#""{secret}""#),
                "electric_auth.issuers: must be a JSON array",
            ),
            (
                format!(r#"["{secret}"]"#),
                "electric_auth.issuers[0]: must be a JSON object",
            ),
            ("[1]".to_owned(), "electric_auth.issuers[0]"),
            (
                r#"[{"iss":"a","key":"k","alg":"HS256","aud2":1}]"#.to_owned(),
                "electric_auth.issuers[0]: has a member that is not one of iss, key",
            ),
            (
                r#"[{"iss":"a","iss":"b","key":"k","alg":"HS256"}]"#.to_owned(),
                "electric_auth.issuers[0]: duplicate field `iss`",
            ),
            (
                format!(r#"[{{"iss":"a","key":"{secret}"}}]"#),
                "electric_auth.issuers[0].alg: is required",
            ),
            (
                format!(r#"[{{"key":"{secret}","alg":"HS256"}}]"#),
                "electric_auth.issuers[0].iss: is required",
            ),
            (
                format!(
                    r#"[{{"iss":"a","key":"{secret}","alg":"HS256"}},{{"iss":"a","key":"{secret}","alg":"HS256"}}]"#
                ),
                "electric_auth.issuers[1].iss: the same as issuers[0].iss",
            ),
            (
                format!(
                    r#"[{{"iss":"a","key":"{secret}","jwks_url":"https://x/j","alg":"HS256"}}]"#
                ),
                "electric_auth.issuers[0]: has more than one key source",
            ),
            (
                r#"[{"iss":"a","jwks_url":"https://x/j","alg":"HS256"}]"#.to_owned(),
                "electric_auth.issuers[0].alg: HS algorithms need an inline",
            ),
            (
                format!(r#"[{{"iss":"a","key":"{secret}","alg":["HS256","RS256"]}}]"#),
                "electric_auth.issuers[0].alg: an HS algorithm cannot be listed beside",
            ),
            (
                format!(r#"[{{"iss":"a","key":"{secret}","alg":"HS257"}}]"#),
                "electric_auth.issuers[0].alg: names an algorithm that is not one of",
            ),
            (
                r#"[{"iss":"a","jwks_url":"http://x/j","alg":"RS256"}]"#.to_owned(),
                "electric_auth.issuers[0].jwks_url: ",
            ),
            (
                format!(r#"[{{"iss":"a","key":"{secret}","alg":"HS256","user_id_claim":"sub"}}]"#),
                "electric_auth.issuers[0].user_id_claim: must be a JSON Pointer",
            ),
            (
                format!(r#"[{{"iss":"a","key":"{secret}","alg":"HS256","jwks_max_stale":5}}]"#),
                "electric_auth.issuers[0].jwks_max_stale: applies only to a fetched source",
            ),
            (
                format!(
                    r#"[{{"iss":"a","key":"{secret}","alg":"HS256"}},{{"iss":"b","key":"{secret}","alg":"HS256","user_id_prefix":"a"}}]"#
                ),
                "electric_auth.issuers[1].user_id_prefix: overlaps issuers[0]'s",
            ),
            (
                format!(r#"[{{"iss":"a","key":{{"k":"{secret}"}},"alg":"HS256"}}]"#),
                "electric_auth.issuers[0].key: must be a non-empty string",
            ),
            (
                format!(
                    r#"[{{"iss":"a","key":"{secret}","alg":"HS256","key_is_base64":"{secret}"}}]"#
                ),
                "electric_auth.issuers[0].key_is_base64: must be true or false",
            ),
        ];
        for (text, expected) in cases {
            let message = parse(&text).unwrap_err();
            assert!(message.starts_with(expected), "{text}\n  -> {message}");
            assert!(!message.contains(secret), "{message}");
        }
        let seventeen = format!(
            "[{}]",
            (0..17)
                .map(|i| format!(r#"{{"iss":"i{i}","key":"{secret}","alg":"HS256"}}"#))
                .collect::<Vec<_>>()
                .join(",")
        );
        let message = parse(&seventeen).unwrap_err();
        assert!(message.contains("at most 16"), "{message}");
    }

    #[test]
    fn prefixes_keep_issuers_apart() {
        let specs = parse(
            r#"[{"iss":"https://a","key":"0123456789abcdef0123456789abcdef","alg":"HS256"},
                {"iss":"https://b","key":"0123456789abcdef0123456789abcdef","alg":"HS256","user_id_prefix":""},
                {"iss":"https://c","key":"0123456789abcdef0123456789abcdef","alg":"HS256","user_id_prefix":"https://a#"}]"#,
        )
        .unwrap();
        let scopes = UserIdScopes::new(&specs).unwrap();
        assert!(scopes.reserved("", "https://a#alice"));
        assert!(
            scopes.reserved("", " \thttps://a#alice"),
            "leading white space"
        );
        assert!(!scopes.reserved("", "alice"));
        assert!(!scopes.reserved("https://a#", "https://a#alice"));
    }

    #[test]
    fn a_secret_in_the_wrong_place_is_never_quoted_and_nul_is_refused() {
        let secret = "a-very-secret-hmac-key-of-32-bytes!!";
        for text in [
            format!(r#"[{{"iss":"a","{secret}","alg":"HS256"}}]"#),
            format!(r#"[{{"iss":"a","key":"x","alg":"HS256","{secret}":1}}]"#),
            format!(r#"[{{"iss":"a","key":"x","alg":"{secret}"}}]"#),
            format!(r#"[{{"iss":"a","key":"x","alg":["{secret}"]}}]"#),
        ] {
            let message = parse(&text).unwrap_err();
            assert!(message.starts_with("electric_auth.issuers[0]"), "{message}");
            assert!(!message.contains(secret), "{message}");
        }
        for (text, expected) in [
            (
                format!(
                    r#"[{{"iss":"a","key":"{secret}","alg":"HS256","user_id_prefix":"alice\u0000"}}]"#
                ),
                "electric_auth.issuers[0].user_id_prefix: must not hold U+0000",
            ),
            (
                format!(r#"[{{"iss":"a\u0000","key":"{secret}","alg":"HS256"}}]"#),
                "electric_auth.issuers[0].iss: must not hold U+0000",
            ),
            (
                format!(r#"[{{"iss":"a","key":"{secret}","alg":"HS256","aud":["x\u0000"]}}]"#),
                "electric_auth.issuers[0].aud: ",
            ),
        ] {
            assert_eq!(
                parse(&text).unwrap_err().get(..expected.len()),
                Some(expected),
                "{text}"
            );
        }
    }
}
