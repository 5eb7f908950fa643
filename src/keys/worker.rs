//! The key worker: one background process (registered when the library is preloaded) that
//! fetches the configured JWKS at startup, on every interval and when a backend met an unknown
//! `kid`, publishes it in shared memory, and persists the last good document so a restart
//! without the network still verifies. It follows configuration reloads.

use super::fetch::{fetch, Expected, FetchSettings};
use super::settings::{self, KeySource};
use super::shmem::{self, SharedKeys};
use crate::errors::log;
use crate::settings::names;
use electric_auth_core::jwks::cache_file::{CachedDocument, MAX_FILE_BYTES};
use electric_auth_core::jwks::policy::{
    is_stale, next_attempt, refresh_after_success, retry_after_failure, WarningLimiter,
};
use electric_auth_core::jwks::url::check_https_url;
use electric_auth_core::jwks::{discovery, validate_fetched, DocumentSummary};
use electric_auth_core::Algorithm;
use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags,
};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use std::ffi::CStr;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The cache file, in the data directory (readable by the server's OS user only).
pub const CACHE_FILE_NAME: &str = "electric_auth_jwks_cache.json";

/// Registers the worker; from `_PG_init` while `shared_preload_libraries` loads.
pub fn register() {
    BackgroundWorkerBuilder::new("electric_auth key worker")
        .set_type("electric_auth key worker")
        .set_library("electric_auth")
        .set_function("electric_auth_key_worker_main")
        .enable_shmem_access(None)
        .set_start_time(BgWorkerStartTime::PostmasterStart)
        .set_restart_time(Some(Duration::from_secs(RESTART_SECS)))
        .load();
}

fn now() -> i64 {
    crate::keys::clock_now()
}

fn cache_path() -> PathBuf {
    // SAFETY: DataDir is set before any background worker starts and never changes.
    let data_dir = unsafe { CStr::from_ptr(pg_sys::DataDir) };
    PathBuf::from(data_dir.to_string_lossy().into_owned()).join(CACHE_FILE_NAME)
}

/// The algorithm the worker checks documents for (its view of `jwt_alg`, from the file).
fn pinned_algorithm() -> Option<Algorithm> {
    // By name: the setting belongs to `verify/`, above this module.
    // SAFETY: GetConfigOption returns the current value (or NULL), valid until it changes.
    let value = unsafe { pg_sys::GetConfigOption(names::JWT_ALG.as_ptr(), true, false) };
    if value.is_null() {
        return None;
    }
    // SAFETY: a NUL-terminated string owned by the GUC machinery, read at once.
    let name = unsafe { CStr::from_ptr(value) }.to_string_lossy();
    Algorithm::from_name(name.trim())
}

fn warn(message: String) {
    ErrorReport::new(PgSqlErrorCode::ERRCODE_WARNING, message, "electric_auth")
        .report(PgLogLevel::WARNING);
}

struct Worker {
    source: KeySource,
    next_attempt: i64,
    failures: u32,
    limiter: WarningLimiter,
    /// `jwt_alg` as the stored document was last checked for.
    algorithm: Option<Algorithm>,
    /// `jwks_refresh_interval` as `next_attempt` was last scheduled with.
    interval: i64,
    /// When the last attempt ended (0: none yet), and the provider's `max-age` then.
    last_attempt: i64,
    max_age: Option<i64>,
}

/// The restart delay registered for the worker (`bgw_restart_time`).
const RESTART_SECS: u64 = 5;

/// Clears the worker's entries in shared memory when its process exits, however it exits (an
/// ERROR, SIGTERM), so `key_source()` says no worker runs.
#[pg_guard]
unsafe extern "C-unwind" fn worker_exiting(_code: std::ffi::c_int, _arg: pg_sys::Datum) {
    if let Some(shared) = shmem::shared() {
        shared
            .worker_latch
            .store(std::ptr::null_mut(), Ordering::Release);
        shared.worker_pid.store(0, Ordering::Release);
    }
}

/// SIGTERM: leave at once. Exit status 1 makes the postmaster start the worker again after
/// `RESTART_SECS` — an operator's or a container runtime's `kill -TERM` must not end key
/// refreshes for good (status 0 means "done, never restart"); at a server shutdown the
/// postmaster restarts nothing, so the status changes nothing there.
fn exit_on_sigterm(during: &str) -> ! {
    log(format!(
        "electric_auth key worker: SIGTERM received{during}; exiting (unless the server is \
         shutting down, the postmaster starts it again in {RESTART_SECS} s)"
    ));
    // SAFETY: proc_exit runs the exit callbacks (worker_exiting) and ends the process. (Some
    // majors' bindings declare it as returning.)
    #[allow(unreachable_code)]
    {
        unsafe { pg_sys::proc_exit(1) };
        unreachable!("proc_exit does not return")
    }
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn electric_auth_key_worker_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let Some(shared) = shmem::shared() else {
        return;
    };
    // SAFETY: registers a callback for this process's exit; MyLatch/MyProcPid are this
    // process's (its PGPROC's latch is in shared memory).
    unsafe {
        pg_sys::before_shmem_exit(Some(worker_exiting), pg_sys::Datum::from(0));
        shared
            .worker_latch
            .store(pg_sys::MyLatch, Ordering::Release);
        shared
            .worker_pid
            .store(pg_sys::MyProcPid, Ordering::Release);
    }
    shared.worker_started.store(now(), Ordering::Release);
    log("electric_auth key worker started".to_owned());
    let mut worker = Worker {
        source: KeySource::None,
        next_attempt: 0,
        failures: 0,
        limiter: WarningLimiter::default(),
        algorithm: pinned_algorithm(),
        interval: i64::from(settings::REFRESH_INTERVAL.get()),
        last_attempt: 0,
        max_age: None,
    };
    loop {
        if BackgroundWorker::sighup_received() {
            // SAFETY: the documented way for a background worker to apply a reload.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        worker.step(shared);
        let wait_ms = match worker.source {
            KeySource::JwksUrl(_) | KeySource::Issuer(_) => {
                let mut next = worker.next_attempt.saturating_mul(1000);
                if shared.refresh_pending() {
                    next = next.min(shared.refresh_requested_at.load(Ordering::Acquire));
                }
                (next - now_ms()).clamp(10, 24 * 3600 * 1000)
            }
            _ => 3600 * 1000,
        };
        if !BackgroundWorker::wait_latch(Some(Duration::from_millis(wait_ms as u64))) {
            exit_on_sigterm("");
        }
    }
}

fn now_ms() -> i64 {
    crate::keys::clock_now_ms()
}

/// Runs `work` on a thread of its own while this process keeps answering signals: a SIGTERM
/// (a fast shutdown) during a fetch leaves at once instead of waiting for the fetch's
/// timeout. The thread runs no Postgres code and receives no signal (all are blocked in it);
/// it ends with the process if it is still waiting on the network then. `None` when the thread
/// could not run (the reason is logged by the caller's failure).
fn run_interruptibly<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    // SAFETY: the signal mask of this thread, changed around the spawn only, so the new thread
    // starts (and stays) with every signal blocked; Postgres's handlers run here alone.
    let spawned = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut previous);
        let spawned = std::thread::Builder::new()
            .name("ea-key-fetch".to_owned())
            .spawn(move || {
                let _ = sender.send(work());
            });
        libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
        spawned
    };
    if let Err(error) = spawned {
        return Err(format!("the fetch could not start: {error}"));
    }
    loop {
        match receiver.try_recv() {
            Ok(result) => {
                // The waits below reset the latch: a reload (SIGHUP) or a backend's wake-up
                // that came meanwhile must still end the worker's next wait at once.
                // SAFETY: this process's own latch.
                unsafe { pg_sys::SetLatch(pg_sys::MyLatch) };
                return Ok(result);
            }
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                // SAFETY: as above.
                unsafe { pg_sys::SetLatch(pg_sys::MyLatch) };
                return Err("the fetch ended without an answer".to_owned());
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
        }
        // A backend's wake-up sets the latch too: that only shortens this wait.
        if !BackgroundWorker::wait_latch(Some(Duration::from_millis(50))) {
            exit_on_sigterm(" during a fetch");
        }
    }
}

