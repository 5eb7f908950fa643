//! The counters in shared memory (needs `shared_preload_libraries`).
//!
//! One slot per backend, indexed by the backend's proc number: a backend is the only writer of
//! its slot's counts, so it adds one with a plain load and store (no locked instruction) on its
//! own cache lines, and 32 backends counting at once never contend (no lock, no shared counter
//! on the hot path). A read sums the slots.
//!
//! A reset never writes a backend's counts (it would race with that plain add): it records
//! them as the slot's `base`, under the lock, and a read counts what is above it.
//!
//! A slot belongs to one database at a time: a backend is connected to one for life, and a
//! later backend that reuses the proc number first folds what the slot holds into a small table
//! of per-database totals (under the lock, with readers excluded), then takes the slot over.
//! A PostgreSQL 18 OAuth login is counted before the connection has a database (database 0,
//! shown as a NULL `datname`). Databases past [`DATABASES`] are folded together (also NULL).
//!
//! Nothing is written to disk: the counters start at zero with the server (and after a crash).

use electric_auth_core::issuers::{MAX_ISSUERS, MAX_TEXT_BYTES};
use electric_auth_core::outcome::CELLS;
use pgrx::pg_sys;
use std::ffi::CStr;
use std::ptr;
use std::sync::atomic::{AtomicI64, AtomicPtr, AtomicU32, AtomicU64, Ordering::Relaxed};

const SEGMENT_NAME: &CStr = c"electric_auth stats";
const TRANCHE_NAME: &CStr = c"electric_auth_stats";

/// How many databases get totals of their own when backends' slots are taken over.
const DATABASES: usize = 64;
/// The total slots: one per database, then the catch-all for databases past [`DATABASES`].
const TOTALS: usize = DATABASES + 1;
/// The catch-all total for databases past [`DATABASES`] (no database has this oid).
const OTHER_DATABASES: u32 = u32::MAX;

/// Counts are kept per issuer: lane 0 for the default issuer (Electric's settings, and tokens
/// no issuer took), lanes 1..=[`MAX_ISSUERS`] for the issuers named in the registry (the
/// header's `issuers`, filled as backends meet them and kept until the server stops: a lane
/// never changes its issuer), and the last lane for issuers past the registry's room.
pub const LANES: usize = 1 + MAX_ISSUERS + 1;
/// The lane of issuers the registry had no room for.
pub const OTHER_ISSUERS_LANE: usize = LANES - 1;
/// A slot's counters: [`CELLS`] per lane.
const COUNTERS: usize = LANES * CELLS;

/// An issuer's `iss` in the registry.
#[repr(C)]
struct IssuerName {
    len: u32,
    bytes: [u8; MAX_TEXT_BYTES],
}

/// One backend's counters (or one database's folded totals), on cache lines of its own.
#[repr(C, align(64))]
struct Slot {
    /// The database these counts belong to; for a total, set and read under the lock.
    database: AtomicU32,
    /// For a total: whether it is taken (0: free).
    used: AtomicU32,
    /// Written by the slot's backend only (a total's: under the exclusive lock); lane by lane
    /// (see [`LANES`]).
    counts: [AtomicU64; COUNTERS],
    /// A backend slot's counts at the last reset (a total's stay 0): written under the
    /// exclusive lock; what is counted since is `counts - base`.
    base: [AtomicU64; COUNTERS],
}

impl Slot {
    /// Counts since the last reset, by cell (under the lock, shared or exclusive).
    fn since_reset(&self) -> impl Iterator<Item = u64> + '_ {
        self.counts
            .iter()
            .zip(&self.base)
            .map(|(count, base)| count.load(Relaxed).saturating_sub(base.load(Relaxed)))
    }
}

