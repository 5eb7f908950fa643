//! Key sets (issue 14): a JWK, a JWKS, several PEM blocks; `kid` selection; the algorithms
//! beyond Electric's nine (PS256/384/512, EdDSA). Tokens are minted by PyJWT, node's
//! jsonwebtoken and node's jose (`scripts/fixtures/mint_keysets.py`).
mod common;
use common::*;
use electric_auth_core::{ConfigError, Settings, TokenError, MAX_KEYS};
use serde_json::{json, Value};

fn keysets() -> Value {
    serde_json::from_str(include_str!("fixtures/keysets.json")).expect("fixtures parse")
}

fn key(name: &str, form: &str) -> String {
    keysets()["keys"][name][form].as_str().unwrap().to_owned()
}

fn jwks(name: &str) -> String {
    keysets()["jwks"][name].to_string()
}

/// Every fixture token of `case` and `alg`, with its library; at least two libraries each.
fn tokens(case: &str, alg: &str) -> Vec<(String, String)> {
    let found: Vec<(String, String)> = keysets()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["case"] == case && t["alg"] == alg)
        .map(|t| {
            (
                t["library"].as_str().unwrap().to_owned(),
                t["token"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(found.len() >= 2, "fixtures for {case} {alg}");
    found
}

fn expected_sub(case: &str, alg: &str) -> String {
    let token = &keysets()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["case"] == case && t["alg"] == alg)
        .unwrap()
        .clone();
    token["payload"]["sub"].as_str().unwrap().to_owned()
}

/// Every library's token of `case` verifies under `settings`, with its `sub`.
fn accepts(settings: &Settings, case: &str, alg: &str) {
    let v = verifier(settings);
    for (library, token) in tokens(case, alg) {
        let got = v.check(&token, NOW).map(|t| t.user_id);
        assert_eq!(
            got,
            Ok(expected_sub(case, alg)),
            "{case} {alg} by {library}"
        );
    }
}

/// Every library's token of `case` is refused with `error`.
fn refuses(settings: &Settings, case: &str, alg: &str, error: TokenError) {
    let v = verifier(settings);
    for (library, token) in tokens(case, alg) {
        assert_eq!(
            v.check(&token, NOW).map(|t| t.user_id),
            Err(error.clone()),
            "{case} {alg} by {library}"
        );
    }
}

#[test]
fn ps256_384_512_verify_with_every_rsa_key_form() {
    let interop = fixtures();
    for alg in ["PS256", "PS384", "PS512"] {
        for form in [
            "public_spki",
            "public_pkcs1",
            "private_pkcs8",
            "private_pkcs1",
            "certificate",
        ] {
            let pem = interop["keys"]["RSA"][form].as_str().unwrap();
            accepts(&secure(alg, pem), "standard", alg);
        }
        // Another RSA key: the signature does not verify.
        refuses(
            &secure(alg, &key("rsa-2", "public_spki")),
            "standard",
            alg,
            TokenError::InvalidSignature,
        );
    }
    // The algorithm stays pinned: a PS256 token under RS256 and the reverse are refused.
    let rsa = key("rsa-1", "public_spki");
    refuses(
        &secure("RS256", &rsa),
        "standard",
        "PS256",
        TokenError::AlgorithmMismatch,
    );
    refuses(
        &secure("PS384", &rsa),
        "standard",
        "PS256",
        TokenError::AlgorithmMismatch,
    );
    let rs256 = interop["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["case"] == "standard" && t["alg"] == "RS256")
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        rejected(&verifier(&secure("PS256", &rsa)), &rs256),
        TokenError::AlgorithmMismatch
    );
    // A PKCS#1 v1.5 signature under a PS256 header is not a PSS signature.
    let (input, signature) = rs256.rsplit_once('.').unwrap();
    let (_, payload) = input.split_once('.').unwrap();
    let relabelled = format!(
        "{}.{payload}.{signature}",
        b64(br#"{"alg":"PS256","typ":"JWT"}"#)
    );
    assert_eq!(
        rejected(&verifier(&secure("PS256", &rsa)), &relabelled),
        TokenError::InvalidSignature
    );
}

#[test]
fn eddsa_verifies_with_public_and_private_ed25519_pem() {
    for form in ["public_spki", "private_pkcs8"] {
        accepts(&secure("EdDSA", &key("ed-1", form)), "standard", "EdDSA");
        // One-line and \n-escaped PEM, as postgresql.conf holds it.
        let escaped = key("ed-1", form).replace('\n', "\\n");
        accepts(&secure("EdDSA", &escaped), "standard", "EdDSA");
    }
    refuses(
        &secure("EdDSA", &key("ed-2", "public_spki")),
        "standard",
        "EdDSA",
        TokenError::InvalidSignature,
    );
    // Keys of other types are not Ed25519 keys.
    for other in [key("rsa-1", "public_spki"), key("ec-1", "public_spki")] {
        assert!(matches!(
            config_error(&secure("EdDSA", &other)),
            ConfigError::KeyInvalid { .. }
        ));
    }
    assert!(matches!(
        config_error(&secure("ES256", &key("ed-1", "public_spki"))),
        ConfigError::KeyInvalid { .. }
    ));
    // A tampered payload under the same signature.
    let (_, token) = &tokens("standard", "EdDSA")[0];
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged = b64(br#"{"sub":"mallory","iat":1700000000,"exp":4102444800}"#);
    parts[1] = &forged;
    assert_eq!(
        rejected(
            &verifier(&secure("EdDSA", &key("ed-1", "public_spki"))),
            &parts.join(".")
        ),
        TokenError::InvalidSignature
    );
}

#[test]
fn an_idps_whole_jwks_can_be_pasted_and_only_usable_keys_are_used() {
    let idp = jwks("idp");
    // RS256: rsa-1 and rsa-2 (enc-1 is for encryption, "small" has 1024 bits).
    let rs = secure("RS256", &idp);
    assert_eq!(
        electric_auth_core::Config::from_settings(&rs)
            .unwrap()
            .key_set()
            .unwrap()
            .count(),
        2
    );
    accepts(&rs, "kid_rsa_1", "RS256");
    accepts(&rs, "kid_rsa_2", "RS256");
    // No kid: every usable key, in order (rsa-2 is the second).
    accepts(&rs, "no_kid_rsa_2", "RS256");
    // A kid selects its key only: rsa-1's kid over rsa-2's signature, or an unknown kid, fail.
    refuses(
        &rs,
        "kid_rsa_1_signed_by_rsa_2",
        "RS256",
        TokenError::InvalidSignature,
    );
    refuses(&rs, "kid_unknown", "RS256", TokenError::UnknownKey);
    // ES256: ec-1 only (ec-2 may only sign).
    let es = secure("ES256", &idp);
    accepts(&es, "kid_ec_1", "ES256");
    refuses(&es, "kid_ec_2", "ES256", TokenError::UnknownKey);
    // EdDSA: ed-1, with and without kid.
    let ed = secure("EdDSA", &idp);
    accepts(&ed, "kid_ed_1", "EdDSA");
    accepts(&ed, "standard", "EdDSA");
    refuses(&ed, "kid_ed_2", "EdDSA", TokenError::UnknownKey);
}

#[test]
fn a_set_without_a_usable_key_says_why_for_each_key() {
    let message = config_error(&secure("PS256", &jwks("idp"))).to_string();
    assert!(
        message.starts_with(
            "electric_auth.jwt_key has no key usable for electric_auth.jwt_alg=PS256: "
        ),
        "{message}"
    );
    for reason in [
        r#"key 1 (kid "enc-1"): "alg" is "RSA-OAEP", not "PS256""#,
        r#"key 2 (kid "rsa-1"): "alg" is "RS256", not "PS256""#,
        r#"key 4 (kid "ec-1"): an EC key on P-256, not an RSA key"#,
        r#"key 5 (kid "ec-2"): an EC key on P-256, not an RSA key"#,
        r#"key 7 (kid "x-1"): a key of another type, not an RSA key"#,
        r#"key 8 (kid "small"): electric_auth.jwt_key is not a valid key for electric_auth.jwt_alg=PS256: the RSA modulus has 1024 bits"#,
    ] {
        assert!(message.contains(reason), "{reason} in {message}");
    }
    let hs = config_error(&secure("HS256", &jwks("idp"))).to_string();
    assert!(
        hs.contains(r#"key 6 (kid "ed-1"): an OKP key on Ed25519, not an oct key"#),
        "{hs}"
    );
    let es = config_error(&secure("ES384", &jwks("idp"))).to_string();
    assert!(
        es.contains(r#"key 4 (kid "ec-1"): an EC key on P-256, not an EC key on P-384"#),
        "{es}"
    );
    assert!(
        es.contains(r#"key 5 (kid "ec-2"): an EC key on P-256, not an EC key on P-384"#),
        "{es}"
    );
    // JWKs jsonwebtoken cannot read at all (a kid that is not a string), or not objects.
    let odd = r#"{"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": 5}, 7, {"kty": "RSA", "n": 5}]}"#;
    let odd = config_error(&secure("RS256", odd)).to_string();
    assert!(odd.contains("key 1: not a JWK jsonwebtoken can read; key 2: not a JSON object; key 3: a key of another type, not an RSA key"), "{odd}");
    // use and key_ops.
    let sig_only = json!({"keys": [
        {"kty": "oct", "k": b64(&[7u8; 32]), "use": "enc"},
        {"kty": "oct", "k": b64(&[7u8; 32]), "key_ops": ["sign"]},
        {"kty": "oct", "k": b64(&[7u8; 8])},
        {"kty": "oct", "k": b64(&[7u8; 32]), "alg": 5},
        {"kty": "oct", "k": "not base64url!"},
    ]});
    let message = config_error(&secure("HS256", &sig_only.to_string())).to_string();
    for reason in [
        r#"key 1: "use" is "enc", not "sig""#,
        r#"key 2: "key_ops" does not list "verify""#,
        "key 3: electric_auth.jwt_key has to be at least 32 bytes long for HS256",
        "key 4: not a JWK jsonwebtoken can read",
        "key 5: an oct (shared secret) key: its material does not parse",
    ] {
        assert!(message.contains(reason), "{reason} in {message}");
    }
    assert_eq!(
        config_error(&secure("RS256", r#"{"keys": []}"#)).to_string(),
        "electric_auth.jwt_key has no key usable for electric_auth.jwt_alg=RS256: the set is empty"
    );
    // No key material in any of these messages.
    let all = [
        message,
        config_error(&secure("PS256", &jwks("idp"))).to_string(),
    ]
    .join(" ");
    let n = keysets()["jwks"]["idp"]["keys"][1]["n"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!all.contains(&n[..16]));
    assert!(!all.contains(&b64(&[7u8; 32])[..16]));
}

#[test]
fn rotation_old_and_new_keys_then_the_new_one_only() {
    let both = secure("RS256", &jwks("rotation_both"));
    accepts(&both, "kid_rsa_1", "RS256");
    accepts(&both, "kid_rsa_2", "RS256");
    let new = secure("RS256", &jwks("rotation_new"));
    accepts(&new, "kid_rsa_2", "RS256");
    refuses(&new, "kid_rsa_1", "RS256", TokenError::UnknownKey);
    let old = secure("RS256", &jwks("rotation_old"));
    refuses(&old, "kid_rsa_2", "RS256", TokenError::UnknownKey);
}

#[test]
fn keys_without_kid_are_tried_in_order_and_ignore_the_tokens_kid() {
    let pair = secure("RS256", &jwks("no_kid_pair"));
    accepts(&pair, "no_kid_rsa_1", "RS256");
    accepts(&pair, "no_kid_rsa_2", "RS256");
    // Keys without kid are candidates for every token, as Electric's single key was.
    accepts(&pair, "kid_rsa_1", "RS256");
    accepts(&pair, "kid_unknown", "RS256");
    // One PEM key ignores kid exactly as before.
    accepts(
        &secure("RS256", &key("rsa-1", "public_spki")),
        "kid_unknown",
        "RS256",
    );
}

#[test]
fn hs_and_eddsa_sets_and_a_single_jwk() {
    accepts(&secure("HS256", &jwks("hs_pair")), "kid_hs_2", "HS256");
    accepts(&secure("EdDSA", &jwks("ed_pair")), "kid_ed_2", "EdDSA");
    accepts(&secure("EdDSA", &jwks("ed_pair")), "standard", "EdDSA");
    let single = secure("ES256", &jwks("single_ec_jwk"));
    accepts(&single, "kid_ec_1", "ES256");
    refuses(&single, "kid_ec_2", "ES256", TokenError::UnknownKey);
}

#[test]
fn a_kid_that_is_not_a_string_matches_no_key_with_a_kid() {
    let secret = key("hs-1", "secret");
    let set = json!({"keys": [{"kty": "oct", "kid": "hs-1", "k": b64(secret.as_bytes())}]});
    let v = verifier(&secure("HS256", &set.to_string()));
    let payload = r#"{"sub":"u","iat":1700000000,"exp":4102444800}"#;
    let good = hs256_token(&secret, r#"{"alg":"HS256","kid":"hs-1"}"#, payload);
    assert_eq!(v.check(&good, NOW).unwrap().user_id, "u");
    for header in [
        r#"{"alg":"HS256","kid":1}"#,
        r#"{"alg":"HS256","kid":["hs-1"]}"#,
        r#"{"alg":"HS256","kid":"HS-1"}"#,
    ] {
        let token = hs256_token(&secret, header, payload);
        assert_eq!(rejected(&v, &token), TokenError::UnknownKey, "{header}");
    }
    // Without kid, the key is tried.
    let token = hs256_token(&secret, r#"{"alg":"HS256"}"#, payload);
    assert_eq!(v.check(&token, NOW).unwrap().user_id, "u");
}

#[test]
fn several_pem_blocks_in_every_form() {
    let (one, two) = (key("rsa-1", "public_spki"), key("rsa-2", "public_spki"));
    for text in [
        format!("{two}{one}"),
        format!("{two}\n\n{one}"),
        format!("{two}{one}").replace('\n', "\\n"),
        format!("{two}{one}").replace('\n', " "),
    ] {
        let s = secure("RS256", &text);
        accepts(&s, "no_kid_rsa_1", "RS256");
        accepts(&s, "no_kid_rsa_2", "RS256");
        accepts(&s, "kid_rsa_1", "RS256");
    }
    // Every block must be a key for the algorithm: the error names the block.
    let mixed = format!("{one}{}", key("ec-1", "public_spki"));
    let error = config_error(&secure("RS256", &mixed));
    assert_eq!(
        error.to_string(),
        "electric_auth.jwt_key, PEM block 2 of 2: electric_auth.jwt_key is not a valid key for electric_auth.jwt_alg=RS256 or it has invalid format"
    );
    assert!(error.hint().unwrap().contains("RSA public key"));
    let small = format!("{one}{}", key("rsa-1024", "public_spki"));
    assert!(config_error(&secure("RS256", &small))
        .to_string()
        .contains("PEM block 2 of 2: electric_auth.jwt_key is not a valid key for electric_auth.jwt_alg=RS256: the RSA modulus has 1024 bits"));
}

#[test]
fn at_most_sixteen_usable_keys() {
    let rsa = keysets()["jwks"]["rotation_old"]["keys"][0].clone();
    let set = |count: usize| {
        let keys: Vec<Value> = (0..count)
            .map(|i| {
                let mut k = rsa.clone();
                k["kid"] = json!(format!("k{i}"));
                k
            })
            .collect();
        json!({ "keys": keys }).to_string()
    };
    assert_eq!(MAX_KEYS, 16);
    accepts(&secure("RS256", &set(16)), "no_kid_rsa_1", "RS256");
    assert_eq!(
        config_error(&secure("RS256", &set(17))).to_string(),
        "electric_auth.jwt_key has 17 keys usable for electric_auth.jwt_alg=RS256; at most 16 are allowed"
    );
    // Unusable keys do not count.
    let mut padded: Value = serde_json::from_str(&set(16)).unwrap();
    for _ in 0..10 {
        padded["keys"]
            .as_array_mut()
            .unwrap()
            .push(json!({"kty": "oct", "k": "AAAA"}));
    }
    accepts(
        &secure("RS256", &padded.to_string()),
        "no_kid_rsa_1",
        "RS256",
    );
    let pem = key("rsa-1", "public_spki");
    assert!(matches!(
        config_error(&secure("RS256", &pem.repeat(17))),
        ConfigError::TooManyKeys { count: 17, .. }
    ));
    accepts(&secure("RS256", &pem.repeat(16)), "no_kid_rsa_1", "RS256");
}

#[test]
fn json_that_is_not_a_jwk_or_jwks() {
    for (text, reason) in [
        (r#"{"keys": 5}"#, r#""keys" must be an array of JWKs"#),
        (
            r#"{"n": "abc"}"#,
            r#"a JWK needs "kty", a JWKS a "keys" array"#,
        ),
        (
            "{not json",
            r#"it starts with "{" but is not a JSON object"#,
        ),
    ] {
        assert_eq!(
            config_error(&secure("RS256", text)).to_string(),
            format!("electric_auth.jwt_key is not a valid JWK or JWKS: {reason}")
        );
    }
    // Text that starts with "{" is never an HS secret: a JWKS with a typo (or the public
    // JWKS text, or a JWK without "kty") would become a secret anyone could sign with.
    let public_jwks = jwks("idp");
    let broken = format!("{public_jwks},");
    for (text, reason) in [
        (
            "{this-is-a-32-byte-or-longer-secret}",
            r#"it starts with "{" but is not a JSON object"#,
        ),
        (&broken, r#"it starts with "{" but is not a JSON object"#),
        (
            r#"  {"k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}"#,
            r#"a JWK needs "kty", a JWKS a "keys" array"#,
        ),
        // A byte-order mark before it, or the JWKS's "keys" array pasted alone.
        (
            &format!("\u{feff}{broken}"),
            r#"it starts with "{" but is not a JSON object"#,
        ),
        (
            &format!(
                "\u{feff} {}",
                serde_json::from_str::<serde_json::Value>(&public_jwks).unwrap()["keys"]
            ),
            r#"it is a JSON array; a JWKS is an object, {"keys": [...]}"#,
        ),
        // Behind a comment, or quoted as a JSON string.
        (
            &format!("/* idp */ {public_jwks}"),
            r#"it holds a JWK member ("kty" or "keys"): key text is never an HMAC secret"#,
        ),
        (
            &serde_json::Value::String(public_jwks.clone()).to_string(),
            r#"it holds a JWK member ("kty" or "keys"): key text is never an HMAC secret"#,
        ),
    ] {
        for alg in ["HS256", "HS384", "HS512"] {
            let error = config_error(&secure(alg, text));
            assert_eq!(
                error.to_string(),
                format!("electric_auth.jwt_key is not a valid JWK or JWKS: {reason}"),
                "{alg}"
            );
            assert!(!error.to_string().contains(&text[..12.min(text.len())]));
            let hint = electric_auth_core::Error::Config(error).hint().unwrap();
            assert!(hint.contains("jwt_key_is_base64"), "{hint}");
        }
    }
    // Such a secret is still usable base64-encoded.
    let secret = "{this-is-a-32-byte-or-longer-secret}";
    let mut settings = secure("HS256", &b64_standard(secret.as_bytes()));
    settings.jwt_key_is_base64 = true;
    let token = hs256_token(
        secret,
        r#"{"alg":"HS256"}"#,
        r#"{"sub":"u","iat":1700000000,"exp":4102444800}"#,
    );
    assert_eq!(verifier(&settings).check(&token, NOW).unwrap().user_id, "u");
}

fn b64_standard(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The public JWK of interop.json's key on `curve` (P-256, P-384, P-521), with `kid`: the
/// point read by RustCrypto's independent implementations.
fn ec_jwk(curve: &str, kid: &str) -> Value {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let pem = fixtures()["keys"][curve]["public_spki"]
        .as_str()
        .unwrap()
        .to_owned();
    let point = match curve {
        "P-256" => {
            use p256::pkcs8::DecodePublicKey;
            p256::PublicKey::from_public_key_pem(&pem)
                .unwrap()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec()
        }
        "P-384" => {
            use p384::pkcs8::DecodePublicKey;
            p384::PublicKey::from_public_key_pem(&pem)
                .unwrap()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec()
        }
        _ => {
            use p521::pkcs8::DecodePublicKey;
            p521::PublicKey::from_public_key_pem(&pem)
                .unwrap()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec()
        }
    };
    let half = (point.len() - 1) / 2;
    json!({"kty": "EC", "crv": curve, "kid": kid, "x": b64(&point[1..1 + half]), "y": b64(&point[1 + half..])})
}

/// interop.json's standard token of `alg` by `library`.
fn interop_token(alg: &str) -> String {
    fixtures()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["case"] == "standard" && t["alg"] == alg)
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn ec_jwks_on_every_curve_verify_their_algorithm_only() {
    let keys =
        json!({"keys": [ec_jwk("P-256", "p256"), ec_jwk("P-384", "p384"), ec_jwk("P-521", "p521"),
                                keysets()["jwks"]["rotation_old"]["keys"][0].clone()]})
        .to_string();
    for (alg, curve) in [("ES256", "P-256"), ("ES384", "P-384"), ("ES512", "P-521")] {
        let s = secure(alg, &keys);
        let config = electric_auth_core::Config::from_settings(&s).unwrap();
        let set = config.key_set().unwrap();
        assert_eq!(set.count(), 1, "{alg}: one usable key");
        assert_eq!(
            verifier(&s)
                .check(&interop_token(alg), NOW)
                .unwrap()
                .user_id,
            format!("user-{alg}")
        );
        // Every other key is named in the refusal when the curve's key is missing.
        let others: Vec<Value> = serde_json::from_str::<Value>(&keys).unwrap()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["crv"] != curve)
            .cloned()
            .collect();
        let message =
            config_error(&secure(alg, &json!({ "keys": others }).to_string())).to_string();
        for other in ["P-256", "P-384", "P-521"]
            .into_iter()
            .filter(|c| *c != curve)
        {
            assert!(
                message.contains(&format!("an EC key on {other}, not an EC key on {curve}")),
                "{message}"
            );
        }
        assert!(
            message.contains(&format!("an RSA key, not an EC key on {curve}")),
            "{message}"
        );
    }
}

#[test]
fn the_key_set_errors_carry_hints() {
    let none = config_error(&secure("ES256", &jwks("hs_pair")));
    assert!(
        none.hint().unwrap().contains("the algorithm's key type"),
        "{none:?}"
    );
    let pem = key("rsa-1", "public_spki");
    let many = config_error(&secure("RS256", &pem.repeat(17)));
    assert!(many
        .hint()
        .unwrap()
        .starts_with("Keep only the keys that sign tokens now"));
    // JSON that is no JWK or JWKS: only for HS* does a hint say a secret cannot start with "{".
    let json = config_error(&secure("RS256", r#"{"keys": 5}"#));
    assert_eq!(json.hint(), None);
    let json = config_error(&secure("HS256", r#"{"keys": 5}"#));
    assert!(json.hint().unwrap().contains("may not start with"));
}
