//! Revocations are transactional and WAL-logged: a revoking call adds a record to this
//! transaction's pending list (a rolled-back transaction or subtransaction drops its own); at
//! pre-commit the records are appended to the file, written as one record of this extension's
//! WAL resource manager (`RegisterCustomRmgr`, PostgreSQL 15+) and flushed, and applied to the
//! shared table, so every backend refuses the tokens from the moment the transaction commits.
//! Replay (crash recovery, a hot standby, a base backup's recovery) applies the same records to
//! that server's table and file, so a standby refuses a token once it has replayed the
//! revocation.
//!
//! An error at pre-commit (the list full, the file not writable) aborts the transaction: a
//! revocation is never dropped silently. A revocation is in force from pre-commit, so a commit
//! that fails after it (or a crash before the commit record) leaves it in force although its
//! transaction did not commit: the safe direction. That is why SERIALIZABLE transactions, whose
//! commit may still fail on a serialization conflict after pre-commit, may not revoke; and why
//! an unrevocation, whose early effect would be the unsafe direction, takes effect only once
//! its transaction has committed (a crash in between loses it: the user stays revoked).
#![allow(clippy::result_large_err)] // ErrorReport unboxed, as pgrx expects

use super::shmem;
use electric_auth_core::revocation::Record;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_void, CStr};

/// This extension's WAL resource manager id (the custom range is 128..=255; RM_EXPERIMENTAL_ID,
/// 128, is for development). Listed on the PostgreSQL wiki's CustomWALResourceManagers page
/// before a release names it.
pub const RMGR_ID: u8 = 217;
const RMGR_NAME: &CStr = c"electric_auth_revocations";

thread_local! {
    /// This transaction's revocations not yet committed: (subtransaction, record).
    static PENDING: RefCell<Vec<(pg_sys::SubTransactionId, Record)>> = const { RefCell::new(Vec::new()) };
    static CALLBACKS: Cell<bool> = const { Cell::new(false) };
    /// Unrevocations decided at pre-commit, made at the commit.
    static AT_COMMIT: RefCell<Vec<Record>> = const { RefCell::new(Vec::new()) };
}

/// The resource manager's callbacks (immutable data: a name and function pointers).
struct Rmgr(pg_sys::RmgrData);

// SAFETY: never written; Postgres only reads it.
unsafe impl Sync for Rmgr {}

static RMGR: Rmgr = Rmgr(pg_sys::RmgrData {
    rm_name: RMGR_NAME.as_ptr(),
    rm_redo: Some(redo),
    rm_desc: Some(desc),
    rm_identify: Some(identify),
    rm_startup: None,
    rm_cleanup: None,
    rm_mask: None,
    rm_decode: None,
});

/// Registers the resource manager; from `_PG_init` while `shared_preload_libraries` loads (the
/// startup process, which replays WAL, inherits it from the postmaster).
pub fn init() {
    // SAFETY: called while preloading, as RegisterCustomRmgr requires; RMGR lives forever and
    // Postgres only reads it (15's declaration takes a mutable pointer all the same).
    unsafe { pg_sys::RegisterCustomRmgr(RMGR_ID, std::ptr::from_ref(&RMGR.0).cast_mut()) };
}

/// Adds `record` to this transaction's pending revocations; refused in a SERIALIZABLE
/// transaction (see the module notes).
pub fn add(record: Record) -> Result<(), ErrorReport> {
    // SAFETY: reads this backend's isolation level.
    if unsafe { pg_sys::XactIsoLevel } == pg_sys::XACT_SERIALIZABLE as i32 {
        return Err(ErrorReport::new(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            "revocations cannot be made in a SERIALIZABLE transaction",
            "electric_auth",
        )
        .set_detail("Its commit may still fail on a serialization conflict after the revocation took effect.")
        .set_hint("Revoke in a READ COMMITTED or REPEATABLE READ transaction."));
    }
    register_callbacks();
    // SAFETY: reads this backend's current subtransaction id.
    let subxact = unsafe { pg_sys::GetCurrentSubTransactionId() };
    PENDING.with_borrow_mut(|pending| pending.push((subxact, record)));
    Ok(())
}

