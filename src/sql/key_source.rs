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

/// A time of the key worker's state; 0 means never.
fn timestamp(unix: i64) -> Option<TimestampWithTimeZone> {
    super::timestamp(unix).filter(|_| unix > 0)
}

/// Where this server's fetched keys come from and how the last refreshes went, one row per
/// source (the default issuer's first, then each listed issuer's that fetches its keys, with
/// its `issuer`): the setting and URL in use, the last success and failure (with its reason),
/// the usable keys and their `kid`s (and whether that list was cut short), the shared
/// generation, the next scheduled refresh, whether the set is stale (as verification judges
/// it), whether the key worker runs (and since when), and the last failure to write the cache
/// file.
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
        name!(issuer, Option<String>),
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
    let max_stale = i64::from(settings::MAX_STALE.get());
    // The default issuer's source, then each listed issuer's that fetches (as configured now).
    let mut wanted = vec![(0, setting, value, max_stale, None)];
    for (index, spec) in settings::issuer_specs().iter().enumerate() {
        if let Some((member, url)) = spec.source.fetched() {
            wanted.push((
                1 + index,
                Some(format!("electric_auth.issuers[{index}].{member}")),
                Some(url.to_owned()),
                spec.max_stale.unwrap_or(max_stale),
                Some(spec.iss.clone()),
            ));
        }
    }
    let Some(sources) = shmem::shared() else {
        let (_, setting, value, _, _) = wanted.swap_remove(0);
        return TableIterator::new(std::iter::once((
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
            None,
        )));
    };
    let generation = sources.generation() as i64;
    let running = sources.worker_running();
    let started = running
        .then(|| timestamp(sources.worker_started.load(Ordering::Acquire)))
        .flatten();
    let rows: Vec<_> = wanted
        .into_iter()
        .map(|(slot, setting, value, max_stale, issuer)| {
            let keys = sources.slot(slot);
            // The rule verification refuses stale keys by.
            let stale = stale_now(keys, max_stale);
            keys.read(|state| {
                // What the slot holds is shown only for the source configured now (the worker
                // switches a slot at the next reload it applies).
                let current = value.as_deref().map(str::as_bytes) == Some(state.source.get());
                let kids: Vec<String> = if current {
                    serde_json::from_str(&format!("[{}]", state.kids.string())).unwrap_or_default()
                } else {
                    Vec::new()
                };
                let failure = state.failure.string();
                (
                    setting,
                    value.clone(),
                    Some(state.jwks_url.string()).filter(|u| current && !u.is_empty()),
                    timestamp(state.last_success).filter(|_| current),
                    timestamp(state.last_failure).filter(|_| current),
                    Some(failure).filter(|f| current && !f.is_empty()),
                    if !current || state.document.get().is_empty() {
                        0
                    } else {
                        state.usable
                    },
                    kids,
                    generation,
                    timestamp(state.next_refresh).filter(|_| current),
                    current && stale,
                    current && state.from_file,
                    current && state.kids_truncated,
                    running,
                    started,
                    timestamp(state.last_persist_failure).filter(|_| current),
                    Some(state.persist_failure.string()).filter(|f| current && !f.is_empty()),
                    issuer,
                )
            })
        })
        .collect();
    TableIterator::new(rows)
}
