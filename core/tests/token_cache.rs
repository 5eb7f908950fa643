//! The verified-token cache: same answers as the verifier, time claims re-checked on every hit,
//! bounded memory, failures never remembered.
mod common;

use common::*;
use electric_auth_core::{TokenCache, TokenError};
use serde_json::json;

fn claims(exp: i64) -> serde_json::Value {
    json!({"sub": "alice", "iat": NOW - 10, "exp": exp})
}

#[test]
fn a_hit_answers_like_the_verifier() {
    let v = hs256_verifier();
    let mut cache = TokenCache::new(1 << 20);
    let token = hs256_claims(claims(NOW + 60));
    let first = cache.verify(&v, &token, NOW).unwrap().clone();
    assert_eq!(first, v.verify(&token, NOW).unwrap());
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.verify(&v, &token, NOW).unwrap(), &first);
    assert_eq!(cache.len(), 1);
}

#[test]
fn time_claims_are_checked_again_on_every_hit() {
    let v = hs256_verifier();
    let mut cache = TokenCache::new(1 << 20);
    let token = hs256_claims(claims(NOW + 60));
    assert!(cache.verify(&v, &token, NOW).is_ok());
    // Within the 2 s drift it is still valid, then it expires although cached.
    assert!(cache.verify(&v, &token, NOW + 62).is_ok());
    assert_eq!(
        cache.verify(&v, &token, NOW + 63).unwrap_err(),
        TokenError::Expired
    );
    let nbf = hs256_claims(json!({"sub": "a", "iat": NOW - 10, "exp": NOW + 99, "nbf": NOW}));
    assert!(cache.verify(&v, &nbf, NOW).is_ok());
    assert_eq!(
        cache.verify(&v, &nbf, NOW - 3).unwrap_err(),
        TokenError::NotYetValid
    );
}

#[test]
fn failures_are_not_remembered() {
    let v = hs256_verifier();
    let mut cache = TokenCache::new(1 << 20);
    let expired = hs256_claims(claims(NOW - 60));
    assert_eq!(
        cache.verify(&v, &expired, NOW).unwrap_err(),
        TokenError::Expired
    );
    let forged = format!("{}x", hs256_claims(claims(NOW + 60)));
    assert!(cache.verify(&v, &forged, NOW).is_err());
    assert!(cache.is_empty());
}

#[test]
fn memory_stays_within_the_budget() {
    let v = hs256_verifier();
    let budget = 16 * 1024;
    let mut cache = TokenCache::new(budget);
    let mut largest = 0;
    for i in 0..5_000 {
        let token = hs256_claims(json!({"sub": format!("user-{i}"), "iat": NOW, "exp": NOW + 9}));
        assert_eq!(
            cache.verify(&v, &token, NOW).unwrap().user_id,
            format!("user-{i}")
        );
        assert!(cache.used_bytes() <= budget);
        largest = largest.max(cache.len());
    }
    assert!(largest > 10, "the cache did hold tokens ({largest})");
    assert!(largest < 5_000, "and was emptied when full");
}

#[test]
fn the_default_budget_holds_hundreds_of_typical_tokens() {
    use electric_auth_core::DEFAULT_BUDGET_BYTES;
    let v = hs256_verifier();
    let mut cache = TokenCache::new(DEFAULT_BUDGET_BYTES);
    for i in 0..200 {
        let token =
            hs256_claims(json!({"sub": format!("user-{i:03}"), "iat": NOW, "exp": NOW + 9}));
        cache.verify(&v, &token, NOW).unwrap();
    }
    assert_eq!(
        cache.len(),
        200,
        "200 typical tokens fit in {DEFAULT_BUDGET_BYTES} bytes"
    );
    assert!(cache.used_bytes() <= DEFAULT_BUDGET_BYTES);
}
