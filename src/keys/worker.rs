//! The key worker: one background process (registered when the library is preloaded) that
//! fetches each configured JWKS — the default issuer's (`electric_auth.jwks_url`/`oidc_issuer`)
//! and each listed issuer's (`electric_auth.issuers`), each in its own slot with its own
//! schedule, failures and cache file — at startup, on every interval and when a backend met an
//! unknown `kid` of that issuer, publishes it in shared memory, and persists the last good
//! document so a restart without the network still verifies. Sources due at the same time are
//! fetched side by side, so a provider that hangs delays no other. It follows configuration
//! reloads.

use super::fetch::{fetch, Expected, FetchSettings};
use super::settings::{self, KeySource};
use super::shmem::{self, SharedKeys, SharedSources, SOURCES};
use crate::errors::log;
use crate::settings::names;
use electric_auth_core::issuers::IssuerSource;
use electric_auth_core::jwks::cache_file::{self, CachedDocument, MAX_FILE_BYTES};
use electric_auth_core::jwks::policy::{
    is_stale, next_attempt, refresh_after_success, retry_after_failure, WarningLimiter,
};
use electric_auth_core::jwks::url::check_https_url;
use electric_auth_core::jwks::{discovery, validate_fetched_for, DocumentSummary};
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

/// The cache file of the default issuer's source, in the data directory (readable by the
/// server's OS user only); a listed issuer's is named by its source ([`cache_file_name`]).
pub const CACHE_FILE_NAME: &str = cache_file::DEFAULT_FILE_NAME;

/// The cache file of slot `slot` fetching `source` (see the core's `jwks/cache_file.rs`).
pub fn cache_file_name(slot: usize, source: &str) -> String {
    if slot == 0 {
        CACHE_FILE_NAME.to_owned()
    } else {
        cache_file::issuer_file_name(source)
    }
}

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

fn cache_path(file_name: &str) -> PathBuf {
    // SAFETY: DataDir is set before any background worker starts and never changes.
    let data_dir = unsafe { CStr::from_ptr(pg_sys::DataDir) };
    PathBuf::from(data_dir.to_string_lossy().into_owned()).join(file_name)
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

/// What one slot fetches, as the settings say now.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SlotConfig {
    source: KeySource,
    /// The listed issuer's `iss` (`None`: the default issuer's slot).
    issuer: Option<String>,
    /// The algorithms documents are checked for (the default issuer: `jwt_alg` as the file
    /// holds it, none when unset; a listed issuer: its `alg`s).
    algorithms: Vec<Algorithm>,
    /// `jwks_refresh_interval` and `jwks_max_stale` (an issuer's own, else the settings').
    interval: i64,
    max_stale: i64,
}

impl SlotConfig {
    /// Every slot's configuration: the default issuer's, then one per listed issuer (a listed
    /// issuer with an inline key, or no issuer, leaves its slot without a source).
    fn current() -> Vec<SlotConfig> {
        let interval = i64::from(settings::REFRESH_INTERVAL.get());
        let max_stale = i64::from(settings::MAX_STALE.get());
        let mut slots = vec![SlotConfig {
            source: KeySource::current(),
            issuer: None,
            algorithms: pinned_algorithm().into_iter().collect(),
            interval,
            max_stale,
        }];
        for spec in settings::issuer_specs() {
            let source = match &spec.source {
                IssuerSource::JwksUrl(url) => KeySource::JwksUrl(url.clone()),
                IssuerSource::OidcIssuer(url) => KeySource::Issuer(url.clone()),
                IssuerSource::Key { .. } => KeySource::None,
            };
            slots.push(SlotConfig {
                source,
                issuer: Some(spec.iss.clone()),
                algorithms: spec.algs.clone(),
                interval: spec.refresh_interval.unwrap_or(interval),
                max_stale: spec.max_stale.unwrap_or(max_stale),
            });
        }
        slots.resize(
            SOURCES,
            SlotConfig {
                source: KeySource::None,
                issuer: None,
                algorithms: Vec::new(),
                interval,
                max_stale,
            },
        );
        slots
    }

    fn fetches(&self) -> bool {
        matches!(self.source, KeySource::JwksUrl(_) | KeySource::Issuer(_))
    }

    /// The configured source's value (what the cache file and messages name).
    fn value(&self) -> Option<&str> {
        self.source.setting_and_value().map(|(_, value)| value)
    }

    /// "for <iss>" in a message about a listed issuer's keys.
    fn whose(&self) -> String {
        self.issuer
            .as_ref()
            .map_or_else(String::new, |iss| format!(" of issuer {}", json_text(iss)))
    }
}

