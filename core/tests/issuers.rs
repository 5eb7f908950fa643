//! `electric_auth.issuers` (issue 32): selection by `iss`, each issuer's own keys, algorithms,
//! audience and claims, issuer-scoped user ids; the fast path answering exactly as the full
//! path (`common::Check`).

mod common;

use common::*;
use electric_auth_core::{Config, ConfigError, Error, Settings, TokenError, Verifier};
use serde_json::json;

const SECRET_A: &str = "issuer-a-hs256-secret-of-32-bytes";
const SECRET_B: &str = "issuer-b-secret-long-enough-for-hs384-of-48-bytes";

fn with_issuers(base: Settings, issuers: serde_json::Value) -> Settings {
    Settings {
        issuers: Some(issuers.to_string()),
        ..base
    }
}

fn two_hs_issuers() -> serde_json::Value {
    json!([
        {"iss": "https://a.example", "key": SECRET_A, "alg": "HS256"},
        {"iss": "https://b.example", "key": SECRET_B, "alg": ["HS256", "HS384"],
         "aud": ["app", "admin"], "user_id_prefix": "b:"}
    ])
}

fn token(secret: &str, claims: serde_json::Value) -> String {
    hs256_token(
        secret,
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &claims.to_string(),
    )
}

fn claims(iss: Option<&str>, sub: &str) -> serde_json::Value {
    let mut c = json!({"sub": sub, "iat": NOW - 10, "exp": NOW + 600});
    if let Some(iss) = iss {
        c["iss"] = json!(iss);
    }
    c
}

fn only_listed() -> Verifier {
    verifier(&with_issuers(Settings::new(), two_hs_issuers()))
}

#[test]
fn each_issuer_verifies_its_own_tokens_with_its_own_prefix() {
    let v = only_listed();
    let a = token(SECRET_A, claims(Some("https://a.example"), "alice"));
    let t = v.check(&a, NOW).unwrap();
    assert_eq!(t.user_id, "https://a.example#alice");
    assert_eq!(t.issuer, Some(0));
    let mut b = claims(Some("https://b.example"), "bob");
    b["aud"] = json!(["other", "admin"]);
    let t = v.check(&token(SECRET_B, b), NOW).unwrap();
    assert_eq!((t.user_id.as_str(), t.issuer), ("b:bob", Some(1)));
}

#[test]
fn a_token_naming_one_issuer_is_never_checked_with_anothers_key() {
    let v = only_listed();
    // iss names A, signed with B's secret: A's key alone decides.
    let forged = token(SECRET_B, claims(Some("https://a.example"), "alice"));
    assert_eq!(rejected(&v, &forged), TokenError::InvalidSignature);
    // HS384 is B's, not A's.
    let hs384 = hs256_token(
        SECRET_A,
        r#"{"alg":"HS384"}"#,
        &claims(Some("https://a.example"), "alice").to_string(),
    );
    assert_eq!(rejected(&v, &hs384), TokenError::AlgorithmMismatch);
}

#[test]
fn unknown_or_absent_issuers_without_a_default_are_refused() {
    let v = only_listed();
    for c in [
        claims(Some("https://c.example"), "carol"),
        claims(Some("https://a.example/"), "carol"),
        claims(Some("HTTPS://A.EXAMPLE"), "carol"),
        claims(None, "carol"),
        json!({"sub": "carol", "iss": 7, "iat": NOW, "exp": NOW + 60}),
    ] {
        let t = token(SECRET_A, c.clone());
        assert_eq!(rejected(&v, &t), TokenError::UnknownIssuer, "{c}");
        assert_eq!(message(&v, &t), "Unknown issuer");
    }
    // A payload that is not JSON is an invalid token under any issuer.
    assert_eq!(
        rejected(&v, "e30.bm90IGpzb24.c2ln"),
        TokenError::InvalidToken
    );
}

