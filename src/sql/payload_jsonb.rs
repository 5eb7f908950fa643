//! `electric_auth.verify`'s result: the payload's JSON text, exactly as signed, read by
//! Postgres's own `jsonb_in` (no re-serialisation of the decoded claims, and every digit of a
//! number kept).

use pgrx::callconv::{BoxRet, FcInfo};
use pgrx::datum::Datum;
use pgrx::fcinfo::direct_function_call_as_datum;
use pgrx::{pg_sys, IntoDatum};
use std::ffi::CString;

pub struct PayloadJsonb(CString);

impl PayloadJsonb {
    /// `None` if the text holds a NUL byte, which JSON the core accepted never does.
    pub fn new(json: &[u8]) -> Option<PayloadJsonb> {
        CString::new(json).ok().map(PayloadJsonb)
    }
}

impl IntoDatum for PayloadJsonb {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        // SAFETY: jsonb_in reads one NUL-terminated string, alive for the duration of the call.
        unsafe { direct_function_call_as_datum(pg_sys::jsonb_in, &[Some(self.0.as_ptr().into())]) }
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

// SAFETY: returns the datum jsonb_in built (or NULL), as pgrx does for its own JsonB.
unsafe impl BoxRet for PayloadJsonb {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> Datum<'fcx> {
        match self.into_datum() {
            Some(datum) => unsafe { fcinfo.return_raw_datum(datum) },
            None => fcinfo.return_null(),
        }
    }
}

pgrx::impl_sql_translatable!(PayloadJsonb, "jsonb");
