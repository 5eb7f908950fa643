//! The session identity (`electric_auth.authenticate()` and `current_user_id()`): its rules,
//! free of Postgres.
//!
//! The identity travels as the token itself, in a setting only `authenticate()` may fill (the
//! *carrier*). Postgres then gives it the lifetime of `SET LOCAL` (transaction scope) or `SET`
//! (session scope) — rollback, savepoints, `DISCARD ALL` — and copies it into parallel workers.
//! What a backend remembers is only a cache of the carrier's token, verified: [`IdentityState`]
//! holds it, keyed by the carrier's *epoch* (bumped whenever the carrier is assigned, including
//! a restore at rollback) and the settings generation (bumped whenever an `electric_auth.*`
//! setting is). So a key rotation re-verifies the token, and a worker verifies it itself.

use crate::error::{Error, TokenError};
use crate::token::VerifiedToken;

/// How long an `authenticate()` lasts: like `SET LOCAL` or like `SET`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Until the transaction ends (the default).
    Transaction,
    /// Until `logout()`, `DISCARD ALL` or the end of the session (a rolled-back transaction
    /// still undoes it, like `SET`).
    Session,
}

impl Scope {
    /// `transaction` or `session`, in any letter case (as Postgres reads enum settings).
    pub fn from_name(name: &str) -> Option<Scope> {
        if name.eq_ignore_ascii_case("transaction") {
            Some(Scope::Transaction)
        } else if name.eq_ignore_ascii_case("session") {
            Some(Scope::Session)
        } else {
            None
        }
    }
}

/// Who is putting a value into the carrier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `authenticate()`, with a token it has just verified.
    Authenticate,
    /// A parallel worker restoring its leader's settings (the leader's value came from
    /// `authenticate()`; the worker verifies it again before using it).
    ParallelWorkerRestore,
    /// `SET`, `SET LOCAL` or `set_config()` in a session: how Citus forwards a coordinator's
    /// `SET LOCAL` to the connections it opens to workers.
    SessionSet,
    /// Anything else: `ALTER ROLE/DATABASE … SET`, a function's `SET` clause, a connection
    /// option, a configuration file.
    Other,
}

/// What the carrier's check does with a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Accept,
    /// Accept only if the token verifies here and now, under this node's settings.
    AcceptIfItVerifies,
    Refuse,
}

/// Whether the carrier may take `value` from `origin`. Emptying it (logout, `RESET`) is always
/// allowed; a token comes from `authenticate()` or a parallel worker's restore — and, only on a
/// node whose superuser set `electric_auth.accept_propagated_identity` (a Citus worker), from a
/// session's `SET`, if the token verifies there: no more than `authenticate()` would accept.
pub fn admission(value: &[u8], origin: Origin, accept_propagated: bool) -> Admission {
    match origin {
        _ if carries_nothing(value) => Admission::Accept,
        Origin::Authenticate | Origin::ParallelWorkerRestore => Admission::Accept,
        Origin::SessionSet if accept_propagated => Admission::AcceptIfItVerifies,
        Origin::SessionSet | Origin::Other => Admission::Refuse,
    }
}

/// An empty (or blank) carrier means no identity.
pub fn carries_nothing(value: &[u8]) -> bool {
    value.trim_ascii().is_empty()
}

/// Whether a connection authenticated by its token (PostgreSQL 18's OAuth validator) may use
/// the requested `role` when pg_hba.conf delegates the ident mapping to the validator
/// (`delegate_ident_mapping=1`): the top-level claim named by `electric_auth.role_claim` must be
/// that role's name, or an array holding it. No claim configured means no role is authorized.
/// The refusal says why, without the token.
pub fn role_authorized(
    claims: &serde_json::Map<String, serde_json::Value>,
    role_claim: Option<&str>,
    role: &str,
) -> Result<(), String> {
    use serde_json::Value;
    let Some(claim) = role_claim.filter(|c| !c.trim().is_empty()) else {
        return Err(
            "electric_auth.role_claim is not set, so no role is authorized when \
                    pg_hba.conf delegates the ident mapping (delegate_ident_mapping=1)"
                .to_owned(),
        );
    };
    let names_role = |value: &Value| value.as_str() == Some(role);
    match claims.get(claim) {
        None => Err(format!("the token has no \"{claim}\" claim")),
        Some(Value::Array(roles)) if roles.iter().any(names_role) => Ok(()),
        Some(value) if names_role(value) => Ok(()),
        Some(_) => Err(format!(
            "the token's \"{claim}\" claim does not name role \"{role}\""
        )),
    }
}

