//! The payload and header read by serde_json only as far as the rules need them (the fast
//! path's general reader: every value still validated as `serde_json::Value` reads it; the
//! common payload shapes are read faster by `scan.rs`).

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// A JSON value read only as far as the claim rules need it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lean<'de> {
    /// Any JSON number, as `serde_json::Value::as_f64` reads it.
    Number(f64),
    String(Cow<'de, str>),
    Null,
    /// `true`, `false`, an array or an object (validated, contents dropped).
    Other,
}

/// The top-level names the rules read; every other key is [`Name::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    Alg,
    Kid,
    Crit,
    Iat,
    Nbf,
    Exp,
    Iss,
    Aud,
    Sub,
    UserId,
    Jti,
    Other,
}

impl Name {
    fn of(key: &str) -> Name {
        match key {
            "alg" => Name::Alg,
            "kid" => Name::Kid,
            "crit" => Name::Crit,
            "iat" => Name::Iat,
            "nbf" => Name::Nbf,
            "exp" => Name::Exp,
            "iss" => Name::Iss,
            "aud" => Name::Aud,
            "sub" => Name::Sub,
            "user_id" => Name::UserId,
            "jti" => Name::Jti,
            _ => Name::Other,
        }
    }
}

/// Refuses a string holding U+0000, which the full path refuses in the payload (`text` and
/// `jsonb` cannot hold it).
fn no_nul<E: de::Error>(s: &str) -> Result<(), E> {
    if s.contains('\0') {
        Err(E::custom("U+0000"))
    } else {
        Ok(())
    }
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Name;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Name, D::Error> {
        deserializer.deserialize_str(KeySeed)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Name;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Name, E> {
        no_nul(key)?;
        Ok(Name::of(key))
    }
}

/// Reads any JSON value into a [`Lean`], validating it all (nested values included).
struct LeanSeed;

impl<'de> DeserializeSeed<'de> for LeanSeed {
    type Value = Lean<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Lean<'de>, D::Error> {
        deserializer.deserialize_any(LeanSeed)
    }
}

impl<'de> Visitor<'de> for LeanSeed {
    type Value = Lean<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Lean<'de>, E> {
        Ok(Lean::Other)
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Lean<'de>, E> {
        Ok(Lean::Number(n as f64))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Lean<'de>, E> {
        Ok(Lean::Number(n as f64))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Lean<'de>, E> {
        Ok(Lean::Number(n))
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Lean<'de>, E> {
        no_nul(s)?;
        Ok(Lean::String(Cow::Borrowed(s)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Lean<'de>, E> {
        // A string with escapes: unescaped into serde_json's scratch space.
        no_nul(s)?;
        Ok(Lean::String(Cow::Owned(s.to_owned())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Lean<'de>, E> {
        Ok(Lean::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Lean<'de>, A::Error> {
        while seq.next_element_seed(LeanSeed)?.is_some() {}
        Ok(Lean::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Lean<'de>, A::Error> {
        while map.next_key_seed(KeySeed)?.is_some() {
            map.next_value_seed(LeanSeed)?;
        }
        Ok(Lean::Other)
    }
}

/// The JOSE header as the checks read it. A key given twice keeps its last value, as
/// `serde_json::Map` does.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Header<'de> {
    pub alg: Option<Lean<'de>>,
    pub kid: Option<Value>,
    pub crit: bool,
}

/// The payload's claims the rules read (last value of a key given twice).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Claims<'de> {
    pub iat: Option<Lean<'de>>,
    pub nbf: Option<Lean<'de>>,
    pub exp: Option<Lean<'de>>,
    pub iss: Option<Lean<'de>>,
    pub aud: Option<Lean<'de>>,
    pub sub: Option<Lean<'de>>,
    pub user_id: Option<Lean<'de>>,
    /// Read for revocation (`electric_auth.revoke_token` revokes by `jti` when there is one).
    pub jti: Option<Lean<'de>>,
}

impl<'de> Claims<'de> {
    /// Where the value of the top-level key `key` goes, if the rules read it.
    pub(crate) fn slot(&mut self, key: &str) -> Option<&mut Option<Lean<'de>>> {
        self.slot_of(Name::of(key))
    }

    fn slot_of(&mut self, name: Name) -> Option<&mut Option<Lean<'de>>> {
        Some(match name {
            Name::Iat => &mut self.iat,
            Name::Nbf => &mut self.nbf,
            Name::Exp => &mut self.exp,
            Name::Iss => &mut self.iss,
            Name::Aud => &mut self.aud,
            Name::Sub => &mut self.sub,
            Name::UserId => &mut self.user_id,
            Name::Jti => &mut self.jti,
            Name::Alg | Name::Kid | Name::Crit | Name::Other => return None,
        })
    }
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = Header<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header<'de>, A::Error> {
        let mut header = Header::default();
        while let Some(name) = map.next_key_seed(KeySeed)? {
            match name {
                Name::Alg => header.alg = Some(map.next_value_seed(LeanSeed)?),
                Name::Kid => header.kid = Some(map.next_value::<Value>()?),
                Name::Crit => {
                    map.next_value_seed(LeanSeed)?;
                    header.crit = true;
                }
                _ => {
                    map.next_value_seed(LeanSeed)?;
                }
            }
        }
        Ok(header)
    }
}

struct ClaimsVisitor;

impl<'de> Visitor<'de> for ClaimsVisitor {
    type Value = Claims<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Claims<'de>, A::Error> {
        let mut claims = Claims::default();
        while let Some(name) = map.next_key_seed(KeySeed)? {
            let value = map.next_value_seed(LeanSeed)?;
            if let Some(slot) = claims.slot_of(name) {
                *slot = Some(value);
            }
        }
        Ok(claims)
    }
}

/// The header object of decoded JSON bytes; `None` for anything `decode_json_object` refuses
/// (and for a U+0000 anywhere, which the full path then judges).
pub(crate) fn parse_header(json: &[u8]) -> Option<Header<'_>> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let header = de.deserialize_any(HeaderVisitor).ok()?;
    de.end().ok()?;
    Some(header)
}

/// The payload's claims of decoded JSON bytes; `None` for anything `decode_payload` refuses
/// except numbers `numeric` cannot hold (see `numbers_fit`).
pub(crate) fn parse_claims(json: &[u8]) -> Option<Claims<'_>> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let claims = de.deserialize_any(ClaimsVisitor).ok()?;
    de.end().ok()?;
    Some(claims)
}
