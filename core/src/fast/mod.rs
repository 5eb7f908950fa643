//! The fast path of a verification: decides that a token passes every check without building
//! the payload's `serde_json` map (issue 24: the fixed cost around an HMAC).
//!
//! It is a filter in front of [`Verifier::verify`], never a replacement: it answers only when
//! the token passes every check of the spec (§3, the same checks as `verify`), and hands
//! everything else, failures included, to `verify`, which then decides with its exact error
//! in the spec's order. So the fast path can only be slow, never different, as long as it never
//! accepts what `verify` refuses; the fuzz target checks exactly that.
//!
//! What it avoids: the header and payload are base64-decoded into stack buffers; the header is
//! read into a small struct (`alg`, `kid`, whether `crit` is there); the payload into the claims
//! the rules read (`iat`, `nbf`, `exp`, `iss`, `aud`, `sub`, `user_id`), strings borrowed from
//! the decoded bytes. Every other value is still read and validated exactly as
//! `serde_json::Value` reads it (UTF-8, escapes, lone surrogates, numbers beyond an `f64`, the
//! nesting limit), and refused when a string or key holds U+0000, as the full path does.
//!
//! Left to the full path (still correct, only not faster): a namespace (`jwt_namespace`), an
//! `aud` array when `jwt_aud` is set, and insecure mode.
//!
//! Its parts, below this file: `lean.rs`, the serde_json reader for any JSON (the bottom);
//! `scan.rs`, a hand-written reader for the common payload shapes, tried first (lean's types);
//! `jsonb.rs`, `verify`'s jsonb built from what `scan.rs` reads (scan).

mod base64url;
mod jsonb;
mod lean;
mod scan;

pub use jsonb::jsonb_body;

use crate::algorithm::{Algorithm, AlgorithmFamily, ALGORITHM_NAMES};
use crate::claims;
use crate::config::{ModeConfig, UserIdRule};
use crate::error::TokenError;
use crate::token::{numbers_fit, select, Selected, Verifier, Want, MAX_TOKEN_BYTES};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use lean::{parse_claims, parse_header, Header, Lean};
use scan::Tree;
use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::sync::OnceLock;

