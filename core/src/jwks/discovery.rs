//! OpenID Connect Discovery 1.0: where an issuer publishes its configuration (§4), and the
//! checks on it (§4.3): the document's `issuer` must equal the configured issuer exactly, and
//! its `jwks_uri` is where the keys are.

use super::url::check_https_url;
use serde_json::Value;

/// The largest discovery document read (real ones are a few KiB).
pub const MAX_DISCOVERY_BYTES: usize = 256 * 1024;

/// The configuration document's URL for `issuer` (§4.1: a terminating `/` is removed before
/// `/.well-known/openid-configuration` is appended).
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.strip_suffix('/').unwrap_or(issuer)
    )
}

/// The `jwks_uri` of a discovery document fetched for `issuer`, or why it cannot be used.
pub fn jwks_uri(issuer: &str, body: &[u8]) -> Result<String, String> {
    if body.len() > MAX_DISCOVERY_BYTES {
        return Err(format!(
            "the discovery document has {} bytes, more than {MAX_DISCOVERY_BYTES}",
            body.len()
        ));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the discovery document is not valid JSON ({e})"))?;
    let Value::Object(document) = value else {
        return Err("the discovery document is not a JSON object".to_owned());
    };
    match document.get("issuer") {
        Some(Value::String(named)) if named == issuer => {}
        Some(Value::String(named)) => {
            return Err(format!(
                "the discovery document's issuer {} is not {} (OpenID Connect Discovery 1.0 \
                 §4.3 requires them to be identical)",
                Value::String(truncated(named)),
                Value::String(issuer.to_owned())
            ))
        }
        _ => return Err("the discovery document has no \"issuer\" string".to_owned()),
    }
    let Some(Value::String(uri)) = document.get("jwks_uri") else {
        return Err("the discovery document has no \"jwks_uri\" string".to_owned());
    };
    check_https_url(uri).map_err(|reason| format!("its jwks_uri is refused: {reason}"))?;
    Ok(uri.clone())
}

/// At most 200 characters of a provider's text, for a message.
fn truncated(text: &str) -> String {
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://idp.example.com/tenant";

    #[test]
    fn discovery_url_drops_one_terminating_slash() {
        assert_eq!(
            discovery_url("https://idp.example.com/tenant/"),
            "https://idp.example.com/tenant/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://idp.example.com"),
            "https://idp.example.com/.well-known/openid-configuration"
        );
    }

    #[test]
    fn the_issuer_must_be_identical() {
        let doc = |issuer: &str, jwks: &str| {
            serde_json::json!({"issuer": issuer, "jwks_uri": jwks}).to_string()
        };
        assert_eq!(
            jwks_uri(
                ISSUER,
                doc(ISSUER, "https://idp.example.com/keys").as_bytes()
            ),
            Ok("https://idp.example.com/keys".to_owned())
        );
        // §4.3: no normalisation of any kind.
        for other in [
            "https://idp.example.com/tenant/",
            "https://IDP.example.com/tenant",
            "https://idp.example.com/Tenant",
            "https://evil.example/tenant",
            "",
        ] {
            let error = jwks_uri(ISSUER, doc(other, "https://k/").as_bytes()).unwrap_err();
            assert!(error.contains("§4.3"), "{other}: {error}");
        }
    }

    #[test]
    fn hostile_documents_are_refused_with_a_reason() {
        let huge = format!("{{\"x\":\"{}\"}}", "a".repeat(MAX_DISCOVERY_BYTES));
        for (body, reason) in [
            ("nope".to_owned(), "not valid JSON"),
            ("[1]".to_owned(), "not a JSON object"),
            ("{}".to_owned(), "no \"issuer\""),
            (
                "{\"issuer\":1,\"jwks_uri\":\"https://k\"}".to_owned(),
                "no \"issuer\"",
            ),
            (format!("{{\"issuer\":\"{ISSUER}\"}}"), "no \"jwks_uri\""),
            (
                format!("{{\"issuer\":\"{ISSUER}\",\"jwks_uri\":\"http://k/keys\"}}"),
                "not https",
            ),
            (
                format!("{{\"issuer\":\"{ISSUER}\",\"jwks_uri\":\"https://u:p@k/keys\"}}"),
                "user information",
            ),
            (huge, "more than"),
        ] {
            let error = jwks_uri(ISSUER, body.as_bytes()).unwrap_err();
            assert!(error.contains(reason), "{reason}: {error}");
        }
    }
}
