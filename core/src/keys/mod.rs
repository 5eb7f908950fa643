//! Verifying keys: our PEM tolerance (`pem`), one key over jsonwebtoken / AWS-LC (`key`), and a
//! set of keys with `kid` selection, JWK and JWKS parsing (`key_set`). Built on `algorithm` and
//! `error` only; `config` builds a [`KeySet`] from the settings.

mod key;
mod key_set;
mod pem;

pub use key::VerifyingKey;
pub use key_set::{KeySet, MAX_KEYS};