/// A verified identity: what `current_user_id()` and `current_claims()` return.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    /// The user id, as `user_id(token)` returns it.
    pub user_id: String,
    /// The payload's JSON text, as `verify(token)` returns it.
    pub payload: String,
    expires_at: Option<f64>,
    drift: i64,
}

impl Identity {
    /// The identity of a token verified with `drift` seconds of clock leeway.
    pub fn new(verified: &VerifiedToken, drift: i64) -> Identity {
        Identity {
            user_id: verified.user_id.clone(),
            payload: verified.payload.clone(),
            expires_at: verified.expires_at,
            drift,
        }
    }

    /// `Expired token` once `exp` + drift is before `now` (the rule of spec §3.5).
    pub fn check_expiry(&self, now: i64) -> Result<(), TokenError> {
        match self.expires_at {
            Some(exp) if crate::claims::expired(exp, now, self.drift) => Err(TokenError::Expired),
            _ => Ok(()),
        }
    }
}

#[derive(Debug)]
enum Held {
    /// The carrier is empty.
    Nothing,
    Verified(Identity),
    /// The token no longer verified under changed settings: no identity until the carrier
    /// changes (a new `authenticate()`, a rollback that restores another value).
    Dropped,
}

/// A backend's cache of the carrier's verified identity (see the module notes).
#[derive(Debug)]
pub struct IdentityState {
    epoch: u64,
    generation: u64,
    held: Held,
    /// Changes whenever a different identity is held, for caches derived from it.
    serial: u64,
}

impl Default for IdentityState {
    fn default() -> Self {
        IdentityState::new()
    }
}

impl IdentityState {
    /// Knows nothing yet: the first lookup resolves the carrier.
    pub const fn new() -> IdentityState {
        IdentityState {
            epoch: u64::MAX,
            generation: u64::MAX,
            held: Held::Nothing,
            serial: 0,
        }
    }

    /// `authenticate()` has put a token it verified under settings `generation` into the
    /// carrier, whose epoch is now `epoch`.
    pub fn install(&mut self, epoch: u64, generation: u64, identity: Identity) {
        self.hold(epoch, generation, Held::Verified(identity));
    }

    fn hold(&mut self, epoch: u64, generation: u64, held: Held) {
        self.epoch = epoch;
        self.generation = generation;
        self.held = held;
        self.serial = self.serial.wrapping_add(1);
    }

    #[cfg(test)]
    fn serial(&self) -> u64 {
        self.serial
    }