impl Worker {
    fn step(&mut self, shared: &SharedKeys) {
        let source = KeySource::current();
        if source != self.source {
            self.source = source.clone();
            self.failures = 0;
            self.limiter.reset();
            self.next_attempt = 0;
            self.switch_source(shared);
        }
        let algorithm = pinned_algorithm();
        if algorithm != self.algorithm {
            self.algorithm = algorithm;
            self.recheck_document(shared);
        }
        let interval = i64::from(settings::REFRESH_INTERVAL.get());
        if interval != self.interval {
            self.interval = interval;
            self.reschedule(shared);
        }
        match &self.source {
            KeySource::None => {}
            KeySource::Both => {
                if self.limiter.should_warn("both", now()) {
                    warn(format!(
                        "{} and {} are both set: no keys are fetched until only one is",
                        settings::JWKS_URL_NAME,
                        settings::OIDC_ISSUER_NAME
                    ));
                }
                // Nothing will be fetched: every wake-up so far counts as answered.
                let requested = shared.refresh_requested_at.load(Ordering::Acquire);
                shared.refresh_served_at.store(requested, Ordering::Release);
            }
            KeySource::JwksUrl(_) | KeySource::Issuer(_) => {
                // A pending request may be deferred to a time the rate limit allows.
                let requested = shared.refresh_pending()
                    && now_ms() >= shared.refresh_requested_at.load(Ordering::Acquire);
                if now() >= self.next_attempt || requested {
                    self.attempt(shared);
                }
            }
        }
    }

