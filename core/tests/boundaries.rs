//! Exact boundaries and small accessors that the other suites only cross loosely: the 64 KiB
//! token limit at 65,536 vs 65,537 bytes, the token cache's byte accounting and its `>` budget
//! check, `Config::algorithm`, `Error::hint` and each algorithm's PEM hint. Written to kill the
//! mutants cargo-mutants found surviving (`make mutants`).
mod common;

use common::*;
use electric_auth_core::{
    Algorithm, Config, ConfigError, Error, Settings, TokenCache, TokenError, MAX_TOKEN_BYTES,
};
use serde_json::json;

/// A valid HS256 token of exactly `len` bytes (padding the payload with a filler claim).
fn token_of_len(len: usize) -> String {
    let short = hs256_claims(json!({"sub": "alice", "iat": NOW - 10, "exp": NOW + 60, "pad": ""}));
    // Each payload byte adds 4/3 of a base64url character: start a little below the target.
    let start = (len - short.len()) * 3 / 4 - 4;
    for pad in start.. {
        let token = hs256_claims(
            json!({"sub": "alice", "iat": NOW - 10, "exp": NOW + 60, "pad": "x".repeat(pad)}),
        );
        if token.len() == len {
            return token;
        }
        if token.len() > len {
            // base64url never yields a length of 4k+1; the next claim name shifts by a byte.
            let token = hs256_claims(
                json!({"sub": "alice", "iat": NOW - 10, "exp": NOW + 60, "pads": "x".repeat(pad - 2)}),
            );
            assert_eq!(token.len(), len, "no token of exactly {len} bytes");
            return token;
        }
    }
    unreachable!()
}

#[test]
fn the_size_limit_is_65536_bytes_inclusive() {
    assert_eq!(MAX_TOKEN_BYTES, 65_536);
    let v = hs256_verifier();
    let at_limit = token_of_len(MAX_TOKEN_BYTES);
    assert_eq!(v.check(&at_limit, NOW).unwrap().user_id, "alice");
    let over = token_of_len(MAX_TOKEN_BYTES + 1);
    assert_eq!(rejected(&v, &over), TokenError::InvalidToken);
}

/// What the cache charges for one token (see cache.rs): four times its length plus 160.
fn cost(token: &str) -> usize {
    4 * token.len() + 160
}

fn user_token(i: usize) -> String {
    hs256_claims(json!({"sub": format!("user-{i:04}"), "iat": NOW, "exp": NOW + 60}))
}

#[test]
fn the_cache_charges_each_new_token_exactly_once() {
    let v = hs256_verifier();
    let mut cache = TokenCache::new(1 << 20);
    assert!(cache.is_empty());
    assert_eq!(cache.used_bytes(), 0);
    let (a, b) = (user_token(1), user_token(2));
    cache.verify(&v, &a, NOW).unwrap();
    assert!(!cache.is_empty());
    assert_eq!(cache.used_bytes(), cost(&a));
    cache.verify(&v, &a, NOW).unwrap(); // a hit costs nothing more
    assert_eq!(cache.used_bytes(), cost(&a));
    cache.verify(&v, &b, NOW).unwrap();
    assert_eq!(cache.used_bytes(), cost(&a) + cost(&b));
    assert_eq!(cache.len(), 2);
}

#[test]
fn a_budget_that_is_exactly_full_is_not_exceeded_and_not_emptied() {
    let v = hs256_verifier();
    let tokens: Vec<String> = (0..3).map(user_token).collect();
    let one = cost(&tokens[0]);
    assert!(tokens.iter().all(|t| cost(t) == one), "equal-length tokens");
    // Two tokens fill the budget exactly: both stay.
    let mut cache = TokenCache::new(2 * one);
    cache.verify(&v, &tokens[0], NOW).unwrap();
    cache.verify(&v, &tokens[1], NOW).unwrap();
    assert_eq!((cache.len(), cache.used_bytes()), (2, 2 * one));
    // A third would exceed it: the cache starts over with just that one.
    cache.verify(&v, &tokens[2], NOW).unwrap();
    assert_eq!((cache.len(), cache.used_bytes()), (1, one));
    // One byte short of two tokens: the second already empties it.
    let mut cache = TokenCache::new(2 * one - 1);
    cache.verify(&v, &tokens[0], NOW).unwrap();
    cache.verify(&v, &tokens[1], NOW).unwrap();
    assert_eq!((cache.len(), cache.used_bytes()), (1, one));
}

#[test]
fn config_verifying_key_exists_in_secure_mode_only() {
    let config = Config::from_settings(&secure("HS256", SECRET)).unwrap();
    let token = hs256_claims(json!({"sub": "a", "iat": NOW, "exp": NOW + 9}));
    let (message, signature_b64) = token.rsplit_once('.').unwrap();
    let signature = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        signature_b64,
    )
    .unwrap();
    let key = config.verifying_key().expect("a key in secure mode");
    assert!(key.verify(message.as_bytes(), &signature, signature_b64));
    assert!(!key.verify(b"another message", &signature, signature_b64));
    assert!(Config::from_settings(&insecure())
        .unwrap()
        .verifying_key()
        .is_none());
}

#[test]
fn config_algorithm_is_the_configured_one_in_secure_mode_only() {
    for (name, alg) in [("HS256", Algorithm::HS256), ("HS512", Algorithm::HS512)] {
        let config = Config::from_settings(&secure(name, &"k".repeat(64))).unwrap();
        assert_eq!(config.algorithm(), Some(alg));
    }
    assert_eq!(
        Config::from_settings(&insecure()).unwrap().algorithm(),
        None
    );
}

fn key_invalid_hint(alg: &str) -> String {
    let error = config_error(&secure(alg, "not a pem"));
    assert!(matches!(error, ConfigError::KeyInvalid { .. }), "{error:?}");
    Error::Config(error).hint().expect("a PEM hint")
}

#[test]
fn each_key_error_hints_at_the_key_it_needs() {
    for (alg, wanted) in [
        ("RS256", "an RSA public key of at least 2048 bits"),
        ("ES256", "an EC public key on curve P-256 (prime256v1)"),
        ("ES384", "an EC public key on curve P-384 (secp384r1)"),
        ("ES512", "an EC public key on curve P-521 (secp521r1)"),
    ] {
        let hint = key_invalid_hint(alg);
        assert!(
            hint.starts_with(&format!("Expected {wanted} in PEM format")),
            "{alg}: {hint}"
        );
        assert!(hint.contains("-----BEGIN PUBLIC KEY-----"), "{alg}: {hint}");
    }
}

#[test]
fn only_some_errors_carry_a_hint() {
    let insecure_with_alg = Settings {
        jwt_alg: Some("HS256".into()),
        ..insecure()
    };
    assert_eq!(
        Error::Config(config_error(&insecure_with_alg))
            .hint()
            .as_deref(),
        Some("Did you forget to set electric_auth.mode = secure?")
    );
    assert_eq!(Error::Config(ConfigError::AlgNotSet).hint(), None);
    assert_eq!(Error::Config(ConfigError::KeyNotSet).hint(), None);
    assert_eq!(Error::Token(TokenError::Expired).hint(), None);
    assert_eq!(Error::Token(TokenError::InvalidToken).hint(), None);
}
