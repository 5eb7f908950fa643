//! The settings of keys from an identity provider. All `PGC_SIGHUP`: set in postgresql.conf or
//! with `ALTER SYSTEM` (superusers only) and applied by a reload, which the worker follows.

use crate::settings::hooks::{
    check_hook_candidate, refuse_in_check_hook, refuse_secret_where_readable, text_setting,
};
use crate::settings::{bumps_generation, names, Context, Setting, Value};
use electric_auth_core::issuers::{parse_issuers, IssuerSpec};
use electric_auth_core::jwks::url::check_https_url;
use pgrx::guc::{GucFlags, GucSetting};
use pgrx::{pg_guard, pg_sys, PgSqlErrorCode};
use std::ffi::{c_char, c_void, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// `electric_auth.jwks_url`: an `https://` URL of a JWKS; default empty.
pub static JWKS_URL: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// `electric_auth.oidc_issuer`: an issuer whose discovery document names the JWKS; default empty.
pub static OIDC_ISSUER: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// `electric_auth.jwks_refresh_interval`: seconds between refreshes (60..86400), default 5 min.
pub static REFRESH_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(300);
/// `electric_auth.jwks_timeout`: milliseconds for one whole request, default 5 s.
pub static TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(5000);
/// `electric_auth.jwks_ca_file`: a PEM bundle to trust instead of the OS trust store.
pub static CA_FILE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// `electric_auth.jwks_max_stale`: seconds a last good set stays in use, default 7 days.
pub static MAX_STALE: GucSetting<i32> = GucSetting::<i32>::new(7 * 24 * 3600);
/// `electric_auth.jwks_min_refresh_interval`: seconds between refreshes backends ask for,
/// default 2: short enough that a request it holds back (a flood of junk `kid`s keeps it busy)
/// still runs, and a provider's new key is accepted, well within the default `jwks_timeout`
/// (5 s); long enough that such a flood costs the provider one request per 2 s.
pub static MIN_REFRESH_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(2);

/// `electric_auth.issuers` (issue 32): a JSON array of issuers, each with its own keys,
/// algorithms, audience and claims, chosen by the token's `iss` (the core's `issuers.rs`).
/// Superusers only, like `jwt_key` (an inline HS key is a secret); checked whole at reload.
pub static ISSUERS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// The issuers setting's text, `None` when empty.
pub fn issuers_text() -> Option<String> {
    text_setting(&ISSUERS).filter(|v| !v.trim().is_empty())
}

/// The listed issuers as the setting holds them now (`[]` when unset; an invalid value never
/// gets in: the check hook refuses it).
#[allow(dead_code)] // the key worker reads it (next commit)
pub fn issuer_specs() -> Vec<IssuerSpec> {
    issuers_text()
        .and_then(|text| parse_issuers(&text).ok())
        .unwrap_or_default()
}

/// Refuses an `electric_auth.issuers` that does not parse, names an entry's error (never a
/// value), asks for preloading when an entry fetches its keys, and never lands where other
/// roles read settings.
#[pg_guard]
unsafe extern "C-unwind" fn check_issuers(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: this is a string check hook, passing its own arguments.
    if unsafe {
        refuse_secret_where_readable(
            names::ISSUERS,
            newval,
            source,
            "Set the issuers in postgresql.conf or with ALTER SYSTEM.",
        )
    } {
        return false;
    }
    // SAFETY: the pointer Postgres passed to this string check hook.
    let value = unsafe { check_hook_candidate(newval) }.to_string_lossy();
    if value.trim().is_empty() {
        return true;
    }
    // `[]` lists nobody: Electric's settings alone, as when the setting is empty.
    if parse_issuers(&value).is_ok_and(|specs| specs.is_empty()) {
        return true;
    }
    // The whole setting as a verifier would read it: structure, rules and inline keys (the
    // other settings at their defaults: no default issuer is needed beside listed ones).
    let settings = electric_auth_core::Settings {
        issuers: Some(value.into_owned()),
        ..electric_auth_core::Settings::new()
    };
    let refusal = match electric_auth_core::Config::from_settings(&settings) {
        Err(error) => Some((
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            error.to_string(),
            "Each entry is an object with \"iss\", one key source (\"key\", \"jwks_url\" or \"oidc_issuer\"), \"alg\", and optionally \"aud\", \"clock_drift\", \"user_id_claim\", \"role_claim\", \"jwks_refresh_interval\", \"jwks_max_stale\", \"user_id_prefix\", \"key_is_base64\".",
            "See the README's section \"Several identity providers\".",
        )),
        Ok(_) => {
            let fetches = settings
                .issuers
                .as_deref()
                .and_then(|text| parse_issuers(text).ok())
                .is_some_and(|specs| specs.iter().any(|s| s.source.fetched().is_some()));
            (fetches && !preloaded()).then(|| (
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                "an issuer with \"jwks_url\" or \"oidc_issuer\" requires electric_auth in shared_preload_libraries".to_owned(),
                "The key worker and its shared memory exist only when the library is preloaded.",
                "Add electric_auth to shared_preload_libraries and restart the server, or give the issuer an inline \"key\".",
            ))
        }
    };
    match refusal {
        None => true,
        Some((code, message, detail, hint)) => {
            // SAFETY: this check hook returns false right after.
            unsafe { refuse_in_check_hook(code, &message, detail, hint) };
            false
        }
    }
}

/// Whether the library was loaded by `shared_preload_libraries` (so the worker and the shared
/// memory exist). Inherited by every process the postmaster forks.
static PRELOADED: AtomicBool = AtomicBool::new(false);

pub fn mark_preloaded() {
    PRELOADED.store(true, Ordering::Relaxed);
}

pub fn preloaded() -> bool {
    PRELOADED.load(Ordering::Relaxed)
}

/// Where the keys come from, as the settings say now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    None,
    JwksUrl(String),
    Issuer(String),
    /// Both set: a configuration error (22023).
    Both,
}

