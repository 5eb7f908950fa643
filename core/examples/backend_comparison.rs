//! Why the verifier uses OpenSSL for RSA and ECDSA: signature verification cost per token,
//! RustCrypto (rsa, p256, p384, p521) against OpenSSL (the `openssl` crate), same keys/messages.
//!
//!     cargo run --release -p electric_auth_core --example backend_comparison
#![allow(clippy::unwrap_used)]
use openssl::{
    bn::BigNum, ec::EcKey, ecdsa::EcdsaSig, hash::MessageDigest, nid::Nid, pkey::PKey, rsa::Rsa,
    sign::Verifier,
};
use std::time::Instant;
fn time<F: FnMut() -> bool>(name: &str, iters: u32, mut f: F) {
    assert!(f());
    let t = Instant::now();
    for _ in 0..iters {
        assert!(f());
    }
    println!(
        "{name:<28} {:>9.1} us",
        t.elapsed().as_secs_f64() * 1e6 / iters as f64
    );
}
fn main() {
    let msg = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxIiwiaWF0IjoxNjg0NzQ5MjEzLCJleHAiOjE2ODQ3NTkyMTN9";
    // RSA 2048
    let rsa = Rsa::generate(2048).unwrap();
    let pk = PKey::from_rsa(rsa.clone()).unwrap();
    let mut s = openssl::sign::Signer::new(MessageDigest::sha256(), &pk).unwrap();
    s.update(msg).unwrap();
    let sig = s.sign_to_vec().unwrap();
    let pubpem = pk.public_key_to_pem().unwrap();
    let ospub = PKey::public_key_from_pem(&pubpem).unwrap();
    time("openssl RS256", 2000, || {
        let mut v = Verifier::new(MessageDigest::sha256(), &ospub).unwrap();
        v.update(msg).unwrap();
        v.verify(&sig).unwrap()
    });
    use rsa::pkcs8::DecodePublicKey;
    let rcpub =
        rsa::RsaPublicKey::from_public_key_pem(std::str::from_utf8(&pubpem).unwrap()).unwrap();
    let vk = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(rcpub);
    let rsig = rsa::pkcs1v15::Signature::try_from(sig.as_slice()).unwrap();
    use rsa::signature::Verifier as _;
    time("rustcrypto RS256", 2000, || vk.verify(msg, &rsig).is_ok());
    for (nid, md, name, n) in [
        (
            Nid::X9_62_PRIME256V1,
            MessageDigest::sha256(),
            "ES256",
            32usize,
        ),
        (Nid::SECP384R1, MessageDigest::sha384(), "ES384", 48),
        (Nid::SECP521R1, MessageDigest::sha512(), "ES512", 66),
    ] {
        let group = openssl::ec::EcGroup::from_curve_name(nid).unwrap();
        let key = EcKey::generate(&group).unwrap();
        let digest = openssl::hash::hash(md, msg).unwrap();
        let es = EcdsaSig::sign(&digest, &key).unwrap();
        let mut raw = es.r().to_vec_padded(n as i32).unwrap();
        raw.extend(es.s().to_vec_padded(n as i32).unwrap());
        let pubkey = EcKey::from_public_key(&group, key.public_key()).unwrap();
        let pem = String::from_utf8(
            PKey::from_ec_key(pubkey.clone())
                .unwrap()
                .public_key_to_pem()
                .unwrap(),
        )
        .unwrap();
        time(&format!("openssl {name}"), 300, || {
            let digest = openssl::hash::hash(md, msg).unwrap();
            let sig = EcdsaSig::from_private_components(
                BigNum::from_slice(&raw[..n]).unwrap(),
                BigNum::from_slice(&raw[n..]).unwrap(),
            )
            .unwrap();
            sig.verify(&digest, &pubkey).unwrap()
        });
        match name {
            "ES256" => {
                use p256::pkcs8::DecodePublicKey;
                let v = p256::ecdsa::VerifyingKey::from_public_key_pem(&pem).unwrap();
                let s = p256::ecdsa::Signature::from_slice(&raw).unwrap();
                time("rustcrypto ES256", 300, || v.verify(msg, &s).is_ok());
            }
            "ES384" => {
                use p384::pkcs8::DecodePublicKey;
                let v = p384::ecdsa::VerifyingKey::from_public_key_pem(&pem).unwrap();
                let s = p384::ecdsa::Signature::from_slice(&raw).unwrap();
                time("rustcrypto ES384", 100, || v.verify(msg, &s).is_ok());
            }
            _ => {
                use p521::pkcs8::DecodePublicKey;
                let pk = p521::PublicKey::from_public_key_pem(&pem).unwrap();
                let v = p521::ecdsa::VerifyingKey::from_affine(*pk.as_affine()).unwrap();
                let s = p521::ecdsa::Signature::from_slice(&raw).unwrap();
                time("rustcrypto ES512", 50, || v.verify(msg, &s).is_ok());
            }
        }
    }
}
