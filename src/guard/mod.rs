//! What keeps secrets and identities out of reach of the wrong hands, below the verifier:
//! settings refused when the library loaded and how parallel workers learn of it (`refused`),
//! and tokens and keys masked wherever Postgres would show a statement — the server log
//! (`log`), `pg_stat_activity` (`activity`) and `pg_stat_statements`' utility statements
//! (`utility`).

mod activity;
mod log;
mod refused;
mod tls;
mod utility;

pub use activity::hide_tokens;
pub use refused::{declared as declared_settings, mark_refused_placeholders};
pub use refused::{placeholders_before_definition, refused_setting};

/// Installs the hooks that mask tokens and keys; called once from `_PG_init`, after the settings.
pub fn init() {
    log::init();
    utility::init();
    activity::init();
}
