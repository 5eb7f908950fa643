//! The key worker's HTTPS client. Only the worker calls it: no backend serving a query or a
//! login ever touches the network.
//!
//! ureq 3 over rustls, on the aws-lc-rs crypto provider the core already links for signatures:
//! one TLS stack, no OpenSSL symbols beside the server's (`tests/symbols/check_symbols.sh`).
//! Certificates are always verified, against the operating system's trust store
//! (rustls-native-certs) or the PEM bundle of `electric_auth.jwks_ca_file`.
//!
//! Bounds: a total deadline for the whole exchange (connect, TLS, headers and body: a body that
//! trickles one byte a second hits it), at most [`MAX_REDIRECTS`] redirects, each to a URL the
//! setting itself could hold (`https://`, no user information), a body of at most
//! `MAX_DOCUMENT_BYTES`, a JSON content type.

use electric_auth_core::jwks::policy::cache_control_max_age;
use electric_auth_core::jwks::url::{check_https_url, resolve_redirect};
use electric_auth_core::jwks::MAX_DOCUMENT_BYTES;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// Redirects followed, each to `https://` only.
pub const MAX_REDIRECTS: u32 = 3;

/// How the worker fetches (from the settings, read at each attempt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchSettings {
    /// The deadline for one whole request, redirects included.
    pub timeout: Duration,
    /// `electric_auth.jwks_ca_file`: trust only this PEM bundle; `None`: the OS trust store.
    pub ca_file: Option<String>,
}

/// A response the worker may use.
#[derive(Debug)]
pub struct Fetched {
    pub body: Vec<u8>,
    /// The `Cache-Control: max-age`, if the provider sent one.
    pub max_age: Option<i64>,
}

/// What a document must be served as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// A JWKS: `application/json` or `application/jwk-set+json`.
    Jwks,
    /// An OpenID Provider configuration: `application/json`.
    Discovery,
}

/// The trust anchors for a fetch, or why there are none.
fn root_certs(ca_file: Option<&str>) -> Result<RootCerts, String> {
    let certs: Vec<Certificate<'static>> = match ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("electric_auth.jwks_ca_file {path:?} cannot be read: {e}"))?;
            ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(PemItem::Certificate(cert)) => Some(cert),
                    _ => None,
                })
                .collect()
        }
        None => rustls_native_certs::load_native_certs()
            .certs
            .iter()
            .map(|der| Certificate::from_der(der.as_ref()).to_owned())
            .collect(),
    };
    if certs.is_empty() {
        return Err(match ca_file {
            Some(path) => format!("electric_auth.jwks_ca_file {path:?} holds no certificate"),
            None => "the operating system's trust store holds no certificate".to_owned(),
        });
    }
    Ok(RootCerts::Specific(Arc::new(certs)))
}

/// Fetches `url` (already checked to be `https://`) within the bounds of the module notes.
/// Redirects are followed here, not by the HTTP client: each target must pass the same URL
/// rules as the setting (`check_https_url`) before anything is sent to it.
pub fn fetch(url: &str, settings: &FetchSettings, expected: Expected) -> Result<Fetched, String> {
    let roots = root_certs(settings.ca_file.as_deref())?;
    let deadline = Instant::now() + settings.timeout;
    let mut current = url.to_owned();
    let mut redirects = 0;
    let mut response = loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(format!(
                "{url}: no complete answer within electric_auth.jwks_timeout"
            ));
        }
        let tls = TlsConfig::builder()
            .root_certs(roots.clone())
            .unversioned_rustls_crypto_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .https_only(true)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .http_status_as_error(true)
            .timeout_global(Some(remaining))
            .max_response_header_size(64 * 1024)
            .user_agent("electric_auth key worker")
            .accept(match expected {
                Expected::Jwks => "application/jwk-set+json, application/json",
                Expected::Discovery => "application/json",
            })
            .build();
        let agent = ureq::Agent::new_with_config(config);
        let response = agent
            .get(&current)
            .call()
            .map_err(|e| describe(&current, e))?;
        if !response.status().is_redirection() {
            break response;
        }
        if redirects == MAX_REDIRECTS {
            return Err(format!("{url}: more than {MAX_REDIRECTS} redirects"));
        }
        redirects += 1;
        let Some(location) = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
        else {
            return Err(format!(
                "{current}: the server answered HTTP {} without a Location",
                response.status().as_u16()
            ));
        };
        let next = resolve_redirect(&current, location);
        // The target is not repeated in the message: it may hold a password.
        check_https_url(&next)
            .map_err(|reason| format!("{current}: a redirect leads to a URL refused: {reason}"))?;
        current = next;
    };
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let allowed = match expected {
        Expected::Jwks => matches!(
            media_type.as_str(),
            "application/json" | "application/jwk-set+json"
        ),
        Expected::Discovery => media_type == "application/json",
    };
    if !allowed {
        return Err(format!(
            "{url}: the response's content type {:?} is not JSON",
            content_type.chars().take(100).collect::<String>()
        ));
    }
    let max_age = response
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .and_then(cache_control_max_age);
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_DOCUMENT_BYTES as u64)
        .read_to_vec()
        .map_err(|e| describe(url, e))?;
    Ok(Fetched { body, max_age })
}

/// A failed request's reason, in words an operator can act on (public: the URL and the error).
fn describe(url: &str, error: ureq::Error) -> String {
    use ureq::Error::*;
    let reason = match error {
        StatusCode(code) => format!("the server answered HTTP {code}"),
        Timeout(_) => "no complete answer within electric_auth.jwks_timeout".to_owned(),
        BodyExceedsLimit(_) => {
            format!("the response is larger than {MAX_DOCUMENT_BYTES} bytes")
        }
        TooManyRedirects => format!("more than {MAX_REDIRECTS} redirects"),
        RequireHttpsOnly(_) => "a redirect leads to a URL that is not https://".to_owned(),
        other => other.to_string(),
    };
    format!("{url}: {reason}")
}
