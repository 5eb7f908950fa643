//! Shared helpers for the core's spec tests.
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use electric_auth_core::{
    jsonb_body, Config, ConfigError, Error, Mode, Settings, TokenError, VerifiedToken, Verifier,
    Want,
};
use hmac::{Hmac, Mac};
use serde_json::Value;

/// The fixed "now" of these tests (2027-01-15); the core never reads a clock.
pub const NOW: i64 = 1_800_000_000;

/// A 32-byte HS256 secret used by tests that mint their own tokens.
pub const SECRET: &str = "an-hs256-test-secret-of-32-bytes";

pub fn fixtures() -> Value {
    serde_json::from_str(include_str!("../fixtures/interop.json")).expect("fixtures parse")
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Mints an HS256 token over arbitrary header and payload JSON (our own helper; the interop
/// tests use tokens minted by PyJWT and node's jsonwebtoken).
pub fn hs256_token(secret: &str, header: &str, payload: &str) -> String {
    let signing_input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&mac.finalize().into_bytes()))
}

pub fn hs256_claims(payload: Value) -> String {
    hs256_token(
        SECRET,
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &payload.to_string(),
    )
}

pub fn secure(alg: &str, key: &str) -> Settings {
    Settings {
        jwt_alg: Some(alg.into()),
        jwt_key: Some(key.into()),
        ..Settings::new()
    }
}

pub fn insecure() -> Settings {
    Settings {
        mode: Mode::Insecure,
        ..Settings::new()
    }
}

pub fn verifier(settings: &Settings) -> Verifier {
    Verifier::new(Config::from_settings(settings).expect("valid settings"))
}

pub fn config_error(settings: &Settings) -> ConfigError {
    Config::from_settings(settings).expect_err("settings should be refused")
}

pub fn hs256_verifier() -> Verifier {
    verifier(&secure("HS256", SECRET))
}

/// `Verifier::verify`, after checking that the fast path (`Verifier::verify_with`, what the SQL
/// functions call) answers exactly alike: the same user id and payload text, or the same error.
pub trait Check {
    fn check(&self, token: &str, now: i64) -> Result<VerifiedToken, TokenError>;
}

impl Check for Verifier {
    fn check(&self, token: &str, now: i64) -> Result<VerifiedToken, TokenError> {
        let full = self.verify(token, now);
        let expected = full
            .as_ref()
            .map(|t| (t.user_id.clone(), t.payload.clone().into_bytes()))
            .map_err(Clone::clone);
        for want in [Want::UserId, Want::Jsonb] {
            let fast = self.verify_with(token.as_bytes(), now, want, |passed| {
                if let Some(jsonb) = passed.jsonb {
                    assert_eq!(Some(jsonb), jsonb_body(passed.payload).as_deref());
                }
                (passed.user_id.to_owned(), passed.payload.to_vec())
            });
            assert_eq!(fast, expected, "the fast path differs for {token:?}");
        }
        full
    }
}

pub fn verify_at(v: &Verifier, token: &str, now: i64) -> Result<VerifiedToken, String> {
    v.check(token, now).map_err(|e| Error::Token(e).to_string())
}

pub fn message(v: &Verifier, token: &str) -> String {
    match v.check(token, NOW) {
        Ok(t) => panic!("token unexpectedly accepted for {:?}", t.user_id),
        Err(e) => e.to_string(),
    }
}

pub fn rejected(v: &Verifier, token: &str) -> TokenError {
    v.check(token, NOW).expect_err("token should be rejected")
}

/// Spec §5: the signed token printed in Electric's secure-mode docs (ES256, `exp` in 2023) ...
pub const DOCS_ES256_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.eyJ1c2VyX2lkIjoiMSIsImlhdCI6MTY4NDc0OTIxMywiZXhwIjoxNjg0NzU5MjEzfQ.dLd_bG5_VayLzTemgATu566NP3itwafMbu1zgef_8mB6VGHojczsXyh3g7QE4GM_l8kUQm9MJN7OWg8Kf-40YQ";
/// ... the docs' private key it was signed with ...
pub const DOCS_ES256_PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgW2MZVQ7AU4H+nt4C
04gbp2z7RW2x9nq3TyrhE8HmKG+hRANCAARzSZvWgxQXm/Ijh2c7CmxF95UGuAe5
ukKuQqBjA9f1kESEBwiVcNmwQwaIiOS84a+K/w3MgP9I2PRKHvAOd+Pf
-----END PRIVATE KEY-----";
/// ... and that key's public half (SPKI), as openssl derives it.
pub const DOCS_ES256_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEc0mb1oMUF5vyI4dnOwpsRfeVBrgH
ubpCrkKgYwPX9ZBEhAcIlXDZsEMGiIjkvOGviv8NzID/SNj0Sh7wDnfj3w==
-----END PUBLIC KEY-----";
