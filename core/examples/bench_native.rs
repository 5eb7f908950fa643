//! The core's native verify cost, no SQL, and the limit it is measured against: µs per token
//! for each algorithm in a token file written by bench/bench.py. Prints one JSON object
//! `{alg: {"native": µs, "full": µs, "cached": µs, "raw": µs}}` on stdout:
//!
//! - `native`: `Verifier::verify_with`, the whole check the SQL functions run (header,
//!   signature, claims, user id) on its fast path;
//! - `full`: `Verifier::verify`, the same checks building the whole claims map (what the
//!   verified-token cache stores and the full path answers errors with);
//! - `cached`: through a `TokenCache` of the default budget, every token distinct (a lookup, a
//!   full verify and an insert each); `full` and `cached` for HS* only (null otherwise);
//! - `raw`: AWS-LC alone on the same tokens, the fastest verification this machine can do:
//!   aws-lc-rs `ParsedPublicKey::verify_sig` (key parsed once) or `hmac::verify` (key keyed
//!   once), with the signature already decoded.
//!
//!   cargo run --release -p electric_auth_core --example bench_native -- /tmp/ea-bench/tokens.json
//!
//! A second argument (`native`, `full`, `cached` or `raw`) runs only that measurement, twenty
//! times over, for a profiler (`perf record -g`); the others print as 0.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use electric_auth_core::{Config, Settings, TokenCache, Verifier, Want, DEFAULT_BUDGET_BYTES};
use serde_json::{json, Map, Value};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[path = "common/aws_lc_raw.rs"]
mod aws_lc_raw;
use aws_lc_raw::raw_checker;

/// Median of five passes over every item, in µs per item.
fn median_per_item<T>(items: &[T], mut check: impl FnMut(&T) -> bool) -> f64 {
    let mut passes: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            for item in items {
                assert!(std::hint::black_box(check(item)), "bench tokens verify");
            }
            start.elapsed().as_secs_f64() * 1e6 / items.len() as f64
        })
        .collect();
    passes.sort_by(f64::total_cmp);
    passes[2]
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: bench_native TOKENS.json");
    let input: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let only = std::env::args().nth(2);
    let repeat = if only.is_some() { 20 } else { 1 };
    // µs per token of `check` over `items` (median of five), or 0 when another is profiled.
    let measure = |name: &str, items: &mut dyn FnMut() -> f64| -> f64 {
        if only.as_deref().is_some_and(|o| o != name) {
            return 0.0;
        }
        (0..repeat).map(|_| items()).fold(f64::MAX, f64::min)
    };
    let mut out = Map::new();
    for (alg, case) in input.as_object().unwrap() {
        let key = case["key"].as_str().unwrap();
        let settings = Settings {
            jwt_alg: Some(alg.clone()),
            jwt_key: Some(key.to_owned()),
            ..Settings::new()
        };
        let verifier = Verifier::new(Config::from_settings(&settings).unwrap());
        let tokens: Vec<&str> = case["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        let native = measure("native", &mut || {
            median_per_item(&tokens, |token| {
                verifier
                    .verify_with(token.as_bytes(), now, Want::UserId, |passed| {
                        passed.user_id.len()
                    })
                    .is_ok()
            })
        });
        // The cache decision (Verifier::worth_caching) concerns the HMAC algorithms: `full` and
        // `cached` are measured for them only (null for the others, whose signature dominates).
        let hmac = alg.starts_with("HS");
        let full = hmac.then(|| {
            measure("full", &mut || {
                median_per_item(&tokens, |token| verifier.verify(token, now).is_ok())
            })
        });
        let cached = hmac.then(|| {
            measure("cached", &mut || {
                let mut cache = TokenCache::new(DEFAULT_BUDGET_BYTES);
                median_per_item(&tokens, |token| cache.verify(&verifier, token, now).is_ok())
            })
        });
        let signed: Vec<(&[u8], Vec<u8>)> = tokens
            .iter()
            .map(|token| {
                let (message, sig) = token.rsplit_once('.').unwrap();
                (message.as_bytes(), URL_SAFE_NO_PAD.decode(sig).unwrap())
            })
            .collect();
        let raw_check = raw_checker(alg, key);
        let raw = measure("raw", &mut || {
            median_per_item(&signed, |(message, sig)| raw_check(message, sig))
        });
        out.insert(
            alg.clone(),
            json!({"native": native, "full": full, "cached": cached, "raw": raw}),
        );
    }
    println!("{}", Value::Object(out));
}
