//! Sealing the identity a Citus coordinator forwards to its workers.
//!
//! Citus forwards a coordinator's `SET LOCAL` to its workers as statement text, and that text
//! lands where other roles can read it: the workers' `pg_stat_statements` (Postgres 15–17 keep
//! utility statements verbatim), `log_statement` output, `pg_stat_activity`. So the carrier
//! never travels as the token itself: the coordinator seals it, and a worker unseals it.
//!
//! - **Cipher**: AES-256-GCM (AWS-LC), a fresh random 96-bit nonce per seal. The key is derived
//!   with HKDF-SHA256 from `electric_auth.propagation_secret`, a superuser-only setting that
//!   every node of the cluster holds; without it nothing can be sealed or unsealed, and any
//!   change to a sealed value (or a different secret) fails the tag.
//! - **Binding**: the plaintext starts with the Citus distributed transaction id the value was
//!   sealed for (initiator node, transaction number, start timestamp); a worker accepts it only
//!   in a backend whose current distributed transaction is that one. The id is inside the
//!   plaintext rather than the associated data because a worker sees the forwarded `SET LOCAL`
//!   before Citus assigns the id (they arrive in one batch, the `SET` first): it can then check
//!   the seal at once and the binding when the id is known. The tag authenticates both alike.
//! - **Wire format**: `PREFIX` followed by unpadded base64url of `nonce ‖ ciphertext ‖ tag`;
//!   plain ASCII, so it needs no quoting beyond a literal's.
//!
//! Refusals are [`SealError`]s whose messages name neither the token nor the secret.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hkdf::{Salt, HKDF_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// How a sealed value starts; a carrier value without it is not sealed.
pub const PREFIX: &str = "ea-sealed-v1.";

/// The shortest `electric_auth.propagation_secret` accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Bound into every seal, so a seal made for anything else never opens here.
const CONTEXT: &[u8] = b"electric_auth propagated identity v1";
const KDF_SALT: &[u8] = b"electric_auth.propagation_secret v1";
const TAG_LEN: usize = 16;
const BINDING_LEN: usize = 20;

/// A Citus distributed transaction id, as `get_current_transaction_id()` shows it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Binding {
    /// The node group that started the transaction.
    pub initiator: i32,
    /// Its transaction number there (0: no distributed transaction).
    pub number: u64,
    /// When it started (Postgres `TimestampTz`: microseconds since 2000-01-01).
    pub timestamp: i64,
}

impl Binding {
    /// Whether this is a distributed transaction at all (Citus uses number 0 for none).
    pub fn is_assigned(&self) -> bool {
        self.number != 0
    }

    fn to_bytes(self) -> [u8; BINDING_LEN] {
        let mut out = [0; BINDING_LEN];
        out[..4].copy_from_slice(&self.initiator.to_be_bytes());
        out[4..12].copy_from_slice(&self.number.to_be_bytes());
        out[12..].copy_from_slice(&self.timestamp.to_be_bytes());
        out
    }

    fn from_bytes(bytes: &[u8; BINDING_LEN]) -> Self {
        let (initiator, rest) = bytes.split_at(4);
        let (number, timestamp) = rest.split_at(8);
        Binding {
            initiator: i32::from_be_bytes(initiator.try_into().expect("4 bytes")),
            number: u64::from_be_bytes(number.try_into().expect("8 bytes")),
            timestamp: i64::from_be_bytes(timestamp.try_into().expect("8 bytes")),
        }
    }
}

/// Why a value could not be sealed or was refused. No variant carries input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("electric_auth.propagation_secret is not set")]
    NoSecret,
    #[error("electric_auth.propagation_secret is shorter than {MIN_SECRET_BYTES} bytes")]
    SecretTooShort,
    #[error("there is no distributed transaction to bind the identity to")]
    NoTransaction,
    #[error("the system random generator failed")]
    Random,
    #[error("the propagated identity is not a sealed value")]
    NotSealed,
    #[error(
        "the propagated identity does not open with this node's electric_auth.propagation_secret"
    )]
    DoesNotOpen,
    #[error("the propagated identity belongs to another distributed transaction")]
    OtherTransaction,
}

/// A sealed value, opened: the transaction it is bound to and the token.
#[derive(PartialEq, Eq)]
pub struct Opened {
    pub binding: Binding,
    token: String,
}

impl Opened {
    /// The token, if `current` (this backend's distributed transaction) is the one it was
    /// sealed for.
    pub fn token_for(&self, current: Binding) -> Result<&str, SealError> {
        if !current.is_assigned() {
            return Err(SealError::NoTransaction);
        }
        if current != self.binding {
            return Err(SealError::OtherTransaction);
        }
        Ok(&self.token)
    }
}

// Never print the token.
impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("binding", &self.binding)
            .finish_non_exhaustive()
    }
}

