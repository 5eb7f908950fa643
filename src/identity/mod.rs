//! The session identity: the carrier and `authenticate`/`current_*`/`logout` (`carrier`), its
//! forwarding to Citus workers (`citus`), and connections authenticated by their token through
//! the PostgreSQL 18 OAuth validator (`oauth`), and revoking a token (`revoke`). Built on
//! `verify`, `revocation`, `guard` and `settings`.

pub mod carrier;
mod citus;
// PostgreSQL 18 only: the OAuth validator module API (libpq/oauth.h) is new in 18.
#[cfg(feature = "pg18")]
mod oauth;
mod revoke;

pub use carrier::{authenticate, current_claims, current_user_id, logout, CurrentClaims};
pub use revoke::revoke_token;

use crate::settings::Setting;

/// The identity's settings, declared for the registry: the carrier's, then Citus's.
pub fn declared_settings() -> Vec<Setting> {
    let mut settings = Vec::from(carrier::declared());
    settings.extend(citus::declared());
    settings
}
