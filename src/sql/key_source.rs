//! `electric_auth.key_source()`: the key worker's state at a glance, for superusers and members
//! of `pg_monitor` (EXECUTE is granted to them only).

use crate::keys::settings::{self, KeySource};
use crate::keys::shmem;
use electric_auth_core::jwks::policy::is_stale;
use pgrx::prelude::*;
use std::sync::atomic::Ordering;

pgrx::extension_sql!(
    r#"
REVOKE ALL ON FUNCTION electric_auth."key_source"() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION electric_auth."key_source"() TO pg_monitor;
"#,
    name = "key_source_privileges",
    requires = [key_source]
);

fn timestamp(unix: i64) -> Option<TimestampWithTimeZone> {
    (unix > 0)
        .then(|| TimestampWithTimeZone::try_from(to_timestamp(unix)).ok())
        .flatten()
}

fn to_timestamp(unix: i64) -> pg_sys::TimestampTz {
    const POSTGRES_EPOCH_IN_UNIX_SECONDS: i64 = 946_684_800;
    (unix - POSTGRES_EPOCH_IN_UNIX_SECONDS) * 1_000_000
}

/// Where this server's fetched keys come from and how the last refreshes went: the setting
/// and URL in use, the last success and failure (with its reason), the usable keys and their
/// `kid`s, the shared generation, the next scheduled refresh, and whether the set is stale.
#[allow(clippy::type_complexity)]
#[pg_extern(schema = "electric_auth", volatile, parallel_safe)]
pub fn key_source() -> TableIterator<
    'static,
    (
        name!(setting, Option<String>),
        name!(source, Option<String>),
        name!(jwks_url, Option<String>),
        name!(last_success, Option<TimestampWithTimeZone>),
        name!(last_failure, Option<TimestampWithTimeZone>),
        name!(last_failure_reason, Option<String>),
        name!(usable_keys, i32),
        name!(kids, Vec<String>),
        name!(generation, i64),
        name!(next_refresh, Option<TimestampWithTimeZone>),
        name!(stale, bool),
        name!(from_cache_file, bool),
    ),
> {
    let source = KeySource::current();
    let (setting, value) = match &source {
        KeySource::Both => (
            Some(format!(
                "{} and {}",
                settings::JWKS_URL_NAME,
                settings::OIDC_ISSUER_NAME
            )),
            None,
        ),
        other => match other.setting_and_value() {
            Some((s, v)) => (Some(s.to_owned()), Some(v.to_owned())),
            None => (None, None),
        },
    };
    let row = match shmem::shared() {
        None => (
            setting,
            value,
            None,
            None,
            None,
            Some(
                "electric_auth is not in shared_preload_libraries: keys are not fetched".to_owned(),
            ),
            0,
            Vec::new(),
            0,
            None,
            false,
            false,
        ),
        Some(shared) => {
            let fetched_at = shared.fetched_at.load(Ordering::Acquire);
            let stale = fetched_at > 0
                && is_stale(
                    crate::keys::clock_now(),
                    fetched_at,
                    i64::from(settings::MAX_STALE.get()),
                );
            let generation = shared.generation() as i64;
            shared.read(|state| {
                let kids: Vec<String> =
                    serde_json::from_str(&format!("[{}]", state.kids.string())).unwrap_or_default();
                let failure = state.failure.string();
                (
                    setting,
                    value,
                    Some(state.jwks_url.string()).filter(|u| !u.is_empty()),
                    timestamp(state.last_success),
                    timestamp(state.last_failure),
                    Some(failure).filter(|f| !f.is_empty()),
                    if state.document.get().is_empty() {
                        0
                    } else {
                        state.usable
                    },
                    kids,
                    generation,
                    timestamp(state.next_refresh),
                    stale,
                    state.from_file,
                )
            })
        }
    };
    TableIterator::once(row)
}
