//! Revocation's SQL (issue 33): `revoke_token`, `revoke_user`, `unrevoke_user`, the
//! `electric_auth.revocations` view, and the `electric_auth_revoker` role. The list itself is
//! `revocation/`; revoking a token is `verify::revoke_token`.
#![allow(clippy::result_large_err)]

use pgrx::prelude::*;

// The role may already exist (roles belong to the cluster; another database's CREATE EXTENSION
// created it). Created NOLOGIN: grant it to the roles that administer sessions.
pgrx::extension_sql!(
    r#"
DO $revoker$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'electric_auth_revoker') THEN
    CREATE ROLE electric_auth_revoker NOLOGIN;
  END IF;
END
$revoker$;
CREATE VIEW electric_auth.revocations AS
  SELECT * FROM electric_auth.revocation_list();
COMMENT ON VIEW electric_auth.revocations IS 'What is revoked, by whom, when and until when (never a token)';
REVOKE ALL ON electric_auth.revocations FROM PUBLIC;
GRANT SELECT ON electric_auth.revocations TO electric_auth_revoker;
REVOKE ALL ON FUNCTION electric_auth.revocation_list() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION electric_auth.revocation_list() TO electric_auth_revoker;
REVOKE ALL ON FUNCTION electric_auth.revoke_user(text, timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION electric_auth.revoke_user(text, timestamp with time zone) TO electric_auth_revoker;
REVOKE ALL ON FUNCTION electric_auth.unrevoke_user(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION electric_auth.unrevoke_user(text) TO electric_auth_revoker;
"#,
    name = "revocations_view",
    requires = [
        electric_auth::revocation_list,
        electric_auth::revoke_user,
        electric_auth::unrevoke_user
    ]
);

#[pg_schema]
pub mod electric_auth {
    use super::super::token_text::TokenText;
    use crate::guard::hide_tokens;
    use electric_auth_core::revocation::{current, Record, TokenId};
    use pgrx::pg_sys::panic::ErrorReport;
    use pgrx::prelude::*;

    use super::super::timestamp;
    use crate::verify::unix_seconds;

    /// Revokes `token` (it must verify) until it expires; committed with the transaction.
    #[pg_extern(strict, volatile, parallel_unsafe)]
    pub fn revoke_token(token: TokenText) -> Result<(), ErrorReport> {
        hide_tokens();
        let token = std::str::from_utf8(token.0).map_err(|_| {
            crate::errors::error_report(electric_auth_core::TokenError::InvalidToken.into())
        })?;
        crate::identity::revoke_token(token)
    }

    /// Revokes every token of `user_id` issued before `issued_before` (its whole second; NULL
    /// means now, an infinite time is refused).
    #[pg_extern(volatile, parallel_unsafe)]
    pub fn revoke_user(
        user_id: Option<&str>,
        issued_before: default!(Option<TimestampWithTimeZone>, "now()"),
    ) -> Result<(), ErrorReport> {
        crate::revocation::require_revoker("revoke a user's tokens")?;
        crate::revocation::may_write()?;
        let Some(user_id) = user_id else {
            return Err(ErrorReport::new(
                PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                "revoke_user needs a user id, not NULL",
                "electric_auth",
            ));
        };
        let issued_before = match issued_before {
            None => crate::verify::clock_now(),
            Some(time) if time.is_infinity() || time.is_neg_infinity() => {
                return Err(ErrorReport::new(
                    PgSqlErrorCode::ERRCODE_DATETIME_FIELD_OVERFLOW,
                    "issued_before must be a finite time",
                    "electric_auth",
                ))
            }
            Some(time) => unix_seconds(time.into()),
        };
        crate::revocation::add(Record::RevokeUser {
            user_id: user_id.to_owned(),
            issued_before,
            by: crate::revocation::current_role(),
            at: crate::verify::clock_now(),
        })
    }

    /// Ends `user_id`'s revocation.
    #[pg_extern(strict, volatile, parallel_unsafe)]
    pub fn unrevoke_user(user_id: &str) -> Result<(), ErrorReport> {
        crate::revocation::require_revoker("unrevoke a user")?;
        crate::revocation::may_write()?;
        crate::revocation::add(Record::UnrevokeUser {
            user_id: user_id.to_owned(),
            by: crate::revocation::current_role(),
            at: crate::verify::clock_now(),
            expected: None,
        })
    }

    /// The list in force, read from its file (behind `electric_auth.revocations`).
    #[allow(clippy::type_complexity)]
    #[pg_extern(volatile, parallel_safe)]
    pub fn revocation_list() -> Result<
        TableIterator<
            'static,
            (
                name!(kind, &'static str),
                name!(issuer, Option<String>),
                name!(jti, Option<String>),
                name!(signature, Option<String>),
                name!(user_id, Option<String>),
                name!(issued_before, Option<TimestampWithTimeZone>),
                name!(expires_at, Option<TimestampWithTimeZone>),
                name!(revoked_by, String),
                name!(revoked_at, Option<TimestampWithTimeZone>),
            ),
        >,
        ErrorReport,
    > {
        crate::revocation::require_revoker("read the revocation list")?;
        let now = crate::verify::clock_now();
        let records = current(
            crate::revocation::read_file(),
            now,
            crate::revocation::KEEP_AFTER_EXP_SECS,
        );
        Ok(TableIterator::new(records.into_iter().map(
            |record| match record {
                Record::RevokeToken {
                    token,
                    expires_at,
                    by,
                    at,
                    ..
                } => {
                    let (issuer, jti, signature) = match token {
                        TokenId::Jti { iss, jti } => {
                            (Some(iss).filter(|i| !i.is_empty()), Some(jti), None)
                        }
                        TokenId::Signature(hex) => (None, None, Some(hex)),
                    };
                    (
                        "token",
                        issuer,
                        jti,
                        signature,
                        None,
                        None,
                        timestamp(expires_at),
                        by,
                        timestamp(at),
                    )
                }
                Record::RevokeUser {
                    user_id,
                    issued_before,
                    by,
                    at,
                } => (
                    "user",
                    None,
                    None,
                    None,
                    Some(user_id),
                    timestamp(issued_before),
                    None,
                    by,
                    timestamp(at),
                ),
                Record::UnrevokeUser {
                    user_id, by, at, ..
                } => (
                    "unrevoked",
                    None,
                    None,
                    None,
                    Some(user_id),
                    None,
                    None,
                    by,
                    timestamp(at),
                ),
            },
        )))
    }
}