#[repr(C, align(64))]
struct Header {
    /// When the counters were last reset (or the server started), as a `TimestampTz`.
    reset_time: AtomicI64,
    /// How many backend slots follow the totals.
    backends: u32,
    /// The audit log's server-wide budget (see [`take_log_line`]): the second the window
    /// started, lines written in it, and lines left out and not reported yet.
    log_second: AtomicI64,
    log_written: AtomicU32,
    log_left_out: AtomicU64,
    /// The second a backend's exit last reported lines left out (at most one such line a
    /// second, however many backends exit).
    log_exit_report_second: AtomicI64,
    /// The issuer registry (lanes 1..): how many names, and the names; under the lock.
    issuer_count: AtomicU32,
    issuers: std::cell::UnsafeCell<[IssuerName; MAX_ISSUERS]>,
}

static SEGMENT: AtomicPtr<Header> = AtomicPtr::new(ptr::null_mut());
static LOCK: AtomicPtr<pg_sys::LWLock> = AtomicPtr::new(ptr::null_mut());
static mut PREV_SHMEM_REQUEST_HOOK: pg_sys::shmem_request_hook_type = None;
static mut PREV_SHMEM_STARTUP_HOOK: pg_sys::shmem_startup_hook_type = None;

fn segment_size(backends: usize) -> usize {
    size_of::<Header>() + (TOTALS + backends) * size_of::<Slot>()
}

/// How many backend slots: one per proc number a backend or background worker may have
/// (`MaxBackends`, known by the time the request hook runs). Auxiliary processes, which never
/// verify tokens, have numbers past these and are not counted.
fn backend_slots() -> usize {
    // SAFETY: a backend global, set before shmem_request_hook is called.
    usize::try_from(unsafe { pg_sys::MaxBackends }).unwrap_or(0)
}

