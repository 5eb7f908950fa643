//! Spec §3 (validation rules, in order), §4 (user id) and §5 (examples).
mod common;
use common::*;
use electric_auth_core::{Settings, TokenError, MAX_TOKEN_BYTES};
use serde_json::json;

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

fn valid_claims() -> serde_json::Value {
    json!({"sub": "user-1", "iat": NOW - 60, "exp": NOW + 3600})
}

// ---- 1. Shape -------------------------------------------------------------------------------

#[test]
fn shape_three_parts_with_a_json_object_header() {
    let v = hs256_verifier();
    let good = hs256_claims(valid_claims());
    let (h, rest) = good.split_once('.').unwrap();
    for token in [
        String::new(),
        "abc".into(),
        "a.b".into(),
        format!("{good}.extra"),
        format!("{h}.{rest}.").replacen('.', "..", 1),
        format!("{}.{rest}", b64(b"[1,2]")), // header not an object
        format!("{}.{rest}", b64(b"not json")),
        format!("{h}=.{rest}"), // padding is not base64url-no-pad
        format!("{}.{rest}", b64(&[0xff, 0xfe, 0x7b])), // not UTF-8
    ] {
        assert_eq!(rejected(&v, &token), TokenError::InvalidToken, "{token:?}");
    }
}

#[test]
fn tokens_over_64_kib_are_invalid_before_decoding() {
    let v = hs256_verifier();
    let mut claims = valid_claims();
    claims["pad"] = json!("x".repeat(MAX_TOKEN_BYTES));
    let big = hs256_claims(claims);
    assert!(big.len() > MAX_TOKEN_BYTES);
    assert_eq!(rejected(&v, &big), TokenError::InvalidToken);
    // Garbage of that size is rejected the same way (it would otherwise be an alg mismatch).
    assert_eq!(
        rejected(&v, &"a".repeat(16 << 20)),
        TokenError::InvalidToken
    );
    let mut claims = valid_claims();
    claims["pad"] = json!("x".repeat(40_000));
    assert!(
        v.check(&hs256_claims(claims), NOW).is_ok(),
        "40 KB tokens are fine"
    );
}

// ---- 2. Algorithm ---------------------------------------------------------------------------

#[test]
fn header_alg_must_equal_the_configured_alg_exactly() {
    let v = hs256_verifier();
    let payload = valid_claims().to_string();
    for header in [
        r#"{"alg":"none"}"#,
        r#"{"typ":"JWT"}"#,
        r#"{"alg":"hs256"}"#,
        r#"{"alg":"HS384"}"#,
        r#"{"alg":["HS256"]}"#,
        r#"{"alg":null}"#,
    ] {
        assert_eq!(
            rejected(&v, &hs256_token(SECRET, header, &payload)),
            TokenError::AlgorithmMismatch,
            "{header}"
        );
    }
    // Spec §5: the unsigned empty-claims token in secure HS256 mode.
    assert_eq!(
        message(&v, "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.e30."),
        "Signing algorithm mismatch"
    );
}

#[test]
fn key_selection_headers_are_ignored() {
    let v = hs256_verifier();
    let payload = valid_claims().to_string();
    for header in [
        r#"{"alg":"HS256","kid":"other-key"}"#,
        r#"{"alg":"HS256","jku":"https://evil.example/jwks"}"#,
        r#"{"alg":"HS256","jwk":{"kty":"oct","k":"AAAA"}}"#,
        r#"{"alg":"HS256","x5u":"https://evil.example/cert"}"#,
    ] {
        assert!(
            v.check(&hs256_token(SECRET, header, &payload), NOW).is_ok(),
            "{header}"
        );
        // ... and cannot make a token signed with another key pass.
        let forged = hs256_token("attacker-chosen-secret-32-bytes!", header, &payload);
        assert_eq!(
            rejected(&v, &forged),
            TokenError::InvalidSignature,
            "{header}"
        );
    }
}

#[test]
fn hs256_token_signed_with_the_public_key_text_is_a_mismatch_under_rs256() {
    let f = fixtures();
    let pem = f["keys"]["RSA"]["public_spki"].as_str().unwrap();
    let v = verifier(&secure("RS256", pem));
    let confused = hs256_token(pem, HEADER, &valid_claims().to_string());
    assert_eq!(message(&v, &confused), "Signing algorithm mismatch");
}

// ---- 3. Signature ---------------------------------------------------------------------------