/// Whether a carrier value is in the sealed form (says nothing of whether it opens).
pub fn is_sealed(value: &[u8]) -> bool {
    value.starts_with(PREFIX.as_bytes())
}

/// The key derived from a cluster's `electric_auth.propagation_secret`.
pub struct Sealer {
    key: LessSafeKey,
}

impl Sealer {
    /// The key of `secret` (the setting's value; empty: not set).
    pub fn new(secret: &[u8]) -> Result<Self, SealError> {
        if secret.trim_ascii().is_empty() {
            return Err(SealError::NoSecret);
        }
        if secret.len() < MIN_SECRET_BYTES {
            return Err(SealError::SecretTooShort);
        }
        let prk = Salt::new(HKDF_SHA256, KDF_SALT).extract(secret);
        let okm = prk
            .expand(&[CONTEXT], &AES_256_GCM)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Ok(Sealer {
            key: LessSafeKey::new(UnboundKey::from(okm)),
        })
    }

    /// Seals `token` for the distributed transaction `binding`.
    pub fn seal(&self, token: &str, binding: Binding) -> Result<String, SealError> {
        if !binding.is_assigned() {
            return Err(SealError::NoTransaction);
        }
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut in_out = Vec::with_capacity(BINDING_LEN + token.len() + TAG_LEN);
        in_out.extend_from_slice(&binding.to_bytes());
        in_out.extend_from_slice(token.as_bytes());
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(CONTEXT),
                &mut in_out,
            )
            .map_err(|_| SealError::Random)?;
        let mut wire = nonce.to_vec();
        wire.extend_from_slice(&in_out);
        Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(wire)))
    }

    /// Opens a sealed value: refused unless it is well-formed, sealed with this secret,
    /// unchanged, and holds a transaction id and a UTF-8 token.
    pub fn open(&self, sealed: &[u8]) -> Result<Opened, SealError> {
        let body = sealed
            .strip_prefix(PREFIX.as_bytes())
            .ok_or(SealError::NotSealed)?;
        let mut wire = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError::DoesNotOpen)?;
        if wire.len() < NONCE_LEN + BINDING_LEN + TAG_LEN {
            return Err(SealError::DoesNotOpen);
        }
        let (nonce, in_out) = wire.split_at_mut(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::DoesNotOpen)?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(CONTEXT), in_out)
            .map_err(|_| SealError::DoesNotOpen)?;
        let (binding, token) = plain.split_at(BINDING_LEN);
        let binding = Binding::from_bytes(binding.try_into().expect("split at BINDING_LEN"));
        let token = std::str::from_utf8(token).map_err(|_| SealError::DoesNotOpen)?;
        if !binding.is_assigned() || token.is_empty() || token.contains('\0') {
            return Err(SealError::DoesNotOpen);
        }
        Ok(Opened {
            binding,
            token: token.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"propagation-secret-0123456789abcdef0123";
    const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz";
    const T: Binding = Binding {
        initiator: 0,
        number: 42,
        timestamp: 812_345_678_901_234,
    };

    fn sealer() -> Sealer {
        Sealer::new(SECRET).unwrap()
    }

    #[test]
    fn a_sealed_token_opens_for_its_transaction_only() {
        let sealed = sealer().seal(TOKEN, T).unwrap();
        assert!(sealed.starts_with(PREFIX));
        assert!(is_sealed(sealed.as_bytes()));
        let opened = sealer().open(sealed.as_bytes()).unwrap();
        assert_eq!(opened.binding, T);
        assert_eq!(opened.token_for(T), Ok(TOKEN));
        for other in [
            Binding { number: 43, ..T },
            Binding { initiator: 1, ..T },
            Binding {
                timestamp: T.timestamp + 1,
                ..T
            },
        ] {
            assert_eq!(opened.token_for(other), Err(SealError::OtherTransaction));
        }
        let none = Binding {
            initiator: 0,
            number: 0,
            timestamp: 0,
        };
        assert_eq!(opened.token_for(none), Err(SealError::NoTransaction));
    }

    #[test]
    fn no_fragment_of_the_token_shows_and_every_seal_differs() {
        let a = sealer().seal(TOKEN, T).unwrap();
        let b = sealer().seal(TOKEN, T).unwrap();
        assert_ne!(a, b, "a fresh nonce each time");
        for part in TOKEN.split('.') {
            for window in part.as_bytes().windows(8) {
                let window = std::str::from_utf8(window).unwrap();
                assert!(!a.contains(window), "{window} shows in the sealed value");
            }
        }
        assert!(!format!("{:?}", sealer().open(a.as_bytes()).unwrap()).contains("eyJ"));
    }

    #[test]
    fn the_secret_must_be_set_and_long_enough() {
        assert!(matches!(Sealer::new(b""), Err(SealError::NoSecret)));
        assert!(matches!(Sealer::new(b"   "), Err(SealError::NoSecret)));
        assert!(matches!(
            Sealer::new(&SECRET[..MIN_SECRET_BYTES - 1]),
            Err(SealError::SecretTooShort)
        ));
        assert!(Sealer::new(&SECRET[..MIN_SECRET_BYTES]).is_ok());
    }

    #[test]
    fn nothing_is_sealed_outside_a_distributed_transaction() {
        let none = Binding {
            initiator: 0,
            number: 0,
            timestamp: 5,
        };
        assert_eq!(sealer().seal(TOKEN, none), Err(SealError::NoTransaction));
    }

    #[test]
    fn another_secret_does_not_open_it() {
        let sealed = sealer().seal(TOKEN, T).unwrap();
        let other = Sealer::new(b"another-secret-0123456789abcdef01234").unwrap();
        assert!(matches!(
            other.open(sealed.as_bytes()),
            Err(SealError::DoesNotOpen)
        ));
    }

    #[test]
    fn every_changed_byte_is_refused() {
        let sealed = sealer().seal(TOKEN, T).unwrap();
        let body_start = PREFIX.len();
        for i in body_start..sealed.len() {
            let mut bytes = sealed.clone().into_bytes();
            // Another base64url character (so decoding succeeds and the tag must catch it).
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let result = sealer().open(&bytes);
            assert!(result.is_err(), "byte {i} changed and still opened");
        }
    }

    #[test]
    fn truncated_or_extended_values_are_refused() {
        let sealed = sealer().seal(TOKEN, T).unwrap();
        for len in 0..sealed.len() {
            assert!(sealer().open(&sealed.as_bytes()[..len]).is_err(), "{len}");
        }
        let longer = format!("{sealed}AAAA");
        assert!(sealer().open(longer.as_bytes()).is_err());
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let inputs: [&[u8]; 10] = [
            b"",
            TOKEN.as_bytes(),
            b"ea-sealed-v1.",
            b"ea-sealed-v1.!!!!",
            b"ea-sealed-v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            b"ea-sealed-v1.A",
            b"ea-sealed-v1.====",
            b"ea-sealed-v2.AAAA",
            b"\xff\xfe\x00ea-sealed-v1.",
            b"ea-sealed-v1.\xff\xff\xff\xff",
        ];
        for input in inputs {
            let result = sealer().open(input);
            assert!(result.is_err());
        }
        assert_eq!(
            sealer().open(TOKEN.as_bytes()).unwrap_err(),
            SealError::NotSealed
        );
        // Pseudo-random bytes after the prefix, of every length up to a few hundred.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in 0..400 {
            let mut input = PREFIX.as_bytes().to_vec();
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                input.push(
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                        [(state % 64) as usize],
                );
            }
            assert!(sealer().open(&input).is_err());
        }
    }

    #[test]
    fn a_seal_of_no_token_or_no_transaction_never_opens() {
        // Built by hand with the right key: the tag is valid, the contents are not.
        let seal_raw = |plain: &[u8]| {
            let nonce = [7u8; NONCE_LEN];
            let mut in_out = plain.to_vec();
            sealer()
                .key
                .seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(CONTEXT),
                    &mut in_out,
                )
                .unwrap();
            let mut wire = nonce.to_vec();
            wire.extend_from_slice(&in_out);
            format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(wire))
        };
        let unassigned = Binding { number: 0, ..T }.to_bytes();
        let mut plain = unassigned.to_vec();
        plain.extend_from_slice(TOKEN.as_bytes());
        assert_eq!(
            sealer().open(seal_raw(&plain).as_bytes()).unwrap_err(),
            SealError::DoesNotOpen
        );
        assert_eq!(
            sealer()
                .open(seal_raw(&T.to_bytes()).as_bytes())
                .unwrap_err(),
            SealError::DoesNotOpen
        );
        let mut bad_utf8 = T.to_bytes().to_vec();
        bad_utf8.extend_from_slice(b"\xff\xfe");
        assert_eq!(
            sealer().open(seal_raw(&bad_utf8).as_bytes()).unwrap_err(),
            SealError::DoesNotOpen
        );
        let mut good = T.to_bytes().to_vec();
        good.extend_from_slice(TOKEN.as_bytes());
        assert_eq!(
            sealer()
                .open(seal_raw(&good).as_bytes())
                .unwrap()
                .token_for(T),
            Ok(TOKEN)
        );
    }

    #[test]
    fn bindings_round_trip_at_the_extremes() {
        for b in [
            T,
            Binding {
                initiator: i32::MIN,
                number: u64::MAX,
                timestamp: i64::MIN,
            },
            Binding {
                initiator: i32::MAX,
                number: 1,
                timestamp: i64::MAX,
            },
        ] {
            assert_eq!(Binding::from_bytes(&b.to_bytes()), b);
            let sealed = sealer().seal(TOKEN, b).unwrap();
            assert_eq!(
                sealer().open(sealed.as_bytes()).unwrap().token_for(b),
                Ok(TOKEN)
            );
        }
    }
}
