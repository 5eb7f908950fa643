//! Verification keys: parsed once from the settings (spec §1 "Key formats"), then used to check
//! JWS signatures.
//!
//! The key formats the spec accepts are read by our own code in front of jsonwebtoken (see
//! [`super::pem`]): `\n`-escaped and one-line PEM, certificates, PKCS#1, and private keys reduced
//! to their public half. The public key then becomes a jsonwebtoken [`DecodingKey`], whose PEM
//! parser extracts the key from SPKI and certificates, and the RSA size and EC curve are checked.
//!
//! Signatures are checked on AWS-LC, by the path measured fastest for each algorithm
//! (`cargo run --release -p electric_auth_core --example verify_paths`; figures in the README):
//!
//! | algorithm | path | why |
//! |---|---|---|
//! | ES384 | jsonwebtoken `crypto::verify` | its per-call key parse is lost in P-384's cost (≤ 1.0× of AWS-LC alone) |
//! | ES256 | aws-lc-rs `ParsedPublicKey` | jsonwebtoken re-parses the key per call: 1.06× before the rest of the verify, no headroom under 1.1× |
//! | RS256/384/512 | aws-lc-rs `ParsedPublicKey` | jsonwebtoken: 1.11–1.19× (key re-parsed per call) |
//! | ES512 | aws-lc-rs `ParsedPublicKey` | jsonwebtoken has no ES512 |
//! | HS256/384/512 | aws-lc-rs `hmac::Key` | jsonwebtoken re-keys the HMAC per call: about 2× |
//! | PS256/384/512, EdDSA | aws-lc-rs `ParsedPublicKey` | as RS (beyond Electric; not measured apart) |
//!
//! A key also comes from a JWK ([`VerifyingKey::from_jwk`]), which jsonwebtoken parses; see
//! `key_set.rs` for sets of keys.
//!
//! Every path is the same AWS-LC (jsonwebtoken's `aws_lc_rs` backend calls aws-lc-rs); HMAC
//! tags are compared in constant time.

use super::pem::{self, PemBlock};
use crate::algorithm::{Algorithm, AlgorithmFamily};
use crate::error::ConfigError;
use aws_lc_rs::signature::{self, KeyPair, ParsedPublicKey, VerificationAlgorithm};
use aws_lc_rs::{hmac, rsa};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{DecodingKey, DecodingKeyKind};
use std::fmt;

/// Electric's documented minimum RSA modulus size.
pub const MIN_RSA_BITS: u32 = 2048;

/// A parsed key, ready to check signatures for one algorithm. Never prints its material.
// One key lives per backend, already boxed in `Config`; boxing the large HMAC state again
// would only add an indirection to every verification.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum VerifyingKey {
    /// An HMAC key, keyed once.
    Hmac(hmac::Key),
    /// An RSA or EC public key, parsed once. (AWS-LC's `*_FIXED` ECDSA algorithms take the JWS
    /// form of a signature, `r || s`, and refuse any other length.)
    Public {
        key: ParsedPublicKey,
        family: AlgorithmFamily,
    },
    /// A public key checked through jsonwebtoken's own `crypto::verify`.
    Jsonwebtoken {
        key: DecodingKey,
        alg: jsonwebtoken::Algorithm,
    },
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            VerifyingKey::Hmac(_) => "HMAC secret",
            VerifyingKey::Public {
                family: AlgorithmFamily::Rsa,
                ..
            } => "RSA public key",
            VerifyingKey::Public {
                family: AlgorithmFamily::Ed,
                ..
            } => "Ed25519 public key",
            VerifyingKey::Public { .. } | VerifyingKey::Jsonwebtoken { .. } => "EC public key",
        };
        write!(f, "VerifyingKey({what}, redacted)")
    }
}

/// AWS-LC's verification algorithm for a JWS asymmetric algorithm.
fn verification_algorithm(alg: Algorithm) -> &'static dyn VerificationAlgorithm {
    use Algorithm::*;
    match alg {
        RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        // RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash (what AWS-LC checks).
        PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        ES384 => &signature::ECDSA_P384_SHA384_FIXED,
        EdDSA => &signature::ED25519,
        _ => &signature::ECDSA_P521_SHA512_FIXED,
    }
}

/// The signing algorithm of the same curve, used only to read an EC private key.
fn ec_signing_algorithm(alg: Algorithm) -> &'static signature::EcdsaSigningAlgorithm {
    match alg {
        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        _ => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
    }
}

