//! Fuzzes `Verifier::verify` in both modes and every algorithm family.
//!
//! The first input byte picks a case; the rest is either a whole token (checked against an HS,
//! RS, ES, PS or EdDSA key, a JWKS, or in insecure mode) or, for the last cases, a payload that the target signs
//! with the HS256 key itself, so that mutations reach the claim rules behind the signature.
//! Whatever the input: no panic, anything accepted obeys the spec's invariants, and the
//! verified-token cache and the fast path (`verify_with`) answer exactly like the verifier, and
//! `jsonb_body` (verify's jsonb builder) never panics and builds only for JSON objects.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use electric_auth_core::{Config, Mode, Settings, TokenCache, TokenError, Verifier, Want};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::sync::OnceLock;

/// The fixtures' "now" lies between their `iat` and `exp`.
const NOW: i64 = 1_800_000_000;

struct Case {
    verifier: Verifier,
    /// Secure mode's required claims must be present in anything accepted.
    secure: bool,
}

fn cases() -> &'static (Vec<Case>, Vec<u8>) {
    static CASES: OnceLock<(Vec<Case>, Vec<u8>)> = OnceLock::new();
    CASES.get_or_init(|| {
        let fixtures: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/interop.json")).unwrap();
        let key =
            |name: &str, field: &str| fixtures["keys"][name][field].as_str().unwrap().to_owned();
        let keysets: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/keysets.json")).unwrap();
        let hs_secret = key("HS256", "secret");
        let secure = |alg: &str, key: String, iss: Option<&str>| Settings {
            jwt_alg: Some(alg.into()),
            jwt_key: Some(key),
            jwt_iss: iss.map(Into::into),
            jwt_aud: iss.map(|_| "electric".into()),
            jwt_namespace: iss.map(|_| "ns".into()),
            ..Settings::new()
        };
        let settings = [
            secure("HS256", hs_secret.clone(), None),
            secure("RS256", key("RSA", "public_spki"), None),
            secure("ES256", key("P-256", "public_spki"), None),
            secure("ES512", key("P-521", "public_spki"), None),
            // Beyond Electric: a whole JWKS (kid selection), EdDSA, PS256.
            secure("RS256", keysets["jwks"]["idp"].to_string(), None),
            secure(
                "EdDSA",
                keysets["keys"]["ed-1"]["public_spki"]
                    .as_str()
                    .unwrap()
                    .into(),
                None,
            ),
            secure("PS256", key("RSA", "public_spki"), None),
            Settings {
                mode: Mode::Insecure,
                ..Settings::new()
            },
            secure("HS256", hs_secret.clone(), Some("https://issuer.example")),
            secure("HS256", hs_secret.clone(), None),
        ];
        let cases = settings
            .iter()
            .map(|s| Case {
                verifier: Verifier::new(Config::from_settings(s).expect("fixture settings")),
                secure: s.mode == Mode::Secure,
            })
            .collect();
        (cases, hs_secret.into_bytes())
    })
}

/// How many cases take a whole token; the others take a payload to sign.
const TOKEN_CASES: usize = 8;

fn hs256(secret: &[u8], payload: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fuzz_target!(|data: &[u8]| {
    // The jsonb builder of `verify` takes any bytes without a panic, and builds only for JSON.
    if electric_auth_core::jsonb_body(data).is_some() {
        assert!(serde_json::from_slice::<Value>(data).is_ok_and(|v| v.is_object()));
    }
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (cases, secret) = cases();
    let index = usize::from(selector) % cases.len();
    let token = if index < TOKEN_CASES {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        hs256(secret, rest)
    };
    let case = &cases[index];
    let direct = case.verifier.verify(&token, NOW);
    // The verified-token cache answers exactly like the verifier, on a miss and on a hit.
    let mut cache = TokenCache::new(1 << 20);
    for _ in 0..2 {
        assert_eq!(
            cache.verify(&case.verifier, &token, NOW).cloned(),
            direct.clone()
        );
    }
    // The fast path the SQL functions take answers exactly like the verifier, for either answer;
    // a jsonb it builds is the one `jsonb_body` builds from the payload text.
    let expected = direct
        .as_ref()
        .map(|v| (v.user_id.clone(), v.payload.clone().into_bytes()));
    for want in [Want::UserId, Want::Jsonb] {
        let fast = case
            .verifier
            .verify_with(token.as_bytes(), NOW, want, |passed| {
                if let Some(jsonb) = passed.jsonb {
                    assert_eq!(
                        Some(jsonb),
                        electric_auth_core::jsonb_body(passed.payload).as_deref()
                    );
                }
                (passed.user_id.to_owned(), passed.payload.to_vec())
            });
        assert_eq!(fast, expected.clone().map_err(Clone::clone));
    }
    // A text argument's bytes that are not UTF-8 are an invalid token.
    if index < TOKEN_CASES && std::str::from_utf8(rest).is_err() {
        let fast = case.verifier.verify_with(rest, NOW, Want::UserId, |_| ());
        assert_eq!(fast, Err(TokenError::InvalidToken));
    }
    if let Ok(verified) = direct {
        assert!(
            !verified.user_id.trim().is_empty(),
            "blank user id accepted"
        );
        assert!(
            !verified.user_id.contains('\0'),
            "NUL in an accepted user id"
        );
        if case.secure {
            assert!(verified.claims.contains_key("iat"), "accepted without iat");
            assert!(verified.claims.contains_key("exp"), "accepted without exp");
        }
        if index == TOKEN_CASES {
            assert_eq!(verified.claims["iss"], "https://issuer.example");
        }
        // Accepting a token is deterministic.
        assert_eq!(case.verifier.verify(&token, NOW).ok(), Some(verified));
    }
});
