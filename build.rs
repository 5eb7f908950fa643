//! PostgreSQL 18 only: compiles csrc/oauth_hba.c, the accessors of this connection's
//! pg_hba.conf line for the OAuth validator, against the server's own headers. The pg_config is
//! the one cargo-pgrx builds for (`PGRX_PG_CONFIG_PATH`), else pgrx's configured `pg18`.

fn main() {
    println!("cargo::rerun-if-changed=csrc/oauth_hba.c");
    println!("cargo::rerun-if-env-changed=PGRX_PG_CONFIG_PATH");
    println!("cargo::rerun-if-env-changed=PGRX_HOME");
    if std::env::var_os("CARGO_FEATURE_PG18").is_none() {
        return;
    }
    let pg_config = match std::env::var_os("PGRX_PG_CONFIG_PATH") {
        Some(path) => Ok(pgrx_pg_config::PgConfig::new_with_defaults(path.into())),
        None => pgrx_pg_config::Pgrx::from_config().and_then(|pgrx| pgrx.get("pg18")),
    };
    let includedir = pg_config
        .and_then(|pg_config| pg_config.includedir_server())
        .unwrap_or_else(|error| panic!("electric_auth: no PostgreSQL 18 pg_config: {error}"));
    cc::Build::new()
        .file("csrc/oauth_hba.c")
        .include(includedir)
        .warnings(true)
        .compile("electric_auth_oauth_hba");
}