fn register_callbacks() {
    if CALLBACKS.replace(true) {
        return;
    }
    // SAFETY: registers callbacks for this backend's life; they only touch PENDING and, at
    // pre-commit, the list (raising errors the transaction machinery expects there).
    unsafe {
        pg_sys::RegisterXactCallback(Some(xact_callback), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(subxact_callback), std::ptr::null_mut());
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn xact_callback(event: pg_sys::XactEvent::Type, _arg: *mut c_void) {
    use pg_sys::XactEvent::*;
    match event {
        XACT_EVENT_PRE_COMMIT => {
            // Per user, the transaction's last action alone (an unrevocation followed by a
            // revocation revokes); revocations now, unrevocations at the commit.
            let records = fold_by_user(
                PENDING
                    .with_borrow_mut(std::mem::take)
                    .into_iter()
                    .map(|(_, r)| r),
            );
            let (unrevocations, revocations): (Vec<_>, Vec<_>) = records
                .into_iter()
                .partition(|r| matches!(r, Record::UnrevokeUser { .. }));
            if !revocations.is_empty() {
                if let Err(report) = commit(&revocations) {
                    report.report(PgLogLevel::ERROR);
                }
            }
            // What each unrevocation ends: the revocation in force now. One made by another
            // transaction before this one's commit takes effect stays (see `shmem::apply`).
            let unrevocations = shmem::with_expected(unrevocations);
            AT_COMMIT.with_borrow_mut(|at_commit| *at_commit = unrevocations);
        }
        XACT_EVENT_COMMIT => {
            let unrevocations = AT_COMMIT.with_borrow_mut(std::mem::take);
            if !unrevocations.is_empty() {
                // Committed: no error may be raised now; a failure leaves the user revoked.
                if let Err(report) = commit(&unrevocations) {
                    super::warn(format!(
                        "electric_auth could not record an unrevocation, so the user stays \
                         revoked: {}",
                        report.message()
                    ));
                }
            }
        }
        XACT_EVENT_PRE_PREPARE if PENDING.with_borrow(|pending| !pending.is_empty()) => {
            PENDING.with_borrow_mut(Vec::clear);
            ErrorReport::new(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                "cannot PREPARE a transaction that revoked tokens",
                "electric_auth",
            )
            .report(PgLogLevel::ERROR);
        }
        XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT | XACT_EVENT_PREPARE => {
            PENDING.with_borrow_mut(Vec::clear);
            AT_COMMIT.with_borrow_mut(Vec::clear);
        }
        _ => {}
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn subxact_callback(
    event: pg_sys::SubXactEvent::Type,
    my_subid: pg_sys::SubTransactionId,
    parent_subid: pg_sys::SubTransactionId,
    _arg: *mut c_void,
) {
    use pg_sys::SubXactEvent::*;
    PENDING.with_borrow_mut(|pending| match event {
        SUBXACT_EVENT_ABORT_SUB => pending.retain(|(subxact, _)| *subxact != my_subid),
        SUBXACT_EVENT_COMMIT_SUB => {
            for (subxact, _) in pending.iter_mut() {
                if *subxact == my_subid {
                    *subxact = parent_subid;
                }
            }
        }
        _ => {}
    });
}

/// `records` with, for each user, only the last of its actions in the transaction (revoke or
/// unrevoke); tokens as they are.
fn fold_by_user(records: impl Iterator<Item = Record>) -> Vec<Record> {
    let mut kept: Vec<Option<Record>> = Vec::new();
    let mut last: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for record in records {
        if let Record::RevokeUser { user_id, .. } | Record::UnrevokeUser { user_id, .. } = &record {
            if let Some(&at) = last.get(user_id) {
                kept[at] = None;
            }
            last.insert(user_id.clone(), kept.len());
        }
        kept.push(Some(record));
    }
    kept.into_iter().flatten().collect()
}

/// Makes `records` durable and in force (see the module notes), under the list's lock.
fn commit(records: &[Record]) -> Result<(), ErrorReport> {
    let failed = |message: String| {
        ErrorReport::new(
            PgSqlErrorCode::ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
            message,
            "electric_auth",
        )
    };
    let _lock = shmem::Locked::new(pg_sys::LWLockMode::LW_EXCLUSIVE);
    // Only what adds an entry needs room (revoking a revoked token again is a no-op); the
    // holders' share is checked for their entries whatever else the transaction revokes.
    let new = shmem::new_entries(records);
    let by_holder = new
        .iter()
        .filter(|r| {
            matches!(
                r,
                Record::RevokeToken {
                    by_holder: true,
                    ..
                }
            )
        })
        .count();
    if !new.is_empty() {
        shmem::room_for(new.len(), false).map_err(failed)?;
    }
    if by_holder > 0 {
        shmem::room_for(by_holder, true).map_err(failed)?;
    }
    // One text for the file and the WAL record.
    let lines = Record::to_lines(records);
    shmem::append(lines.as_bytes()).map_err(|e| {
        ErrorReport::new(
            PgSqlErrorCode::ERRCODE_IO_ERROR,
            format!("electric_auth could not write the revocation list: {e}"),
            "electric_auth",
        )
    })?;
    // SAFETY: a WAL record of this resource manager with the records as its main data, which
    // XLogInsert copies; then flushed, so the revocation is durable when the commit returns.
    unsafe {
        pg_sys::XLogBeginInsert();
        register_data(lines.as_bytes());
        let lsn = pg_sys::XLogInsert(RMGR_ID, 0);
        pg_sys::XLogFlush(lsn);
    }
    shmem::apply(records).map_err(failed)
}

/// `XLogRegisterData`, whose signature changed across majors.
///
/// # Safety
/// Between `XLogBeginInsert` and `XLogInsert`; `data` lives until then.
unsafe fn register_data(data: &[u8]) {
    #[cfg(feature = "pg15")]
    // SAFETY: as the caller guarantees (the data is only read).
    unsafe {
        pg_sys::XLogRegisterData(data.as_ptr() as *mut c_char, data.len() as i32)
    };
    #[cfg(any(feature = "pg16", feature = "pg17"))]
    // SAFETY: as above.
    unsafe {
        pg_sys::XLogRegisterData(data.as_ptr() as *mut c_char, data.len() as u32)
    };
    #[cfg(feature = "pg18")]
    // SAFETY: as above.
    unsafe {
        pg_sys::XLogRegisterData(data.as_ptr().cast(), data.len() as u32)
    };
}

/// The main data of the record being replayed.
///
/// # Safety
/// `record` is the reader state Postgres passes to a redo or desc callback.
unsafe fn main_data<'a>(record: *mut pg_sys::XLogReaderState) -> &'a [u8] {
    // SAFETY: the decoded record and its main data, valid during the callback.
    unsafe {
        let decoded = (*record).record;
        if decoded.is_null() || (*decoded).main_data.is_null() {
            return &[];
        }
        std::slice::from_raw_parts(
            (*decoded).main_data.cast::<u8>(),
            (*decoded).main_data_len as usize,
        )
    }
}

/// Replay: the records into this server's table and file.
#[pg_guard]
unsafe extern "C-unwind" fn redo(record: *mut pg_sys::XLogReaderState) {
    // SAFETY: Postgres's reader state for this record.
    let data = unsafe { main_data(record) };
    let (records, _) = Record::from_lines(data);
    if records.is_empty() {
        return;
    }
    let _lock = shmem::Locked::new(pg_sys::LWLockMode::LW_EXCLUSIVE);
    // The record's data is the lines the primary appended to its file.
    if let Err(e) = shmem::append(data) {
        super::warn(format!(
            "electric_auth could not write a replayed revocation to its file (it is in force \
             until the next restart, when WAL replay brings it back while the WAL is kept): {e}"
        ));
    }
    if let Err(e) = shmem::apply(&records) {
        ErrorReport::new(
            PgSqlErrorCode::ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
            format!("electric_auth cannot replay a revocation: {e}"),
            "electric_auth",
        )
        .set_hint(
            "Set electric_auth.max_revocations on this server at least as high as on the primary.",
        )
        .report(PgLogLevel::FATAL);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn desc(buf: pg_sys::StringInfo, record: *mut pg_sys::XLogReaderState) {
    // SAFETY: Postgres's reader state; the text is copied into its buffer.
    let (records, _) = Record::from_lines(unsafe { main_data(record) });
    let text = format!("{} revocation record(s)", records.len());
    if let Ok(text) = std::ffi::CString::new(text) {
        // SAFETY: appends to the StringInfo Postgres passed.
        unsafe { pg_sys::appendStringInfoString(buf, text.as_ptr()) };
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn identify(_info: u8) -> *const c_char {
    c"REVOKE".as_ptr()
}
