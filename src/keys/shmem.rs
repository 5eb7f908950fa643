//! The fetched keys in shared memory, one slot per source ([`SOURCES`]: the default issuer's
//! `electric_auth.jwks_url`/`oidc_issuer` in slot 0, listed issuer `i`'s in slot `i + 1`): the
//! raw JWKS document (at most `MAX_DOCUMENT_BYTES`) and the worker's state under the slot's
//! LWLock, and one generation number for all of them, which a backend reads atomically on
//! every verification (it re-reads the documents only when the generation moved).
//!
//! A slot's document area is never written before a document arrives: the shared memory of a
//! new segment is zero, and only the slots' heads are cleared here, so the 1 MiB areas of
//! unused slots cost address space, not memory.
//!
//! Requested in `shmem_request_hook` and attached in `shmem_startup_hook`, each chained to the
//! hook installed before ours (other modules of this library and other libraries add theirs).

use electric_auth_core::issuers::{MAX_ISSUERS, MAX_TEXT_BYTES};
use electric_auth_core::jwks::MAX_DOCUMENT_BYTES;
use pgrx::{pg_guard, pg_sys};
use std::cell::UnsafeCell;
use std::ffi::CStr;
use std::ptr;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicPtr, AtomicU64, Ordering};

const SHMEM_NAME: &CStr = c"electric_auth keys";
const TRANCHE_NAME: &CStr = c"electric_auth_keys";

/// A bounded text in shared memory.
#[repr(C)]
pub struct ShmemText<const N: usize> {
    len: u32,
    bytes: [u8; N],
}

impl<const N: usize> ShmemText<N> {
    pub fn set(&mut self, text: &[u8]) {
        let n = text.len().min(N);
        self.bytes[..n].copy_from_slice(&text[..n]);
        self.len = n as u32;
    }

    pub fn get(&self) -> &[u8] {
        &self.bytes[..(self.len as usize).min(N)]
    }

    pub fn string(&self) -> String {
        String::from_utf8_lossy(self.get()).into_owned()
    }

    /// What it can hold.
    pub const CAPACITY: usize = N;
}

/// The `kid` list's storage.
pub type KidsText = ShmemText<4096>;

/// What the worker publishes, read under the lock.
#[repr(C)]
pub struct KeyState {
    /// The configured source (`jwks_url` or `oidc_issuer`) the document was fetched for.
    pub source: ShmemText<2048>,
    /// The listed issuer (`iss`) the source is configured for; empty for the default issuer.
    pub issuer: ShmemText<MAX_TEXT_BYTES>,
    /// The JWKS URL fetched last (with discovery: the `jwks_uri`).
    pub jwks_url: ShmemText<2048>,
    /// Unix seconds: last success, last failure (0: never).
    pub last_success: i64,
    pub last_failure: i64,
    pub failure: ShmemText<1024>,
    pub next_refresh: i64,
    /// Usable keys and their `kid`s (comma-separated JSON strings), as the worker counted them;
    /// `kids_truncated` when some did not fit (the list holds only whole `kid`s).
    pub usable: i32,
    pub kids: KidsText,
    pub kids_truncated: bool,
    /// The last failure to write the cache file (Unix seconds, 0: none since the last success)
    /// and its reason: a restart would then come back with older keys.
    pub last_persist_failure: i64,
    pub persist_failure: ShmemText<1024>,
    /// Whether the document in use came from the cache file (no fetch succeeded yet).
    pub from_file: bool,
    /// The document; empty when none.
    pub document: ShmemText<MAX_DOCUMENT_BYTES>,
}

/// How many sources can be fetched at once: the default issuer's and one per listed issuer.
pub const SOURCES: usize = 1 + MAX_ISSUERS;