#[test]
fn the_default_issuer_takes_the_rest_with_electrics_rules_and_no_prefix() {
    let v = verifier(&with_issuers(secure("HS256", SECRET), two_hs_issuers()));
    let t = v
        .check(
            &hs256_claims(claims(Some("https://c.example"), "carol")),
            NOW,
        )
        .unwrap();
    assert_eq!((t.user_id.as_str(), t.issuer), ("carol", None));
    let t = v.check(&hs256_claims(claims(None, "dave")), NOW).unwrap();
    assert_eq!(t.user_id, "dave");
    // The default issuer cannot produce a listed issuer's user ids.
    for sub in ["https://a.example#alice", "b:bob"] {
        let t = hs256_claims(claims(None, sub));
        assert_eq!(rejected(&v, &t), TokenError::ReservedUserId, "{sub}");
        assert_eq!(message(&v, &t), "User id is reserved for another issuer");
    }
    // The listed issuers still decide their own tokens.
    let a = token(SECRET_A, claims(Some("https://a.example"), "alice"));
    assert_eq!(v.check(&a, NOW).unwrap().user_id, "https://a.example#alice");
    let forged = hs256_claims(claims(Some("https://a.example"), "alice"));
    assert_eq!(rejected(&v, &forged), TokenError::InvalidSignature);
}

#[test]
fn audience_lists_and_claim_pointers() {
    let v = verifier(&with_issuers(
        Settings::new(),
        json!([{"iss": "i", "key": SECRET_A, "alg": "HS256", "aud": ["x", "y"],
                "user_id_claim": "/https:~1~1e.com~1claims/uid", "user_id_prefix": ""}]),
    ));
    let mut c = json!({"iss": "i", "aud": "y", "iat": NOW, "exp": NOW + 60,
                       "https://e.com/claims": {"uid": "u-7"}});
    assert_eq!(
        v.check(&token(SECRET_A, c.clone()), NOW).unwrap().user_id,
        "u-7"
    );
    c["aud"] = json!("z");
    assert_eq!(
        message(&v, &token(SECRET_A, c.clone())),
        r#"Invalid "aud" claim value: "z""#
    );
    c.as_object_mut().unwrap().remove("aud");
    assert_eq!(
        rejected(&v, &token(SECRET_A, c.clone())),
        TokenError::MissingClaim("aud")
    );
    c["aud"] = json!("x");
    c["https://e.com/claims"] = json!({"uid": " "});
    assert_eq!(rejected(&v, &token(SECRET_A, c)), TokenError::MissingUserId);
}

#[test]
fn a_listed_issuer_checks_time_claims_with_its_own_drift() {
    let v = verifier(&with_issuers(
        Settings::new(),
        json!([{"iss": "i", "key": SECRET_A, "alg": "HS256", "clock_drift": 100}]),
    ));
    let c = json!({"iss": "i", "sub": "s", "iat": NOW, "exp": NOW - 50});
    assert!(v.check(&token(SECRET_A, c), NOW).is_ok());
    let c = json!({"iss": "i", "sub": "s", "iat": NOW, "exp": NOW - 150});
    assert_eq!(rejected(&v, &token(SECRET_A, c)), TokenError::Expired);
}

#[test]
fn an_ec_issuer_refuses_an_hmac_token_keyed_with_its_public_key() {
    use p256::ecdsa::{signature::Signer, Signature, SigningKey};
    use p256::pkcs8::DecodePrivateKey;
    let issuers = json!([{"iss": "m", "key": DOCS_ES256_PUBLIC_KEY, "alg": "ES256"}]);
    let v = verifier(&with_issuers(Settings::new(), issuers));
    let key = SigningKey::from_pkcs8_pem(DOCS_ES256_PRIVATE_KEY).unwrap();
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"ES256"}"#),
        b64(claims(Some("m"), "mia").to_string().as_bytes())
    );
    let signature: Signature = key.sign(input.as_bytes());
    let es = format!("{input}.{}", b64(&signature.to_bytes()));
    assert_eq!(v.check(&es, NOW).unwrap().user_id, "m#mia");
    // The public key text as an HMAC secret: HS256 is not this issuer's algorithm.
    let confused = hs256_token(
        DOCS_ES256_PUBLIC_KEY,
        r#"{"alg":"HS256"}"#,
        &claims(Some("m"), "mia").to_string(),
    );
    assert_eq!(rejected(&v, &confused), TokenError::AlgorithmMismatch);
}

