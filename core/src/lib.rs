//! Electric-compatible JWT verification with no Postgres dependency.
//!
//! The flow is: raw [`Settings`] (what the GUCs hold) are validated into a [`Config`] — this
//! is where every configuration error of the spec is raised and where the key is parsed, once —
//! and a [`Verifier`] built from it checks tokens with [`Verifier::verify`]. The caller passes
//! "now" in; nothing here reads a clock or a setting, so everything is deterministic.

mod algorithm;
mod cache;
mod claims;
mod config;
mod error;
mod fast;
pub mod identity;
pub mod issuers;
pub mod jwks;
mod keys;
pub mod outcome;
pub mod redaction;
pub mod revocation;
pub mod seal;
mod token;

pub use algorithm::{Algorithm, AlgorithmFamily, ALGORITHM_NAMES};
pub use cache::{TokenCache, DEFAULT_BUDGET_BYTES};
pub use config::{Config, IssuerFetched, Mode, Settings};
pub use error::{ConfigError, Error, ErrorKind, TokenError};
pub use fast::{jsonb_body, Passed};
pub use keys::{KeySet, VerifyingKey, MAX_KEYS};
pub use token::{header_kid, VerifiedToken, Verifier, Want, MAX_TOKEN_BYTES};
