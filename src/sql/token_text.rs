//! The `token text` argument as raw bytes.
//!
//! pgrx's `&str` argument checks UTF-8 and panics (SQLSTATE XX000, with a backtrace) on text
//! that is not, which a database in another encoding passes for any non-ASCII byte. The SQL
//! functions take a [`TokenText`] instead: the argument's bytes, unchecked here, for the
//! function to judge (see `sql/mod.rs`: a database that is not UTF8 is refused, and bytes that are
//! not UTF-8 are an `Invalid token`).

use pgrx::callconv::{Arg, ArgAbi};
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable, TypeOrigin,
};
use pgrx::{pg_sys, FromDatum};

/// A `text` argument's bytes, borrowed from the (detoasted) datum for the call's duration.
pub struct TokenText<'a>(pub &'a [u8]);

impl FromDatum for TokenText<'_> {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _typoid: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null || datum.is_null() {
            return None;
        }
        // SAFETY: a non-NULL text datum; detoasting leaves a varlena that lives at least as long
        // as the function call (the same lifetime pgrx gives its own &str arguments).
        unsafe {
            let varlena = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
            Some(TokenText(pgrx::varlena::varlena_to_byte_slice(varlena)))
        }
    }
}

// SAFETY: unboxes a text argument through FromDatum, exactly as pgrx does for &str.
unsafe impl<'fcx> ArgAbi<'fcx> for TokenText<'fcx> {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        // SAFETY: the caller guarantees the argument is a text datum.
        unsafe { arg.unbox_arg_using_from_datum() }
            .unwrap_or_else(|| panic!("argument {index} must not be null"))
    }
}

// SAFETY: TokenText is read from a `text` argument and never returned.
unsafe impl SqlTranslatable for TokenText<'_> {
    const TYPE_IDENT: &'static str = "electric_auth::token_text::TokenText";
    const TYPE_ORIGIN: TypeOrigin = TypeOrigin::External;
    const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> = Ok(SqlMappingRef::literal("text"));
    const RETURN_SQL: Result<ReturnsRef, ReturnsError> = Err(ReturnsError::Datum);
}