/// The headers PyJWT, node's jsonwebtoken and jose write for `alg`, as base64url: a token that
/// starts with one of these texts and a dot has a header that decodes to that JSON exactly,
/// whose `alg` is `alg`, with no `kid` and no `crit`; so it needs neither decoding nor parsing.
/// Its length, when `token` starts so.
fn common_header_len(alg: Algorithm, token: &[u8]) -> Option<usize> {
    static COMMON: OnceLock<Vec<(Algorithm, [String; 3])>> = OnceLock::new();
    let common = COMMON.get_or_init(|| {
        ALGORITHM_NAMES
            .iter()
            .map(|name| {
                let encode = |json: String| URL_SAFE_NO_PAD.encode(json);
                let alg = Algorithm::from_name(name).expect("listed");
                (
                    alg,
                    [
                        encode(format!(r#"{{"alg":"{name}","typ":"JWT"}}"#)),
                        encode(format!(r#"{{"typ":"JWT","alg":"{name}"}}"#)),
                        encode(format!(r#"{{"alg":"{name}"}}"#)),
                    ],
                )
            })
            .collect()
    });
    let (_, headers) = common.iter().find(|(a, _)| *a == alg)?;
    headers
        .iter()
        .map(String::as_bytes)
        .find(|h| token.get(h.len()) == Some(&b'.') && token.starts_with(h))
        .map(<[u8]>::len)
}

/// A claim's text, when it is a string.
fn text<'c>(value: &'c Option<Lean<'_>>) -> Option<&'c str> {
    match value {
        Some(Lean::String(s)) => Some(s.as_ref()),
        _ => None,
    }
}

/// Whether the token's header names an HS algorithm: one of the common headers, else read.
fn header_names_hmac(token: &[u8]) -> bool {
    const HMAC: [Algorithm; 3] = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
    if HMAC
        .iter()
        .any(|alg| common_header_len(*alg, token).is_some())
    {
        return true;
    }
    let Some(len) = token.iter().position(|&byte| byte == b'.') else {
        return false;
    };
    let (mut stack, mut heap) = ([MaybeUninit::uninit(); 256], Vec::new());
    let out = buffer(len, &mut stack, &mut heap);
    base64url::decode(&token[..len], out)
        .and_then(parse_header)
        .is_some_and(
            |header| matches!(&header.alg, Some(Lean::String(name)) if name.starts_with("HS")),
        )
}

/// The buffer `len` bytes of base64url decode into: `stack` when they fit, else `heap`.
fn buffer<'b>(
    len: usize,
    stack: &'b mut [MaybeUninit<u8>],
    heap: &'b mut Vec<MaybeUninit<u8>>,
) -> &'b mut [MaybeUninit<u8>] {
    let needed = base64url::decoded_len(len);
    if needed <= stack.len() {
        stack
    } else {
        heap.resize(needed, MaybeUninit::uninit());
        heap
    }
}

/// What a verification yields when only the user id and the payload are wanted.
pub struct Passed<'a> {
    /// The resolved user id (spec §4), untrimmed.
    pub user_id: &'a str,
    /// The payload object's JSON text, exactly as signed: UTF-8 (serde_json validated every
    /// string in it; the rest of JSON text is ASCII), without NUL.
    pub payload: &'a [u8],
    /// With [`Want::Jsonb`], the body of the `jsonb` varlena `jsonb_in` makes of `payload`
    /// (see [`jsonb_body`]), when the fast path read the payload; else `None`.
    pub jsonb: Option<&'a [u8]>,
    /// The listed issuer (`electric_auth.issuers`' index) it verified under; `None`: the
    /// default issuer.
    pub issuer: Option<usize>,
    /// What revocation reads (the glue's `revocation`): `iat`, `iss`, `jti` when they are a
    /// number and strings.
    pub iat: Option<f64>,
    pub iss: Option<&'a str>,
    pub jti: Option<&'a str>,
}

impl<'a> Passed<'a> {
    /// What a full verification yields, as the fast path hands it over.
    pub fn of(verified: &'a crate::VerifiedToken) -> Passed<'a> {
        let text = |claim: &str| {
            verified
                .claims
                .get(claim)
                .and_then(serde_json::Value::as_str)
        };
        Passed {
            user_id: &verified.user_id,
            payload: verified.payload.as_bytes(),
            jsonb: None,
            issuer: verified.issuer,
            iat: verified
                .claims
                .get("iat")
                .and_then(serde_json::Value::as_f64),
            iss: text("iss"),
            jti: text("jti"),
        }
    }
}

/// A jsonb buffer kept from call to call only up to this capacity.
const JSONB_BUFFER_KEPT: usize = 16 * 1024;

/// Runs `f` with the jsonb body built from `tree` (`None` when there is no tree, or it cannot
/// be built), in a buffer of this thread's reused from call to call (no allocation per call).
fn with_jsonb<R>(tree: Option<Tree>, json_len: usize, f: impl FnOnce(Option<&[u8]>) -> R) -> R {
    thread_local! {
        static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    let Some(tree) = tree else {
        return f(None);
    };
    BUFFER.with(|buffer| match buffer.try_borrow_mut() {
        Ok(mut out) => {
            let built = jsonb::body_into(tree, &mut out);
            let result = f(built.then_some(&out[..]));
            if out.capacity() > JSONB_BUFFER_KEPT {
                *out = Vec::new();
            }
            result
        }
        // Called again from within `f` (the glue does not): a buffer of its own.
        Err(_) => f(jsonb::body_of(tree, json_len).as_deref()),
    })
}

impl Verifier {
    /// Whether a [`crate::TokenCache`] saves time for `token`. Not for the HMAC algorithms:
    /// the fast path verifies an HS token in less than a cache hit plus the miss's full verify
    /// and insert cost on distinct tokens (`bench_native`: `native` vs `cached`). Decided by the
    /// configuration when it has one issuer, else by the algorithm the token's header names
    /// (a header that lies fails verification either way).
    pub fn worth_caching(&self, token: &[u8]) -> bool {
        match &self.config().mode {
            ModeConfig::Secure {
                default, issuers, ..
            } if issuers.is_empty() => !matches!(
                default.as_deref().and_then(|rules| rules.keys.first()),
                Some((alg, _)) if alg.family() == AlgorithmFamily::Hmac
            ),
            ModeConfig::Secure { .. } => !header_names_hmac(token),
            ModeConfig::Insecure => true,
        }
    }

    /// [`Verifier::verify`] of a token given as bytes (a `text` argument's, unchecked),
    /// answering with the user id and the payload only: the same checks, the same errors, the
    /// same accepted tokens, without building the claims map on the common path (see the
    /// module notes). Bytes that are not UTF-8 are an invalid token, as they are to `verify`.
    pub fn verify_with<R>(
        &self,
        token: &[u8],
        now: i64,
        want: Want,
        answer: impl FnOnce(Passed<'_>) -> R,
    ) -> Result<R, TokenError> {
        match self.fast(token, now, want, answer) {
            Ok(result) => Ok(result),
            Err(answer) => {
                let token = std::str::from_utf8(token).map_err(|_| TokenError::InvalidToken)?;
                let verified = self.verify(token, now)?;
                Ok(answer(Passed::of(&verified)))
            }
        }
    }

    /// The fast path: `Ok` only for a token that passes every check; `Err(answer)` hands the
    /// token (and the answer) to the full path.
    ///
    /// It reads bytes: whatever it accepts is three base64url parts and two dots, ASCII, so
    /// UTF-8, and anything else goes to the full path, which refuses bytes that are not.
    ///
    /// The payload is read before the signature is checked (with listed issuers, its `iss`
    /// chooses the keys); nothing read from it is trusted before the signature verified.
    fn fast<R, F: FnOnce(Passed<'_>) -> R>(
        &self,
        token: &[u8],
        now: i64,
        want: Want,
        answer: F,
    ) -> Result<R, F> {
        let ModeConfig::Secure {
            default,
            issuers,
            scopes,
        } = &self.config().mode
        else {
            return Err(answer);
        };
        if token.len() > MAX_TOKEN_BYTES {
            return Err(answer);
        }
        // The parts: the header up to the first dot, the payload (base64url up to the second
        // dot), the signature (base64url to the end).
        let Some(header_len) = token.iter().position(|&byte| byte == b'.') else {
            return Err(answer);
        };
        let rest = &token[header_len + 1..];
        let mut payload_stack = [MaybeUninit::uninit(); 1024];
        let mut payload_heap = Vec::new();
        let out = buffer(rest.len(), &mut payload_stack, &mut payload_heap);
        let Some((payload_json, payload_len)) = base64url::decode_run(rest, out) else {
            return Err(answer);
        };
        if rest.get(payload_len) != Some(&b'.') {
            return Err(answer);
        }
        let signing_input = &token[..header_len + 1 + payload_len];
        let signature_b64 = &rest[payload_len + 1..];
        // 4. The payload: an object jsonb can hold. The common shapes by the hand-written
        // reader (as a tree when the jsonb is wanted, built only once every check passed);
        // the rest by serde_json.
        let (scanned, tree) = match want {
            Want::UserId => (scan::claims(payload_json), None),
            Want::Jsonb => match scan::document(payload_json) {
                Some(tree) => (Some(tree.claims()), Some(tree)),
                None => (None, None),
            },
        };
        let claims = match scanned {
            Some(claims) => claims,
            None if numbers_fit(payload_json) => match parse_claims(payload_json) {
                Some(claims) => claims,
                None => return Err(answer),
            },
            None => return Err(answer),
        };
        // The issuer: by the (unverified) `iss` among the listed ones, else the default.
        let iss = || {
            Ok::<_, ()>(match &claims.iss {
                Some(Lean::String(iss)) => Some(iss.as_ref()),
                _ => None,
            })
        };
        let (issuer, rules) = match select(issuers, default.as_deref(), iss) {
            Ok(Selected::Default(rules)) => (None, rules),
            Ok(Selected::Listed(index, Ok(rules))) => (Some(index), rules),
            _ => return Err(answer),
        };
        // A namespace or a claim pointer: the full path reads them.
        if rules.user_id != (UserIdRule::Electric { namespace: None }) {
            return Err(answer);
        }
        // 1.–2. The header: an object without `crit`, `alg` one of the issuer's.
        let mut header_stack = [MaybeUninit::uninit(); 256];
        let mut header_heap = Vec::new();
        let common = rules
            .keys
            .iter()
            .find(|(alg, _)| common_header_len(*alg, token) == Some(header_len));
        let (header, keys) = match common {
            // `alg` checked by the comparison; no `kid`, no `crit`.
            Some((_, keys)) => (Header::default(), keys),
            None => {
                let out = buffer(header_len, &mut header_stack, &mut header_heap);
                let Some(header_json) = base64url::decode(&token[..header_len], out) else {
                    return Err(answer);
                };
                let Some(header) = parse_header(header_json) else {
                    return Err(answer);
                };
                let keys = match &header.alg {
                    Some(Lean::String(name)) => rules.keys_for(name).map(|(_, keys)| keys),
                    _ => None,
                };
                match keys {
                    Some(keys) if !header.crit => (header, keys),
                    _ => return Err(answer),
                }
            }
        };
        // 3. The signature, by the key chosen as the full path chooses it.
        let mut sig_stack = [MaybeUninit::uninit(); 528];
        let mut sig_heap = Vec::new();
        let out = buffer(signature_b64.len(), &mut sig_stack, &mut sig_heap);
        let Some(signature) = base64url::decode(signature_b64, out) else {
            return Err(answer);
        };
        let Ok(signature_b64) = std::str::from_utf8(signature_b64) else {
            return Err(answer); // base64url is ASCII: not reached
        };
        if signature.is_empty()
            || !keys.verify(header.kid.as_ref(), signing_input, signature, signature_b64)
        {
            return Err(answer);
        }
        // 5. Time claims: each a number when present, within the drift; 7. iat and exp required.
        let drift = rules.clock_drift;
        let (now_secs, drift_secs) = (now as f64, drift as f64);
        let (Some(Lean::Number(iat)), Some(Lean::Number(exp))) = (&claims.iat, &claims.exp) else {
            return Err(answer);
        };
        let nbf_ok = match &claims.nbf {
            None => true,
            Some(Lean::Number(nbf)) => nbf - drift_secs <= now_secs,
            Some(_) => false,
        };
        if iat - drift_secs > now_secs || !nbf_ok || claims::expired(*exp, now, drift) {
            return Err(answer);
        }
        // 6. iss and aud when configured (and then 7. required); an `aud` array is left to
        // the full path.
        let is = |value: &Option<Lean>, expected: &str| matches!(value, Some(Lean::String(s)) if s == expected);
        let aud_ok = rules.aud.is_empty()
            || matches!(&claims.aud, Some(Lean::String(s)) if rules.aud.iter().any(|a| a == s));
        if rules
            .iss
            .as_deref()
            .is_some_and(|expected| !is(&claims.iss, expected))
            || !aud_ok
        {
            return Err(answer);
        }
        // 8. The user id: `sub`, or `user_id` when `sub` is absent or null; a non-blank string;
        // after its issuer's prefix, in no other issuer's scope.
        let user_id = match &claims.sub {
            None | Some(Lean::Null) => &claims.user_id,
            sub => sub,
        };
        let Some(Lean::String(user_id)) = user_id else {
            return Err(answer);
        };
        if user_id.trim().is_empty() {
            return Err(answer);
        }
        let scoped;
        let user_id: &str = if rules.prefix.is_empty() {
            user_id
        } else {
            scoped = [rules.prefix.as_str(), user_id].concat();
            &scoped
        };
        if scopes.reserved(&rules.prefix, user_id) {
            return Err(answer);
        }
        // Borrowed from the claims.
        let (iss, jti) = (text(&claims.iss), text(&claims.jti));
        Ok(with_jsonb(tree, payload_json.len(), |jsonb| {
            answer(Passed {
                user_id,
                payload: payload_json,
                jsonb,
                issuer,
                iat: Some(*iat),
                iss,
                jti,
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::lean::Claims;
    use super::*;
    use serde_json::Value;
    use std::borrow::Cow;

    fn header(json: &str) -> Option<Header<'_>> {
        parse_header(json.as_bytes())
    }

    fn claims(json: &str) -> Option<Claims<'_>> {
        parse_claims(json.as_bytes())
    }

    #[test]
    fn the_header_reads_alg_kid_and_crit() {
        let h = header(r#"{"alg":"HS256","typ":"JWT"}"#).unwrap();
        assert_eq!(h.alg, Some(Lean::String(Cow::Borrowed("HS256"))));
        assert!(
            matches!(h.alg, Some(Lean::String(Cow::Borrowed(_)))),
            "borrowed"
        );
        assert_eq!((h.kid, h.crit), (None, false));
        let h = header(r#"{"alg":"RS256","kid":"k1","crit":[]}"#).unwrap();
        assert_eq!(h.kid, Some(Value::from("k1")));
        assert!(h.crit);
        // Escaped key and value, read as serde_json reads them; the last of a duplicate wins.
        let h = header(r#"{"\u0061lg":"none","alg":"H\u0053256"}"#).unwrap();
        assert_eq!(h.alg, Some(Lean::String(Cow::Owned("HS256".into()))));
        assert_eq!(header(r#"{"alg":5}"#).unwrap().alg, Some(Lean::Number(5.0)));
        assert_eq!(header("{}").unwrap(), Header::default());
    }

    #[test]
    fn the_common_headers_are_what_they_claim() {
        for name in ALGORITHM_NAMES {
            let alg = Algorithm::from_name(name).unwrap();
            let (_, headers) = [
                format!(r#"{{"alg":"{name}","typ":"JWT"}}"#),
                format!(r#"{{"typ":"JWT","alg":"{name}"}}"#),
                format!(r#"{{"alg":"{name}"}}"#),
            ]
            .iter()
            .fold((alg, 0), |(alg, n), json| {
                let b64 = URL_SAFE_NO_PAD.encode(json);
                let token = format!("{b64}.rest");
                assert_eq!(
                    common_header_len(alg, token.as_bytes()),
                    Some(b64.len()),
                    "{json}"
                );
                assert_eq!(
                    common_header_len(alg, b64.as_bytes()),
                    None,
                    "no dot after it"
                );
                let h = parse_header(json.as_bytes()).unwrap();
                assert_eq!(h.alg, Some(Lean::String(Cow::Borrowed(name))));
                assert_eq!((h.kid, h.crit), (None, false));
                (alg, n + 1)
            });
            assert_eq!(headers, 3);
            let other = if alg == Algorithm::HS256 {
                "HS384"
            } else {
                "HS256"
            };
            let b64 = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{other}","typ":"JWT"}}"#));
            let token = format!("{b64}.rest");
            assert_eq!(
                common_header_len(alg, token.as_bytes()),
                None,
                "another algorithm's"
            );
            let b64 =
                URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{name}","typ":"JWT","kid":"k"}}"#));
            let token = format!("{b64}.rest");
            assert_eq!(common_header_len(alg, token.as_bytes()), None, "with a kid");
        }
    }

    #[test]
    fn hostile_headers_are_refused_like_serde_json_value() {
        for bad in [
            "",
            "[]",
            "\"alg\"",
            "null",
            "{",
            r#"{"alg":"HS256"}x"#,
            r#"{"alg":"HS256",}"#,
            r#"{"alg":"\ud800"}"#,
            r#"{"x":1e400}"#,
            r#"{"x":"\u0000"}"#,
            "{\"x\":\"\x01\"}",
            r#"{"alg" "HS256"}"#,
            r#"{alg:"HS256"}"#,
        ] {
            assert!(header(bad).is_none(), "{bad:?}");
        }
        assert!(parse_header(b"{\"alg\":\"\xff\"}").is_none(), "not UTF-8");
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(header(&deep).is_none(), "nesting beyond serde_json's limit");
        let fine = format!("{{\"x\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert!(header(&fine).is_some());
        assert!(
            serde_json::from_str::<Value>(&deep).is_err(),
            "the same limit"
        );
    }

    #[test]
    fn claims_read_only_what_the_rules_need() {
        let c = claims(
            r#"{"sub":"u-1","iat":1700000000,"exp":1.7e9,"nbf":-3,"iss":"i","aud":["a"],
                "user_id":null,"name":"N","roles":["r",{"deep":[1,2.5,"\u00e9"]}]}"#,
        )
        .unwrap();
        assert_eq!(c.sub, Some(Lean::String(Cow::Borrowed("u-1"))));
        assert_eq!(c.iat, Some(Lean::Number(1_700_000_000.0)));
        assert_eq!(c.exp, Some(Lean::Number(1.7e9)));
        assert_eq!(c.nbf, Some(Lean::Number(-3.0)));
        assert_eq!(c.iss, Some(Lean::String(Cow::Borrowed("i"))));
        assert_eq!(c.aud, Some(Lean::Other));
        assert_eq!(c.user_id, Some(Lean::Null));
        let c = claims(r#"{"sub":"a","sub":"b","exp":"soon","iat":true}"#).unwrap();
        assert_eq!(c.sub, Some(Lean::String(Cow::Borrowed("b"))), "last wins");
        assert_eq!(c.exp, Some(Lean::String(Cow::Borrowed("soon"))));
        assert_eq!(c.iat, Some(Lean::Other));
        assert_eq!(
            claims(r#"{"big":18446744073709551615}"#).unwrap(),
            Claims::default()
        );
    }

    #[test]
    fn hostile_payloads_are_refused() {
        for bad in [
            "[]",
            "1",
            r#"{"sub":"a\u0000b"}"#,
            r#"{"x":{"y":["\u0000"]}}"#,
            r#"{"a\u0000":1}"#,
            r#"{"x":[1,2}"#,
            r#"{"sub":"\udc00"}"#,
            r#"{"exp":-1e999}"#,
            r#"{"sub":"u"} {}"#,
        ] {
            assert!(claims(bad).is_none(), "{bad:?}");
        }
        assert!(
            parse_claims(b"{\"sub\":\"\xc3\"}").is_none(),
            "truncated UTF-8"
        );
        let deep = format!("{{\"x\":{}{}}}", "{\"a\":".repeat(200), "}".repeat(200));
        assert!(claims(&deep).is_none());
    }

    fn hs256(secret: &str, payload: &str) -> String {
        use hmac::{Hmac, Mac};
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn an_ordinary_token_takes_the_fast_path_and_a_failing_one_does_not() {
        const SECRET: &str = "an-hs256-test-secret-of-32-bytes";
        let settings = crate::Settings {
            jwt_alg: Some("HS256".into()),
            jwt_key: Some(SECRET.into()),
            ..crate::Settings::new()
        };
        let v = Verifier::new(crate::Config::from_settings(&settings).unwrap());
        let payload = r#"{"sub":"u-1","iat":100,"exp":300,"roles":["r"]}"#;
        let token = hs256(SECRET, payload);
        let fast = v.fast(token.as_bytes(), 200, Want::UserId, |p| {
            (p.user_id.to_owned(), p.payload.to_vec())
        });
        assert_eq!(
            fast.ok(),
            Some(("u-1".to_owned(), payload.as_bytes().to_vec()))
        );
        // Expired: the fast path hands it on, and the full path names the error.
        assert!(v.fast(token.as_bytes(), 400, Want::UserId, |_| ()).is_err());
        assert_eq!(
            v.verify_with(token.as_bytes(), 400, Want::UserId, |_| ()),
            Err(TokenError::Expired)
        );
        let blank = hs256(SECRET, r#"{"sub":" ","iat":100,"exp":300}"#);
        assert!(v.fast(blank.as_bytes(), 200, Want::UserId, |_| ()).is_err());
        assert_eq!(
            v.verify_with(blank.as_bytes(), 200, Want::UserId, |_| ()),
            Err(TokenError::MissingUserId)
        );
    }

    #[test]
    fn parts_beyond_the_stack_buffer_are_decoded_on_the_heap() {
        let text = URL_SAFE_NO_PAD.encode([7u8; 300]);
        let (mut stack, mut heap) = ([MaybeUninit::uninit(); 16], Vec::new());
        let out = buffer(text.len(), &mut stack, &mut heap);
        assert_eq!(out.len(), 300);
        assert_eq!(
            base64url::decode(text.as_bytes(), out),
            Some(&[7u8; 300][..])
        );
        let (mut stack, mut heap) = ([MaybeUninit::uninit(); 512], Vec::new());
        let out = buffer(text.len(), &mut stack, &mut heap);
        assert_eq!(
            base64url::decode(text.as_bytes(), out),
            Some(&[7u8; 300][..])
        );
        assert!(heap.is_empty());
    }
}
