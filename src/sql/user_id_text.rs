//! `electric_auth.user_id`'s result: the user id copied once, straight into a `text` varlena in
//! the function's memory context (issue 24: no Rust `String` made and dropped per call).

use pgrx::callconv::{BoxRet, FcInfo};
use pgrx::datum::Datum;
use pgrx::{pg_sys, IntoDatum};

/// A `text` datum, palloc'd in the current memory context.
pub struct UserIdText(pg_sys::Datum);

impl UserIdText {
    pub fn new(user_id: &str) -> UserIdText {
        // SAFETY: copies `user_id.len()` bytes from a live &str into a fresh palloc'd text
        // (it need not be NUL-terminated); a user id is far below text's 1 GB limit.
        let text = unsafe {
            pg_sys::cstring_to_text_with_len(user_id.as_ptr().cast(), user_id.len() as i32)
        };
        UserIdText(pg_sys::Datum::from(text))
    }
}

impl IntoDatum for UserIdText {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::TEXTOID
    }
}

// SAFETY: returns the text datum built in `new`, as pgrx does for its own String.
unsafe impl BoxRet for UserIdText {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> Datum<'fcx> {
        unsafe { fcinfo.return_raw_datum(self.0) }
    }
}

pgrx::impl_sql_translatable!(UserIdText, "text");