impl KeySource {
    pub fn current() -> KeySource {
        let text =
            |s: &GucSetting<Option<CString>>| text_setting(s).filter(|v| !v.trim().is_empty());
        match (text(&JWKS_URL), text(&OIDC_ISSUER)) {
            (None, None) => KeySource::None,
            (Some(url), None) => KeySource::JwksUrl(url),
            (None, Some(issuer)) => KeySource::Issuer(issuer),
            (Some(_), Some(_)) => KeySource::Both,
        }
    }

    /// The setting and its value (what the cache file and messages name).
    pub fn setting_and_value(&self) -> Option<(&'static str, &str)> {
        match self {
            KeySource::JwksUrl(url) => Some((JWKS_URL_NAME, url.as_str())),
            KeySource::Issuer(issuer) => Some((OIDC_ISSUER_NAME, issuer.as_str())),
            _ => None,
        }
    }
}

pub fn timeout() -> Duration {
    Duration::from_millis(TIMEOUT.get().max(1) as u64)
}

pub fn ca_file() -> Option<String> {
    text_setting(&CA_FILE).filter(|v| !v.trim().is_empty())
}

/// A URL setting: empty, or an `https://` URL, and only with the library preloaded.
#[pg_guard]
unsafe extern "C-unwind" fn check_url(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: the pointer Postgres passed to this string check hook.
    let value = unsafe { check_hook_candidate(newval) }.to_string_lossy();
    if value.trim().is_empty() {
        return true;
    }
    let refusal = if !preloaded() {
        Some((
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "fetching keys from an identity provider requires electric_auth in shared_preload_libraries".to_owned(),
            "The key worker and its shared memory exist only when the library is preloaded.",
            "Add electric_auth to shared_preload_libraries and restart the server.",
        ))
    } else {
        check_https_url(&value).err().map(|reason| {
            (
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("invalid URL for fetching keys: {reason}"),
                "Keys are only fetched from an absolute https:// URL without user information.",
                "Write the URL as the identity provider documents it, for example https://idp.example.com/.well-known/jwks.json.",
            )
        })
    };
    match refusal {
        None => true,
        Some((code, message, detail, hint)) => {
            // SAFETY: this check hook returns false right after.
            unsafe { refuse_in_check_hook(code, &message, detail, hint) };
            false
        }
    }
}