impl VerifyingKey {
    /// An HMAC key from the secret's bytes (already base64-decoded where configured).
    /// The minimum length is the hash output size: 32, 48 or 64 bytes.
    pub fn hmac(alg: Algorithm, secret: &[u8]) -> Result<VerifyingKey, ConfigError> {
        let min_bytes = alg.hash_bits() as usize / 8;
        if secret.len() < min_bytes {
            return Err(ConfigError::KeyTooShort { alg, min_bytes });
        }
        let algorithm = match alg {
            Algorithm::HS256 => hmac::HMAC_SHA256,
            Algorithm::HS384 => hmac::HMAC_SHA384,
            Algorithm::HS512 => hmac::HMAC_SHA512,
            _ => return Err(ConfigError::KeyInvalid { alg }),
        };
        Ok(VerifyingKey::Hmac(hmac::Key::new(algorithm, secret)))
    }

    /// An RSA or EC public key from PEM text: SPKI, PKCS#1 RSA public, PKCS#8 / RSA / EC
    /// private keys (only the public half is kept) or an X.509 certificate. Line breaks may be
    /// real, written as the two characters `\n`, or replaced by spaces (one-line PEM).
    pub fn from_pem(alg: Algorithm, text: &str) -> Result<VerifyingKey, ConfigError> {
        let invalid = || ConfigError::KeyInvalid { alg };
        let block = pem::decode(text).ok_or_else(invalid)?;
        let decoding_key = decoding_key(alg, &block).ok_or_else(invalid)?;
        VerifyingKey::from_decoding_key(alg, decoding_key)
    }

    /// A key from one JWK, for `alg`: an `oct` secret for HS, `RSA` for RS/PS, `EC` on the
    /// algorithm's curve for ES, `OKP` `Ed25519` for EdDSA. Whether the JWK *may* be used
    /// (`use`, `key_ops`, `alg`) is decided in `key_set.rs`; this only reads the material.
    pub fn from_jwk(alg: Algorithm, jwk: &Jwk) -> Result<VerifyingKey, ConfigError> {
        let invalid = || ConfigError::KeyInvalid { alg };
        if !jwk_fits(alg, jwk) {
            return Err(invalid());
        }
        let decoding_key = DecodingKey::from_jwk(jwk).map_err(|_| invalid())?;
        match decoding_key.kind() {
            DecodingKeyKind::SecretOrDer(secret) if alg.family() == AlgorithmFamily::Hmac => {
                VerifyingKey::hmac(alg, secret)
            }
            DecodingKeyKind::RsaModulusExponent { n, e } => VerifyingKey::from_decoding_key(
                alg,
                DecodingKey::from_rsa_der(&pem::rsa_public_key_der(n, e)),
            ),
            DecodingKeyKind::SecretOrDer(_) => VerifyingKey::from_decoding_key(alg, decoding_key),
        }
    }

    /// A public key of `alg`'s family, as jsonwebtoken holds it (an RSA key as a PKCS#1
    /// `RSAPublicKey`, an EC key as an uncompressed point, an Ed25519 key as its 32 bytes).
    fn from_decoding_key(
        alg: Algorithm,
        decoding_key: DecodingKey,
    ) -> Result<VerifyingKey, ConfigError> {
        let invalid = || ConfigError::KeyInvalid { alg };
        let DecodingKeyKind::SecretOrDer(public) = decoding_key.kind() else {
            return Err(invalid());
        };
        if alg.family() == AlgorithmFamily::Rsa {
            let bits = pem::rsa_modulus_bits(public).ok_or_else(invalid)?;
            if bits < MIN_RSA_BITS {
                return Err(ConfigError::RsaKeyTooSmall {
                    alg,
                    bits,
                    min_bits: MIN_RSA_BITS,
                });
            }
        }
        // AWS-LC validates the key: an RSA structure, or a point on the algorithm's curve.
        let key = ParsedPublicKey::new(verification_algorithm(alg), public.as_slice())
            .map_err(|_| invalid())?;
        if alg == Algorithm::ES384 {
            return Ok(VerifyingKey::Jsonwebtoken {
                key: decoding_key,
                alg: jsonwebtoken::Algorithm::ES384,
            });
        }
        Ok(VerifyingKey::Public {
            key,
            family: alg.family(),
        })
    }

