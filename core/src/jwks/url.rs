//! The URLs a superuser may point the worker at: `https://` only, no credentials, no fragment.

/// Longest URL accepted (a setting, a discovery document's `jwks_uri`, a redirect target).
pub const MAX_URL_BYTES: usize = 2048;

/// Checks that `url` is an absolute `https://` URL with a host, no user information (a
/// password in a URL would reach `key_source()` and the log) and no fragment; the reason if not.
pub fn check_https_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL_BYTES {
        return Err(format!("the URL is longer than {MAX_URL_BYTES} bytes"));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("the URL holds white space or a control character".to_owned());
    }
    let Some(scheme_end) = url.find("://") else {
        return Err("the URL is not absolute (no scheme)".to_owned());
    };
    if !url[..scheme_end].eq_ignore_ascii_case("https") {
        return Err("the URL's scheme is not https (keys are only fetched over TLS)".to_owned());
    }
    let rest = &url[scheme_end + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.contains('@') {
        return Err("the URL holds user information (a name or password before \"@\")".to_owned());
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    if host.is_empty() {
        return Err("the URL has no host".to_owned());
    }
    if url.contains('#') {
        return Err("the URL has a fragment (\"#\")".to_owned());
    }
    Ok(())
}

/// Where a redirect's `Location` (`reference`, absolute or relative, RFC 3986 §5.2 for the forms
/// servers send) leads from `base`. The result still has to pass [`check_https_url`]: a
/// redirect may lead nowhere the setting itself could not (no `http://`, no user information,
/// so the worker never sends credentials a redirect put in a URL).
pub fn resolve_redirect(base: &str, reference: &str) -> String {
    let reference = reference.trim();
    let scheme_end = base.find("://").map_or(0, |at| at + 3);
    let has_scheme = reference.find(':').is_some_and(|colon| {
        !reference[..colon].is_empty()
            && reference[..colon]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            && !reference[..colon].contains(['/', '?', '#'])
    });
    if has_scheme {
        return reference.to_owned();
    }
    if let Some(rest) = reference.strip_prefix("//") {
        return format!("{}{rest}", &base[..scheme_end]);
    }
    let authority_end = base[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(base.len(), |at| scheme_end + at);
    if reference.starts_with('/') {
        return format!("{}{reference}", &base[..authority_end]);
    }
    let path_end = base[authority_end..]
        .find(['?', '#'])
        .map_or(base.len(), |at| authority_end + at);
    if reference.starts_with('?') {
        return format!("{}{reference}", &base[..path_end]);
    }
    let directory_end = base[authority_end..path_end]
        .rfind('/')
        .map_or(authority_end, |at| authority_end + at);
    format!("{}/{reference}", &base[..directory_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_resolve_and_are_checked_like_the_setting() {
        let base = "https://idp.example.com/a/jwks.json?x=1";
        for (location, expected) in [
            ("https://other.example/keys", "https://other.example/keys"),
            ("//cdn.example/keys", "https://cdn.example/keys"),
            ("/v2/keys", "https://idp.example.com/v2/keys"),
            ("keys2.json", "https://idp.example.com/a/keys2.json"),
            ("?y=2", "https://idp.example.com/a/jwks.json?y=2"),
            ("http://idp.example.com/keys", "http://idp.example.com/keys"),
            (
                "https://user:pw@idp.example.com/keys",
                "https://user:pw@idp.example.com/keys",
            ),
        ] {
            assert_eq!(resolve_redirect(base, location), expected, "{location}");
        }
        assert_eq!(
            resolve_redirect("https://idp.example.com", "keys"),
            "https://idp.example.com/keys"
        );
        // What a redirect may not lead to, whatever its form.
        for location in [
            "http://idp.example.com/keys",
            "https://user:pw@idp.example.com/keys",
            "//user:pw@idp.example.com/keys",
            "file:///etc/passwd",
            "/keys#fragment",
        ] {
            assert!(
                check_https_url(&resolve_redirect(base, location)).is_err(),
                "{location}"
            );
        }
    }

    #[test]
    fn https_urls_pass() {
        for url in [
            "https://idp.example.com/.well-known/jwks.json",
            "HTTPS://idp.example.com",
            "https://127.0.0.1:8443/keys?tenant=a",
            "https://[::1]:8443/keys",
        ] {
            assert_eq!(check_https_url(url), Ok(()), "{url}");
        }
    }

    #[test]
    fn other_urls_are_refused_with_a_reason() {
        for (url, reason) in [
            ("http://idp.example.com/jwks", "not https"),
            ("idp.example.com/jwks", "not absolute"),
            ("https:///jwks", "no host"),
            ("https://user:pw@idp.example.com/jwks", "user information"),
            ("https://idp.example.com/jwks#x", "fragment"),
            ("https://idp.example.com/jw ks", "white space"),
            ("https://idp.example.com/\njwks", "white space"),
            ("file:///etc/passwd", "not https"),
            ("https://:443/", "no host"),
        ] {
            let error = check_https_url(url).unwrap_err();
            assert!(error.contains(reason), "{url}: {error}");
        }
        let long = format!("https://a/{}", "x".repeat(MAX_URL_BYTES));
        assert!(check_https_url(&long).unwrap_err().contains("longer"));
    }
}
