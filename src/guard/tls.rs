//! Thread-local state the hooks keep, reached safely at any moment of a process's life.
//!
//! The log hook runs for every log line, the last ones while the process exits (`proc_exit`'s
//! `exit(1)` at debug5), after Rust has destroyed the thread's storage: a plain `with` panics
//! there, and a panic in the log hook raises an error that runs the hook again, forever. And a
//! hook may run again while it holds its state (a log line written by what it calls). So every
//! hook's state goes through [`with_slot`], which then simply does nothing.

use std::cell::RefCell;
use std::thread::LocalKey;

/// `f` on the slot; `None` when the thread's storage is gone (the process is exiting) or the
/// slot is already in use further up the stack.
pub fn with_slot<T: 'static, R>(
    key: &'static LocalKey<RefCell<T>>,
    f: impl FnOnce(&mut T) -> R,
) -> Option<R> {
    key.try_with(|cell| cell.try_borrow_mut().ok().map(|mut slot| f(&mut slot)))
        .ok()
        .flatten()
}
