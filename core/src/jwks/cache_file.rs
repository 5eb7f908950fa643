//! The last good document as the worker persists it under the data directory, so a server that
//! restarts while the provider is unreachable still verifies. One JSON object:
//!
//! ```json
//! {"format": "electric_auth.jwks_cache.v1", "source": "https://idp/…", "fetched_at": 1767225600,
//!  "document": "{\"keys\":[…]}"}
//! ```
//!
//! `source` is the configured `jwks_url` or `oidc_issuer`: a file written for another source is
//! not loaded. `fetched_at` is when the document was last fetched (staleness counts from it).

use super::document::MAX_DOCUMENT_BYTES;
use serde_json::{json, Value};

pub const FORMAT: &str = "electric_auth.jwks_cache.v1";

/// The default issuer's cache file, in the data directory (0.3.0's name).
pub const DEFAULT_FILE_NAME: &str = "electric_auth_jwks_cache.json";

/// The cache file of a listed issuer's `source` (`electric_auth.issuers`): named by a 64-bit
/// FNV-1a hash of the source, stable from build to build, so an issuer that moves in the list
/// (or a restart) finds its file again; the file also names its source, which is checked.
pub fn issuer_file_name(source: &str) -> String {
    let hash = source
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("electric_auth_jwks_cache.{hash:016x}.json")
}

/// 2000-01-01 in Unix seconds: no earlier `fetched_at` is believed.
pub const EARLIEST_FETCHED_AT: i64 = 946_684_800;

/// The largest cache file read: the document JSON-escaped (at most six bytes per byte) and a
/// little more.
pub const MAX_FILE_BYTES: usize = 6 * MAX_DOCUMENT_BYTES + 64 * 1024;

/// A persisted document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedDocument {
    pub source: String,
    pub fetched_at: i64,
    pub document: String,
}

impl CachedDocument {
    /// The file's text.
    pub fn to_file(&self) -> String {
        json!({
            "format": FORMAT,
            "source": self.source,
            "fetched_at": self.fetched_at,
            "document": self.document,
        })
        .to_string()
    }

    /// Reads a file written for `source` at `now` (Unix seconds), or says why it cannot be
    /// used. `fetched_at` is trusted no further than the clock: a time before 2000 (or none) is
    /// refused, and a time after `now` is taken as `now` (a clock that stepped back), so a file
    /// can neither keep keys from ever going stale nor be stale in a way `key_source()` and
    /// verification would read differently.
    pub fn from_file(bytes: &[u8], source: &str, now: i64) -> Result<CachedDocument, String> {
        if bytes.len() > MAX_FILE_BYTES {
            return Err(format!("the file has more than {MAX_FILE_BYTES} bytes"));
        }
        let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(bytes) else {
            return Err("the file is not a JSON object".to_owned());
        };
        if object.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(format!("the file's format is not {FORMAT}"));
        }
        let (Some(file_source), Some(fetched_at), Some(document)) = (
            object.get("source").and_then(Value::as_str),
            object.get("fetched_at").and_then(Value::as_i64),
            object.get("document").and_then(Value::as_str),
        ) else {
            return Err("the file lacks source, fetched_at or document".to_owned());
        };
        if file_source != source {
            return Err("the file was written for another source".to_owned());
        }
        if document.len() > MAX_DOCUMENT_BYTES {
            return Err("the file's document is too large".to_owned());
        }
        if fetched_at < EARLIEST_FETCHED_AT {
            return Err(format!(
                "its fetched_at ({fetched_at}) is not a time this file could have been written"
            ));
        }
        Ok(CachedDocument {
            source: file_source.to_owned(),
            fetched_at: fetched_at.min(now),
            document: document.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn sample() -> CachedDocument {
        CachedDocument {
            source: "https://idp/jwks".to_owned(),
            fetched_at: 1_767_225_600,
            document: "{\"keys\":[{\"kty\":\"OKP\",\"x\":\"\\\"q\"}]}\n".to_owned(),
        }
    }

    #[test]
    fn round_trip() {
        let file = sample().to_file();
        assert_eq!(
            CachedDocument::from_file(file.as_bytes(), "https://idp/jwks", NOW),
            Ok(sample())
        );
    }

    #[test]
    fn foreign_or_damaged_files_are_not_loaded() {
        let file = sample().to_file();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (file.clone().into_bytes(), "another source"),
            (
                file.as_bytes()[..file.len() / 2].to_vec(),
                "not a JSON object",
            ),
            (b"".to_vec(), "not a JSON object"),
            (file.replace(FORMAT, "v0").into_bytes(), "format"),
            (file.replace("fetched_at", "fetched").into_bytes(), "lacks"),
            (vec![b' '; MAX_FILE_BYTES + 1], "more than"),
            (file.replace("1767225600", "0").into_bytes(), "not a time"),
            (file.replace("1767225600", "-5").into_bytes(), "not a time"),
        ];
        for (bytes, reason) in cases {
            let source = if reason == "another source" {
                "https://other"
            } else {
                "https://idp/jwks"
            };
            let error = CachedDocument::from_file(&bytes, source, NOW).unwrap_err();
            assert!(error.contains(reason), "{reason}: {error}");
        }
    }

    /// Hardening round 4: a `fetched_at` in the future (2100, i64::MAX) kept keys from ever
    /// going stale; it is taken as "now".
    #[test]
    fn a_time_in_the_future_is_taken_as_now() {
        let file = sample().to_file();
        for future in ["4102444800", &i64::MAX.to_string()] {
            let read = CachedDocument::from_file(
                file.replace("1767225600", future).as_bytes(),
                "https://idp/jwks",
                NOW,
            )
            .unwrap();
            assert_eq!(read.fetched_at, NOW);
        }
    }
}

#[cfg(test)]
mod file_name_tests {
    use super::*;

    #[test]
    fn issuer_files_are_named_by_their_source() {
        // FNV-1a's published test vector: the empty input hashes to the offset basis.
        assert_eq!(
            issuer_file_name(""),
            "electric_auth_jwks_cache.cbf29ce484222325.json"
        );
        assert_eq!(
            issuer_file_name("a"),
            "electric_auth_jwks_cache.af63dc4c8601ec8c.json"
        );
        assert_ne!(
            issuer_file_name("https://a/jwks"),
            issuer_file_name("https://b/jwks")
        );
        assert_ne!(issuer_file_name("https://a/jwks"), DEFAULT_FILE_NAME);
    }
}