    /// A new source: the old document is dropped, and the persisted one loaded if it was
    /// written for this source.
    fn switch_source(&mut self, shared: &SharedKeys) {
        let loaded = self
            .source
            .setting_and_value()
            .and_then(|(_, value)| load_cache_file(value));
        let source = self
            .source
            .setting_and_value()
            .map_or(String::new(), |(_, v)| v.to_owned());
        shared.write(|state| {
            state.source.set(source.as_bytes());
            state.jwks_url.set(b"");
            state.last_success = 0;
            state.last_failure = 0;
            state.failure.set(b"");
            state.next_refresh = 0;
            state.from_file = loaded.is_some();
            match &loaded {
                Some((cached, summary)) => {
                    state.document.set(cached.document.as_bytes());
                    state.usable = summary.usable as i32;
                    set_kids(state, &summary.kids);
                }
                None => {
                    state.document.set(b"");
                    state.usable = 0;
                    set_kids(state, &[]);
                }
            }
        });
        shared.fetched_at.store(
            loaded.as_ref().map_or(0, |(cached, _)| cached.fetched_at),
            Ordering::Release,
        );
        shared.generation.fetch_add(1, Ordering::AcqRel);
        if let Some((cached, summary)) = &loaded {
            log(format!(
                "electric_auth loaded {} keys for {} from {CACHE_FILE_NAME}, fetched {} s ago",
                summary.usable,
                cached.source,
                now() - cached.fetched_at
            ));
        }
    }

