//! Verification keys: parsing them once from the settings (spec §1 "Key formats") and checking
//! a JWS signature with them.
//!
//! Backends, chosen on measured speed (see the README): HMAC with RustCrypto's `hmac`/`sha2`
//! (a pre-keyed state cloned per token, constant-time tag comparison); RSA PKCS#1 v1.5 and
//! ECDSA with OpenSSL, the same libcrypto the Postgres server links.

use crate::config::{Algorithm, AlgorithmFamily};
use crate::error::ConfigError;
use base64::Engine;
use hmac::{Hmac, Mac};
use openssl::bn::BigNum;
use openssl::ec::EcKey;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Rsa;
use openssl::x509::X509;
use std::fmt;

/// Electric's documented minimum RSA modulus size.
pub const MIN_RSA_BITS: u32 = 2048;

/// A parsed key, ready to check signatures for one algorithm. Never prints its material.
#[derive(Clone)]
pub enum VerifyingKey {
    Hs256(Hmac<sha2::Sha256>),
    Hs384(Hmac<sha2::Sha384>),
    Hs512(Hmac<sha2::Sha512>),
    Rsa {
        key: PKey<Public>,
        digest: MessageDigest,
    },
    /// `scalar_bytes` is the curve's coordinate size: a JWS signature is exactly `r || s`
    /// with each half that long (32, 48 or 66 bytes).
    Ec {
        key: EcKey<Public>,
        digest: MessageDigest,
        scalar_bytes: usize,
    },
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            VerifyingKey::Hs256(_) => "HS256 secret",
            VerifyingKey::Hs384(_) => "HS384 secret",
            VerifyingKey::Hs512(_) => "HS512 secret",
            VerifyingKey::Rsa { .. } => "RSA public key",
            VerifyingKey::Ec { .. } => "EC public key",
        };
        write!(f, "VerifyingKey({what}, redacted)")
    }
}

fn digest_for(alg: Algorithm) -> MessageDigest {
    match alg.hash_bits() {
        256 => MessageDigest::sha256(),
        384 => MessageDigest::sha384(),
        _ => MessageDigest::sha512(),
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
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
        let invalid = || ConfigError::KeyInvalid { alg };
        Ok(match alg {
            Algorithm::HS256 => {
                VerifyingKey::Hs256(Hmac::new_from_slice(secret).map_err(|_| invalid())?)
            }
            Algorithm::HS384 => {
                VerifyingKey::Hs384(Hmac::new_from_slice(secret).map_err(|_| invalid())?)
            }
            Algorithm::HS512 => {
                VerifyingKey::Hs512(Hmac::new_from_slice(secret).map_err(|_| invalid())?)
            }
            _ => return Err(invalid()),
        })
    }

    /// An RSA or EC public key from PEM text: SPKI, PKCS#1 RSA public, PKCS#8 / RSA / EC
    /// private keys (only the public half is kept) or an X.509 certificate. Line breaks may be
    /// real, written as the two characters `\n`, or replaced by spaces (one-line PEM).
    pub fn from_pem(alg: Algorithm, text: &str) -> Result<VerifyingKey, ConfigError> {
        let invalid = || ConfigError::KeyInvalid { alg };
        let (label, der) = decode_pem(text).ok_or_else(invalid)?;
        let public = public_key_from_der(&label, &der).ok_or_else(invalid)?;
        match alg.family() {
            AlgorithmFamily::Rsa => {
                if public.id() != Id::RSA {
                    return Err(invalid());
                }
                let bits = public.bits();
                if bits < MIN_RSA_BITS {
                    return Err(ConfigError::RsaKeyTooSmall {
                        alg,
                        bits,
                        min_bits: MIN_RSA_BITS,
                    });
                }
                Ok(VerifyingKey::Rsa {
                    key: public,
                    digest: digest_for(alg),
                })
            }
            AlgorithmFamily::Ec => {
                let (curve, scalar_bytes) = match alg {
                    Algorithm::ES256 => (Nid::X9_62_PRIME256V1, 32),
                    Algorithm::ES384 => (Nid::SECP384R1, 48),
                    _ => (Nid::SECP521R1, 66),
                };
                let key = public.ec_key().map_err(|_| invalid())?;
                if key.group().curve_name() != Some(curve) {
                    return Err(invalid());
                }
                Ok(VerifyingKey::Ec {
                    key,
                    digest: digest_for(alg),
                    scalar_bytes,
                })
            }
            AlgorithmFamily::Hmac => Err(invalid()),
        }
    }

    /// Checks a JWS signature (already base64url-decoded) over `message` (`header.payload`).
    /// Any malformed signature is simply "not valid".
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            VerifyingKey::Hs256(mac) => verify_hmac(mac, message, signature),
            VerifyingKey::Hs384(mac) => verify_hmac(mac, message, signature),
            VerifyingKey::Hs512(mac) => verify_hmac(mac, message, signature),
            VerifyingKey::Rsa { key, digest } => verify_rsa(key, *digest, message, signature),
            VerifyingKey::Ec {
                key,
                digest,
                scalar_bytes,
            } => verify_ecdsa(key, *digest, *scalar_bytes, message, signature),
        }
    }
}

