//! `electric_auth.key_source()`: the key worker's state at a glance, for superusers and members
//! of `pg_monitor` (EXECUTE is granted to them only).

use crate::keys::backend::stale_now;
use crate::keys::settings::{self, KeySource};
use crate::keys::shmem;
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
/// `kid`s (and whether that list was cut short), the shared generation, the next scheduled
/// refresh, whether the set is stale (as verification judges it), whether the key worker runs
/// (and since when), and the last failure to write the cache file.
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
        name!(kids_truncated, bool),
        name!(worker_running, bool),
        name!(worker_started, Option<TimestampWithTimeZone>),
        name!(last_persist_failure, Option<TimestampWithTimeZone>),
        name!(last_persist_failure_reason, Option<String>),
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
            false,
            false,
            None,
            None,
            None,
        ),
        Some(shared) => {
            // The rule verification refuses stale keys by.
            let stale = stale_now(shared);
            let generation = shared.generation() as i64;
            let running = shared.worker_running();
            let started = running
                .then(|| timestamp(shared.worker_started.load(Ordering::Acquire)))
                .flatten();
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
                    state.kids_truncated,
                    running,
                    started,
                    timestamp(state.last_persist_failure),
                    Some(state.persist_failure.string()).filter(|f| !f.is_empty()),
                )
            })
        }
    };
    TableIterator::once(row)
}
