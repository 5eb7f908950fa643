//! Keys from an identity provider: what the background worker fetches and how a backend uses
//! it, with no network and no Postgres here (the glue in `src/keys/` does both).
//!
//! - [`document`]: a fetched JWKS, read by the same JWK parser and key limits as an inline
//!   `electric_auth.jwt_key` JWKS, and the merged key set a backend verifies with.
//! - [`discovery`]: an OpenID Provider's discovery document (OIDC Discovery 1.0 §4), its
//!   `issuer` compared exactly and its `jwks_uri`.
//! - [`policy`]: when to refresh (interval, `Cache-Control: max-age`, after a failure), when an
//!   unknown `kid` may wake the worker, when a set is stale, when a failure is worth a WARNING.
//! - [`cache_file`]: the last good document as persisted under the data directory.
//!
//! Every function takes "now" and the settings as arguments.

pub mod cache_file;
pub mod discovery;
pub mod document;
pub mod policy;
pub mod url;

pub use document::{
    parse_fetched, validate_fetched, validate_fetched_for, DocumentSummary, FetchedKeys,
    FetchedState, MAX_DOCUMENT_BYTES, MAX_DOCUMENT_ENTRIES,
};
