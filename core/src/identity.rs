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
//!
//! The answer is a function of the carrier and the settings in force, nothing else: a token
//! that does not verify under the settings in force raises why (28000) for as long as those
//! settings are in force, and verifies again once they change back. So a function's `SET
//! electric_auth.*` clause, a leader and its parallel workers, and a connection authenticated
//! under other settings (PostgreSQL 18) can never read a held identity as "no identity".

use crate::error::{json_string, Error, TokenError};
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

/// Whether the carrier may take `value` from `origin`. Emptying it (logout, `RESET`) is allowed;
/// a token comes from `authenticate()` or a parallel worker's restore — and, only on a node
/// whose superuser set `electric_auth.accept_propagated_identity` (a Citus worker), from a
/// session's `SET`, if the token verifies there: no more than `authenticate()` would accept.
/// On a connection authenticated by its token (`pinned`, PostgreSQL 18) that token is the
/// identity until the connection ends: nothing but a worker's restore of it may set the
/// carrier, not even to empty.
pub fn admission(value: &[u8], origin: Origin, accept_propagated: bool, pinned: bool) -> Admission {
    match origin {
        Origin::ParallelWorkerRestore => Admission::Accept,
        _ if pinned => Admission::Refuse,
        _ if carries_nothing(value) => Admission::Accept,
        Origin::Authenticate => Admission::Accept,
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

/// As [`role_authorized`], for a listed issuer whose `role_claim` is a JSON Pointer (RFC 6901)
/// into the payload (`electric_auth.issuers`).
pub fn role_authorized_at(
    claims: &serde_json::Map<String, serde_json::Value>,
    pointer: &str,
    role: &str,
) -> Result<(), String> {
    use serde_json::Value;
    let names_role = |value: &Value| value.as_str() == Some(role);
    // A listed issuer's pointer starts with "/" (checked when the setting is read).
    match crate::claims::at_pointer(claims, pointer) {
        None => Err(format!(
            "the token has nothing at the role claim {}",
            json_string(pointer)
        )),
        Some(Value::Array(roles)) if roles.iter().any(names_role) => Ok(()),
        Some(value) if names_role(value) => Ok(()),
        Some(_) => Err(format!(
            "the token's role claim {} does not name role \"{role}\"",
            json_string(pointer)
        )),
    }
}

/// PostgreSQL 18's pg_hba.conf `issuer=` against `electric_auth.jwt_iss`: when both are set
/// they must be equal, or no token could satisfy both; `Some` says so (a configuration problem,
/// not the token's).
pub fn hba_issuer_conflict(hba_issuer: &str, jwt_iss: Option<&str>) -> Option<String> {
    let jwt_iss = jwt_iss.filter(|iss| !iss.trim().is_empty())?;
    (jwt_iss != hba_issuer).then(|| {
        format!(
            "electric_auth.jwt_iss ({}) and the issuer of this pg_hba.conf line ({}) disagree, \
             so no token can satisfy both",
            json_string(jwt_iss),
            json_string(hba_issuer)
        )
    })
}

/// PostgreSQL 18's pg_hba.conf `issuer=` for a connection authenticated by its token: the
/// token's `iss` must equal the line's issuer exactly.
pub fn hba_issuer_accepted(
    claims: &serde_json::Map<String, serde_json::Value>,
    hba_issuer: &str,
) -> Result<(), String> {
    match claims.get("iss") {
        Some(serde_json::Value::String(iss)) if iss == hba_issuer => Ok(()),
        Some(iss) => Err(format!(
            "the token's \"iss\" claim ({iss}) is not the issuer of this pg_hba.conf line ({})",
            json_string(hba_issuer)
        )),
        None => Err(format!(
            "the token has no \"iss\" claim, and this pg_hba.conf line requires issuer {}",
            json_string(hba_issuer)
        )),
    }
}

/// PostgreSQL 18's pg_hba.conf `scope=` (space-separated) for a connection authenticated by its
/// token: every scope the line names must be granted by the token, in its `scope` claim (a
/// space-separated string, RFC 8693) or its `scp` claim (an array of strings, or a
/// space-separated string, as some providers write it).
pub fn hba_scopes_granted(
    claims: &serde_json::Map<String, serde_json::Value>,
    hba_scope: &str,
) -> Result<(), String> {
    use serde_json::Value;
    let mut granted: Vec<&str> = Vec::new();
    for claim in ["scope", "scp"] {
        match claims.get(claim) {
            Some(Value::String(list)) => granted.extend(list.split_ascii_whitespace()),
            Some(Value::Array(items)) => granted.extend(items.iter().filter_map(Value::as_str)),
            _ => {}
        }
    }
    let missing: Vec<&str> = hba_scope
        .split_ascii_whitespace()
        .filter(|wanted| !granted.contains(wanted))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the token does not grant the scope{} {} that this pg_hba.conf line requires (claims \
         \"scope\" or \"scp\")",
        if missing.len() == 1 { "" } else { "s" },
        json_string(&missing.join(" "))
    ))
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
    /// The token does not verify under the settings in force: every lookup raises why until
    /// the carrier or the settings change.
    Refused(TokenError),
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
    /// token under the settings in force (`Ok(None)`: the carrier is empty). A token that does
    /// not verify is remembered as refused for this epoch and generation: every call raises its
    /// error until one of them moves (so the answer never depends on which process asks, or on
    /// what was asked before). An expired token and a configuration error are raised and not
    /// remembered. A held identity is checked against `now` on every call. It comes with a
    /// serial: equal serials mean the same identity, so a caller may cache what it derives
    /// from it.
    pub fn current(
        &mut self,
        epoch: u64,
        generation: u64,
        now: i64,
        resolve: impl FnOnce() -> Result<Option<Identity>, Error>,
    ) -> Result<Option<(&Identity, u64)>, Error> {
        if self.epoch != epoch || self.generation != generation {
            match resolve() {
                Ok(None) => self.hold(epoch, generation, Held::Nothing),
                Ok(Some(identity)) => self.hold(epoch, generation, Held::Verified(identity)),
                Err(Error::Token(TokenError::Expired)) => return Err(TokenError::Expired.into()),
                Err(Error::Token(refusal)) => self.hold(epoch, generation, Held::Refused(refusal)),
                Err(config) => return Err(config),
            }
        }
        match &self.held {
            Held::Verified(identity) => {
                identity.check_expiry(now)?;
                Ok(Some((identity, self.serial)))
            }
            Held::Refused(refusal) => Err(refusal.clone().into()),
            Held::Nothing => Ok(None),
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
                assert_eq!(admission(b"", origin, accept_propagated, false), Accept);
                assert_eq!(admission(b"  ", origin, accept_propagated, false), Accept);
            }
        }
        for accept_propagated in [false, true] {
            let worker = Origin::ParallelWorkerRestore;
            let authenticate = Origin::Authenticate;
            assert_eq!(
                admission(b"a.b.c", authenticate, accept_propagated, false),
                Accept
            );
            assert_eq!(
                admission(b"a.b.c", worker, accept_propagated, false),
                Accept
            );
            assert_eq!(
                admission(b"a.b.c", Origin::Other, accept_propagated, false),
                Refuse
            );
            assert_eq!(
                admission(b"alice", Origin::Other, accept_propagated, false),
                Refuse
            );
        }
        assert_eq!(
            admission(b"a.b.c", Origin::SessionSet, false, false),
            Refuse
        );
        // A Citus worker: a forwarded SET LOCAL is taken only if its token verifies there.
        assert_eq!(
            admission(b"a.b.c", Origin::SessionSet, true, false),
            AcceptIfItVerifies
        );
        assert!(carries_nothing(b"\t \n"));
        assert!(!carries_nothing(b" x "));
    }

    #[test]
    fn a_pinned_connection_identity_cannot_be_replaced_or_cleared() {
        use Admission::*;
        for value in [&b""[..], b" ", b"a.b.c"] {
            for accept_propagated in [false, true] {
                for origin in [Origin::Authenticate, Origin::SessionSet, Origin::Other] {
                    assert_eq!(admission(value, origin, accept_propagated, true), Refuse);
                }
                // Its parallel workers restore it.
                let worker = Origin::ParallelWorkerRestore;
                assert_eq!(admission(value, worker, accept_propagated, true), Accept);
            }
        }
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
    fn the_hba_issuer_must_be_the_tokens_and_agree_with_jwt_iss() {
        let claims = |v: serde_json::Value| v.as_object().unwrap().clone();
        let idp = "https://idp.example/";
        let good = claims(serde_json::json!({"iss": idp}));
        assert_eq!(hba_issuer_accepted(&good, idp), Ok(()));
        // Exactly: no trailing-slash or case folding.
        assert!(hba_issuer_accepted(&good, "https://idp.example").is_err());
        assert!(hba_issuer_accepted(&good, "HTTPS://idp.example/").is_err());
        let other = claims(serde_json::json!({"iss": "https://evil.example/"}));
        assert_eq!(
            hba_issuer_accepted(&other, idp).unwrap_err(),
            r#"the token's "iss" claim ("https://evil.example/") is not the issuer of this pg_hba.conf line ("https://idp.example/")"#
        );
        let none = claims(serde_json::json!({"sub": "a"}));
        assert!(hba_issuer_accepted(&none, idp)
            .unwrap_err()
            .starts_with(r#"the token has no "iss" claim"#));
        let number = claims(serde_json::json!({"iss": 5}));
        assert!(hba_issuer_accepted(&number, "5").is_err());
        // jwt_iss unset or equal: no conflict; set to something else: a configuration problem.
        for agrees in [None, Some(""), Some("  "), Some(idp)] {
            assert_eq!(hba_issuer_conflict(idp, agrees), None);
        }
        assert_eq!(
            hba_issuer_conflict(idp, Some("ea-issuer")).unwrap(),
            r#"electric_auth.jwt_iss ("ea-issuer") and the issuer of this pg_hba.conf line ("https://idp.example/") disagree, so no token can satisfy both"#
        );
    }

    #[test]
    fn every_scope_of_the_hba_line_must_be_granted() {
        let claims = |v: serde_json::Value| v.as_object().unwrap().clone();
        let both = claims(serde_json::json!({"scope": "openid electric:sync  email"}));
        assert_eq!(hba_scopes_granted(&both, ""), Ok(()));
        assert_eq!(hba_scopes_granted(&both, "   "), Ok(()));
        assert_eq!(hba_scopes_granted(&both, "electric:sync"), Ok(()));
        assert_eq!(hba_scopes_granted(&both, "openid electric:sync"), Ok(()));
        assert_eq!(
            hba_scopes_granted(&both, "openid admin").unwrap_err(),
            r#"the token does not grant the scope "admin" that this pg_hba.conf line requires (claims "scope" or "scp")"#
        );
        assert!(hba_scopes_granted(&both, "electric")
            .unwrap_err()
            .contains(r#""electric""#));
        let scp = claims(serde_json::json!({"scp": ["electric:sync", 5, "openid"]}));
        assert_eq!(hba_scopes_granted(&scp, "openid electric:sync"), Ok(()));
        let scp_text = claims(serde_json::json!({"scp": "a b"}));
        assert_eq!(hba_scopes_granted(&scp_text, "b a"), Ok(()));
        let none = claims(serde_json::json!({"sub": "x"}));
        assert!(hba_scopes_granted(&none, "a b")
            .unwrap_err()
            .contains(r#"scopes "a b""#));
        let wrong_type = claims(serde_json::json!({"scope": {"a": true}, "scp": [["a"]]}));
        assert!(hba_scopes_granted(&wrong_type, "a").is_err());
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
    fn a_token_that_does_not_verify_raises_while_those_settings_are_in_force() {
        let mut state = IdentityState::new();
        state.install(1, 1, identity("alice", None));
        let refused = Error::Token(TokenError::InvalidSignature);
        let got = state.current(1, 2, 0, || Err(TokenError::InvalidSignature.into()));
        assert_eq!(got.unwrap_err(), refused);
        // Remembered for these settings: raised again without verifying again.
        assert_eq!(state.current(1, 2, 0, unreachable).unwrap_err(), refused);
        // The settings change back (a function's SET clause ends): it verifies again.
        let got = state.current(1, 3, 0, || Ok(Some(identity("alice", None))));
        assert_eq!(got.unwrap().unwrap().0.user_id, "alice");
        // A claim refusal is raised as it is, with its value.
        let aud = TokenError::InvalidClaimValue {
            claim: "aud",
            value: "\"x\"".into(),
        };
        let got = state.current(1, 4, 0, || Err(aud.clone().into()));
        assert_eq!(got.unwrap_err(), Error::Token(aud));
        let got = state.current(2, 4, 0, || Ok(Some(identity("bob", None))));
        assert_eq!(got.unwrap().unwrap().0.user_id, "bob");
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
        // Not remembered: once the settings are fixed, it resolves again.
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
            issuer: None,
        };
        let id = Identity::new(&verified, 0);
        assert_eq!(id.user_id, "carol");
        assert_eq!(id.payload, verified.payload);
        assert!(id.check_expiry(50).is_ok());
        assert_eq!(id.check_expiry(51), Err(TokenError::Expired));
    }
}
