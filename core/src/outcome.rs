//! What the verification statistics count: where a token was checked ([`EntryPoint`]) and how
//! it ended ([`Outcome`]: accepted, or refused for a [`Reason`]). Every refusal of the core maps
//! to exactly one reason name here, so a new refusal adds a name (a row in
//! `electric_auth.stats`), never a column.
//!
//! The counters are a dense table: [`Outcome::index`] and [`EntryPoint::index`] number the
//! cells from 0, [`CELLS`] in all.

use crate::error::{Error, TokenError};

/// The routes by which a token is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryPoint {
    /// `electric_auth.verify(token)`.
    Verify,
    /// `electric_auth.user_id(token)`.
    UserId,
    /// `electric_auth.authenticate(token)`.
    Authenticate,
    /// The identity in force verified again: in a new process (parallel workers included),
    /// after the settings or the identity changed.
    Identity,
    /// A Citus worker's check of the identity a coordinator forwarded.
    Propagated,
    /// A PostgreSQL 18 OAuth login (the validator module).
    OauthLogin,
}

impl EntryPoint {
    pub const ALL: [EntryPoint; 6] = [
        EntryPoint::Verify,
        EntryPoint::UserId,
        EntryPoint::Authenticate,
        EntryPoint::Identity,
        EntryPoint::Propagated,
        EntryPoint::OauthLogin,
    ];

    /// The name shown in `electric_auth.stats.entry_point`.
    pub const fn name(self) -> &'static str {
        match self {
            EntryPoint::Verify => "verify",
            EntryPoint::UserId => "user_id",
            EntryPoint::Authenticate => "authenticate",
            EntryPoint::Identity => "identity",
            EntryPoint::Propagated => "propagated",
            EntryPoint::OauthLogin => "oauth_login",
        }
    }

    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Why a token (or a login, or a session's request) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Not a JWT of the expected shape (or too long, or not UTF-8).
    InvalidToken,
    /// The header's `alg` is not `electric_auth.jwt_alg`.
    WrongAlgorithm,
    /// The signature does not verify with the configured key(s).
    BadSignature,
    /// The header's `kid` names no configured key.
    UnknownKey,
    /// `exp` (+ drift) is past.
    Expired,
    /// `nbf` (- drift) is in the future.
    NotYetValid,
    /// `iat` (- drift) is in the future.
    IssuedInFuture,
    /// A time claim that is not a number.
    InvalidClaim,
    /// `iss` is not `electric_auth.jwt_iss`.
    WrongIssuer,
    /// `aud` is not (or does not contain) `electric_auth.jwt_aud`.
    WrongAudience,
    /// A required claim (`iat`, `exp`, or a configured `iss`/`aud`) is missing.
    MissingClaim,
    /// No usable `sub` / `user_id`.
    NoUserId,
    /// The session refuses to verify (a refused setting, a database not UTF8, a session-scope
    /// identity refused, a connection's token identity that may not be replaced).
    RefusedSession,
    /// The settings cannot verify any token.
    Configuration,
    /// A Citus worker could not open the forwarded identity (another propagation secret, or
    /// another distributed transaction's).
    BadSeal,
    /// (OAuth login) The token verified but does not authorize this login: the pg_hba.conf
    /// line's issuer or scope, or the role claim.
    NotAuthorized,
    /// (`electric_auth.issuers`) The token's `iss` names no listed issuer and no default
    /// issuer is configured.
    UnknownIssuer,
    /// A user id in another issuer's scope (see the core's `issuers.rs`).
    ReservedUserId,
    /// The token, or its user's tokens, were revoked.
    Revoked,
}

impl Reason {
    pub const ALL: [Reason; 19] = [
        Reason::InvalidToken,
        Reason::WrongAlgorithm,
        Reason::BadSignature,
        Reason::UnknownKey,
        Reason::Expired,
        Reason::NotYetValid,
        Reason::IssuedInFuture,
        Reason::InvalidClaim,
        Reason::WrongIssuer,
        Reason::WrongAudience,
        Reason::MissingClaim,
        Reason::NoUserId,
        Reason::RefusedSession,
        Reason::Configuration,
        Reason::BadSeal,
        Reason::NotAuthorized,
        Reason::UnknownIssuer,
        Reason::ReservedUserId,
        Reason::Revoked,
    ];