/// Installs the shared-memory hooks, chained after whatever was installed before (other
/// modules' hooks, e.g. another part of this library's, run first). Only while the library is
/// being preloaded: later, no shared memory can be had.
pub fn init() {
    // SAFETY: read in _PG_init, in the postmaster or a backend, single-threaded.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    // SAFETY: _PG_init runs once per process, before any hook is called; the previous hooks
    // are kept and called first.
    unsafe {
        PREV_SHMEM_REQUEST_HOOK = pg_sys::shmem_request_hook;
        pg_sys::shmem_request_hook = Some(request_shmem);
        PREV_SHMEM_STARTUP_HOOK = pg_sys::shmem_startup_hook;
        pg_sys::shmem_startup_hook = Some(startup_shmem);
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn request_shmem() {
    // SAFETY: called by Postgres in the postmaster's request phase, where these calls belong.
    unsafe {
        if let Some(previous) = PREV_SHMEM_REQUEST_HOOK {
            previous();
        }
        pg_sys::RequestAddinShmemSpace(segment_size(backend_slots()));
        pg_sys::RequestNamedLWLockTranche(TRANCHE_NAME.as_ptr(), 1);
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn startup_shmem() {
    // SAFETY: called by Postgres when shared memory is set up (postmaster, or each backend
    // under EXEC_BACKEND); the segment is created zeroed once, under AddinShmemInitLock.
    unsafe {
        if let Some(previous) = PREV_SHMEM_STARTUP_HOOK {
            previous();
        }
        let backends = backend_slots();
        let size = segment_size(backends);
        let init_lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock; // AddinShmemInitLock
        pg_sys::LWLockAcquire(init_lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let mut found = false;
        let header =
            pg_sys::ShmemInitStruct(SEGMENT_NAME.as_ptr(), size, &mut found).cast::<Header>();
        if !found {
            // Zero counts, free totals, database 0 in every slot.
            ptr::write_bytes(header.cast::<u8>(), 0, size);
            (*header).backends = backends as u32;
            (*header)
                .reset_time
                .store(pg_sys::GetCurrentTimestamp(), Relaxed);
        }
        LOCK.store(
            &raw mut (*pg_sys::GetNamedLWLockTranche(TRANCHE_NAME.as_ptr())).lock,
            Relaxed,
        );
        pg_sys::LWLockRelease(init_lock);
        SEGMENT.store(header, Relaxed);
    }
}

/// The counters, `None` when the library was not preloaded.
struct Segment {
    header: &'static Header,
    totals: &'static [Slot],
    backends: &'static [Slot],
    lock: *mut pg_sys::LWLock,
}

fn segment() -> Option<Segment> {
    let header = SEGMENT.load(Relaxed);
    if header.is_null() {
        return None;
    }
    // SAFETY: the segment set up in startup_shmem: a header followed by TOTALS totals and
    // `backends` slots, all zero-initialised atomics, alive as long as the server.
    unsafe {
        let slots = header.add(1).cast::<Slot>();
        let backends = (*header).backends as usize;
        Some(Segment {
            header: &*header,
            totals: std::slice::from_raw_parts(slots, TOTALS),
            backends: std::slice::from_raw_parts(slots.add(TOTALS), backends),
            lock: LOCK.load(Relaxed),
        })
    }
}

/// This backend's index among the slots: its proc number.
fn proc_number() -> Option<usize> {
    // PostgreSQL 17 numbers backends by their PGPROC, from 0 (MyProcNumber, "Replace BackendIds
    // with 0-based ProcNumbers", commit 024c521117); before it, MyBackendId counts from 1.
    #[cfg(any(feature = "pg17", feature = "pg18"))]
    // SAFETY: a backend global, set when the process got its PGPROC.
    let number = unsafe { pg_sys::MyProcNumber };
    #[cfg(not(any(feature = "pg17", feature = "pg18")))]
    // SAFETY: as above.
    let number = unsafe { pg_sys::MyBackendId } - 1;
    usize::try_from(number).ok()
}

fn my_database() -> u32 {
    // SAFETY: a backend global (InvalidOid before the connection has a database).
    unsafe { pg_sys::MyDatabaseId }.to_u32()
}

/// This backend's slot once it has counted, for the database it counted in (a backend's
/// statics are its own: Postgres backends are processes). Null until then.
static MY_SLOT: AtomicPtr<Slot> = AtomicPtr::new(ptr::null_mut());
static MY_SLOT_DATABASE: AtomicU32 = AtomicU32::new(0);

/// Adds one to counter `cell` of lane `lane` in this backend's slot: a few instructions once
/// the slot is known (see [`count_first`]).
#[inline]
pub fn count(lane: usize, cell: usize) {
    count_at(lane.min(OTHER_ISSUERS_LANE) * CELLS + cell);
}

#[inline]
fn count_at(cell: usize) {
    let slot = MY_SLOT.load(Relaxed);
    if slot.is_null() || MY_SLOT_DATABASE.load(Relaxed) != my_database() {
        return count_first(cell);
    }
    // SAFETY: a slot of the segment, which lives as long as the server (set by count_first).
    let count = unsafe { &(*slot).counts[cell] };
    // This backend is the counts' only writer (see the module notes): no read-modify-write
    // needed, and a reset or a read under the lock sees this value or the one before.
    count.store(count.load(Relaxed) + 1, Relaxed);
}

/// The first count of this backend (or the first since its database was set): finds its slot,
/// folds what the slot still holds of another database into the totals (under the lock), and
/// remembers the slot. No count without a preloaded segment or for a process without one.
#[cold]
#[inline(never)]
fn count_first(cell: usize) {
    let Some(segment) = segment() else { return };
    let Some(slot) = proc_number().and_then(|n| segment.backends.get(n)) else {
        return;
    };
    let database = my_database();
    if slot.database.load(Relaxed) != database {
        take_over(&segment, slot, database);
    }
    MY_SLOT_DATABASE.store(database, Relaxed);
    MY_SLOT.store(ptr::from_ref(slot).cast_mut(), Relaxed);
    count_at(cell);
}

/// Folds `slot`'s counts into its database's total and gives the slot to `database`.
#[cold]
fn take_over(segment: &Segment, slot: &Slot, database: u32) {
    let _lock = Locked::new(segment.lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
    let previous = slot.database.load(Relaxed);
    if slot.since_reset().any(|c| c != 0) {
        let total = total_for(segment.totals, previous);
        for (into, counted) in total.counts.iter().zip(slot.since_reset()) {
            into.fetch_add(counted, Relaxed);
        }
    }
    // The slot's previous backend has exited: this one is now its counts' only writer.
    for (count, base) in slot.counts.iter().zip(&slot.base) {
        count.store(0, Relaxed);
        base.store(0, Relaxed);
    }
    slot.database.store(database, Relaxed);
}

/// The total of `database` (under the exclusive lock): its own, a free one, or the catch-all.
fn total_for(totals: &[Slot], database: u32) -> &Slot {
    if let Some(total) = totals
        .iter()
        .find(|t| t.used.load(Relaxed) != 0 && t.database.load(Relaxed) == database)
    {
        return total;
    }
    let (last, own) = totals.split_last().expect("DATABASES > 0");
    if let Some(free) = own.iter().find(|t| t.used.load(Relaxed) == 0) {
        free.database.store(database, Relaxed);
        free.used.store(1, Relaxed);
        return free;
    }
    last.database.store(OTHER_DATABASES, Relaxed);
    last.used.store(1, Relaxed);
    last
}

/// What the audit log may do with one more refusal line, by the server-wide budget of `limit`
/// lines per second `now` (whole seconds).
pub enum LogLine {
    /// Write it; first report this many lines left out in earlier seconds (0: none).
    Write { left_out: u64 },
    /// Over this second's budget: left out (and counted for the next report).
    LeftOut,
}

/// Takes one line of the audit log's budget, shared by every backend of the server (a client
/// reconnecting in a loop gets no fresh budget per backend); `None` without the preloaded
/// segment. Lock-free: at a second's turn, backends racing it may write a few lines more than
/// the limit, never a second's worth more.
pub fn take_log_line(now: i64, limit: u32) -> Option<LogLine> {
    let header = segment()?.header;
    let second = header.log_second.load(Relaxed);
    if second != now
        && header
            .log_second
            .compare_exchange(second, now, Relaxed, Relaxed)
            .is_ok()
    {
        header.log_written.store(0, Relaxed);
    }
    if header.log_written.fetch_add(1, Relaxed) >= limit {
        header.log_left_out.fetch_add(1, Relaxed);
        return Some(LogLine::LeftOut);
    }
    Some(LogLine::Write {
        left_out: take_left_out().unwrap_or(0),
    })
}

/// The lines left out and not reported yet, now reported by the caller.
pub fn take_left_out() -> Option<u64> {
    Some(segment()?.header.log_left_out.swap(0, Relaxed))
}

/// As [`take_left_out`], for a backend's exit at `now` (whole seconds): only the first exit of
/// a second reports (0 for the others; what they left out waits for the next report), so a
/// client reconnecting in a loop cannot make every exit write a line.
pub fn take_left_out_at_exit(now: i64) -> Option<u64> {
    let header = segment()?.header;
    let last = header.log_exit_report_second.load(Relaxed);
    if last == now
        || header
            .log_exit_report_second
            .compare_exchange(last, now, Relaxed, Relaxed)
            .is_err()
    {
        return Some(0);
    }
    take_left_out()
}

/// The lanes of the listed issuers named `names` (in order): their registry lanes, added to
/// the registry when new ([`OTHER_ISSUERS_LANE`] once it is full); all 0 without the segment
/// (nothing is counted then).
pub fn issuer_lanes(names: &[&str]) -> Vec<usize> {
    let Some(segment) = segment() else {
        return vec![0; names.len()];
    };
    let _lock = Locked::new(segment.lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
    let header = segment.header;
    // SAFETY: the registry is read and written under the lock only (here: exclusive).
    let registry = unsafe { &mut *header.issuers.get() };
    names
        .iter()
        .map(|name| {
            let count = (header.issuer_count.load(Relaxed) as usize).min(MAX_ISSUERS);
            let name = &name.as_bytes()[..name.len().min(MAX_TEXT_BYTES)];
            if let Some(at) = registry[..count]
                .iter()
                .position(|entry| &entry.bytes[..entry.len as usize] == name)
            {
                return 1 + at;
            }
            if count == MAX_ISSUERS {
                return OTHER_ISSUERS_LANE;
            }
            registry[count].bytes[..name.len()].copy_from_slice(name);
            registry[count].len = name.len() as u32;
            header.issuer_count.store(count as u32 + 1, Relaxed);
            1 + count
        })
        .collect()
}

/// The issuer a lane counts (`None`: the default issuer's lane), as the stats view shows it.
pub fn lane_issuer(names: &[String], lane: usize) -> Option<String> {
    match lane {
        0 => None,
        OTHER_ISSUERS_LANE => Some("(other issuers)".to_owned()),
        lane => names.get(lane - 1).cloned(),
    }
}

/// The registry's names, in lane order (lane 1 first).
pub fn issuer_names() -> Vec<String> {
    let Some(segment) = segment() else {
        return Vec::new();
    };
    let _lock = Locked::new(segment.lock, pg_sys::LWLockMode::LW_SHARED);
    let header = segment.header;
    let count = (header.issuer_count.load(Relaxed) as usize).min(MAX_ISSUERS);
    // SAFETY: read under the shared lock; written under the exclusive one only.
    let registry = unsafe { &*header.issuers.get() };
    registry[..count]
        .iter()
        .map(|entry| String::from_utf8_lossy(&entry.bytes[..entry.len as usize]).into_owned())
        .collect()
}

/// The counts by database oid (0: none yet, [`OTHER_DATABASES`]: folded together), lane and
/// cell, without zeros; `None` when the library was not preloaded.
pub fn snapshot() -> Option<Vec<(u32, usize, usize, u64)>> {
    let segment = segment()?;
    let mut sums: std::collections::BTreeMap<(u32, usize), u64> = Default::default();
    {
        let _lock = Locked::new(segment.lock, pg_sys::LWLockMode::LW_SHARED);
        let totals = segment.totals.iter().filter(|t| t.used.load(Relaxed) != 0);
        for slot in totals.chain(segment.backends) {
            let database = slot.database.load(Relaxed);
            for (cell, count) in slot.since_reset().enumerate() {
                if count != 0 {
                    *sums.entry((database, cell)).or_default() += count;
                }
            }
        }
    }
    Some(
        sums.into_iter()
            .map(|((database, index), count)| (database, index / CELLS, index % CELLS, count))
            .collect(),
    )
}

/// Zeroes every counter and records the time; `false` when the library was not preloaded.
pub fn reset() -> bool {
    let Some(segment) = segment() else {
        return false;
    };
    let _lock = Locked::new(segment.lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
    for total in segment.totals {
        total.used.store(0, Relaxed);
        total.counts.iter().for_each(|c| c.store(0, Relaxed));
    }
    // A backend's counts are its own to write: what they hold now becomes their base.
    for slot in segment.backends {
        for (count, base) in slot.counts.iter().zip(&slot.base) {
            base.store(count.load(Relaxed), Relaxed);
        }
    }
    // SAFETY: reads the clock.
    let now = unsafe { pg_sys::GetCurrentTimestamp() };
    segment.header.reset_time.store(now, Relaxed);
    true
}

/// When the counters were last reset (or the server started).
pub fn reset_time() -> Option<pg_sys::TimestampTz> {
    segment().map(|s| s.header.reset_time.load(Relaxed))
}

/// Holds an LWLock until dropped (an error raised meanwhile releases it with the transaction).
struct Locked(*mut pg_sys::LWLock);

impl Locked {
    fn new(lock: *mut pg_sys::LWLock, mode: pg_sys::LWLockMode::Type) -> Locked {
        // SAFETY: the named tranche's lock, set up with the segment.
        unsafe { pg_sys::LWLockAcquire(lock, mode) };
        Locked(lock)
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        // SAFETY: acquired in `new` by this process.
        unsafe { pg_sys::LWLockRelease(self.0) };
    }
}