/// One source's slot.
#[repr(C)]
pub struct SharedKeys {
    /// Moves whenever `state.document` (or its source) changes.
    pub generation: AtomicU64,
    /// When the document in use was fetched (Unix seconds; 0: no document).
    pub fetched_at: AtomicI64,
    /// Completed fetch attempts (a waiting backend watches it).
    pub attempts: AtomicU64,
    /// The last refresh a backend asked for (Unix milliseconds; 0: never): for a `kid` in no
    /// key, or keys that are stale or unusable. It may lie in the future: a request the rate
    /// limit (`jwks_min_refresh_interval`) defers to the first moment it allows, which the
    /// worker waits for (see `keys/backend.rs`).
    pub refresh_requested_at: AtomicI64,
    /// The last request an attempt has answered: the `refresh_requested_at` it saw when it
    /// began. A request during an attempt that began before it is answered by the next one
    /// (that attempt may have missed a key published after it began).
    pub refresh_served_at: AtomicI64,
    lock: AtomicPtr<pg_sys::LWLock>,
    /// Last: its document area is the slot's tail (see the module notes).
    state: UnsafeCell<KeyState>,
}

/// Every slot, and what the worker shares with the backends.
#[repr(C)]
pub struct SharedSources {
    /// Moves whenever any slot's document (or source) changes.
    generation: AtomicU64,
    /// The worker's latch, while it runs.
    pub worker_latch: AtomicPtr<pg_sys::Latch>,
    /// The worker's process id while it runs (0: none), and when it started (Unix seconds).
    pub worker_pid: AtomicI32,
    pub worker_started: AtomicI64,
    slots: [SharedKeys; SOURCES],
}

impl SharedKeys {
    /// Whether a request waits for an attempt that began after it.
    pub fn refresh_pending(&self) -> bool {
        self.refresh_requested_at.load(Ordering::Acquire)
            > self.refresh_served_at.load(Ordering::Acquire)
    }
}

impl SharedSources {
    /// Whether the key worker runs now: it recorded its process id, and that process exists
    /// (a worker that died without running its exit callback — only a crash, which restarts
    /// the whole server — leaves a stale id).
    pub fn worker_running(&self) -> bool {
        let pid = self.worker_pid.load(Ordering::Acquire);
        // SAFETY: kill(2) with signal 0 only checks that the process exists; the worker runs
        // as the same OS user as every backend.
        pid > 0 && unsafe { libc::kill(pid, 0) } == 0
    }

    /// Slot `index` (0: the default issuer's source; `i + 1`: listed issuer `i`'s).
    pub fn slot(&self, index: usize) -> &SharedKeys {
        &self.slots[index]
    }