    /// `jwt_alg` changed: the stored document is checked for the new algorithm at once, so
    /// `key_source()` says what is usable now rather than after the next fetch.
    fn recheck_document(&mut self, shared: &SharedKeys) {
        let document = shared.read(|state| state.document.get().to_vec());
        if document.is_empty() {
            return;
        }
        let now = now();
        match validate_fetched(self.algorithm, &document) {
            Ok(summary) => shared.write(|state| {
                state.usable = summary.usable as i32;
                set_kids(state, &summary.kids);
            }),
            Err(reason) => {
                let reason = format!("for {}: {reason}", algorithm_name(self.algorithm));
                shared.write(|state| {
                    state.usable = 0;
                    set_kids(state, &[]);
                    state.last_failure = now;
                    state.failure.set(reason.as_bytes());
                });
                if self.limiter.should_warn(&reason, now) {
                    warn(format!(
                        "electric_auth's stored keys have none usable {reason}; \
                         the next refresh fetches them again"
                    ));
                }
            }
        }
        // Backends re-read the document with their own jwt_alg; the generation tells them to.
        shared.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// `jwks_refresh_interval` changed: the next refresh is scheduled from the last attempt
    /// with the new interval at once, not after the attempt the old interval scheduled.
    fn reschedule(&mut self, shared: &SharedKeys) {
        if self.last_attempt == 0 {
            return;
        }
        self.next_attempt = next_attempt(
            self.last_attempt,
            self.interval,
            self.max_age,
            self.failures,
        );
        let next = self.next_attempt;
        shared.write(|state| state.next_refresh = next);
    }

    fn attempt(&mut self, shared: &SharedKeys) {
        let interval = i64::from(settings::REFRESH_INTERVAL.get());
        // The requests this attempt answers: those made before it began (a deferred one whose
        // time has not come is answered too: it was made before this attempt began).
        let serving = shared.refresh_requested_at.load(Ordering::Acquire);
        let source = self.source.clone();
        let fetch_settings = FetchSettings {
            timeout: settings::timeout(),
            ca_file: settings::ca_file(),
        };
        let algorithm = pinned_algorithm();
        let result = run_interruptibly(move || fetch_document(&source, &fetch_settings, algorithm))
            .and_then(|result| result);
        let now = now();
        self.last_attempt = now;
        match result {
            Ok((jwks_url, body, max_age, summary)) => {
                self.max_age = max_age;
                let next = now + refresh_after_success(interval, max_age);
                // Keys that were stale are fresh again: backends must look (a backend waiting
                // for this refresh verifies again only when the generation moves).
                let was_stale = is_stale(
                    now,
                    shared.fetched_at.load(Ordering::Acquire),
                    i64::from(settings::MAX_STALE.get()),
                );
                let changed = shared.write(|state| {
                    let changed = state.document.get() != body.as_bytes()
                        || state.jwks_url.get() != jwks_url.as_bytes()
                        || was_stale;
                    state.document.set(body.as_bytes());
                    state.jwks_url.set(jwks_url.as_bytes());
                    state.last_success = now;
                    state.next_refresh = next;
                    state.usable = summary.usable as i32;
                    set_kids(state, &summary.kids);
                    state.from_file = false;
                    changed
                });
                shared.fetched_at.store(now, Ordering::Release);
                if changed {
                    shared.generation.fetch_add(1, Ordering::AcqRel);
                    log(format!(
                        "electric_auth fetched {} usable keys from {jwks_url}",
                        summary.usable
                    ));
                }
                if let Some((_, value)) = self.source.setting_and_value() {
                    let cached = CachedDocument {
                        source: value.to_owned(),
                        fetched_at: now,
                        document: body,
                    };
                    match persist(&cached) {
                        Err(error) => {
                            shared.write(|state| {
                                state.last_persist_failure = now;
                                state.persist_failure.set(error.as_bytes());
                            });
                            if self.limiter.should_warn(&error, now) {
                                warn(format!(
                                    "electric_auth could not persist the fetched keys: {error}; \
                                     a restart would load older keys (or none) until a fetch \
                                     succeeds"
                                ));
                            }
                        }
                        Ok(()) => {
                            shared.write(|state| {
                                state.last_persist_failure = 0;
                                state.persist_failure.set(b"");
                            });
                            self.limiter.reset();
                        }
                    }
                }
                self.failures = 0;
                self.next_attempt = next;
            }
            Err(reason) => {
                self.failures = self.failures.saturating_add(1);
                let next = now + retry_after_failure(interval, self.failures);
                shared.write(|state| {
                    state.last_failure = now;
                    state.failure.set(reason.as_bytes());
                    state.next_refresh = next;
                });
                if self.limiter.should_warn(&reason, now) {
                    let fetched_at = shared.fetched_at.load(Ordering::Acquire);
                    let kept = if fetched_at == 0 {
                        "no keys are in use yet".to_owned()
                    } else {
                        format!(
                            "the last good keys (fetched {} s ago) stay in use",
                            now - fetched_at
                        )
                    };
                    warn(format!(
                        "electric_auth could not refresh its keys: {reason}; {kept}"
                    ));
                }
                self.next_attempt = next;
            }
        }
        shared.refresh_served_at.store(serving, Ordering::Release);
        shared.attempts.fetch_add(1, Ordering::AcqRel);
    }
}

fn algorithm_name(algorithm: Option<Algorithm>) -> String {
    algorithm.map_or_else(|| "no jwt_alg".to_owned(), |a| a.name().to_owned())
}

/// Stores the `kid`s as JSON strings, `"a","b"` (a `kid` may hold a comma), as many whole ones
/// as fit; `kids_truncated` says when some did not (`key_source()` shows it, never a cut list).
fn set_kids(state: &mut shmem::KeyState, kids: &[String]) {
    let mut list = String::new();
    let mut truncated = false;
    for kid in kids {
        let quoted = serde_json::Value::String(kid.clone()).to_string();
        let separator = usize::from(!list.is_empty());
        if list.len() + separator + quoted.len() > shmem::KidsText::CAPACITY {
            truncated = true;
            break;
        }
        if separator == 1 {
            list.push(',');
        }
        list.push_str(&quoted);
    }
    state.kids.set(list.as_bytes());
    state.kids_truncated = truncated;
}

type FetchedDocument = (String, String, Option<i64>, DocumentSummary);

/// Discovery (if configured), then the JWKS, checked as `validate_fetched` does for
/// `algorithm`. Runs on the fetch thread: no Postgres call here (the settings come in).
fn fetch_document(
    source: &KeySource,
    settings: &FetchSettings,
    algorithm: Option<Algorithm>,
) -> Result<FetchedDocument, String> {
    let settings = settings.clone();
    let jwks_url = match source {
        KeySource::JwksUrl(url) => url.clone(),
        KeySource::Issuer(issuer) => {
            let url = discovery::discovery_url(issuer);
            check_https_url(&url)?;
            let document = fetch(&url, &settings, Expected::Discovery)?;
            discovery::jwks_uri(issuer, &document.body).map_err(|e| format!("{url}: {e}"))?
        }
        _ => return Err("no source is configured".to_owned()),
    };
    check_https_url(&jwks_url).map_err(|e| format!("{jwks_url}: {e}"))?;
    let fetched = fetch(&jwks_url, &settings, Expected::Jwks)?;
    let summary =
        validate_fetched(algorithm, &fetched.body).map_err(|e| format!("{jwks_url}: {e}"))?;
    let body = String::from_utf8(fetched.body).map_err(|_| format!("{jwks_url}: not UTF-8"))?;
    Ok((jwks_url, body, fetched.max_age, summary))
}

/// Writes the cache file atomically: a temporary file (mode 0600) synced, renamed over the
/// old one, and the directory synced. A failure names the file at fault (the temporary one
/// while it is written), and the temporary file is removed.
fn persist(cached: &CachedDocument) -> Result<(), String> {
    let path = cache_path();
    let temporary = path.with_extension("json.tmp");
    let at = |file: &std::path::Path| {
        let file = file.display().to_string();
        move |e: std::io::Error| format!("{file}: {e}")
    };
    let write = || -> Result<(), String> {
        let _ = std::fs::remove_file(&temporary);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(at(&temporary))?;
        file.write_all(cached.to_file().as_bytes())
            .map_err(at(&temporary))?;
        file.sync_all().map_err(at(&temporary))?;
        std::fs::rename(&temporary, &path).map_err(|e| {
            format!(
                "renaming {} to {}: {e}",
                temporary.display(),
                path.display()
            )
        })?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)
                .and_then(|dir| dir.sync_all())
                .map_err(at(dir))?;
        }
        Ok(())
    };
    let result = write();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// The persisted document for `source`, if there is a usable one.
fn load_cache_file(source: &str) -> Option<(CachedDocument, DocumentSummary)> {
    let path = cache_path();
    let metadata = std::fs::metadata(&path).ok()?;
    let refuse = |reason: String| {
        warn(format!(
            "electric_auth ignores {}: {reason}",
            path.display()
        ));
        None
    };
    if metadata.len() > MAX_FILE_BYTES as u64 {
        return refuse("it is too large".to_owned());
    }
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) => return refuse(e.to_string()),
    };
    let cached = match CachedDocument::from_file(&bytes, source, now()) {
        Ok(cached) => cached,
        // A file for a previous source is simply not ours to load.
        Err(reason) if reason.contains("another source") => return None,
        Err(reason) => return refuse(reason),
    };
    match validate_fetched(pinned_algorithm(), cached.document.as_bytes()) {
        Ok(summary) => Some((cached, summary)),
        Err(reason) => refuse(reason),
    }
}
