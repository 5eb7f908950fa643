//! Tokens minted by independent libraries (PyJWT and node's jsonwebtoken, see
//! scripts/fixtures/mint.py) verify for all nine algorithms, and fail with the spec's errors when
//! tampered with or checked against the wrong key.
mod common;
use common::*;
use electric_auth_core::{Settings, TokenError};

fn key_for(f: &serde_json::Value, key: &str) -> Settings {
    let k = &f["keys"];
    match key {
        "HS256" | "HS384" | "HS512" => secure(key, k[key]["secret"].as_str().unwrap()),
        "HS256-base64" => Settings {
            jwt_key_is_base64: true,
            ..secure("HS256", k[key]["secret_base64"].as_str().unwrap())
        },
        "RS256" | "RS384" | "RS512" => secure(key, k["RSA"]["public_spki"].as_str().unwrap()),
        "ES256" => secure(key, k["P-256"]["public_spki"].as_str().unwrap()),
        "ES384" => secure(key, k["P-384"]["public_spki"].as_str().unwrap()),
        "ES512" => secure(key, k["P-521"]["public_spki"].as_str().unwrap()),
        other => panic!("no key {other}"),
    }
}

fn tokens(f: &serde_json::Value) -> Vec<(String, String, String, String, serde_json::Value)> {
    f["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["case"].as_str().unwrap().to_string(),
                t["key"].as_str().unwrap().to_string(),
                t["library"].as_str().unwrap().to_string(),
                t["token"].as_str().unwrap().to_string(),
                t["payload"].clone(),
            )
        })
        .collect()
}

#[test]
fn all_nine_algorithms_from_both_libraries_verify() {
    let f = fixtures();
    let mut seen = std::collections::BTreeSet::new();
    for (case, key, library, token, payload) in tokens(&f) {
        if case != "standard" {
            continue;
        }
        let v = verifier(&Settings {
            jwt_iss: Some(f["iss"].as_str().unwrap().into()),
            jwt_aud: Some(f["aud"].as_str().unwrap().into()),
            ..key_for(&f, &key)
        });
        let verified = v
            .verify(&token, NOW)
            .unwrap_or_else(|e| panic!("{key} from {library}: {e}"));
        assert_eq!(verified.user_id, format!("user-{key}"));
        assert_eq!(
            serde_json::Value::Object(verified.claims),
            payload,
            "claims are the whole payload"
        );
        assert_eq!(verified.expires_at, Some(4_102_444_800.0));
        seen.insert((key, library.split(' ').next().unwrap().to_string()));
    }
    assert_eq!(seen.len(), 18, "nine algorithms x two libraries: {seen:?}");
}

#[test]
fn tampered_tokens_from_both_libraries_fail_the_signature() {
    let f = fixtures();
    for (case, key, library, token, _) in tokens(&f) {
        if case != "standard" {
            continue;
        }
        let v = verifier(&key_for(&f, &key));
        // Re-encode the payload with another subject, keeping the original signature.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_payload = b64(br#"{"sub":"admin","iat":1700000000,"exp":4102444800}"#);
        parts[1] = &forged_payload;
        assert_eq!(
            rejected(&v, &parts.join(".")),
            TokenError::InvalidSignature,
            "{key} from {library}"
        );
    }
}

/// A fresh public key of the same kind as `alg` needs, unrelated to the fixtures' signing keys.
fn unrelated_public_pem(alg: &str) -> String {
    use openssl::{
        ec::{EcGroup, EcKey},
        nid::Nid,
        pkey::PKey,
        rsa::Rsa,
    };
    let pkey = match alg {
        "RS256" | "RS384" | "RS512" => PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap(),
        _ => {
            let nid = match alg {
                "ES256" => Nid::X9_62_PRIME256V1,
                "ES384" => Nid::SECP384R1,
                _ => Nid::SECP521R1,
            };
            PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(nid).unwrap()).unwrap())
                .unwrap()
        }
    };
    String::from_utf8(pkey.public_key_to_pem().unwrap()).unwrap()
}