#[test]
fn bad_empty_or_undecodable_signatures() {
    let v = hs256_verifier();
    let good = hs256_claims(valid_claims());
    let (input, sig) = good.rsplit_once('.').unwrap();
    let mut flipped = sig.to_string().into_bytes();
    flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
    for token in [
        format!("{input}."),
        format!("{input}.{}", String::from_utf8(flipped).unwrap()),
        format!("{input}.{}", &sig[..sig.len() - 2]), // truncated tag
        format!("{input}.{sig}AA"),                   // extended tag
        format!("{input}.!!!"),
        hs256_token(
            "another-secret-that-is-32-bytes!",
            HEADER,
            &valid_claims().to_string(),
        ),
    ] {
        assert_eq!(message(&v, &token), "Invalid token signature", "{token}");
    }
}

#[test]
fn signature_is_checked_before_the_payload_is_read() {
    let v = hs256_verifier();
    // A forged token with garbage claims reports the signature, not the claims.
    let forged = format!(
        "{}.{}.{}",
        b64(HEADER.as_bytes()),
        b64(b"{\"exp\": 1}"),
        b64(b"sig")
    );
    assert_eq!(rejected(&v, &forged), TokenError::InvalidSignature);
}

// ---- 4. Payload -----------------------------------------------------------------------------