    /// The generation of all slots together.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Slot `slot` changed: its generation and the shared one move.
    pub fn bump(&self, slot: &SharedKeys) {
        slot.generation.fetch_add(1, Ordering::AcqRel);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Wakes the worker, if it runs.
    pub fn wake_worker(&self) {
        let latch = self.worker_latch.load(Ordering::Acquire);
        if !latch.is_null() {
            // SAFETY: the worker's latch is its PGPROC's, in shared memory.
            unsafe { pg_sys::SetLatch(latch) };
        }
    }
}

static SHARED: AtomicPtr<SharedSources> = AtomicPtr::new(ptr::null_mut());
static mut PREV_SHMEM_REQUEST_HOOK: pg_sys::shmem_request_hook_type = None;
static mut PREV_SHMEM_STARTUP_HOOK: pg_sys::shmem_startup_hook_type = None;

/// Installs the hooks; from `_PG_init` while `shared_preload_libraries` loads.
pub fn init() {
    // SAFETY: _PG_init runs once per process, single-threaded, before any hook is called.
    unsafe {
        PREV_SHMEM_REQUEST_HOOK = pg_sys::shmem_request_hook;
        pg_sys::shmem_request_hook = Some(shmem_request);
        PREV_SHMEM_STARTUP_HOOK = pg_sys::shmem_startup_hook;
        pg_sys::shmem_startup_hook = Some(shmem_startup);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn shmem_request() {
    // SAFETY: called by the postmaster in its shmem request phase; the previous hook first.
    unsafe {
        if let Some(prev) = PREV_SHMEM_REQUEST_HOOK {
            prev();
        }
        pg_sys::RequestAddinShmemSpace(std::mem::size_of::<SharedSources>());
        pg_sys::RequestNamedLWLockTranche(TRANCHE_NAME.as_ptr(), SOURCES as i32);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn shmem_startup() {
    // SAFETY: called by the postmaster after shared memory exists; the previous hook first.
    // ShmemInitStruct under AddinShmemInitLock, as Postgres's own modules do.
    unsafe {
        if let Some(prev) = PREV_SHMEM_STARTUP_HOOK {
            prev();
        }
        // AddinShmemInitLock is MainLWLockArray[21] on every major (lwlocknames), as pgrx's
        // own shared memory code reads it.
        let init_lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock;
        pg_sys::LWLockAcquire(init_lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let mut found = false;
        let shared = pg_sys::ShmemInitStruct(
            SHMEM_NAME.as_ptr(),
            std::mem::size_of::<SharedSources>(),
            &mut found,
        ) as *mut SharedSources;
        if !found {
            // Everything but the slots' document areas (see the module notes).
            let slots = std::mem::offset_of!(SharedSources, slots);
            ptr::write_bytes(shared as *mut u8, 0, slots);
            let locks = pg_sys::GetNamedLWLockTranche(TRANCHE_NAME.as_ptr());
            for index in 0..SOURCES {
                let slot = (shared as *mut u8)
                    .add(slots + index * std::mem::size_of::<SharedKeys>())
                    as *mut SharedKeys;
                ptr::write_bytes(slot as *mut u8, 0, SLOT_HEAD_BYTES);
                let lock = &raw mut (*locks.add(index)).lock;
                (*slot).lock.store(lock, Ordering::Relaxed);
            }
        }
        SHARED.store(shared, Ordering::Release);
        pg_sys::LWLockRelease(init_lock);
    }
}

/// A slot's bytes before its document's: what a new segment clears.
const SLOT_HEAD_BYTES: usize = std::mem::offset_of!(SharedKeys, state)
    + std::mem::offset_of!(KeyState, document)
    + std::mem::offset_of!(ShmemText<MAX_DOCUMENT_BYTES>, bytes);

// The document's bytes are the slot's tail.
const _: () = assert!(
    SLOT_HEAD_BYTES + MAX_DOCUMENT_BYTES <= std::mem::size_of::<SharedKeys>()
        && std::mem::size_of::<SharedKeys>() - (SLOT_HEAD_BYTES + MAX_DOCUMENT_BYTES) < 64
);

/// The shared keys, when the library was preloaded.
pub fn shared() -> Option<&'static SharedSources> {
    // SAFETY: SHARED is set once in the postmaster before any child is forked, to shared
    // memory that lives as long as the server; the state is reached only through the lock.
    unsafe { SHARED.load(Ordering::Acquire).as_ref() }
}

impl SharedKeys {
    /// Runs `f` with the state under the lock in `mode`; `f` must not raise an error.
    fn locked<R>(&self, mode: pg_sys::LWLockMode::Type, f: impl FnOnce(*mut KeyState) -> R) -> R {
        let lock = self.lock.load(Ordering::Relaxed);
        let state = self.state.get();
        // SAFETY: the lock was attached at startup; on an error Postgres releases every LWLock
        // at abort. The state is only touched while it is held.
        unsafe {
            pg_sys::LWLockAcquire(lock, mode);
            let result = f(state);
            pg_sys::LWLockRelease(lock);
            result
        }
    }

    /// Reads the state (shared lock).
    pub fn read<R>(&self, f: impl FnOnce(&KeyState) -> R) -> R {
        // SAFETY: readers hold the lock in shared mode; the writer in exclusive mode.
        self.locked(pg_sys::LWLockMode::LW_SHARED, |state| f(unsafe { &*state }))
    }

    /// Changes the state (exclusive lock).
    pub fn write<R>(&self, f: impl FnOnce(&mut KeyState) -> R) -> R {
        // SAFETY: the exclusive lock makes this the only reference.
        self.locked(pg_sys::LWLockMode::LW_EXCLUSIVE, |state| {
            f(unsafe { &mut *state })
        })
    }
}
