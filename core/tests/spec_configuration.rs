//! Spec §1: settings, configuration errors, key formats.
mod common;
use common::*;
use electric_auth_core::{Config, ConfigError, Error, ErrorKind, Mode, Settings};

fn msg(settings: &Settings) -> String {
    config_error(settings).to_string()
}

#[test]
fn alg_not_set_whether_absent_empty_or_blank() {
    for alg in [None, Some(""), Some("   ")] {
        let s = Settings {
            jwt_alg: alg.map(Into::into),
            jwt_key: Some(SECRET.into()),
            ..Settings::new()
        };
        assert_eq!(msg(&s), "electric_auth.jwt_alg not set");
    }
}

#[test]
fn alg_must_be_one_of_the_thirteen_case_sensitive() {
    // Electric's nine, then PS256/384/512 and EdDSA (beyond Electric, issue 14).
    assert_eq!(
        msg(&secure("ES256K", SECRET)),
        r#"electric_auth.jwt_alg has invalid value: "ES256K". Must be one of ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"]"#
    );
    for bad in ["hs256", "none", "HS256 ", "eddsa", "Ed25519", "ps256"] {
        assert!(
            matches!(config_error(&secure(bad, SECRET)), ConfigError::AlgInvalid(ref v) if v == bad),
            "{bad}"
        );
    }
}

#[test]
fn key_not_set() {
    for key in [None, Some(""), Some(" \n\t")] {
        let s = Settings {
            jwt_alg: Some("HS256".into()),
            jwt_key: key.map(Into::into),
            ..Settings::new()
        };
        assert_eq!(msg(&s), "electric_auth.jwt_key not set");
    }
}

#[test]
fn hs_key_minimum_lengths() {
    for (alg, min) in [("HS256", 32), ("HS384", 48), ("HS512", 64)] {
        let short = "k".repeat(min - 1);
        assert_eq!(
            msg(&secure(alg, &short)),
            format!("electric_auth.jwt_key has to be at least {min} bytes long for {alg}")
        );
        verifier(&secure(alg, &"k".repeat(min)));
    }
}

#[test]
fn base64_key_is_decoded_before_the_length_check() {
    use base64::Engine;
    let std = base64::engine::general_purpose::STANDARD;
    // 32 raw bytes: long enough; its 44-character encoding would pass a naive check on 31 bytes.
    let ok = Settings {
        jwt_key_is_base64: true,
        ..secure("HS256", &std.encode([7u8; 32]))
    };
    verifier(&ok);
    let unpadded = Settings {
        jwt_key_is_base64: true,
        ..secure("HS256", std.encode([7u8; 32]).trim_end_matches('='))
    };
    verifier(&unpadded);
    let short = Settings {
        jwt_key_is_base64: true,
        ..secure("HS256", &std.encode([7u8; 31]))
    };
    assert_eq!(
        msg(&short),
        "electric_auth.jwt_key has to be at least 32 bytes long for HS256"
    );
    let invalid = Settings {
        jwt_key_is_base64: true,
        ..secure(
            "HS256",
            "not*base64!but-long-enough-to-pass-any-length-check",
        )
    };
    assert_eq!(
        msg(&invalid),
        "electric_auth.jwt_key has invalid base64 encoding"
    );
    let urlsafe = Settings {
        jwt_key_is_base64: true,
        ..secure("HS256", &"_-".repeat(30))
    };
    assert_eq!(
        msg(&urlsafe),
        "electric_auth.jwt_key has invalid base64 encoding",
        "standard alphabet only"
    );
}