    /// Checks a JWS signature over `message` (`header.payload`): `signature` is the decoded
    /// bytes of `signature_b64`, the token's third part. Any malformed signature is simply "not
    /// valid".
    pub fn verify(&self, message: &[u8], signature: &[u8], signature_b64: &str) -> bool {
        match self {
            VerifyingKey::Jsonwebtoken { key, alg } => {
                jsonwebtoken::crypto::verify(signature_b64, message, key, *alg).unwrap_or(false)
            }
            // Constant-time comparison of the full-length tag, computed into a buffer here
            // (`hmac::verify` moves its context and the tag by value: ~5% of HS256 user_id).
            VerifyingKey::Hmac(key) => {
                let mut tag = [0u8; aws_lc_rs::digest::MAX_OUTPUT_LEN];
                hmac::sign_to_buffer(key, message, &mut tag).is_ok_and(|tag| {
                    aws_lc_rs::constant_time::verify_slices_are_equal(tag, signature).is_ok()
                })
            }
            VerifyingKey::Public { key, .. } => key.verify_sig(message, signature).is_ok(),
        }
    }
}

/// Whether a JWK's `kty` (and curve) is the key type `alg` verifies with.
pub(crate) fn jwk_fits(alg: Algorithm, jwk: &Jwk) -> bool {
    match (&jwk.algorithm, alg.family()) {
        (AlgorithmParameters::OctetKey(_), AlgorithmFamily::Hmac)
        | (AlgorithmParameters::RSA(_), AlgorithmFamily::Rsa) => true,
        (AlgorithmParameters::EllipticCurve(ec), AlgorithmFamily::Ec) => {
            ec.curve
                == match alg {
                    Algorithm::ES256 => EllipticCurve::P256,
                    Algorithm::ES384 => EllipticCurve::P384,
                    _ => EllipticCurve::P521,
                }
        }
        (AlgorithmParameters::OctetKeyPair(okp), AlgorithmFamily::Ed) => {
            okp.curve == EllipticCurve::Ed25519
        }
        _ => false,
    }
}

/// The public key of `block` as a jsonwebtoken [`DecodingKey`]: RSA keys as a PKCS#1
/// `RSAPublicKey`, EC keys as an uncompressed point, Ed25519 keys as their 32 bytes. Public keys
/// and certificates go through jsonwebtoken's own PEM parser; private keys are reduced to their
/// public half by AWS-LC first (the private material is dropped here). `None` when the block
/// holds no key of `alg`'s kind.
fn decoding_key(alg: Algorithm, block: &PemBlock) -> Option<DecodingKey> {
    if alg.family() == AlgorithmFamily::Ed {
        return match block.label.as_str() {
            "PUBLIC KEY" | "CERTIFICATE" => {
                DecodingKey::from_ed_pem(block.to_canonical_pem().as_bytes()).ok()
            }
            "PRIVATE KEY" => {
                // PKCS#8 v1 (no public key inside), as OpenSSL and Python's cryptography write it.
                let pair =
                    signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&block.der).ok()?;
                Some(DecodingKey::from_ed_der(pair.public_key().as_ref()))
            }
            _ => None,
        };
    }
    let rsa = alg.family() == AlgorithmFamily::Rsa;
    match block.label.as_str() {
        "PUBLIC KEY" | "RSA PUBLIC KEY" | "CERTIFICATE" => {
            let canonical = block.to_canonical_pem();
            if rsa {
                DecodingKey::from_rsa_pem(canonical.as_bytes()).ok()
            } else {
                DecodingKey::from_ec_pem(canonical.as_bytes()).ok()
            }
        }
        "PRIVATE KEY" if rsa => {
            let pair = rsa::KeyPair::from_pkcs8(&block.der).ok()?;
            Some(DecodingKey::from_rsa_der(pair.public_key().as_ref()))
        }
        "RSA PRIVATE KEY" if rsa => {
            let pair = rsa::KeyPair::from_der(&block.der).ok()?;
            Some(DecodingKey::from_rsa_der(pair.public_key().as_ref()))
        }
        "PRIVATE KEY" => {
            let pair =
                signature::EcdsaKeyPair::from_pkcs8(ec_signing_algorithm(alg), &block.der).ok()?;
            Some(DecodingKey::from_ec_der(pair.public_key().as_ref()))
        }
        "EC PRIVATE KEY" if !rsa => {
            let pair = signature::EcdsaKeyPair::from_private_key_der(
                ec_signing_algorithm(alg),
                &block.der,
            )
            .ok()?;
            Some(DecodingKey::from_ec_der(pair.public_key().as_ref()))
        }
        _ => None,
    }
}
