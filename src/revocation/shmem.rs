//! The revocation list in shared memory (needs `shared_preload_libraries`): a header, then the
//! table's keys and values (the core's `revocation::Table`), sized by
//! `electric_auth.max_revocations` at server start, and the file that persists it.
//!
//! Readers probe without a lock, between two reads of a sequence count that a writer makes odd
//! while it changes the table (a probe that saw a change is made again); writers hold the LWLock,
//! which also orders the file's appends and rewrites.
//!
//! The file, `electric_auth_revocations` in the data directory, is one JSON record per line
//! (the core's `Record`), appended before the WAL record of each revoking transaction and
//! rewritten without what is over by [`prune`]. At server start (and after a crash) the
//! postmaster builds the table from it, before recovery replays the WAL records after the last
//! checkpoint (`wal.rs`), so every revocation is back: those in the file, and the rest from WAL.

use electric_auth_core::revocation::{current, Keys, Record, Table};
use pgrx::{pg_guard, pg_sys};
use std::ffi::CStr;
use std::io::Write;
use std::ptr;
use std::sync::atomic::{fence, AtomicI64, AtomicPtr, AtomicU64, Ordering};

const SEGMENT_NAME: &CStr = c"electric_auth revocations";
const TRANCHE_NAME: &CStr = c"electric_auth_revocations";
/// The file, in the data directory (the postmaster's and every backend's working directory).
pub const FILE_NAME: &str = "electric_auth_revocations";
/// How long past its `exp` a token's entry is kept (the most `electric_auth.clock_drift` and an
/// issuer's `clock_drift` allow, so no clock drift brings it back).
pub const KEEP_AFTER_EXP_SECS: i64 = 3600;

#[repr(C)]
struct Header {
    /// Odd while a writer changes the table.
    seq: AtomicU64,
    /// Moves with every change (held identities verify again).
    generation: AtomicU64,
    /// Live entries, of them users', and of them revoked by roles without
    /// `electric_auth_revoker` (a token's holder revoking it).
    entries: AtomicU64,
    users: AtomicU64,
    self_revoked: AtomicU64,
    /// The earliest `exp` among token entries (pruning has nothing to do before it passes).
    earliest_exp: AtomicI64,
    k0: u64,
    k1: u64,
    slots: u64,
    bloom_words: u64,
    max: u64,
}

static SEGMENT: AtomicPtr<Header> = AtomicPtr::new(ptr::null_mut());
static LOCK: AtomicPtr<pg_sys::LWLock> = AtomicPtr::new(ptr::null_mut());
static mut PREV_SHMEM_REQUEST_HOOK: pg_sys::shmem_request_hook_type = None;
static mut PREV_SHMEM_STARTUP_HOOK: pg_sys::shmem_startup_hook_type = None;

/// Table slots for `max` entries: at least twice as many, a power of two (short probes).
fn slots_for(max: u64) -> u64 {
    (max.max(1) * 2).next_power_of_two()
}

/// The Bloom filter's words for `max` entries: 8 bits each, a power of two.
fn bloom_words_for(max: u64) -> u64 {
    (max.max(1) * 8).next_power_of_two() / 64
}

fn segment_size(max: u64) -> usize {
    size_of::<Header>()
        + (2 * slots_for(max) + bloom_words_for(max)) as usize * size_of::<AtomicU64>()
}

