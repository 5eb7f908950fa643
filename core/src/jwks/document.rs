//! A JWKS fetched from an identity provider, read by the same JWK parser and key limits as an
//! inline `electric_auth.jwt_key` JWKS (`key_set.rs`), and the key set a backend verifies with:
//! the inline keys (if any) followed by the fetched ones.
//!
//! The worker checks a document before it replaces the last good one ([`validate_fetched`]);
//! each backend parses the document again for the algorithm it pins ([`parse_fetched`]), only
//! when the shared generation moved.

use crate::algorithm::{Algorithm, AlgorithmFamily};
use crate::error::ConfigError;
use crate::keys::{KeySet, MAX_KEYS};
use serde_json::Value;

/// The largest document fetched or kept (the HTTP client stops reading past it).
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// The most JWKs a fetched document may list, usable or not. Every entry is parsed, so this
/// bounds the work a hostile provider can cause; real providers list fewer than 20.
pub const MAX_DOCUMENT_ENTRIES: usize = 100;

/// What a backend knows of the fetched keys when it builds its verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedKeys {
    /// The setting that configures the source: `electric_auth.jwks_url` or `.oidc_issuer`.
    pub setting: &'static str,
    /// Its value (a URL; public, shown in messages).
    pub source: String,
    pub state: FetchedState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchedState {
    /// No document yet: the worker has not fetched (or loaded) one since the server started.
    Pending,
    /// The last good document is older than `electric_auth.jwks_max_stale` allows.
    Stale { age_secs: i64, max_stale_secs: i64 },
    /// The last good document, as the worker stored it.
    Document(String),
}

/// What the worker reports of a usable document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentSummary {
    /// Keys usable for the algorithm (or, with none configured, every JWK with a `kty`).
    pub usable: usize,
    /// Their `kid`s, in order.
    pub kids: Vec<String>,
}

/// The JWK list of a fetched document, or why it is not a JWKS within the limits.
fn entries(body: &[u8]) -> Result<Vec<Value>, String> {
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(format!(
            "the document has {} bytes, more than {MAX_DOCUMENT_BYTES}",
            body.len()
        ));
    }
    let body = body.strip_prefix("\u{feff}".as_bytes()).unwrap_or(body);
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the document is not valid JSON ({e})"))?;
    let Value::Object(mut object) = value else {
        return Err("the document is not a JSON object".to_owned());
    };
    match object.remove("keys") {
        Some(Value::Array(keys)) if keys.len() > MAX_DOCUMENT_ENTRIES => Err(format!(
            "the JWKS lists {} keys, more than {MAX_DOCUMENT_ENTRIES}",
            keys.len()
        )),
        Some(Value::Array(keys)) => {
            refuse_private_keys(&keys)?;
            Ok(keys)
        }
        Some(_) => Err("\"keys\" is not an array".to_owned()),
        None => Err("the document has no \"keys\" array (not a JWKS)".to_owned()),
    }
}

/// The members only a private JWK has (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2): `d` for EC, OKP and
/// RSA, and RSA's primes and CRT values.
const PRIVATE_MEMBERS: [&str; 6] = ["d", "p", "q", "dp", "dq", "qi"];

/// A document that publishes a private key is refused whole: like a published `oct` secret, it
/// means the provider leaked its signing key, and anyone who read the URL can sign tokens with
/// it. None of its keys is used, and the last good document stays in use.
fn refuse_private_keys(keys: &[Value]) -> Result<(), String> {
    for (i, key) in keys.iter().enumerate() {
        if let Some(member) = PRIVATE_MEMBERS
            .iter()
            .find(|member| key.get(**member).is_some())
        {
            return Err(format!(
                "key {} is a private key (it has \"{member}\"): the provider publishes its \
                 signing key, so anyone could sign tokens; no key of this document is used",
                i + 1
            ));
        }
    }
    Ok(())
}