fn verify_hmac<M: Mac + Clone>(keyed: &M, message: &[u8], signature: &[u8]) -> bool {
    let mut mac = keyed.clone();
    mac.update(message);
    // Constant-time comparison (`subtle`), and the tag must have the full length.
    mac.verify_slice(signature).is_ok()
}

fn verify_rsa(key: &PKey<Public>, digest: MessageDigest, message: &[u8], signature: &[u8]) -> bool {
    // RSASSA-PKCS1-v1_5 is OpenSSL's default padding for an RSA key.
    let Ok(mut verifier) = openssl::sign::Verifier::new(digest, key) else {
        return false;
    };
    verifier.verify_oneshot(signature, message).unwrap_or(false)
}

fn verify_ecdsa(
    key: &EcKey<Public>,
    digest: MessageDigest,
    scalar_bytes: usize,
    message: &[u8],
    signature: &[u8],
) -> bool {
    if signature.len() != 2 * scalar_bytes {
        return false;
    }
    let (r, s) = signature.split_at(scalar_bytes);
    let checked = || -> Result<bool, openssl::error::ErrorStack> {
        let hash = openssl::hash::hash(digest, message)?;
        let sig =
            EcdsaSig::from_private_components(BigNum::from_slice(r)?, BigNum::from_slice(s)?)?;
        sig.verify(&hash, key)
    };
    checked().unwrap_or(false)
}

/// Finds the first PEM block in `text`, tolerating literal `\n` escapes and one-line PEM, and
/// returns its label and decoded DER. Encrypted PEM (with headers) is refused: no passphrase
/// prompt can ever be reached.
fn decode_pem(text: &str) -> Option<(String, Vec<u8>)> {
    let text = text.replace("\\r", "").replace("\\n", "\n");
    let after_begin = &text[text.find("-----BEGIN ")? + "-----BEGIN ".len()..];
    let label_len = after_begin.find("-----")?;
    let label = after_begin[..label_len].trim().to_owned();
    let body_and_rest = &after_begin[label_len + "-----".len()..];
    let end_marker = format!("-----END {label}-----");
    let body = &body_and_rest[..body_and_rest.find(&end_marker)?];
    let body: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    use base64::engine::{
        general_purpose::GeneralPurpose, DecodePaddingMode, GeneralPurposeConfig,
    };
    const PEM_BASE64: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let der = PEM_BASE64.decode(body.as_bytes()).ok()?;
    Some((label, der))
}

/// The public key inside a DER structure of the kind the PEM label names.
fn public_key_from_der(label: &str, der: &[u8]) -> Option<PKey<Public>> {
    match label {
        "PUBLIC KEY" => PKey::public_key_from_der(der).ok(),
        "RSA PUBLIC KEY" => PKey::from_rsa(Rsa::public_key_from_der_pkcs1(der).ok()?).ok(),
        "CERTIFICATE" => X509::from_der(der).ok()?.public_key().ok(),
        "PRIVATE KEY" => public_half(PKey::private_key_from_pkcs8(der).ok()?),
        "RSA PRIVATE KEY" => {
            public_half(PKey::from_rsa(Rsa::private_key_from_der(der).ok()?).ok()?)
        }
        "EC PRIVATE KEY" => {
            public_half(PKey::from_ec_key(EcKey::private_key_from_der(der).ok()?).ok()?)
        }
        _ => None,
    }
}

/// Keeps only the public half of a private key; the private material is dropped here.
fn public_half(private: PKey<openssl::pkey::Private>) -> Option<PKey<Public>> {
    match private.id() {
        Id::RSA => {
            let rsa = private.rsa().ok()?;
            let public =
                Rsa::from_public_components(rsa.n().to_owned().ok()?, rsa.e().to_owned().ok()?)
                    .ok()?;
            PKey::from_rsa(public).ok()
        }
        Id::EC => {
            let ec = private.ec_key().ok()?;
            PKey::from_ec_key(EcKey::from_public_key(ec.group(), ec.public_key()).ok()?).ok()
        }
        _ => None,
    }
}
