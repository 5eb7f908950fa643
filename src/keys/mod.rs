//! Keys from an identity provider (`electric_auth.jwks_url` / `oidc_issuer`): a background worker
//! (`worker.rs`, the only caller of `fetch.rs`) fetches them into shared memory (`shmem.rs`);
//! each backend reads them from there (`backend.rs`): no network on a query or a login. Pure
//! rules live in the core's `jwks/`; `key_source()` is in `sql/key_source.rs`. Imports only
//! `settings` of the glue.

pub mod backend;
pub mod fetch;
pub mod settings;
pub mod shmem;
pub mod worker;

/// From `_PG_init`: with `shared_preload_libraries`, the shared memory and the worker.
pub fn init() {
    // SAFETY: read in _PG_init, where Postgres sets it while preloading.
    if unsafe { pgrx::pg_sys::process_shared_preload_libraries_in_progress } {
        settings::mark_preloaded();
        shmem::init();
        worker::register();
    }
}

/// The clock now, in Unix seconds.
pub fn clock_now() -> i64 {
    const POSTGRES_EPOCH_IN_UNIX_SECONDS: i64 = 946_684_800;
    // SAFETY: reads the system clock; callable in any process.
    let now = unsafe { pgrx::pg_sys::GetCurrentTimestamp() };
    now.div_euclid(1_000_000) + POSTGRES_EPOCH_IN_UNIX_SECONDS
}

/// The clock now, in Unix milliseconds (refresh requests are timed to the millisecond: a
/// request deferred by the rate limit runs as soon as the limit allows, not up to a second
/// later).
pub fn clock_now_ms() -> i64 {
    const POSTGRES_EPOCH_IN_UNIX_MS: i64 = 946_684_800_000;
    // SAFETY: reads the system clock; callable in any process.
    let now = unsafe { pgrx::pg_sys::GetCurrentTimestamp() };
    now.div_euclid(1_000) + POSTGRES_EPOCH_IN_UNIX_MS
}