#[test]
fn key_that_looks_like_base64_is_used_raw_when_flag_off() {
    let f = fixtures();
    let b64_key = f["keys"]["HS256-base64"]["secret_base64"].as_str().unwrap();
    let token = f["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["case"] == "base64_key")
        .unwrap()["token"]
        .as_str()
        .unwrap();
    let raw = verifier(&secure("HS256", b64_key));
    assert_eq!(message(&raw, token), "Invalid token signature");
    let decoded = verifier(&Settings {
        jwt_key_is_base64: true,
        ..secure("HS256", b64_key)
    });
    assert_eq!(decoded.check(token, NOW).unwrap().user_id, "b64-user");
}

#[test]
fn unusable_pem_keys_name_the_alg_and_hint_the_shape() {
    let f = fixtures();
    let k = &f["keys"];
    let cases = [
        ("RS256", "not a pem at all"),
        (
            "RS256",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
        ),
        ("RS256", k["P-256"]["public_spki"].as_str().unwrap()), // wrong key type
        ("ES256", k["RSA"]["public_spki"].as_str().unwrap()),   // wrong key type
        ("ES256", k["P-384"]["public_spki"].as_str().unwrap()), // wrong curve
        ("ES384", k["P-521"]["public_spki"].as_str().unwrap()), // wrong curve
        ("ES512", k["P-256"]["public_spki"].as_str().unwrap()), // wrong curve
        (
            "ES256",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
        ),
    ];
    for (alg, pem) in cases {
        let err = config_error(&secure(alg, pem));
        assert_eq!(err.to_string(), format!("electric_auth.jwt_key is not a valid key for electric_auth.jwt_alg={alg} or it has invalid format"));
        let hint = err.hint().expect("a hint");
        assert!(hint.contains("-----BEGIN PUBLIC KEY-----"), "{hint}");
        assert_eq!(Error::Config(err).kind(), ErrorKind::Configuration);
    }
}

#[test]
fn rsa_keys_under_2048_bits_are_refused() {
    let f = fixtures();
    let err = config_error(&secure(
        "RS256",
        f["keys"]["RSA1024"]["public_spki"].as_str().unwrap(),
    ));
    assert!(matches!(
        err,
        ConfigError::RsaKeyTooSmall {
            bits: 1024,
            min_bits: 2048,
            ..
        }
    ));
    assert!(err
        .to_string()
        .starts_with("electric_auth.jwt_key is not a valid key for electric_auth.jwt_alg=RS256"));
    assert!(err.to_string().contains("at least 2048"));
}

#[test]
fn insecure_mode_refuses_secure_only_settings_naming_the_first() {
    let hint = Some("Did you forget to set electric_auth.mode = secure?".to_string());
    let cases: [(&str, Settings); 5] = [
        (
            "electric_auth.jwt_alg",
            Settings {
                jwt_alg: Some("HS256".into()),
                jwt_iss: Some("x".into()),
                ..insecure()
            },
        ),
        (
            "electric_auth.jwt_key",
            Settings {
                jwt_key: Some("k".into()),
                jwt_aud: Some("x".into()),
                ..insecure()
            },
        ),
        (
            "electric_auth.jwt_key_is_base64",
            Settings {
                jwt_key_is_base64: true,
                jwt_iss: Some("x".into()),
                ..insecure()
            },
        ),
        (
            "electric_auth.jwt_iss",
            Settings {
                jwt_iss: Some("x".into()),
                jwt_aud: Some("y".into()),
                ..insecure()
            },
        ),
        (
            "electric_auth.jwt_aud",
            Settings {
                jwt_aud: Some("y".into()),
                ..insecure()
            },
        ),
    ];
    for (setting, s) in cases {
        let err = config_error(&s);
        assert_eq!(
            err.to_string(),
            format!("{setting} is not valid in insecure mode")
        );
        assert_eq!(err.hint(), hint);
    }
    // Namespace and clock drift belong to both modes; blank values count as not set.
    let ok = Settings {
        jwt_namespace: Some("ns".into()),
        jwt_alg: Some("  ".into()),
        clock_drift: 60,
        ..insecure()
    };
    assert_eq!(verifier(&ok).config().mode(), Mode::Insecure);
}

#[test]
fn every_pem_format_the_spec_lists_is_accepted() {
    let f = fixtures();
    let k = &f["keys"];
    let formats = [
        (
            "RS256",
            &k["RSA"],
            [
                "public_spki",
                "public_pkcs1",
                "private_pkcs8",
                "private_pkcs1",
                "certificate",
            ]
            .as_slice(),
        ),
        (
            "ES256",
            &k["P-256"],
            [
                "public_spki",
                "private_pkcs8",
                "private_sec1",
                "certificate",
            ]
            .as_slice(),
        ),
        (
            "ES384",
            &k["P-384"],
            [
                "public_spki",
                "private_pkcs8",
                "private_sec1",
                "certificate",
            ]
            .as_slice(),
        ),
        (
            "ES512",
            &k["P-521"],
            [
                "public_spki",
                "private_pkcs8",
                "private_sec1",
                "certificate",
            ]
            .as_slice(),
        ),
    ];
    for (alg, key, names) in formats {
        let token = standard_token(&f, alg, "pyjwt");
        for name in names {
            let pem = key[*name].as_str().unwrap();
            for variant in [
                pem.to_string(),
                pem.trim().replace('\n', "\\n"),
                pem.trim().replace('\n', " "),
            ] {
                let v = verifier(&secure(alg, &variant));
                assert_eq!(
                    v.check(&token, NOW).map(|t| t.user_id),
                    Ok(format!("user-{alg}")),
                    "{alg} {name}: {variant}"
                );
            }
        }
    }
}

#[test]
fn one_rsa_key_serves_all_three_rs_algorithms() {
    let f = fixtures();
    for alg in ["RS256", "RS384", "RS512"] {
        let v = verifier(&secure(
            alg,
            f["keys"]["RSA"]["public_spki"].as_str().unwrap(),
        ));
        assert_eq!(
            v.check(&standard_token(&f, alg, "node"), NOW)
                .unwrap()
                .user_id,
            format!("user-{alg}")
        );
    }
}

#[test]
fn key_material_never_appears_in_messages_or_debug_output() {
    let f = fixtures();
    let pem = f["keys"]["RSA"]["public_spki"].as_str().unwrap();
    let body_line = pem.lines().nth(1).unwrap();
    let wrong = config_error(&secure("ES256", pem));
    assert!(!wrong.to_string().contains(body_line) && !wrong.hint().unwrap().contains(body_line));
    let secret = "s3cr3t-".repeat(3);
    let short = config_error(&secure("HS256", &secret));
    assert!(!short.to_string().contains(&secret));
    let v = verifier(&secure("HS256", SECRET));
    assert!(
        !format!("{v:?}").contains(SECRET),
        "Debug must redact the key"
    );
}

pub fn standard_token(f: &serde_json::Value, alg: &str, library: &str) -> String {
    f["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| {
            t["case"] == "standard"
                && t["alg"] == alg
                && t["library"].as_str().unwrap().starts_with(library)
        })
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_parsed_key_never_prints_its_material() {
    for (settings, what) in [
        (secure("HS256", SECRET), "HMAC secret"),
        (
            secure(
                "RS256",
                fixtures()["keys"]["RSA"]["public_spki"].as_str().unwrap(),
            ),
            "RSA public key",
        ),
        (
            secure(
                "ES256",
                fixtures()["keys"]["P-256"]["public_spki"].as_str().unwrap(),
            ),
            "EC public key",
        ),
    ] {
        let shown = format!("{:?}", Config::from_settings(&settings).unwrap());
        assert!(
            shown.contains(&format!("VerifyingKey({what}, redacted)")),
            "{shown}"
        );
        assert!(!shown.contains(SECRET) && !shown.contains("MII"), "{shown}");
    }
}