/// Installs the hooks; from `_PG_init` while `shared_preload_libraries` loads.
pub fn init() {
    // SAFETY: _PG_init runs once per process, single-threaded, before any hook is called.
    unsafe {
        PREV_SHMEM_REQUEST_HOOK = pg_sys::shmem_request_hook;
        pg_sys::shmem_request_hook = Some(request_shmem);
        PREV_SHMEM_STARTUP_HOOK = pg_sys::shmem_startup_hook;
        pg_sys::shmem_startup_hook = Some(startup_shmem);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn request_shmem() {
    // SAFETY: the postmaster's request phase; the previous hook first.
    unsafe {
        if let Some(previous) = PREV_SHMEM_REQUEST_HOOK {
            previous();
        }
        pg_sys::RequestAddinShmemSpace(segment_size(super::max_entries()));
        pg_sys::RequestNamedLWLockTranche(TRANCHE_NAME.as_ptr(), 1);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn startup_shmem() {
    // SAFETY: called when shared memory is set up, the previous hook first; the segment is
    // created under AddinShmemInitLock, zeroed and filled from the file once.
    unsafe {
        if let Some(previous) = PREV_SHMEM_STARTUP_HOOK {
            previous();
        }
        let max = super::max_entries();
        let size = segment_size(max);
        let init_lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock; // AddinShmemInitLock
        pg_sys::LWLockAcquire(init_lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let mut found = false;
        let header =
            pg_sys::ShmemInitStruct(SEGMENT_NAME.as_ptr(), size, &mut found).cast::<Header>();
        LOCK.store(
            &raw mut (*pg_sys::GetNamedLWLockTranche(TRANCHE_NAME.as_ptr())).lock,
            Ordering::Relaxed,
        );
        if !found {
            ptr::write_bytes(header.cast::<u8>(), 0, size);
            let mut random = [0u64; 2];
            if !pg_sys::pg_strong_random(random.as_mut_ptr().cast(), size_of::<[u64; 2]>()) {
                // The clock and the process id: still unknown to a sender, though weaker.
                random = [
                    pg_sys::GetCurrentTimestamp() as u64,
                    pg_sys::MyProcPid as u64,
                ];
            }
            (*header).k0 = random[0];
            (*header).k1 = random[1];
            (*header).slots = slots_for(max);
            (*header).bloom_words = bloom_words_for(max);
            (*header).max = max;
            (*header).earliest_exp.store(i64::MAX, Ordering::Relaxed);
            SEGMENT.store(header, Ordering::Release);
            load_file();
        }
        SEGMENT.store(header, Ordering::Release);
        pg_sys::LWLockRelease(init_lock);
    }
}

/// The segment, when the library was preloaded.
struct Segment {
    header: &'static Header,
    pairs: &'static [AtomicU64],
    bloom: &'static [AtomicU64],
}

fn segment() -> Option<Segment> {
    let header = SEGMENT.load(Ordering::Acquire);
    if header.is_null() {
        return None;
    }
    // SAFETY: the segment set up in startup_shmem: the header, then `slots` (key, value)
    // pairs and `bloom_words` words, all atomics, alive as long as the server.
    unsafe {
        let slots = (*header).slots as usize;
        let pairs = header.add(1).cast::<AtomicU64>();
        let bloom = pairs.add(2 * slots);
        Some(Segment {
            header: &*header,
            pairs: std::slice::from_raw_parts(pairs, 2 * slots),
            bloom: std::slice::from_raw_parts(bloom, (*header).bloom_words as usize),
        })
    }
}

impl Segment {
    fn table(&self) -> Table<'static> {
        Table::new(self.pairs, self.bloom)
    }

    fn keys(&self) -> Keys {
        Keys {
            k0: self.header.k0,
            k1: self.header.k1,
        }
    }
}

/// Whether the list exists (the library was preloaded).
pub fn available() -> bool {
    segment().is_some()
}

/// Whether the list may hold an entry (a change under way counts as one).
#[inline]
pub fn any() -> bool {
    // The count first (acquire): a rebuild's zero was stored after its odd sequence count,
    // which the second load then sees.
    segment().is_some_and(|s| {
        s.header.entries.load(Ordering::Acquire) != 0
            || s.header.seq.load(Ordering::Relaxed) & 1 == 1
    })
}

/// Moves with every change of the list.
pub fn generation() -> u64 {
    segment().map_or(0, |s| s.header.generation.load(Ordering::Acquire))
}

/// The table's answers for a verified token: its own entry and its user's, by keys computed
/// with the segment's hash keys (`token_key` from them; `None` when the token has no usable
/// signature id, never for a verified one). `None` when nothing is revoked (one load).
#[inline]
pub fn lookup(
    token_key: impl FnOnce(&Keys) -> Option<u64>,
    user_id: &str,
) -> Option<(Option<i64>, Option<i64>)> {
    let segment = segment()?;
    let header = segment.header;
    // Nothing revoked: one load in the common case (and never while a rebuild has emptied
    // the table for a moment: the count is read between two even, equal sequence counts).
    let seq = header.seq.load(Ordering::Acquire);
    if seq & 1 == 0 && header.entries.load(Ordering::Relaxed) == 0 {
        fence(Ordering::Acquire);
        if header.seq.load(Ordering::Relaxed) == seq {
            return None;
        }
    }
    let keys = segment.keys();
    let token = token_key(&keys);
    let user = (header.users.load(Ordering::Relaxed) != 0).then(|| keys.user(user_id));
    let table = segment.table();
    let probe = || {
        (
            token.and_then(|k| table.get(k)),
            user.and_then(|k| table.get(k)),
        )
    };
    let mut spins = 0u32;
    loop {
        let before = header.seq.load(Ordering::Acquire);
        if before & 1 == 0 {
            let found = probe();
            fence(Ordering::Acquire);
            if header.seq.load(Ordering::Relaxed) == before {
                return Some(found);
            }
        }
        spins += 1;
        if spins > 1000 {
            // A writer rebuilding the whole table: wait for it on the lock.
            let _lock = Locked::new(pg_sys::LWLockMode::LW_SHARED);
            return Some(probe());
        }
        std::hint::spin_loop();
    }
}

/// Holds the list's LWLock until dropped (an error raised meanwhile releases it at abort).
pub struct Locked;

impl Locked {
    pub fn new(mode: pg_sys::LWLockMode::Type) -> Locked {
        // SAFETY: the tranche's lock, set up with the segment (callers check `available()`).
        unsafe { pg_sys::LWLockAcquire(LOCK.load(Ordering::Relaxed), mode) };
        Locked
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        // SAFETY: acquired in `new` by this process.
        unsafe { pg_sys::LWLockRelease(LOCK.load(Ordering::Relaxed)) };
    }
}

/// `unrevocations` with the revocation each ends (the user's time in the table now); one of a
/// user who is not revoked is left out (nothing to end).
pub fn with_expected(unrevocations: Vec<Record>) -> Vec<Record> {
    let Some(s) = segment() else {
        return Vec::new();
    };
    let (keys, table) = (s.keys(), s.table());
    let _lock = Locked::new(pg_sys::LWLockMode::LW_SHARED);
    unrevocations
        .into_iter()
        .filter_map(|record| match record {
            Record::UnrevokeUser {
                user_id, by, at, ..
            } => {
                let expected = Some(table.get(keys.user(&user_id))?);
                Some(Record::UnrevokeUser {
                    user_id,
                    by,
                    at,
                    expected,
                })
            }
            other => Some(other),
        })
        .collect()
}

/// The records of `records` that add an entry the table does not hold (under the lock).
pub fn new_entries(records: &[Record]) -> Vec<&Record> {
    let Some(s) = segment() else {
        return records.iter().collect();
    };
    let (keys, table) = (s.keys(), s.table());
    records
        .iter()
        .filter(|record| match record {
            Record::RevokeToken { token, .. } => table.get(keys.token(token)).is_none(),
            Record::RevokeUser { user_id, .. } => table.get(keys.user(user_id)).is_none(),
            Record::UnrevokeUser { .. } => false,
        })
        .collect()
}

/// Whether `records` fit (under the exclusive lock): at most `max` entries, and those revoked by
/// a token's own holder (`self_revoked`) at most half of them, so that they can never fill the
/// list for the revokers. The new entries counted as if all new (an estimate that errs safe).
pub fn room_for(records: usize, self_revoked: bool) -> Result<(), String> {
    let Some(s) = segment() else {
        return Err("the list needs electric_auth in shared_preload_libraries".to_owned());
    };
    let (entries, by_holders, max) = (
        s.header.entries.load(Ordering::Relaxed),
        s.header.self_revoked.load(Ordering::Relaxed),
        s.header.max,
    );
    let new = records as u64;
    if entries + new > max {
        return Err(format!(
            "the revocation list is full: {entries} entries, electric_auth.max_revocations = {max}"
        ));
    }
    if self_revoked && by_holders + new > max / 2 {
        return Err(format!(
            "tokens revoked by their own holders fill half the list ({by_holders} of \
             electric_auth.max_revocations = {max}); the other half is kept for \
             electric_auth_revoker"
        ));
    }
    Ok(())
}

/// Applies `records` to the table (under the exclusive lock, which the caller holds), as one
/// change readers see whole.
pub fn apply(records: &[Record]) -> Result<(), String> {
    let Some(s) = segment() else {
        return Err("the list needs electric_auth in shared_preload_libraries".to_owned());
    };
    let header = s.header;
    header.seq.fetch_add(1, Ordering::Relaxed);
    fence(Ordering::Release);
    let result = apply_within(&s, records);
    header.generation.fetch_add(1, Ordering::AcqRel);
    header.seq.fetch_add(1, Ordering::Release);
    result
}

/// [`apply`] inside a change the caller has begun (the sequence count odd).
fn apply_within(s: &Segment, records: &[Record]) -> Result<(), String> {
    let header = s.header;
    let (keys, table) = (s.keys(), s.table());
    let mut result = Ok(());
    for record in records {
        let outcome = match record {
            Record::RevokeToken {
                token,
                expires_at,
                by_holder,
                ..
            } => table
                .insert(keys.token(token), *expires_at, i64::max)
                .map(|new| {
                    if new {
                        header.entries.fetch_add(1, Ordering::Relaxed);
                        if *by_holder {
                            header.self_revoked.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    header
                        .earliest_exp
                        .fetch_min(*expires_at, Ordering::Relaxed);
                }),
            Record::RevokeUser {
                user_id,
                issued_before,
                ..
            } => table
                .insert(keys.user(user_id), *issued_before, |_, new| new)
                .map(|new| {
                    if new {
                        header.entries.fetch_add(1, Ordering::Relaxed);
                        header.users.fetch_add(1, Ordering::Relaxed);
                    }
                }),
            Record::UnrevokeUser {
                user_id, expected, ..
            } => {
                let key = keys.user(user_id);
                // Only the revocation the unrevoking transaction saw (a later one stays).
                let current = table.get(key);
                if (expected.is_none() || *expected == current) && table.remove(key) {
                    header.entries.fetch_sub(1, Ordering::Relaxed);
                    header.users.fetch_sub(1, Ordering::Relaxed);
                }
                Ok(())
            }
        };
        if outcome.is_err() {
            result = Err(format!(
                "the revocation table is full ({} slots)",
                header.slots
            ));
        }
    }
    result
}

/// Appends `lines` (records as `Record::to_lines` writes them) to the file and syncs it (under
/// the exclusive lock).
pub fn append(lines: &[u8]) -> Result<(), String> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(FILE_NAME)
        .map_err(|e| format!("{FILE_NAME}: {e}"))?;
    file.write_all(lines)
        .and_then(|()| file.sync_data())
        .map_err(|e| format!("{FILE_NAME}: {e}"))
}

/// The file's records (a torn last line, or any line that is not a record, left out with a
/// WARNING naming how many).
pub fn read_file() -> Vec<Record> {
    let Ok(bytes) = std::fs::read(FILE_NAME) else {
        return Vec::new();
    };
    let (records, bad) = Record::from_lines(&bytes);
    if bad > 0 {
        super::warn(format!(
            "electric_auth: {bad} line(s) of {FILE_NAME} are not revocation records and were \
             left out"
        ));
    }
    records
}

/// Builds the table from the file: at startup, in the postmaster.
fn load_file() {
    let now = crate::keys::clock_now();
    let records = current(read_file(), now, KEEP_AFTER_EXP_SECS);
    if records.is_empty() {
        return;
    }
    if let Err(reason) = apply(&records) {
        super::warn(format!(
            "electric_auth could not load every revocation: {reason}"
        ));
    }
}

/// Drops what is over (tokens past `exp` + [`KEEP_AFTER_EXP_SECS`]) from the file and the
/// table, when something is; from the key worker. The table is rebuilt from the rewritten file
/// as one change.
pub fn prune(now: i64) -> Result<usize, String> {
    let Some(s) = segment() else {
        return Ok(0);
    };
    if s.header
        .earliest_exp
        .load(Ordering::Relaxed)
        .saturating_add(KEEP_AFTER_EXP_SECS)
        >= now
    {
        return Ok(0);
    }
    let _lock = Locked::new(pg_sys::LWLockMode::LW_EXCLUSIVE);
    let records = read_file();
    let before = records.len();
    let kept = current(records, now, KEEP_AFTER_EXP_SECS);
    let temporary = format!("{FILE_NAME}.tmp");
    std::fs::write(&temporary, Record::to_lines(&kept))
        .and_then(|()| std::fs::File::open(&temporary)?.sync_all())
        .and_then(|()| std::fs::rename(&temporary, FILE_NAME))
        .map_err(|e| format!("{temporary}: {e}"))?;
    let header = s.header;
    header.seq.fetch_add(1, Ordering::Relaxed);
    fence(Ordering::Release);
    s.table().clear();
    for counter in [&header.entries, &header.users, &header.self_revoked] {
        counter.store(0, Ordering::Relaxed);
    }
    header.earliest_exp.store(i64::MAX, Ordering::Relaxed);
    let result = apply_within(&s, &kept);
    header.generation.fetch_add(1, Ordering::AcqRel);
    header.seq.fetch_add(1, Ordering::Release);
    result.map(|()| before - kept.len())
}