#[test]
fn payload_must_be_a_base64url_json_object() {
    let v = hs256_verifier();
    for payload in ["[]", "\"sub\"", "42", "null", "{bad json", "{\"a\":1}{}"] {
        assert_eq!(
            rejected(&v, &hs256_token(SECRET, HEADER, payload)),
            TokenError::InvalidToken,
            "{payload}"
        );
    }
    let deep = format!(
        "{{\"sub\":\"u\",\"iat\":1,\"exp\":{},\"d\":{}{}}}",
        NOW,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert_eq!(
        rejected(&v, &hs256_token(SECRET, HEADER, &deep)),
        TokenError::InvalidToken
    );
    // Not UTF-8 inside a correctly signed token: a stray byte, an overlong NUL, a UTF-8-encoded
    // surrogate.
    use hmac::Mac;
    for bad in [&[0xff][..], &[0xc0, 0x80], &[0xed, 0xa0, 0x80]] {
        let json = [br#"{"sub":""#, bad, br#"","iat":1,"exp":4102444800}"#].concat();
        let input = format!("{}.{}", b64(HEADER.as_bytes()), b64(&json));
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        let token = format!("{input}.{}", b64(&mac.finalize().into_bytes()));
        assert_eq!(rejected(&v, &token), TokenError::InvalidToken, "{bad:x?}");
    }
}

#[test]
fn nul_characters_and_broken_unicode_in_the_payload_are_invalid_tokens() {
    let v = hs256_verifier();
    let claims = |extra: &str| format!(r#"{{"sub":"u","iat":1,"exp":{},{extra}}}"#, NOW + 10);
    // Postgres text and jsonb cannot hold U+0000, wherever it hides.
    for extra in [
        r#""name":"a\u0000b""#,
        r#""a\u0000":1"#,
        r#""deep":{"list":[1,{"x":"\u0000"}]}"#,
        r#""ns":{"k\u0000":true}"#,
    ] {
        let token = hs256_token(SECRET, HEADER, &claims(extra));
        assert_eq!(rejected(&v, &token), TokenError::InvalidToken, "{extra}");
        let unsigned = format!("{}.{}", b64(b"{}"), b64(claims(extra).as_bytes()));
        assert_eq!(
            rejected(&verifier(&insecure()), &unsigned),
            TokenError::InvalidToken,
            "insecure {extra}"
        );
    }
    // A raw NUL byte and a lone surrogate escape.
    for extra in ["\"name\":\"a\0b\"", r#""name":"\ud800""#] {
        let token = hs256_token(SECRET, HEADER, &claims(extra));
        assert_eq!(rejected(&v, &token), TokenError::InvalidToken, "{extra:?}");
    }
    // An escaped backslash followed by "u0000" is six ordinary characters.
    let literal = hs256_token(SECRET, HEADER, &claims(r#""name":"\\u0000""#));
    let verified = v.check(&literal, NOW).expect("a literal backslash is fine");
    assert_eq!(verified.claims["name"], "\\u0000");
    // A proper surrogate pair is one character.
    let emoji = hs256_token(SECRET, HEADER, &claims(r#""name":"\ud83d\ude00""#));
    assert_eq!(v.check(&emoji, NOW).unwrap().claims["name"], "\u{1f600}");
}

#[test]
fn duplicate_claim_keys_resolve_to_the_last_one_like_json_parse() {
    let v = hs256_verifier();
    let payload = format!(
        r#"{{"sub":"first","sub":"last","iat":{},"exp":{}}}"#,
        NOW,
        NOW + 10
    );
    assert_eq!(
        v.check(&hs256_token(SECRET, HEADER, &payload), NOW)
            .unwrap()
            .user_id,
        "last"
    );
}

// ---- 5. Time claims -------------------------------------------------------------------------

#[test]
fn time_claim_boundaries_at_exactly_now_plus_or_minus_drift() {
    for drift in [0i64, 2, 60] {
        let v = verifier(&Settings {
            clock_drift: drift,
            ..secure("HS256", SECRET)
        });
        let check =
            |claims: serde_json::Value| verify_at(&v, &hs256_claims(claims), NOW).map(|_| ());
        // iat valid iff iat - D <= now
        assert_eq!(
            check(json!({"sub":"u","iat": NOW + drift, "exp": NOW + 999})),
            Ok(())
        );
        assert_eq!(
            check(json!({"sub":"u","iat": NOW + drift + 1, "exp": NOW + 999})),
            Err(format!("Invalid \"iat\" claim value: {}", NOW + drift + 1))
        );
        // nbf valid iff nbf - D <= now
        assert_eq!(
            check(json!({"sub":"u","iat": NOW, "nbf": NOW + drift, "exp": NOW + 999})),
            Ok(())
        );
        assert_eq!(
            check(json!({"sub":"u","iat": NOW, "nbf": NOW + drift + 1, "exp": NOW + 999})),
            Err("Token is not yet valid".into())
        );
        // exp valid iff exp + D >= now
        assert_eq!(
            check(json!({"sub":"u","iat": NOW - 999, "exp": NOW - drift})),
            Ok(())
        );
        assert_eq!(
            check(json!({"sub":"u","iat": NOW - 999, "exp": NOW - drift - 1})),
            Err("Expired token".into())
        );
    }
}

#[test]
fn fractional_times_are_accepted_and_compared_exactly() {
    let v = verifier(&Settings {
        clock_drift: 0,
        ..secure("HS256", SECRET)
    });
    let ok = hs256_claims(json!({"sub":"u","iat": NOW as f64 - 0.5, "exp": NOW as f64 + 0.25}));
    assert!(v.check(&ok, NOW).is_ok());
    let expired = hs256_claims(json!({"sub":"u","iat": NOW - 9, "exp": NOW as f64 - 0.25}));
    assert_eq!(rejected(&v, &expired), TokenError::Expired);
}

#[test]
fn non_numeric_time_claims_are_invalid_values_not_crashes() {
    let v = hs256_verifier();
    for (claim, value, shown) in [
        ("iat", json!("1700000000"), r#""1700000000""#),
        ("nbf", json!(null), "null"),
        ("exp", json!(true), "true"),
        ("exp", json!({"t": 1}), r#"{"t":1}"#),
        ("iat", json!([1]), "[1]"),
    ] {
        let mut claims = valid_claims();
        claims[claim] = value;
        assert_eq!(
            message(&v, &hs256_claims(claims)),
            format!("Invalid \"{claim}\" claim value: {shown}")
        );
    }
}

#[test]
fn huge_numbers_are_handled() {
    let v = hs256_verifier();
    let far = r#"{"sub":"u","iat":1,"exp":1e300}"#;
    assert!(v.check(&hs256_token(SECRET, HEADER, far), NOW).is_ok());
    let past = r#"{"sub":"u","iat":1,"exp":-1e300}"#;
    assert_eq!(
        rejected(&v, &hs256_token(SECRET, HEADER, past)),
        TokenError::Expired
    );
    let big_int = r#"{"sub":"u","iat":1,"exp":123456789012345678901234567890}"#;
    assert!(v.check(&hs256_token(SECRET, HEADER, big_int), NOW).is_ok());
    let overflow = r#"{"sub":"u","iat":1,"exp":1e400}"#; // not representable: invalid JSON for us
    assert_eq!(
        rejected(&v, &hs256_token(SECRET, HEADER, overflow)),
        TokenError::InvalidToken
    );
}

/// Postgres `jsonb` stores numbers as `numeric`: a payload number it cannot hold would make
/// `verify()` fail with 22003 after `user_id()` accepted the token, so both refuse it.
#[test]
fn numbers_jsonb_cannot_hold_are_invalid_tokens() {
    let v = hs256_verifier();
    let claims = |extra: &str| format!(r#"{{"sub":"u","iat":1,"exp":{},{extra}}}"#, NOW + 10);
    let long_fraction = format!("0.{}1", "0".repeat(16_383));
    for extra in [
        r#""tiny":1e-20000"#.to_owned(),
        r#""zero":0e-16384"#.to_owned(),
        r#""zero":0E+1073741823"#.to_owned(),
        r#""deep":{"list":[1,{"x":-2.5e-99999}]}"#.to_owned(),
        format!(r#""long":{long_fraction}"#),
        // Under a key given twice: jsonb_in reads the number the map no longer holds.
        r#""n":1e-20000,"n":1"#.to_owned(),
    ] {
        let token = hs256_token(SECRET, HEADER, &claims(&extra));
        assert_eq!(
            rejected(&v, &token),
            TokenError::InvalidToken,
            "{}",
            &extra[..20]
        );
        let unsigned = format!("{}.{}", b64(b"{}"), b64(claims(&extra).as_bytes()));
        assert_eq!(
            rejected(&verifier(&insecure()), &unsigned),
            TokenError::InvalidToken,
            "insecure {}",
            &extra[..20]
        );
    }
    // At the limits, and in strings, they are fine.
    for extra in [
        r#""tiny":1e-16383"#.to_owned(),
        r#""zero":0e1073741822"#.to_owned(),
        r#""s":"1e-20000""#.to_owned(),
        format!(r#""long":{}"#, &long_fraction[..16_385]),
    ] {
        let token = hs256_token(SECRET, HEADER, &claims(&extra));
        assert!(v.check(&token, NOW).is_ok(), "{}", &extra[..15]);
    }
}

#[test]
fn time_claims_are_checked_iat_then_nbf_then_exp() {
    let v = hs256_verifier();
    let all_bad = json!({"sub":"u","iat": NOW + 100, "nbf": NOW + 100, "exp": NOW - 100});
    assert_eq!(
        message(&v, &hs256_claims(all_bad)),
        format!("Invalid \"iat\" claim value: {}", NOW + 100)
    );
    let nbf_exp = json!({"sub":"u","iat": NOW, "nbf": NOW + 100, "exp": NOW - 100});
    assert_eq!(
        message(&v, &hs256_claims(nbf_exp)),
        "Token is not yet valid"
    );
}

#[test]
fn iat_has_no_maximum_age() {
    let v = hs256_verifier();
    assert!(v
        .check(
            &hs256_claims(json!({"sub":"u","iat": 0, "exp": NOW + 1})),
            NOW
        )
        .is_ok());
}

// ---- 6. iss / aud ---------------------------------------------------------------------------

fn with_iss_aud(iss: Option<&str>, aud: Option<&str>) -> electric_auth_core::Verifier {
    verifier(&Settings {
        jwt_iss: iss.map(Into::into),
        jwt_aud: aud.map(Into::into),
        ..secure("HS256", SECRET)
    })
}

#[test]
fn iss_must_equal_when_configured() {
    let v = with_iss_aud(Some("https://issuer.example"), None);
    let mut claims = valid_claims();
    claims["iss"] = json!("https://issuer.example");
    assert!(v.check(&hs256_claims(claims.clone()), NOW).is_ok());
    claims["iss"] = json!("https://other.example");
    assert_eq!(
        message(&v, &hs256_claims(claims.clone())),
        r#"Invalid "iss" claim value: "https://other.example""#
    );
    claims["iss"] = json!(7);
    assert_eq!(
        message(&v, &hs256_claims(claims)),
        r#"Invalid "iss" claim value: 7"#
    );
    assert_eq!(
        message(&v, &hs256_claims(valid_claims())),
        r#"Missing required "iss" claim"#
    );
}

#[test]
fn aud_may_be_a_string_or_an_array_containing_it() {
    let v = with_iss_aud(None, Some("electric"));
    let mut claims = valid_claims();
    for good in [json!("electric"), json!(["other", "electric"])] {
        claims["aud"] = good;
        assert!(v.check(&hs256_claims(claims.clone()), NOW).is_ok());
    }
    for (bad, shown) in [
        (json!("other"), r#""other""#),
        (json!(["a", "b"]), r#"["a","b"]"#),
        (json!([]), "[]"),
        (json!(1), "1"),
    ] {
        claims["aud"] = bad;
        assert_eq!(
            message(&v, &hs256_claims(claims.clone())),
            format!("Invalid \"aud\" claim value: {shown}")
        );
    }
    assert_eq!(
        message(&v, &hs256_claims(valid_claims())),
        r#"Missing required "aud" claim"#
    );
}

#[test]
fn iss_and_aud_are_not_checked_when_not_configured() {
    let v = hs256_verifier();
    let mut claims = valid_claims();
    claims["iss"] = json!(42);
    claims["aud"] = json!({"any": "thing"});
    assert!(v.check(&hs256_claims(claims), NOW).is_ok());
}

// ---- 7. Required claims ---------------------------------------------------------------------

#[test]
fn iat_and_exp_are_required_in_secure_mode() {
    let v = hs256_verifier();
    assert_eq!(
        message(&v, &hs256_claims(json!({"sub":"u","exp": NOW + 1}))),
        r#"Missing required "iat" claim"#
    );
    assert_eq!(
        message(&v, &hs256_claims(json!({"sub":"u","iat": NOW}))),
        r#"Missing required "exp" claim"#
    );
    assert_eq!(
        message(&v, &hs256_claims(json!({"sub":"u"}))),
        r#"Missing required "iat" claim"#
    );
}

#[test]
fn present_but_invalid_is_reported_before_missing() {
    let v = with_iss_aud(Some("me"), Some("electric"));
    // exp missing, but the present iss is wrong: the wrong value wins.
    let claims = json!({"sub":"u","iat": NOW, "iss": "you"});
    assert_eq!(
        message(&v, &hs256_claims(claims)),
        r#"Invalid "iss" claim value: "you""#
    );
    // iat expired-looking and exp missing: the invalid time claim wins.
    let claims = json!({"sub":"u","iat": NOW + 100});
    assert_eq!(
        message(&v, &hs256_claims(claims)),
        format!("Invalid \"iat\" claim value: {}", NOW + 100)
    );
    // Required order: iat, exp, iss, aud.
    let claims = json!({"sub":"u","iat": NOW, "exp": NOW + 1});
    assert_eq!(
        message(&v, &hs256_claims(claims)),
        r#"Missing required "iss" claim"#
    );
}

// ---- 8 / §4. User id ------------------------------------------------------------------------

#[test]
fn user_id_from_sub_or_legacy_user_id() {
    let v = hs256_verifier();
    let id = |extra: serde_json::Value| {
        let mut claims = json!({"iat": NOW, "exp": NOW + 1});
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        verify_at(&v, &hs256_claims(claims), NOW).map(|t| t.user_id)
    };
    let missing = Err("Missing or invalid 'user_id'".to_string());
    assert_eq!(id(json!({"sub": "abc"})), Ok("abc".into()));
    assert_eq!(
        id(json!({"sub": "  padded  "})),
        Ok("  padded  ".into()),
        "returned untrimmed"
    );
    assert_eq!(id(json!({"user_id": "legacy"})), Ok("legacy".into()));
    assert_eq!(
        id(json!({"sub": null, "user_id": "legacy"})),
        Ok("legacy".into())
    );
    assert_eq!(
        id(json!({"sub": "new", "user_id": "legacy"})),
        Ok("new".into())
    );
    assert_eq!(
        id(json!({"sub": "", "user_id": "legacy"})),
        missing,
        "empty sub is no fallback"
    );
    assert_eq!(
        id(json!({"sub": 42, "user_id": "legacy"})),
        missing,
        "non-string sub is no fallback"
    );
    assert_eq!(id(json!({"sub": " \t "})), missing);
    assert_eq!(id(json!({"user_id": 1})), missing);
    assert_eq!(id(json!({})), missing);
}

#[test]
fn user_id_inside_a_literal_namespace_key() {
    let ns = "https://example.com/jwt/claims";
    let v = verifier(&Settings {
        jwt_namespace: Some(ns.into()),
        ..secure("HS256", SECRET)
    });
    let base = json!({"iat": NOW, "exp": NOW + 1});
    let with = |extra: serde_json::Value| {
        let mut claims = base.clone();
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        verify_at(&v, &hs256_claims(claims), NOW).map(|t| t.user_id)
    };
    let missing = Err("Missing or invalid 'user_id'".to_string());
    assert_eq!(with(json!({ns: {"sub": "in-ns"}})), Ok("in-ns".into()));
    assert_eq!(
        with(json!({ns: {"user_id": "legacy-in-ns"}})),
        Ok("legacy-in-ns".into())
    );
    assert_eq!(
        with(json!({"sub": "top-level"})),
        missing,
        "no fallback to the top level"
    );
    assert_eq!(with(json!({ns: "sub"})), missing, "non-object namespace");
    assert_eq!(
        with(json!({"https://example": {"com/jwt/claims": {"sub": "split"}}})),
        missing,
        "never split"
    );
}

// ---- Insecure mode --------------------------------------------------------------------------

#[test]
fn insecure_mode_reads_only_the_payload() {
    let v = verifier(&insecure());
    let payload = b64(br#"{"sub":"dev"}"#);
    for token in [
        format!("{}.{payload}.", b64(br#"{"alg":"none"}"#)),
        format!("{}.{payload}", b64(br#"{"alg":"none"}"#)),
        format!("garbage-header.{payload}.garbage-signature"),
        hs256_claims(json!({"sub": "dev"})),
    ] {
        assert_eq!(
            v.check(&token, NOW).map(|t| t.user_id),
            Ok("dev".into()),
            "{token}"
        );
    }
    for token in [
        "",
        "only-one-part",
        &format!("a.{payload}.c.d"),
        "a.!!!.c",
        &format!("a.{}", b64(b"[]")),
    ] {
        assert_eq!(rejected(&v, token), TokenError::InvalidToken, "{token}");
    }
}

#[test]
fn insecure_mode_validates_time_claims_but_requires_only_the_user_id() {
    let v = verifier(&insecure());
    let tok = |claims: serde_json::Value| format!("x.{}", b64(claims.to_string().as_bytes()));
    assert!(v.check(&tok(json!({"sub": "u"})), NOW).is_ok());
    assert_eq!(
        message(&v, &tok(json!({"sub": "u", "exp": NOW - 100}))),
        "Expired token"
    );
    assert_eq!(
        message(&v, &tok(json!({"sub": "u", "nbf": NOW + 100}))),
        "Token is not yet valid"
    );
    assert_eq!(
        message(&v, &tok(json!({"sub": "u", "iat": "yesterday"}))),
        r#"Invalid "iat" claim value: "yesterday""#
    );
    assert!(
        v.check(&tok(json!({"sub": "u", "iss": 1, "aud": false})), NOW)
            .is_ok(),
        "iss/aud unchecked"
    );
    assert_eq!(
        message(&v, &tok(json!({"iat": NOW}))),
        "Missing or invalid 'user_id'"
    );
}

// ---- §5 Examples ----------------------------------------------------------------------------

#[test]
fn docs_es256_token_verifies_its_signature_and_is_expired() {
    let v = verifier(&secure("ES256", DOCS_ES256_PRIVATE_KEY));
    assert_eq!(message(&v, DOCS_ES256_TOKEN), "Expired token");
    // Back when it was fresh, it is accepted with the legacy user_id claim.
    assert_eq!(
        v.check(DOCS_ES256_TOKEN, 1_684_750_000).unwrap().user_id,
        "1"
    );
    let other = fixtures()["keys"]["P-256"]["public_spki"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        message(&verifier(&secure("ES256", &other)), DOCS_ES256_TOKEN),
        "Invalid token signature"
    );
}

#[test]
fn docs_unsigned_token_in_insecure_mode() {
    let v = verifier(&insecure());
    let token = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJ1c2VyX2lkIjoiMSIsImlhdCI6MTY4NDg3ODEwM30.";
    let verified = v.check(token, NOW).unwrap();
    assert_eq!(verified.user_id, "1");
    assert_eq!(verified.claims["iat"], json!(1684878103));
    assert_eq!(verified.expires_at, None);
}

#[test]
fn a_crit_header_is_an_invalid_token_in_secure_mode() {
    // (Deviation) RFC 7515 §4.1.11: extensions listed in `crit` must be understood; we
    // understand none, so a correctly signed token carrying `crit` is refused.
    let v = hs256_verifier();
    let payload = valid_claims().to_string();
    for header in [
        r#"{"alg":"HS256","crit":["b64"],"b64":false}"#,
        r#"{"alg":"HS256","crit":["https://example.com/unknown"],"https://example.com/unknown":1}"#,
        r#"{"alg":"HS256","crit":[]}"#,
        r#"{"alg":"HS256","crit":null}"#,
    ] {
        let token = hs256_token(SECRET, header, &payload);
        assert_eq!(rejected(&v, &token), TokenError::InvalidToken, "{header}");
    }
    // The same payload without `crit` verifies.
    let plain = hs256_token(SECRET, r#"{"alg":"HS256"}"#, &payload);
    assert!(v.check(&plain, NOW).is_ok());
}
