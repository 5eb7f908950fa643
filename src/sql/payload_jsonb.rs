//! `electric_auth.verify`'s result: the payload as `jsonb`, built directly in Postgres's format
//! for the payloads the core's reader takes (`electric_auth_core::jsonb_body`: the same bytes
//! `jsonb_in` makes, without its parse — issue 24), else read from the payload's JSON text, exactly
//! as signed, by Postgres's own `jsonb_in` (every digit of a number kept).

use electric_auth_core::Passed;
use pgrx::callconv::{BoxRet, FcInfo};
use pgrx::datum::Datum;
use pgrx::fcinfo::direct_function_call_as_datum;
use pgrx::{pg_sys, IntoDatum};
use std::ffi::CString;

pub enum PayloadJsonb {
    /// The varlena, built by the core and copied once into the function's memory context.
    Built(pg_sys::Datum),
    /// The JSON text, for `jsonb_in`.
    Text(CString),
}

impl PayloadJsonb {
    /// The jsonb of a verified token's payload: built by the fast path, else by the core from
    /// the text, else by `jsonb_in`. `None` if the text holds a NUL byte, which JSON the core
    /// accepted never does.
    pub fn new(passed: Passed<'_>) -> Option<PayloadJsonb> {
        if let Some(body) = passed.jsonb {
            return Some(PayloadJsonb::Built(varlena(body)));
        }
        let json = passed.payload;
        match electric_auth_core::jsonb_body(json) {
            Some(body) => Some(PayloadJsonb::Built(varlena(&body))),
            None => CString::new(json).ok().map(PayloadJsonb::Text),
        }
    }

    /// Always through `jsonb_in` (the tests compare the two).
    #[cfg(any(test, feature = "pg_test"))]
    pub fn from_text(json: &[u8]) -> Option<PayloadJsonb> {
        CString::new(json).ok().map(PayloadJsonb::Text)
    }
}

/// A varlena of `body`, palloc'd in the current memory context (the function's).
fn varlena(body: &[u8]) -> pg_sys::Datum {
    let size = pg_sys::VARHDRSZ + body.len();
    // SAFETY: a fresh palloc of the varlena's size; the 4-byte header is set, then the body
    // copied after it.
    unsafe {
        let varlena = pg_sys::palloc(size).cast::<pg_sys::varlena>();
        pgrx::set_varsize_4b(varlena, size as i32);
        std::ptr::copy_nonoverlapping(
            body.as_ptr(),
            varlena.cast::<u8>().add(pg_sys::VARHDRSZ),
            body.len(),
        );
        pg_sys::Datum::from(varlena)
    }
}

impl IntoDatum for PayloadJsonb {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        match self {
            PayloadJsonb::Built(datum) => Some(datum),
            // SAFETY: jsonb_in reads one NUL-terminated string, alive for the duration of the call.
            PayloadJsonb::Text(text) => unsafe {
                direct_function_call_as_datum(pg_sys::jsonb_in, &[Some(text.as_ptr().into())])
            },
        }
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

// SAFETY: returns the datum built (or NULL), as pgrx does for its own JsonB.
unsafe impl BoxRet for PayloadJsonb {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> Datum<'fcx> {
        match self.into_datum() {
            Some(datum) => unsafe { fcinfo.return_raw_datum(datum) },
            None => fcinfo.return_null(),
        }
    }
}

pgrx::impl_sql_translatable!(PayloadJsonb, "jsonb");