    /// The name shown in `electric_auth.stats.reason` and in the refusal log.
    pub const fn name(self) -> &'static str {
        match self {
            Reason::InvalidToken => "invalid_token",
            Reason::WrongAlgorithm => "wrong_algorithm",
            Reason::BadSignature => "bad_signature",
            Reason::UnknownKey => "unknown_key",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::IssuedInFuture => "issued_in_future",
            Reason::InvalidClaim => "invalid_claim",
            Reason::WrongIssuer => "wrong_issuer",
            Reason::WrongAudience => "wrong_audience",
            Reason::MissingClaim => "missing_claim",
            Reason::NoUserId => "no_user_id",
            Reason::RefusedSession => "refused_session",
            Reason::Configuration => "configuration",
            Reason::BadSeal => "bad_seal",
            Reason::NotAuthorized => "not_authorized",
            Reason::UnknownIssuer => "unknown_issuer",
            Reason::ReservedUserId => "reserved_user_id",
            Reason::Revoked => "revoked",
        }
    }

    /// The reason of a core refusal.
    pub fn of(error: &Error) -> Reason {
        match error {
            Error::Config(_) => Reason::Configuration,
            Error::Token(token) => Reason::of_token(token),
        }
    }

    /// The reason of a token refusal.
    pub fn of_token(error: &TokenError) -> Reason {
        match error {
            TokenError::InvalidToken => Reason::InvalidToken,
            TokenError::AlgorithmMismatch => Reason::WrongAlgorithm,
            TokenError::InvalidSignature => Reason::BadSignature,
            TokenError::UnknownKey => Reason::UnknownKey,
            TokenError::NotYetValid => Reason::NotYetValid,
            TokenError::Expired => Reason::Expired,
            TokenError::MissingClaim(_) => Reason::MissingClaim,
            TokenError::MissingUserId => Reason::NoUserId,
            TokenError::UnknownIssuer => Reason::UnknownIssuer,
            TokenError::ReservedUserId => Reason::ReservedUserId,
            TokenError::Revoked => Reason::Revoked,
            TokenError::IssuerUnavailable(_) => Reason::Configuration,
            TokenError::InvalidClaimValue { claim, value } => match *claim {
                "iss" => Reason::WrongIssuer,
                "aud" => Reason::WrongAudience,
                // `iat` is refused as a number in the future, or as no number at all.
                "iat" if is_json_number(value) => Reason::IssuedInFuture,
                _ => Reason::InvalidClaim,
            },
        }
    }
}

fn is_json_number(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| v.is_number())
}

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Accepted,
    Refused(Reason),
}

/// How many outcomes there are: accepted, and one per reason.
pub const OUTCOMES: usize = 1 + Reason::ALL.len();

/// How many (entry point, outcome) cells a counter table has.
pub const CELLS: usize = EntryPoint::ALL.len() * OUTCOMES;

impl Outcome {
    /// The outcome of a check that returned `result`.
    pub fn of<T>(result: &Result<T, Error>) -> Outcome {
        match result {
            Ok(_) => Outcome::Accepted,
            Err(error) => Outcome::Refused(Reason::of(error)),
        }
    }

    /// 0 for accepted, 1 + the reason's position in [`Reason::ALL`] for a refusal.
    pub const fn index(self) -> usize {
        match self {
            Outcome::Accepted => 0,
            Outcome::Refused(reason) => 1 + reason as usize,
        }
    }

    /// `("accepted", None)` or `("refused", Some(reason))`, as the stats view shows it.
    pub const fn names(self) -> (&'static str, Option<&'static str>) {
        match self {
            Outcome::Accepted => ("accepted", None),
            Outcome::Refused(reason) => ("refused", Some(reason.name())),
        }
    }

    /// The outcome numbered `index` (see [`Outcome::index`]).
    pub fn from_index(index: usize) -> Option<Outcome> {
        match index {
            0 => Some(Outcome::Accepted),
            i => Reason::ALL.get(i - 1).map(|r| Outcome::Refused(*r)),
        }
    }
}

/// The cell of `(entry, outcome)` in a counter table of [`CELLS`] cells.
pub const fn cell(entry: EntryPoint, outcome: Outcome) -> usize {
    entry.index() * OUTCOMES + outcome.index()
}

