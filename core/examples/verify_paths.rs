//! Which path should each algorithm's signature check take? µs per verification of the same
//! PyJWT-signed fixture token (core/tests/fixtures/interop.json), in one run on this machine:
//!
//! - `jsonwebtoken`: `jsonwebtoken::crypto::verify` with a `DecodingKey` (aws_lc_rs backend),
//!   which re-parses the public key (or re-keys the HMAC) on every call; it has no ES512;
//! - `aws-lc raw`: aws-lc-rs alone with the key parsed once (`ParsedPublicKey::verify_sig`,
//!   `hmac::verify` with a pre-keyed `hmac::Key`), the signature already decoded: the limit;
//! - `core`: `VerifyingKey::verify`, the path the verifier takes.
//!
//!   cargo run --release -p electric_auth_core --example verify_paths
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use electric_auth_core::{Algorithm, Config, Settings};
use serde_json::Value;
use std::time::Instant;

#[path = "common/aws_lc_raw.rs"]
mod aws_lc_raw;
use aws_lc_raw::raw_checker;

fn per_call(iterations: u32, mut f: impl FnMut() -> bool) -> f64 {
    // Median of five passes.
    let mut passes: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                assert!(std::hint::black_box(f()), "the fixture must verify");
            }
            start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations)
        })
        .collect();
    passes.sort_by(f64::total_cmp);
    passes[2]
}

fn main() {
    let fixtures: Value =
        serde_json::from_str(include_str!("../tests/fixtures/interop.json")).unwrap();
    println!("| alg | jsonwebtoken | aws-lc raw | core | jsonwebtoken / raw | core / raw |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (alg, key_name, form) in [
        ("HS256", "HS256", "secret"),
        ("HS384", "HS384", "secret"),
        ("HS512", "HS512", "secret"),
        ("RS256", "RSA", "public_spki"),
        ("RS384", "RSA", "public_spki"),
        ("RS512", "RSA", "public_spki"),
        ("ES256", "P-256", "public_spki"),
        ("ES384", "P-384", "public_spki"),
        ("ES512", "P-521", "public_spki"),
    ] {
        let key_text = fixtures["keys"][key_name][form].as_str().unwrap();
        let token = fixtures["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["case"] == "standard" && t["key"] == alg)
            .unwrap()["token"]
            .as_str()
            .unwrap();
        let (message, signature_b64) = token.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature_b64).unwrap();
        let algorithm = Algorithm::from_name(alg).unwrap();
        let iterations = match alg {
            "ES384" | "ES512" => 500,
            "ES256" => 2_000,
            a if a.starts_with("RS") => 5_000,
            _ => 200_000,
        };

        // jsonwebtoken's own verify, where it has the algorithm.
        let jwt_alg: Option<jsonwebtoken::Algorithm> = alg.parse().ok().filter(|_| alg != "ES512");
        let decoding_key = match algorithm.family() {
            electric_auth_core::AlgorithmFamily::Hmac => {
                jsonwebtoken::DecodingKey::from_secret(key_text.as_bytes())
            }
            electric_auth_core::AlgorithmFamily::Rsa => {
                jsonwebtoken::DecodingKey::from_rsa_pem(key_text.as_bytes()).unwrap()
            }
            electric_auth_core::AlgorithmFamily::Ec => {
                jsonwebtoken::DecodingKey::from_ec_pem(key_text.as_bytes()).unwrap()
            }
            // The interop fixtures hold Electric's nine algorithms only.
            electric_auth_core::AlgorithmFamily::Ed => unreachable!("no EdDSA fixture here"),
        };
        let jwt = jwt_alg.map(|a| {
            per_call(iterations, || {
                jsonwebtoken::crypto::verify(signature_b64, message.as_bytes(), &decoding_key, a)
                    .unwrap_or(false)
            })
        });

        // aws-lc-rs alone, key parsed once.
        let raw_check = raw_checker(alg, key_text);
        let raw = per_call(iterations, || raw_check(message.as_bytes(), &signature));

        // The core's path.
        let settings = Settings {
            jwt_alg: Some(alg.into()),
            jwt_key: Some(key_text.into()),
            ..Settings::new()
        };
        let config = Config::from_settings(&settings).unwrap();
        let core_key = config.verifying_key().unwrap();
        let core = per_call(iterations, || {
            core_key.verify(message.as_bytes(), &signature, signature_b64)
        });

        let jwt_text = jwt.map_or("—".to_string(), |j| format!("{j:.2}"));
        let jwt_ratio = jwt.map_or("—".to_string(), |j| format!("{:.2}×", j / raw));
        println!(
            "| {alg} | {jwt_text} | {raw:.2} | {core:.2} | {jwt_ratio} | {:.2}× |",
            core / raw
        );
    }
}