/// The usable keys of a fetched document for `alg`, or why there are none: the same rules and
/// limits as an inline JWKS ([`KeySet`]), with the document's own bounds first.
///
/// Never a shared secret: a JWKS at a URL is public (providers publish it for anyone to read),
/// so an `oct` key there would let every reader sign tokens for any user. With `jwt_alg` an
/// HMAC algorithm the document is refused whatever it holds; the secret belongs in `jwt_key`.
pub fn parse_fetched(alg: Algorithm, body: &[u8]) -> Result<KeySet, String> {
    let keys = entries(body)?;
    if alg.family() == AlgorithmFamily::Hmac {
        return Err(format!(
            "electric_auth.jwt_alg={} verifies with a shared secret, which is never taken from a \
             URL (a published JWKS is public: anyone who reads it could sign tokens); keep the \
             secret in electric_auth.jwt_key",
            alg.name()
        ));
    }
    KeySet::from_jwks(alg, keys).map_err(|error| match error {
        ConfigError::NoUsableKey { alg, reasons } => {
            format!("no key is usable for electric_auth.jwt_alg={alg}: {reasons}")
        }
        ConfigError::TooManyKeys { alg, count, max } => {
            format!("{count} keys are usable for electric_auth.jwt_alg={alg}, at most {max} are allowed")
        }
        other => other.to_string(),
    })
}

/// Whether a fetched document may replace the last good one: with `alg` pinned, it must hold a
/// usable key for it; without (the worker may start before `jwt_alg` is set), every entry must be
/// a JSON object with a string `kty`, and at least one entry is required.
pub fn validate_fetched(alg: Option<Algorithm>, body: &[u8]) -> Result<DocumentSummary, String> {
    match alg {
        Some(alg) => parse_fetched(alg, body).map(|set| DocumentSummary {
            usable: set.count(),
            kids: set.kids(),
        }),
        None => {
            let keys = entries(body)?;
            if keys.is_empty() {
                return Err("the set is empty".to_owned());
            }
            let mut kids = Vec::new();
            for (i, key) in keys.iter().enumerate() {
                if !key.get("kty").is_some_and(Value::is_string) {
                    return Err(format!("key {} has no \"kty\"", i + 1));
                }
                if let Some(Value::String(kid)) = key.get("kid") {
                    kids.push(kid.clone());
                }
            }
            Ok(DocumentSummary {
                usable: keys.len(),
                kids,
            })
        }
    }
}

/// [`validate_fetched`] for a listed issuer's algorithms (`electric_auth.issuers`; an empty
/// list checks as no `jwt_alg`): usable when it holds a key for at least one of them; the
/// count is per algorithm (a key usable for two counts twice) and the `kid`s are listed once.
pub fn validate_fetched_for(algs: &[Algorithm], body: &[u8]) -> Result<DocumentSummary, String> {
    if algs.is_empty() {
        return validate_fetched(None, body);
    }
    let mut summary = DocumentSummary {
        usable: 0,
        kids: Vec::new(),
    };
    let mut reasons = Vec::new();
    for &alg in algs {
        match validate_fetched(Some(alg), body) {
            Ok(found) => {
                summary.usable += found.usable;
                for kid in found.kids {
                    if !summary.kids.contains(&kid) {
                        summary.kids.push(kid);
                    }
                }
            }
            Err(reason) => reasons.push(format!("for {alg}: {reason}")),
        }
    }
    if summary.usable == 0 {
        return Err(reasons.join("; "));
    }
    Ok(summary)
}