    /// The identity in force at `now`, for a carrier at `epoch` and settings at `generation`.
    ///
    /// When either moved since the last lookup, `resolve` reads the carrier and verifies its
    /// token under the settings in force (`Ok(None)`: the carrier is empty). A token that no
    /// longer verifies is dropped (`Ok(None)` until the carrier changes), except that an
    /// expired one raises `Expired token` and a configuration error is raised as it is: neither
    /// is remembered, so every call raises it again. A held identity is checked against `now`
    /// on every call. It comes with a serial: equal serials mean the same identity, so a
    /// caller may cache what it derives from it.
    pub fn current(
        &mut self,
        epoch: u64,
        generation: u64,
        now: i64,
        resolve: impl FnOnce() -> Result<Option<Identity>, Error>,
    ) -> Result<Option<(&Identity, u64)>, Error> {
        let carrier_unchanged = self.epoch == epoch;
        let up_to_date = carrier_unchanged && self.generation == generation;
        let dropped = carrier_unchanged && matches!(self.held, Held::Dropped);
        if !up_to_date && !dropped {
            match resolve() {
                Ok(None) => self.hold(epoch, generation, Held::Nothing),
                Ok(Some(identity)) => self.hold(epoch, generation, Held::Verified(identity)),
                Err(Error::Token(TokenError::Expired)) => return Err(TokenError::Expired.into()),
                Err(Error::Token(_)) => self.hold(epoch, generation, Held::Dropped),
                Err(config) => return Err(config),
            }
        }
        match &self.held {
            Held::Verified(identity) => {
                identity.check_expiry(now)?;
                Ok(Some((identity, self.serial)))
            }
            Held::Nothing | Held::Dropped => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ConfigError;

    fn identity(user: &str, exp: Option<f64>) -> Identity {
        Identity {
            user_id: user.to_owned(),
            payload: format!(r#"{{"sub":"{user}"}}"#),
            expires_at: exp,
            drift: 2,
        }
    }

    fn unreachable() -> Result<Option<Identity>, Error> {
        panic!("resolved although nothing changed")
    }

    #[test]
    fn scope_names() {
        assert_eq!(Scope::from_name("transaction"), Some(Scope::Transaction));
        assert_eq!(Scope::from_name("SESSION"), Some(Scope::Session));
        assert_eq!(Scope::from_name("local"), None);
        assert_eq!(Scope::from_name(" session"), None);
        assert_eq!(Scope::from_name(""), None);
    }

    #[test]
    fn only_authenticate_and_worker_restore_fill_the_carrier() {
        use Admission::*;
        let origins = [
            Origin::Authenticate,
            Origin::ParallelWorkerRestore,
            Origin::SessionSet,
            Origin::Other,
        ];
        for origin in origins {
            for accept_propagated in [false, true] {
                assert_eq!(admission(b"", origin, accept_propagated), Accept);
                assert_eq!(admission(b"  ", origin, accept_propagated), Accept);
            }
        }
        for accept_propagated in [false, true] {
            let worker = Origin::ParallelWorkerRestore;
            assert_eq!(
                admission(b"a.b.c", Origin::Authenticate, accept_propagated),
                Accept
            );
            assert_eq!(admission(b"a.b.c", worker, accept_propagated), Accept);
            assert_eq!(
                admission(b"a.b.c", Origin::Other, accept_propagated),
                Refuse
            );
            assert_eq!(
                admission(b"alice", Origin::Other, accept_propagated),
                Refuse
            );
        }
        assert_eq!(admission(b"a.b.c", Origin::SessionSet, false), Refuse);
        // A Citus worker: a forwarded SET LOCAL is taken only if its token verifies there.
        assert_eq!(
            admission(b"a.b.c", Origin::SessionSet, true),
            AcceptIfItVerifies
        );
        assert!(carries_nothing(b"\t \n"));
        assert!(!carries_nothing(b" x "));
    }

    #[test]
    fn a_delegated_role_must_be_named_in_the_configured_claim() {
        let claims = |v: serde_json::Value| v.as_object().unwrap().clone();
        let c = claims(
            serde_json::json!({"sub": "alice", "roles": ["app_alice", "reader"], "role": "app_alice", "n": 5}),
        );
        assert_eq!(role_authorized(&c, Some("roles"), "app_alice"), Ok(()));
        assert_eq!(role_authorized(&c, Some("roles"), "reader"), Ok(()));
        assert_eq!(role_authorized(&c, Some("role"), "app_alice"), Ok(()));
        assert_eq!(
            role_authorized(&c, Some("roles"), "postgres").unwrap_err(),
            r#"the token's "roles" claim does not name role "postgres""#
        );
        assert_eq!(
            role_authorized(&c, Some("role"), "App_Alice").unwrap_err(),
            r#"the token's "role" claim does not name role "App_Alice""#
        );
        assert!(role_authorized(&c, Some("n"), "5").is_err());
        assert_eq!(
            role_authorized(&c, Some("groups"), "app_alice").unwrap_err(),
            r#"the token has no "groups" claim"#
        );
        for unset in [None, Some(""), Some("  ")] {
            assert!(role_authorized(&c, unset, "app_alice")
                .unwrap_err()
                .starts_with("electric_auth.role_claim is not set"));
        }
        // Nested arrays and objects name nothing.
        let nested =
            claims(serde_json::json!({"roles": [["app_alice"]], "obj": {"app_alice": true}}));
        assert!(role_authorized(&nested, Some("roles"), "app_alice").is_err());
        assert!(role_authorized(&nested, Some("obj"), "app_alice").is_err());
    }

    #[test]
    fn installed_identity_is_answered_without_resolving() {
        let mut state = IdentityState::new();
        state.install(7, 3, identity("alice", None));
        let serial = state.serial();
        for _ in 0..3 {
            let got = state.current(7, 3, 1_000, unreachable).unwrap();
            assert_eq!(got.unwrap().0.user_id, "alice");
        }
        assert_eq!(state.serial(), serial);
    }

    #[test]
    fn first_lookup_resolves_and_an_empty_carrier_is_no_identity() {
        let mut state = IdentityState::new();
        assert!(state.current(0, 0, 1_000, || Ok(None)).unwrap().is_none());
        // Remembered: the same epoch and generation do not resolve again.
        assert!(state.current(0, 0, 1_000, unreachable).unwrap().is_none());
        let got = state.current(1, 0, 1_000, || Ok(Some(identity("bob", None))));
        assert_eq!(got.unwrap().unwrap().0.user_id, "bob");
    }

    #[test]
    fn a_new_epoch_or_generation_resolves_again() {
        let mut state = IdentityState::new();
        state.install(1, 1, identity("alice", None));
        let serial = state.serial();
        let got = state.current(2, 1, 0, || Ok(Some(identity("bob", None))));
        assert_eq!(got.unwrap().unwrap().0.user_id, "bob");
        assert_ne!(state.serial(), serial);
        let got = state.current(2, 2, 0, || Ok(Some(identity("bob", None))));
        assert_eq!(got.unwrap().unwrap().0.user_id, "bob");
    }

    #[test]
    fn a_token_that_no_longer_verifies_is_dropped_until_the_carrier_changes() {
        let mut state = IdentityState::new();
        state.install(1, 1, identity("alice", None));
        let got = state.current(1, 2, 0, || Err(TokenError::InvalidSignature.into()));
        assert!(got.unwrap().is_none());
        // Rotating back does not bring it back; only the carrier changing does.
        assert!(state.current(1, 3, 0, unreachable).unwrap().is_none());
        assert!(state.current(1, 1, 0, unreachable).unwrap().is_none());
        let got = state.current(2, 3, 0, || Ok(Some(identity("alice", None))));
        assert_eq!(got.unwrap().unwrap().0.user_id, "alice");
    }

    #[test]
    fn expiry_is_checked_on_every_call_with_drift() {
        let mut state = IdentityState::new();
        state.install(1, 1, identity("alice", Some(100.0)));
        assert!(state.current(1, 1, 102, unreachable).unwrap().is_some());
        let err = state.current(1, 1, 103, unreachable).unwrap_err();
        assert_eq!(err, Error::Token(TokenError::Expired));
        // A fractional exp is compared as it is.
        state.install(2, 1, identity("bob", Some(100.5)));
        assert!(state.current(2, 1, 102, unreachable).is_ok());
        assert!(state.current(2, 1, 103, unreachable).is_err());
    }

    #[test]
    fn expiry_and_configuration_errors_are_raised_not_remembered() {
        let mut state = IdentityState::new();
        state.install(1, 1, identity("alice", None));
        let err = state.current(1, 2, 0, || Err(TokenError::Expired.into()));
        assert_eq!(err.unwrap_err(), Error::Token(TokenError::Expired));
        let err = state.current(1, 2, 0, || Err(ConfigError::KeyNotSet.into()));
        assert_eq!(err.unwrap_err(), Error::Config(ConfigError::KeyNotSet));
        // Not dropped: once the settings are fixed, it resolves again.
        let got = state.current(1, 2, 0, || Ok(Some(identity("alice", None))));
        assert_eq!(got.unwrap().unwrap().0.user_id, "alice");
    }

    #[test]
    fn identity_from_a_verified_token() {
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), "carol".into());
        let verified = VerifiedToken {
            user_id: "carol".into(),
            claims,
            payload: r#"{"sub":"carol","exp":50}"#.into(),
            expires_at: Some(50.0),
        };
        let id = Identity::new(&verified, 0);
        assert_eq!(id.user_id, "carol");
        assert_eq!(id.payload, verified.payload);
        assert!(id.check_expiry(50).is_ok());
        assert_eq!(id.check_expiry(51), Err(TokenError::Expired));
    }
}