#[test]
fn tokens_checked_against_another_key_of_the_same_algorithm_fail() {
    let f = fixtures();
    let mut checked = 0;
    for (case, key, library, token, _) in tokens(&f) {
        if case != "standard" {
            continue;
        }
        let wrong = match key.as_str() {
            "HS256" | "HS384" | "HS512" => "w".repeat(64),
            alg => unrelated_public_pem(alg),
        };
        assert_eq!(
            rejected(&verifier(&secure(&key, &wrong)), &token),
            TokenError::InvalidSignature,
            "{key} from {library}"
        );
        checked += 1;
    }
    assert_eq!(checked, 18);
}

#[test]
fn the_docs_es256_public_key_is_the_docs_private_keys_public_half() {
    // Cross-check for spec §5: the SPKI derived by openssl from the docs' private key.
    assert_eq!(
        rejected(
            &verifier(&secure("ES256", DOCS_ES256_PUBLIC_KEY)),
            DOCS_ES256_TOKEN
        ),
        TokenError::Expired
    );
}

#[test]
fn claim_scenarios_from_both_libraries() {
    let f = fixtures();
    let ns = f["namespace"].as_str().unwrap();
    for (case, key, library, token, _) in tokens(&f) {
        let settings = match case.as_str() {
            "unsigned" => insecure(),
            "namespaced" => Settings {
                jwt_namespace: Some(ns.into()),
                ..key_for(&f, &key)
            },
            "aud_array" => Settings {
                jwt_aud: Some("electric".into()),
                ..key_for(&f, &key)
            },
            "standard" => continue,
            _ => key_for(&f, &key),
        };
        let result = verifier(&settings)
            .verify(&token, NOW)
            .map(|t| t.user_id)
            .map_err(|e| e.to_string());
        let expected: Result<&str, &str> = match case.as_str() {
            "expired" => Err("Expired token"),
            "not_yet_valid" => Err("Token is not yet valid"),
            "namespaced" => Ok("ns-user"),
            "legacy_user_id" => Ok("legacy-user"),
            "aud_array" => Ok("u"),
            "no_exp" => Err("Missing required \"exp\" claim"),
            "base64_key" => Ok("b64-user"),
            "unsigned" => Ok("dev-user"),
            other => panic!("unknown case {other}"),
        };
        assert_eq!(
            result.as_deref().map_err(|e| e.as_str()),
            expected,
            "{case} from {library}"
        );
    }
    // The unsigned tokens are refused in secure mode.
    for (case, _, _, token, _) in tokens(&f) {
        if case == "unsigned" {
            assert_eq!(
                rejected(&verifier(&key_for(&f, "HS256")), &token),
                TokenError::AlgorithmMismatch
            );
        }
    }
}

/// ES512 cross-check: RustCrypto's independent P-521 implementation agrees with the verifier on
/// every ES512 fixture, genuine and tampered.
#[test]
fn es512_agrees_with_the_rustcrypto_p521_oracle() {
    use base64::Engine;
    use p521::ecdsa::signature::Verifier as _;
    use p521::pkcs8::DecodePublicKey;
    let f = fixtures();
    let pem = f["keys"]["P-521"]["public_spki"].as_str().unwrap();
    let public = p521::PublicKey::from_public_key_pem(pem).unwrap();
    let oracle = p521::ecdsa::VerifyingKey::from_affine(*public.as_affine()).unwrap();
    let ours = verifier(&secure("ES512", pem));
    let mut checked = 0;
    for (case, key, library, token, _) in tokens(&f) {
        if key != "ES512" || case != "standard" {
            continue;
        }
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig_bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .unwrap();
        assert_eq!(
            sig_bytes.len(),
            132,
            "JWS ES512 signatures are r||s, 66 bytes each"
        );
        let mut tampered = sig_bytes.clone();
        tampered[100] ^= 1;
        for (bytes, genuine) in [(sig_bytes, true), (tampered, false)] {
            let signature = p521::ecdsa::Signature::from_slice(&bytes).unwrap();
            let oracle_ok = oracle.verify(input.as_bytes(), &signature).is_ok();
            let token = format!("{input}.{}", b64(&bytes));
            assert_eq!(oracle_ok, genuine, "oracle on {library}");
            assert_eq!(
                ours.verify(&token, NOW).is_ok(),
                genuine,
                "verifier on {library}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 4);
}