/// The names as `&str`, for messages and `key_source()`.
pub const JWKS_URL_NAME: &str = "electric_auth.jwks_url";
pub const OIDC_ISSUER_NAME: &str = "electric_auth.oidc_issuer";

/// A time setting (`'30s'`, `'5min'`), applied by a reload; assigning it bumps the settings
/// generation like every setting the verifier reads.
fn duration(
    name: &'static std::ffi::CStr,
    short: &'static std::ffi::CStr,
    setting: &'static GucSetting<i32>,
    (min, max): (i32, i32),
    unit: GucFlags,
) -> Setting {
    Setting {
        name,
        short,
        long: c"A Postgres time setting ('30s', '5min', '1h', '7d'), applied by a reload.",
        context: Context::Sighup,
        flags: unit,
        value: Value::Int {
            setting,
            min,
            max,
            assign: Some(bumps_generation::int),
        },
    }
}

/// The settings of keys from an identity provider, for `settings::register`. All `sighup`;
/// the URL check hook only reads its argument and [`preloaded`]; the assign hooks bump the
/// settings generation.
pub fn declared() -> Vec<Setting> {
    let url_long = c"Requires electric_auth in shared_preload_libraries. Only one of electric_auth.jwks_url and electric_auth.oidc_issuer may be set.";
    vec![
        Setting {
            name: names::ISSUERS,
            short: c"Several identity providers: a JSON array of issuers, each with its own keys, algorithms, audience and claims, chosen by the token's iss.",
            long: c"Empty: Electric's single-issuer settings alone. Visible to superusers only; set in postgresql.conf or with ALTER SYSTEM.",
            context: Context::Sighup,
            flags: GucFlags::SUPERUSER_ONLY,
            value: Value::Text {
                setting: &ISSUERS,
                check: Some(check_issuers),
                assign: Some(bumps_generation::text),
            },
        },
        Setting {
            name: names::JWKS_URL,
            short: c"https:// URL of a JWKS whose keys join electric_auth.jwt_key's, fetched by a background worker.",
            long: url_long,
            context: Context::Sighup,
            flags: GucFlags::default(),
            value: Value::Text {
                setting: &JWKS_URL,
                check: Some(check_url),
                assign: Some(bumps_generation::text),
            },
        },
        Setting {
            name: names::OIDC_ISSUER,
            short: c"OpenID Connect issuer whose discovery document names the JWKS to fetch.",
            long: url_long,
            context: Context::Sighup,
            flags: GucFlags::default(),
            value: Value::Text {
                setting: &OIDC_ISSUER,
                check: Some(check_url),
                assign: Some(bumps_generation::text),
            },
        },
        duration(
            names::JWKS_REFRESH_INTERVAL,
            c"Time between key refreshes; the provider's Cache-Control max-age overrides it within 1 min to 24 h.",
            &REFRESH_INTERVAL,
            (60, 86_400),
            GucFlags::UNIT_S,
        ),
        duration(
            names::JWKS_TIMEOUT,
            c"Deadline of one key request (connect, TLS, headers and body), and the longest a backend waits for an unknown kid's refresh.",
            &TIMEOUT,
            (100, 60_000),
            GucFlags::UNIT_MS,
        ),
        Setting {
            name: names::JWKS_CA_FILE,
            short: c"PEM bundle of the certificate authorities trusted for fetching keys; empty: the operating system's trust store.",
            long: c"TLS certificates are always verified.",
            context: Context::Sighup,
            flags: GucFlags::default(),
            value: Value::Text {
                setting: &CA_FILE,
                check: None,
                assign: Some(bumps_generation::text),
            },
        },
        duration(
            names::JWKS_MAX_STALE,
            c"How long the last good fetched keys stay in use while every refresh fails; past it their tokens are refused.",
            &MAX_STALE,
            (1, i32::MAX),
            GucFlags::UNIT_S,
        ),
        duration(
            names::JWKS_MIN_REFRESH_INTERVAL,
            c"Least time between refreshes asked for by backends (a kid in no key, stale or unusable keys); a request held back runs as soon as it allows.",
            &MIN_REFRESH_INTERVAL,
            (1, 86_400),
            GucFlags::UNIT_S,
        ),
    ]
}