/// The key set for `alg`: `inline` (from `jwt_key`, if set) followed by the fetched keys.
/// Fetched keys that are pending, stale or unusable leave the inline keys alone; with no inline
/// keys they are the configuration error that says why.
pub fn key_set_with_fetched(
    alg: Algorithm,
    inline: Option<KeySet>,
    fetched: &FetchedKeys,
) -> Result<KeySet, ConfigError> {
    let source = || fetched.source.clone();
    let result = match &fetched.state {
        FetchedState::Document(body) => {
            parse_fetched(alg, body.as_bytes()).map_err(|reason| ConfigError::FetchedKeysUnusable {
                url: source(),
                reason,
            })
        }
        FetchedState::Pending => Err(ConfigError::FetchedKeysPending {
            setting: fetched.setting,
            url: source(),
        }),
        FetchedState::Stale {
            age_secs,
            max_stale_secs,
        } => Err(ConfigError::FetchedKeysStale {
            url: source(),
            age_secs: *age_secs,
            max_stale_secs: *max_stale_secs,
        }),
    };
    match (inline, result) {
        // The limit holds for the set a token is checked against, not for each part: a forged
        // token without a `kid` costs at most MAX_KEYS signature checks.
        (Some(inline), Ok(fetched)) if inline.count() + fetched.count() > MAX_KEYS => {
            Err(ConfigError::TooManyMergedKeys {
                alg,
                inline: inline.count(),
                fetched: fetched.count(),
                url: source(),
                max: MAX_KEYS,
            })
        }
        (Some(inline), Ok(fetched)) => Ok(inline.merged(fetched)),
        (None, Ok(fetched)) => Ok(fetched),
        (Some(inline), Err(_)) => Ok(inline),
        (None, Err(error)) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // An Ed25519 public key (RFC 8037 A.2) and a P-256 one (RFC 7517 A.1).
    const OKP: &str = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"ed1"}"#;
    const EC: &str = r#"{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","use":"sig","kid":"ec1"}"#;

    fn jwks(keys: &[&str]) -> String {
        format!("{{\"keys\":[{}]}}", keys.join(","))
    }

    #[test]
    fn an_issuer_with_two_algorithms_uses_a_document_with_a_key_for_either() {
        let both = jwks(&[EC, OKP]);
        let summary =
            validate_fetched_for(&[Algorithm::EdDSA, Algorithm::ES256], both.as_bytes()).unwrap();
        assert_eq!(summary.usable, 2);
        assert_eq!(summary.kids, vec!["ed1".to_owned(), "ec1".to_owned()]);
        let one =
            validate_fetched_for(&[Algorithm::RS256, Algorithm::ES256], both.as_bytes()).unwrap();
        assert_eq!((one.usable, one.kids), (1, vec!["ec1".to_owned()]));
        let none = validate_fetched_for(&[Algorithm::RS256], both.as_bytes()).unwrap_err();
        assert!(none.starts_with("for RS256: "), "{none}");
    }

    #[test]
    fn a_provider_jwks_keeps_its_usable_keys() {
        let set = parse_fetched(Algorithm::EdDSA, jwks(&[EC, OKP]).as_bytes()).unwrap();
        assert_eq!(set.count(), 1);
        assert_eq!(set.kids(), vec!["ed1"]);
        let summary = validate_fetched(Some(Algorithm::ES256), jwks(&[EC, OKP]).as_bytes());
        assert_eq!(
            summary,
            Ok(DocumentSummary {
                usable: 1,
                kids: vec!["ec1".to_owned()]
            })
        );
        assert_eq!(
            validate_fetched(None, jwks(&[EC, OKP]).as_bytes())
                .unwrap()
                .usable,
            2
        );
    }

    #[test]
    fn hostile_documents_are_refused_with_a_reason() {
        let many = jwks(&vec![OKP; MAX_DOCUMENT_ENTRIES + 1]);
        let big = format!(
            "{{\"keys\":[{OKP}],\"pad\":\"{}\"}}",
            "x".repeat(MAX_DOCUMENT_BYTES)
        );
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"not json".to_vec(), "not valid JSON"),
            (b"".to_vec(), "not valid JSON"),
            (b"[]".to_vec(), "not a JSON object"),
            (deep.into_bytes(), "not valid JSON"),
            (b"{}".to_vec(), "no \"keys\" array"),
            (b"{\"keys\":{}}".to_vec(), "not an array"),
            (b"{\"keys\":[]}".to_vec(), "empty"),
            (many.into_bytes(), "more than 100"),
            (big.into_bytes(), "bytes, more than"),
            (vec![0xff, 0xfe, 0x00], "not valid JSON"),
            (jwks(&[EC]).into_bytes(), "no key is usable"),
            (
                jwks(&["{\"kty\":\"oct\",\"k\":\"AAAA\"}"]).into_bytes(),
                "no key is usable",
            ),
        ];
        for (body, reason) in cases {
            let error = validate_fetched(Some(Algorithm::EdDSA), &body).unwrap_err();
            assert!(error.contains(reason), "{reason}: {error}");
        }
        let error = validate_fetched(None, b"{\"keys\":[{\"kid\":\"a\"}]}").unwrap_err();
        assert!(error.contains("no \"kty\""), "{error}");
    }

    /// Hardening round 4: a published private JWK (RSA with `d`, `p`, `q`…, or an EC/OKP
    /// `d`) was accepted silently; it means the provider leaked its signing key.
    #[test]
    fn a_published_private_key_refuses_the_document() {
        let private_ec = EC.replace(
            "\"use\"",
            "\"d\":\"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE\",\"use\"",
        );
        let private_rsa = r#"{"kty":"RSA","kid":"r1","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB","d":"VFCWOqXr8nvZNyaaJLXdnNPXZKRaWCjkU5Q2egQQpTBMwhprMzWzpR8Sxq1OPThh_J6MUD8Z35wky9b8eEO0pwNS8xlh1lOFRRBoNqDIKVOku0aZb-rynq8cxjDTLZQ6Fz7jSjR1Klop-YKaUHc9GsEofQqYruPhzSA-QgajZGPbE_0ZaVDJHfyd7UUBUKunFMScbflYAAOYJqVIVwaYR5zWEEceUjNnTNo_CVSj-VvXLO5VZfCUAVLgW4dpf1SrtZjSt34YLsRarSb127reG_DUwg9Ch-KyvjT1SkHgUWRVGcyly7uvVGRSDwsXypdrNinPA4jlhoNdizK2zF2CWQ","p":"9gY2w6I6S6L0juEKsbeDAwpd9WMfgqFoeA9vEyEUuk4kLwBKcoe1x4HG68ik918hdDSE9vDQSccA3xXHOAFOPJ8R9EeIAbTi1VwBYnbTp87X-xcPWlEPkrdoUKW60tgs1aNd_Nnc9LEVVPMS390zbFxt8TN_biaBgelNgbC95sM","q":"uKlCKvKv_ZJMVcdIs5vVSU_6cPtYI1ljWytExV_skstvRSNi9r66jdd9-yBhVfuG4shsp2j7rGnIio901RBeHo6TPKWVVykPu1iYhQXw1jIABfw-MVsN-3bQ76WLdt2SDxsHs7q7zPyUyHXmps7ycZ5c72wGkUwNOjYelmkiNS0","kid":"r1"}"#;
        for (key, alg, member) in [
            (private_ec.as_str(), Some(Algorithm::ES256), "\"d\""),
            (private_rsa, Some(Algorithm::RS256), "\"d\""),
            (private_rsa, None, "\"d\""),
        ] {
            // Beside a usable public key too: the whole document is refused.
            let body = jwks(&[OKP, EC, key]);
            let error = validate_fetched(alg, body.as_bytes()).unwrap_err();
            assert!(
                error.contains("private key") && error.contains(member),
                "{error}"
            );
            assert!(!error.contains("870MB6"), "{error}");
        }
        let only_p = r#"{"kty":"RSA","n":"AQAB","e":"AQAB","p":"AQAB"}"#;
        let error =
            validate_fetched(Some(Algorithm::RS256), jwks(&[only_p]).as_bytes()).unwrap_err();
        assert!(error.contains("\"p\""), "{error}");
    }

    /// Hardening round 4: 16 inline keys and 16 fetched ones made a set of 32, so a forged
    /// token without `kid` cost 32 signature checks. The limit holds for the merged set.
    #[test]
    fn the_key_limit_holds_for_inline_and_fetched_keys_together() {
        let okps = |prefix: &str, n: usize| -> Vec<String> {
            (0..n)
                .map(|i| OKP.replace("\"ed1\"", &format!("\"{prefix}{i}\"")))
                .collect()
        };
        let inline_keys = okps("inline", 10);
        let inline_refs: Vec<&str> = inline_keys.iter().map(String::as_str).collect();
        let inline =
            KeySet::parse(Algorithm::EdDSA, &jwks(&inline_refs), |_| unreachable!()).unwrap();
        for (fetched_count, fits) in [(6, true), (7, false), (16, false)] {
            let keys = okps("fetched", fetched_count);
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            let fetched = FetchedKeys {
                setting: "electric_auth.jwks_url",
                source: "https://idp/jwks".to_owned(),
                state: FetchedState::Document(jwks(&refs)),
            };
            let result = key_set_with_fetched(Algorithm::EdDSA, Some(inline.clone()), &fetched);
            match result {
                Ok(set) => {
                    assert!(fits);
                    assert_eq!(set.count(), 10 + fetched_count);
                }
                Err(error) => {
                    assert!(!fits, "{fetched_count}");
                    let text = error.to_string();
                    assert!(text.contains("at most 16"), "{text}");
                    assert!(
                        text.contains(&format!("are {} keys", 10 + fetched_count)),
                        "{text}"
                    );
                }
            }
        }
    }

    #[test]
    fn reasons_never_carry_key_material() {
        let hs =
            jwks(&["{\"kty\":\"oct\",\"k\":\"c2VjcmV0LXNlY3JldC1zZWNyZXQ\",\"alg\":\"HS512\"}"]);
        let error = validate_fetched(Some(Algorithm::HS256), hs.as_bytes()).unwrap_err();
        assert!(!error.contains("c2VjcmV0"), "{error}");
        let error = validate_fetched(Some(Algorithm::ES256), jwks(&[OKP]).as_bytes()).unwrap_err();
        assert!(!error.contains("11qYAYKx"), "{error}");
    }

    #[test]
    fn a_shared_secret_never_comes_from_a_url() {
        // A published JWKS is public: an `oct` key there lets anyone who reads it sign tokens.
        let published = jwks(&[
            "{\"kty\":\"oct\",\"kid\":\"pub\",\"k\":\"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA\",\"alg\":\"HS256\"}",
        ]);
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let error = validate_fetched(Some(alg), published.as_bytes()).unwrap_err();
            assert!(error.contains("shared secret"), "{alg:?}: {error}");
            assert!(!error.contains("c2VjcmV0"), "{error}");
            assert!(parse_fetched(alg, published.as_bytes()).is_err());
        }
        let fetched = FetchedKeys {
            setting: "electric_auth.jwks_url",
            source: "https://idp.example/jwks".into(),
            state: FetchedState::Document(published.clone()),
        };
        assert!(key_set_with_fetched(Algorithm::HS256, None, &fetched).is_err());
    }

    #[test]
    fn fetched_keys_join_inline_ones() {
        let inline = KeySet::parse(
            Algorithm::EdDSA,
            &jwks(&[&OKP.replace("ed1", "inline")]),
            |_| unreachable!(),
        )
        .unwrap();
        let fetched = FetchedKeys {
            setting: "electric_auth.jwks_url",
            source: "https://idp/jwks".to_owned(),
            state: FetchedState::Document(jwks(&[OKP])),
        };
        let set = key_set_with_fetched(Algorithm::EdDSA, Some(inline.clone()), &fetched).unwrap();
        assert_eq!(set.kids(), vec!["inline", "ed1"]);
        assert!(set.names_kid("ed1") && set.names_kid("inline") && !set.names_kid("other"));

        // Pending or stale fetched keys leave inline keys in use, and alone are an error.
        for state in [
            FetchedState::Pending,
            FetchedState::Stale {
                age_secs: 700_000,
                max_stale_secs: 604_800,
            },
            FetchedState::Document("junk".to_owned()),
        ] {
            let fetched = FetchedKeys {
                state,
                ..fetched.clone()
            };
            let with_inline =
                key_set_with_fetched(Algorithm::EdDSA, Some(inline.clone()), &fetched).unwrap();
            assert_eq!(with_inline.kids(), vec!["inline"]);
            let alone = key_set_with_fetched(Algorithm::EdDSA, None, &fetched).unwrap_err();
            let message = alone.to_string();
            assert!(message.contains("https://idp/jwks"), "{message}");
        }
        let stale = FetchedKeys {
            state: FetchedState::Stale {
                age_secs: 700_000,
                max_stale_secs: 604_800,
            },
            ..fetched
        };
        let message = key_set_with_fetched(Algorithm::EdDSA, None, &stale)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("stale") && message.contains("jwks_max_stale"),
            "{message}"
        );
    }
}
