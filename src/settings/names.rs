//! The name of every `electric_auth.*` setting, in one place: a module that needs another
//! concern's setting reads its name here rather than importing that concern.

use std::ffi::CStr;

/// What every name below starts with; reserved once all are defined.
pub const PREFIX: &str = "electric_auth.";

// Electric's settings (spec §1), read by the verifier (`verify/settings.rs`).
pub const MODE: &CStr = c"electric_auth.mode";
pub const JWT_ALG: &CStr = c"electric_auth.jwt_alg";
pub const JWT_KEY: &CStr = c"electric_auth.jwt_key";
pub const JWT_KEY_IS_BASE64: &CStr = c"electric_auth.jwt_key_is_base64";
pub const JWT_NAMESPACE: &CStr = c"electric_auth.jwt_namespace";
pub const JWT_ISS: &CStr = c"electric_auth.jwt_iss";
pub const JWT_AUD: &CStr = c"electric_auth.jwt_aud";
pub const CLOCK_DRIFT: &CStr = c"electric_auth.clock_drift";

// The guard's marker of a setting refused when the library loaded (`guard/refused.rs`).
pub const REFUSED_SETTING: &CStr = c"electric_auth.refused_setting";

// The session identity (`identity/`).
pub const IDENTITY_TOKEN: &CStr = c"electric_auth.identity_token";
pub const SESSION_SCOPE: &CStr = c"electric_auth.session_scope";
pub const ROLE_CLAIM: &CStr = c"electric_auth.role_claim";
pub const DELEGATE_PRIVILEGED_ROLES: &CStr = c"electric_auth.delegate_privileged_roles";
pub const ACCEPT_PROPAGATED_IDENTITY: &CStr = c"electric_auth.accept_propagated_identity";
pub const PROPAGATION_SECRET: &CStr = c"electric_auth.propagation_secret";

// Keys from an identity provider (`keys/`).
pub const JWKS_URL: &CStr = c"electric_auth.jwks_url";
pub const OIDC_ISSUER: &CStr = c"electric_auth.oidc_issuer";
pub const JWKS_REFRESH_INTERVAL: &CStr = c"electric_auth.jwks_refresh_interval";
pub const JWKS_TIMEOUT: &CStr = c"electric_auth.jwks_timeout";
pub const JWKS_CA_FILE: &CStr = c"electric_auth.jwks_ca_file";
pub const JWKS_MAX_STALE: &CStr = c"electric_auth.jwks_max_stale";
pub const JWKS_MIN_REFRESH_INTERVAL: &CStr = c"electric_auth.jwks_min_refresh_interval";
// Several identity providers (issue 32): read by the verifier and the key worker.
pub const ISSUERS: &CStr = c"electric_auth.issuers";
// Revocation (issue 33): the list's size, fixed at server start (`revocation/`).
pub const MAX_REVOCATIONS: &CStr = c"electric_auth.max_revocations";

// Verification statistics and the audit log (`stats/`).
pub const TRACK_STATS: &CStr = c"electric_auth.track_stats";
pub const LOG_REFUSALS: &CStr = c"electric_auth.log_refusals";
pub const LOG_REFUSALS_PER_SECOND: &CStr = c"electric_auth.log_refusals_per_second";
pub const LOG_AUTHENTICATIONS: &CStr = c"electric_auth.log_authentications";
