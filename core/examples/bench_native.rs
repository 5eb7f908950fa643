//! The core's native verify cost, no SQL: µs per token for each algorithm in a token file
//! written by bench/bench.py. Prints one JSON object {alg: µs} on stdout.
//!
//!   cargo run --release -p electric_auth_core --example bench_native -- /tmp/ea-bench/tokens.json
use electric_auth_core::{Config, Settings, Verifier};
use serde_json::{json, Map, Value};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: bench_native TOKENS.json");
    let input: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut out = Map::new();
    for (alg, case) in input.as_object().unwrap() {
        let settings = Settings {
            jwt_alg: Some(alg.clone()),
            jwt_key: Some(case["key"].as_str().unwrap().to_owned()),
            ..Settings::new()
        };
        let verifier = Verifier::new(Config::from_settings(&settings).unwrap());
        let tokens: Vec<&str> = case["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        // Median of five passes over every token, like the SQL figures.
        let mut passes: Vec<f64> = (0..5)
            .map(|_| {
                let start = Instant::now();
                for token in &tokens {
                    let verified = verifier.verify(token, now).expect("bench tokens verify");
                    std::hint::black_box(verified);
                }
                start.elapsed().as_secs_f64() * 1e6 / tokens.len() as f64
            })
            .collect();
        passes.sort_by(f64::total_cmp);
        out.insert(alg.clone(), json!(passes[2]));
    }
    println!("{}", Value::Object(out));
}