/// The `(entry, outcome)` of cell `index`.
pub fn from_cell(index: usize) -> Option<(EntryPoint, Outcome)> {
    let entry = *EntryPoint::ALL.get(index / OUTCOMES)?;
    Some((entry, Outcome::from_index(index % OUTCOMES)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ConfigError;
    use std::collections::HashSet;

    #[test]
    fn every_token_refusal_has_its_reason() {
        let cases = [
            (TokenError::InvalidToken, "invalid_token"),
            (TokenError::AlgorithmMismatch, "wrong_algorithm"),
            (TokenError::InvalidSignature, "bad_signature"),
            (TokenError::UnknownKey, "unknown_key"),
            (TokenError::NotYetValid, "not_yet_valid"),
            (TokenError::Expired, "expired"),
            (TokenError::MissingClaim("exp"), "missing_claim"),
            (TokenError::MissingUserId, "no_user_id"),
        ];
        for (error, name) in cases {
            assert_eq!(Reason::of_token(&error).name(), name, "{error:?}");
        }
        let claim = |claim, value: &str| TokenError::InvalidClaimValue {
            claim,
            value: value.to_owned(),
        };
        let of = |e: TokenError| Reason::of_token(&e).name();
        assert_eq!(of(claim("iss", "\"https://other\"")), "wrong_issuer");
        assert_eq!(of(claim("aud", "[\"a\",\"b\"]")), "wrong_audience");
        assert_eq!(of(claim("iat", "1900000000")), "issued_in_future");
        assert_eq!(of(claim("iat", "1.9e9")), "issued_in_future");
        assert_eq!(of(claim("iat", "\"1900000000\"")), "invalid_claim");
        assert_eq!(of(claim("exp", "\"soon\"")), "invalid_claim");
        assert_eq!(of(claim("nbf", "null")), "invalid_claim");
    }

    #[test]
    fn configuration_errors_are_one_reason() {
        let error = Error::Config(ConfigError::KeyNotSet);
        assert_eq!(Reason::of(&error), Reason::Configuration);
        assert_eq!(
            Outcome::of::<()>(&Err(error)),
            Outcome::Refused(Reason::Configuration)
        );
        assert_eq!(Outcome::of(&Ok::<_, Error>(1)), Outcome::Accepted);
    }

    #[test]
    fn names_are_unique_lower_case_identifiers() {
        let mut seen = HashSet::new();
        let names = Reason::ALL
            .iter()
            .map(|r| r.name())
            .chain(EntryPoint::ALL.iter().map(|e| e.name()));
        for name in names {
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
            assert!(seen.insert(name), "{name} twice");
        }
        assert_eq!(seen.len(), 19 + 6);
    }

    #[test]
    fn the_spec_reasons_are_all_there() {
        for name in [
            "invalid_token",
            "bad_signature",
            "expired",
            "not_yet_valid",
            "issued_in_future",
            "wrong_issuer",
            "wrong_audience",
            "no_user_id",
            "unknown_key",
            "refused_session",
            "configuration",
        ] {
            assert!(Reason::ALL.iter().any(|r| r.name() == name), "{name}");
        }
    }

    #[test]
    fn cells_number_every_pair_once() {
        let mut seen = HashSet::new();
        for entry in EntryPoint::ALL {
            assert_eq!(EntryPoint::ALL[entry.index()], entry);
            let outcomes =
                std::iter::once(Outcome::Accepted).chain(Reason::ALL.map(Outcome::Refused));
            for outcome in outcomes {
                let index = cell(entry, outcome);
                assert!(index < CELLS);
                assert!(seen.insert(index));
                assert_eq!(from_cell(index), Some((entry, outcome)));
            }
        }
        assert_eq!(seen.len(), CELLS);
        assert_eq!(from_cell(CELLS), None);
        for (i, reason) in Reason::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, i, "Reason::ALL is in declaration order");
        }
    }

    #[test]
    fn outcome_names() {
        assert_eq!(Outcome::Accepted.names(), ("accepted", None));
        assert_eq!(
            Outcome::Refused(Reason::Expired).names(),
            ("refused", Some("expired"))
        );
    }
}
