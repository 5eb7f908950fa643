//! AWS-LC alone, the limit both benchmark examples measure against: aws-lc-rs with the key
//! parsed once (`ParsedPublicKey::verify_sig`) or keyed once (`hmac::verify`), the signature
//! already decoded. Included by `bench_native.rs` and `verify_paths.rs`.
use aws_lc_rs::{hmac, signature};

/// A signature check: (message, decoded signature) -> valid.
pub type Check = dyn Fn(&[u8], &[u8]) -> bool;

/// AWS-LC's own check for `alg`, given the key text the settings hold.
pub fn raw_checker(alg: &str, key: &str) -> Box<Check> {
    let hmac_alg = match alg {
        "HS256" => Some(hmac::HMAC_SHA256),
        "HS384" => Some(hmac::HMAC_SHA384),
        "HS512" => Some(hmac::HMAC_SHA512),
        _ => None,
    };
    if let Some(hmac_alg) = hmac_alg {
        let key = hmac::Key::new(hmac_alg, key.as_bytes());
        return Box::new(move |msg, sig| hmac::verify(&key, msg, sig).is_ok());
    }
    let public = if alg.starts_with("RS") {
        jsonwebtoken::DecodingKey::from_rsa_pem(key.as_bytes()).unwrap()
    } else {
        jsonwebtoken::DecodingKey::from_ec_pem(key.as_bytes()).unwrap()
    };
    let jsonwebtoken::DecodingKeyKind::SecretOrDer(bytes) = public.kind() else {
        unreachable!("PEM keys are DER")
    };
    let verification: &'static dyn signature::VerificationAlgorithm = match alg {
        "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
        "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
        "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
        "ES256" => &signature::ECDSA_P256_SHA256_FIXED,
        "ES384" => &signature::ECDSA_P384_SHA384_FIXED,
        _ => &signature::ECDSA_P521_SHA512_FIXED,
    };
    let parsed = signature::ParsedPublicKey::new(verification, bytes).unwrap();
    Box::new(move |msg, sig| parsed.verify_sig(msg, sig).is_ok())
}