fn json_text(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// The worker's state for one slot.
struct Slot {
    index: usize,
    config: SlotConfig,
    next_attempt: i64,
    failures: u32,
    limiter: WarningLimiter,
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
    if let Some(sources) = shmem::shared() {
        sources
            .worker_latch
            .store(std::ptr::null_mut(), Ordering::Release);
        sources.worker_pid.store(0, Ordering::Release);
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
    let mut slots: Vec<Slot> = (0..SOURCES)
        .map(|index| Slot {
            index,
            config: SlotConfig {
                source: KeySource::None,
                issuer: None,
                algorithms: Vec::new(),
                interval: 0,
                max_stale: 0,
            },
            next_attempt: 0,
            failures: 0,
            limiter: WarningLimiter::default(),
            last_attempt: 0,
            max_age: None,
        })
        .collect();
    let mut in_flight: Vec<Fetch> = Vec::new();
    let mut pruned_at = 0;
    loop {
        if BackgroundWorker::sighup_received() {
            // SAFETY: the documented way for a background worker to apply a reload.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        step(&mut slots, &mut in_flight, shared);
        // The revocation list's expired tokens, once a minute (this worker is the server's
        // one background process of this library).
        if now() >= pruned_at + 60 {
            pruned_at = now();
            match crate::revocation::prune(pruned_at) {
                Ok(0) => {}
                Ok(n) => log(format!("electric_auth pruned {n} expired revocation(s)")),
                Err(reason) => warn(format!(
                    "electric_auth could not prune revocations: {reason}"
                )),
            }
        }
        // At most a minute: the next pruning of the revocation list.
        let mut wait_ms = 60 * 1000;
        for slot in slots.iter().filter(|slot| slot.config.fetches()) {
            if in_flight.iter().any(|fetch| fetch.slot == slot.index) {
                continue;
            }
            let keys = shared.slot(slot.index);
            let mut next = slot.next_attempt.saturating_mul(1000);
            if keys.refresh_pending() {
                next = next.min(keys.refresh_requested_at.load(Ordering::Acquire));
            }
            wait_ms = wait_ms.min((next - now_ms()).clamp(10, 24 * 3600 * 1000));
        }
        if !in_flight.is_empty() {
            // Fetches under way: look for their answers every 50 ms (a backend's wake-up or a
            // reload ends the wait sooner).
            wait_ms = wait_ms.min(50);
        }
        if !BackgroundWorker::wait_latch(Some(Duration::from_millis(wait_ms as u64))) {
            exit_on_sigterm(if in_flight.is_empty() {
                ""
            } else {
                " during a fetch"
            });
        }
    }
}

/// A fetch under way on a thread of its own.
struct Fetch {
    slot: usize,
    /// The source it fetches: an answer for a source the slot no longer has is dropped.
    source: KeySource,
    /// The request it answers (see `SharedKeys::refresh_served_at`).
    serving: i64,
    answer: std::sync::mpsc::Receiver<Result<FetchedDocument, String>>,
}

/// One pass: follows the settings slot by slot, publishes every fetch that has ended (each as
/// soon as it ends: a provider that hangs holds up no other source), and starts a fetch for
/// every source that is due and has none under way.
fn step(slots: &mut [Slot], in_flight: &mut Vec<Fetch>, sources: &SharedSources) {
    let configs = SlotConfig::current();
    for (slot, config) in slots.iter_mut().zip(configs) {
        slot.follow(config, sources);
    }
    in_flight.retain(|fetch| {
        let result = match fetch.answer.try_recv() {
            Ok(result) => result,
            Err(std::sync::mpsc::TryRecvError::Empty) => return true,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                Err("the fetch ended without an answer".to_owned())
            }
        };
        let slot = &mut slots[fetch.slot];
        let current = slot.config.source == fetch.source;
        slot.attempted(current.then_some(result), fetch.serving, sources);
        false
    });
    let fetch_settings = FetchSettings {
        timeout: settings::timeout(),
        ca_file: settings::ca_file(),
    };
    for slot in slots.iter().filter(|slot| slot.config.fetches()) {
        if in_flight.iter().any(|fetch| fetch.slot == slot.index) {
            continue;
        }
        let keys = sources.slot(slot.index);
        // A pending request may be deferred to a time the rate limit allows.
        let requested =
            keys.refresh_pending() && now_ms() >= keys.refresh_requested_at.load(Ordering::Acquire);
        if now() < slot.next_attempt && !requested {
            continue;
        }
        // The requests this attempt answers: those made before it began (a deferred one whose
        // time has not come is answered too: it was made before this attempt began).
        let serving = keys.refresh_requested_at.load(Ordering::Acquire);
        let source = slot.config.source.clone();
        let algorithms = slot.config.algorithms.clone();
        let settings = fetch_settings.clone();
        let work_source = source.clone();
        match spawn_with_signals_blocked(move || {
            fetch_document(&work_source, &settings, &algorithms)
        }) {
            Ok(answer) => in_flight.push(Fetch {
                slot: slot.index,
                source,
                serving,
                answer,
            }),
            Err(reason) => {
                let index = slot.index;
                slots[index].attempted(Some(Err(reason)), serving, sources);
                return;
            }
        }
    }
}

fn now_ms() -> i64 {
    crate::keys::clock_now_ms()
}

/// Runs `work` on a thread of its own, started (and staying) with every signal blocked, so
/// that Postgres's signal handlers run on this process's main thread alone; its answer comes
/// through the returned channel, which the worker polls while it keeps answering signals (a
/// SIGTERM during a fetch leaves at once; the thread runs no Postgres code and ends with the
/// process if it is still waiting on the network then).
fn spawn_with_signals_blocked<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<std::sync::mpsc::Receiver<T>, String> {
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    // SAFETY: the signal mask of this thread, changed around the spawn only, so the new thread
    // starts with every signal blocked.
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
    spawned
        .map(|_| receiver)
        .map_err(|error| format!("the fetch could not start: {error}"))
}

impl Slot {
    /// Follows the settings: a new source, new algorithms, a new interval.
    fn follow(&mut self, config: SlotConfig, sources: &SharedSources) {
        let keys = sources.slot(self.index);
        if config.source != self.config.source || config.issuer != self.config.issuer {
            self.config = config;
            self.failures = 0;
            self.limiter.reset();
            self.next_attempt = 0;
            self.switch_source(sources);
        } else {
            let algorithms_changed = config.algorithms != self.config.algorithms;
            let interval_changed = config.interval != self.config.interval;
            self.config = config;
            if algorithms_changed {
                self.recheck_document(sources);
            }
            if interval_changed {
                self.reschedule(keys);
            }
        }
        if self.config.source == KeySource::Both {
            if self.limiter.should_warn("both", now()) {
                warn(format!(
                    "{} and {} are both set: no keys are fetched until only one is",
                    settings::JWKS_URL_NAME,
                    settings::OIDC_ISSUER_NAME
                ));
            }
            // Nothing will be fetched: every wake-up so far counts as answered.
            let requested = keys.refresh_requested_at.load(Ordering::Acquire);
            keys.refresh_served_at.store(requested, Ordering::Release);
        }
    }

    /// A new source: the old document is dropped, and the persisted one loaded if it was
    /// written for this source.
    fn switch_source(&mut self, sources: &SharedSources) {
        let keys = sources.slot(self.index);
        let source = self.config.value().map(str::to_owned);
        let loaded = source
            .as_deref()
            .and_then(|value| load_cache_file(self.index, value, &self.config.algorithms));
        let issuer = self.config.issuer.clone().unwrap_or_default();
        keys.write(|state| {
            state.source.set(source.as_deref().unwrap_or("").as_bytes());
            state.issuer.set(issuer.as_bytes());
            state.jwks_url.set(b"");
            state.last_success = 0;
            state.last_failure = 0;
            state.failure.set(b"");
            state.next_refresh = 0;
            state.last_persist_failure = 0;
            state.persist_failure.set(b"");
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
        keys.fetched_at.store(
            loaded.as_ref().map_or(0, |(cached, _)| cached.fetched_at),
            Ordering::Release,
        );
        sources.bump(keys);
        if let Some((cached, summary)) = &loaded {
            log(format!(
                "electric_auth loaded {} keys{} for {} from {}, fetched {} s ago",
                summary.usable,
                self.config.whose(),
                cached.source,
                cache_file_name(self.index, &cached.source),
                now() - cached.fetched_at
            ));
        }
    }

    /// The algorithms changed (`jwt_alg`, or an issuer's `alg`): the stored document is checked
    /// for them at once, so `key_source()` says what is usable now rather than after the next
    /// fetch.
    fn recheck_document(&mut self, sources: &SharedSources) {
        let keys = sources.slot(self.index);
        let document = keys.read(|state| state.document.get().to_vec());
        if document.is_empty() {
            return;
        }
        let now = now();
        match validate_fetched_for(&self.config.algorithms, &document) {
            Ok(summary) => keys.write(|state| {
                state.usable = summary.usable as i32;
                set_kids(state, &summary.kids);
            }),
            Err(reason) => {
                let reason = format!("for {}: {reason}", algorithm_names(&self.config.algorithms));
                keys.write(|state| {
                    state.usable = 0;
                    set_kids(state, &[]);
                    state.last_failure = now;
                    state.failure.set(reason.as_bytes());
                });
                if self.limiter.should_warn(&reason, now) {
                    warn(format!(
                        "electric_auth's stored keys{} have none usable {reason}; \
                         the next refresh fetches them again",
                        self.config.whose()
                    ));
                }
            }
        }
        // Backends re-read the document with their own algorithms; the generation tells them.
        sources.bump(keys);
    }

    /// The refresh interval changed: the next refresh is scheduled from the last attempt with
    /// the new interval at once, not after the attempt the old interval scheduled.
    fn reschedule(&mut self, keys: &SharedKeys) {
        if self.last_attempt == 0 {
            return;
        }
        self.next_attempt = next_attempt(
            self.last_attempt,
            self.config.interval,
            self.max_age,
            self.failures,
        );
        let next = self.next_attempt;
        keys.write(|state| state.next_refresh = next);
    }

    /// An attempt ended: its `result` published (`None`: for a source the slot no longer has;
    /// a fetch that could not start is a failure), and the requests it began after answered.
    fn attempted(
        &mut self,
        result: Option<Result<FetchedDocument, String>>,
        serving: i64,
        sources: &SharedSources,
    ) {
        if let Some(result) = result {
            self.published(result, sources);
        }
        let keys = sources.slot(self.index);
        keys.refresh_served_at.store(serving, Ordering::Release);
        keys.attempts.fetch_add(1, Ordering::AcqRel);
    }

    /// Publishes one attempt's `result`.
    fn published(&mut self, result: Result<FetchedDocument, String>, sources: &SharedSources) {
        let keys = sources.slot(self.index);
        let interval = self.config.interval;
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
                    keys.fetched_at.load(Ordering::Acquire),
                    self.config.max_stale,
                );
                let changed = keys.write(|state| {
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
                keys.fetched_at.store(now, Ordering::Release);
                if changed {
                    sources.bump(keys);
                    log(format!(
                        "electric_auth fetched {} usable keys{} from {jwks_url}",
                        summary.usable,
                        self.config.whose()
                    ));
                }
                if let Some(value) = self.config.value() {
                    let cached = CachedDocument {
                        source: value.to_owned(),
                        fetched_at: now,
                        document: body,
                    };
                    match persist(&cache_file_name(self.index, value), &cached) {
                        Err(error) => {
                            keys.write(|state| {
                                state.last_persist_failure = now;
                                state.persist_failure.set(error.as_bytes());
                            });
                            if self.limiter.should_warn(&error, now) {
                                warn(format!(
                                    "electric_auth could not persist the fetched keys{}: {error}; \
                                     a restart would load older keys (or none) until a fetch \
                                     succeeds",
                                    self.config.whose()
                                ));
                            }
                        }
                        Ok(()) => {
                            keys.write(|state| {
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
                keys.write(|state| {
                    state.last_failure = now;
                    state.failure.set(reason.as_bytes());
                    state.next_refresh = next;
                });
                if self.limiter.should_warn(&reason, now) {
                    let fetched_at = keys.fetched_at.load(Ordering::Acquire);
                    let kept = if fetched_at == 0 {
                        "no keys are in use yet".to_owned()
                    } else {
                        format!(
                            "the last good keys (fetched {} s ago) stay in use",
                            now - fetched_at
                        )
                    };
                    warn(format!(
                        "electric_auth could not refresh its keys{}: {reason}; {kept}",
                        self.config.whose()
                    ));
                }
                self.next_attempt = next;
            }
        }
    }
}

fn algorithm_names(algorithms: &[Algorithm]) -> String {
    if algorithms.is_empty() {
        return "no jwt_alg".to_owned();
    }
    algorithms
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(", ")
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
    algorithms: &[Algorithm],
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
        validate_fetched_for(algorithms, &fetched.body).map_err(|e| format!("{jwks_url}: {e}"))?;
    let body = String::from_utf8(fetched.body).map_err(|_| format!("{jwks_url}: not UTF-8"))?;
    Ok((jwks_url, body, fetched.max_age, summary))
}

/// Writes the cache file atomically: a temporary file (mode 0600) synced, renamed over the
/// old one, and the directory synced. A failure names the file at fault (the temporary one
/// while it is written), and the temporary file is removed.
fn persist(file_name: &str, cached: &CachedDocument) -> Result<(), String> {
    let path = cache_path(file_name);
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

/// The persisted document of slot `slot` for `source`, if there is a usable one for
/// `algorithms`.
fn load_cache_file(
    slot: usize,
    source: &str,
    algorithms: &[Algorithm],
) -> Option<(CachedDocument, DocumentSummary)> {
    let path = cache_path(&cache_file_name(slot, source));
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
    match validate_fetched_for(algorithms, cached.document.as_bytes()) {
        Ok(summary) => Some((cached, summary)),
        Err(reason) => refuse(reason),
    }
}