#[test]
fn every_listed_algorithm_needs_a_usable_inline_key_and_an_hs_key_is_never_pem() {
    let error = |issuers: serde_json::Value| {
        Config::from_settings(&with_issuers(Settings::new(), issuers))
            .expect_err("refused")
            .to_string()
    };
    let missing =
        error(json!([{"iss": "m", "key": DOCS_ES256_PUBLIC_KEY, "alg": ["ES256", "EdDSA"]}]));
    assert!(
        missing.starts_with("electric_auth.issuers[0].key: for EdDSA: "),
        "{missing}"
    );
    let short = error(
        json!([{"iss": "h", "key": "a-38-byte-secret-for-hs256-but-not-512", "alg": ["HS256", "HS512"]}]),
    );
    assert!(
        short.starts_with(
            "electric_auth.issuers[0].key: for HS512: the key has to be at least 64 bytes"
        ),
        "{short}"
    );
    let pem = error(json!([{"iss": "h", "key": DOCS_ES256_PUBLIC_KEY, "alg": "HS256"}]));
    assert!(
        pem.starts_with("electric_auth.issuers[0].key: is PEM key text"),
        "{pem}"
    );
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(DOCS_ES256_PUBLIC_KEY);
    let pem64 = error(json!([{"iss": "h", "key": encoded, "key_is_base64": true, "alg": "HS256"}]));
    assert!(
        pem64.starts_with("electric_auth.issuers[0].key: is PEM key text"),
        "{pem64}"
    );
}

#[test]
fn configuration_errors_name_the_entry() {
    let error = |issuers: serde_json::Value| {
        Config::from_settings(&with_issuers(Settings::new(), issuers))
            .expect_err("refused")
            .to_string()
    };
    let short = error(json!([{"iss": "i", "key": "short", "alg": "HS256"}]));
    assert!(
        short.starts_with("electric_auth.issuers[0].key: the key has to be at least 32 bytes"),
        "{short}"
    );
    let es = error(json!([{"iss": "i", "key": "not a pem at all", "alg": "ES256"}]));
    assert!(es.starts_with("electric_auth.issuers[0].key: "), "{es}");
    assert!(!es.contains("not a pem"), "{es}");
    // Insecure mode refuses the setting.
    let insecure = Config::from_settings(&Settings {
        issuers: Some(two_hs_issuers().to_string()),
        ..common::insecure()
    })
    .unwrap_err();
    assert_eq!(
        insecure,
        ConfigError::NotValidInInsecureMode {
            setting: "electric_auth.issuers"
        }
    );
    // Without listed issuers, Electric's settings are required as before.
    assert_eq!(
        Config::from_settings(&Settings::new()).unwrap_err(),
        ConfigError::AlgNotSet
    );
    // With them, a half-configured default issuer is still an error.
    let half = Settings {
        jwt_alg: Some("HS256".into()),
        ..with_issuers(Settings::new(), two_hs_issuers())
    };
    assert_eq!(
        Config::from_settings(&half).unwrap_err(),
        ConfigError::KeyNotSet
    );
}

#[test]
fn an_issuer_without_its_fetched_keys_refuses_only_its_own_tokens() {
    let settings = with_issuers(
        Settings::new(),
        json!([
            {"iss": "https://a.example", "key": SECRET_A, "alg": "HS256"},
            {"iss": "https://f.example", "oidc_issuer": "https://f.example", "alg": "RS256"}
        ]),
    );
    let v = Verifier::new(Config::build(&settings, None, &|_, _| None).unwrap());
    let a = token(SECRET_A, claims(Some("https://a.example"), "alice"));
    assert!(v.check(&a, NOW).is_ok());
    let f = hs256_token(
        SECRET_A,
        r#"{"alg":"RS256"}"#,
        &claims(Some("https://f.example"), "fred").to_string(),
    );
    let refused = rejected(&v, &f);
    assert!(
        matches!(refused, TokenError::IssuerUnavailable(_)),
        "{refused:?}"
    );
    let as_error = Error::from(refused);
    assert!(
        matches!(&as_error, Error::Config(ConfigError::FetchedKeysPending { url, .. }) if url == "https://f.example"),
        "{as_error:?}"
    );
    // A URL's query (which could hold a credential) never reaches a message.
    let settings = with_issuers(
        Settings::new(),
        json!([{"iss": "q", "jwks_url": "https://q.example/jwks?access_token=s3cret", "alg": "RS256"}]),
    );
    let v2 = Verifier::new(Config::build(&settings, None, &|_, _| None).unwrap());
    let q = hs256_token(
        SECRET_A,
        r#"{"alg":"RS256"}"#,
        &claims(Some("q"), "x").to_string(),
    );
    let message = Error::from(rejected(&v2, &q)).to_string();
    assert!(message.contains("https://q.example/jwks?…"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
    assert_eq!(v.issuer_of(f.as_bytes()), Some(1));
    assert_eq!(v.issuer_of(a.as_bytes()), Some(0));
}
