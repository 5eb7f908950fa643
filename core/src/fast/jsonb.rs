//! `electric_auth.verify`'s answer built directly in Postgres's `jsonb` format, for payloads in
//! the subset `scan.rs` reads (issue 24: Postgres's `jsonb_in` was 46% of `verify`).
//!
//! The bytes are exactly what `jsonb_in` makes of the same text (the glue's `#[pg_test]` compares
//! them on every payload of the tests); anything outside the subset gets `None` and goes to
//! `jsonb_in`. The format (Postgres `src/include/utils/jsonb.h`, `src/backend/utils/adt/
//! jsonb_util.c`, `convertToJsonb`; stable on disk since 9.4, the same in 15–18):
//! - a container is a `u32` header (its count | `JB_FOBJECT` or `JB_FARRAY`), then one `JEntry`
//!   (`u32`) per element — for an object, all keys first, then all values — then the
//!   elements' data in that order; each `JEntry` holds the element's type and its length,
//!   except every `JB_OFFSET_STRIDE`th, which holds the end offset (`JENTRY_HAS_OFF`);
//! - an object's keys are sorted shorter first, then bytewise, and a key given twice keeps its
//!   last value (`uniqueifyJsonbObject`);
//! - a string is its bytes; `true`, `false`, `null` have no data; a number is the `numeric`
//!   varlena `numeric_in` makes, and numbers and nested containers start 4-byte aligned (from
//!   the start of the varlena), the padding counted in their length.
//!
//! What is returned is the varlena's body: the glue puts the 4-byte header in front.

use super::scan::{self, Tree};

const JB_FOBJECT: u32 = 0x2000_0000;
const JB_FARRAY: u32 = 0x4000_0000;
const JENTRY_OFFLENMASK: u32 = 0x0FFF_FFFF;
const JENTRY_HAS_OFF: u32 = 0x8000_0000;
const JENTRY_ISSTRING: u32 = 0x0000_0000;
const JENTRY_ISNUMERIC: u32 = 0x1000_0000;
const JENTRY_ISBOOL_FALSE: u32 = 0x2000_0000;
const JENTRY_ISBOOL_TRUE: u32 = 0x3000_0000;
const JENTRY_ISNULL: u32 = 0x4000_0000;
const JENTRY_ISCONTAINER: u32 = 0x5000_0000;
const JB_OFFSET_STRIDE: usize = 32;

const NUMERIC_SHORT: u16 = 0x8000;
const NUMERIC_SHORT_SIGN_MASK: u16 = 0x2000;
const NBASE: i64 = 10_000;
/// A varlena's 4-byte header (the body follows it; alignment counts from the header's start).
const VARHDRSZ: usize = 4;

/// The body of the `jsonb` varlena `jsonb_in` makes of `json`, or `None` outside the subset
/// (and on big-endian machines, whose headers this does not write).
pub fn jsonb_body(json: &[u8]) -> Option<Vec<u8>> {
    if cfg!(target_endian = "big") {
        return None;
    }
    body_of(scan::document(json)?, json.len())
}

/// The body of the `jsonb` varlena of a payload object read by [`scan::document`] from
/// `json_len` bytes of JSON.
pub(super) fn body_of(tree: Tree, json_len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(json_len + 64);
    body_into(tree, &mut out).then_some(out)
}

/// [`body_of`] written into `out` (cleared first, its capacity reused); false (and `out`
/// meaningless) when it cannot be built.
pub(super) fn body_into(mut tree: Tree, out: &mut Vec<u8>) -> bool {
    out.clear();
    if cfg!(target_endian = "big") || !matches!(tree, Tree::Object(_)) {
        return false;
    }
    let mut root = Buffer { out };
    let entry = root.value(&mut tree);
    // The root container's own JEntry is not stored; its length must fit like any other.
    entry & JENTRY_OFFLENMASK == root.len() as u32 && root.len() < JENTRY_OFFLENMASK as usize
}

struct Buffer<'b> {
    out: &'b mut Vec<u8>,
}

impl Buffer<'_> {
    fn len(&self) -> usize {
        self.out.len()
    }

    /// Pads to a 4-byte boundary of the varlena (its header included); the padding's length.
    fn pad(&mut self) -> u32 {
        let padding = (4 - (VARHDRSZ + self.out.len()) % 4) % 4;
        self.out.resize(self.out.len() + padding, 0);
        padding as u32
    }

    fn u32_at(&mut self, at: usize, value: u32) {
        self.out[at..at + 4].copy_from_slice(&value.to_ne_bytes());
    }

    /// Appends `value`'s data; its JEntry (type and length). An object's members are sorted
    /// and de-duplicated in place, as jsonb stores them.
    fn value(&mut self, value: &mut Tree) -> u32 {
        match value {
            Tree::String(s) => {
                self.out.extend_from_slice(s.as_bytes());
                JENTRY_ISSTRING | s.len() as u32
            }
            Tree::Integer(n) => {
                let padding = self.pad();
                let start = self.len();
                numeric(*n, self.out);
                JENTRY_ISNUMERIC | (padding + (self.len() - start) as u32)
            }
            Tree::Bool(true) => JENTRY_ISBOOL_TRUE,
            Tree::Bool(false) => JENTRY_ISBOOL_FALSE,
            Tree::Null => JENTRY_ISNULL,
            Tree::Array(items) => {
                let base = self.len();
                self.pad();
                let count = items.len();
                self.container(JB_FARRAY, count, count, |buffer, entry| {
                    buffer.value(&mut items[entry])
                });
                JENTRY_ISCONTAINER | (self.len() - base) as u32
            }
            Tree::Object(members) => {
                // Sorted as jsonb sorts keys (shorter first, then bytewise); of a key given
                // twice, the last value stays: reversed, then a stable sort puts it first among
                // its equals, and dedup keeps the first.
                members.reverse();
                members.sort_by(|(a, _), (b, _)| (a.len(), a).cmp(&(b.len(), b)));
                members.dedup_by(|(later, _), (kept, _)| later == kept);
                let base = self.len();
                self.pad();
                let count = members.len();
                // All keys first, then all values.
                self.container(JB_FOBJECT, count, 2 * count, |buffer, entry| match members
                    .get_mut(entry)
                {
                    Some((key, _)) => {
                        buffer.out.extend_from_slice(key.as_bytes());
                        JENTRY_ISSTRING | key.len() as u32
                    }
                    None => buffer.value(&mut members[entry - count].1),
                });
                JENTRY_ISCONTAINER | (self.len() - base) as u32
            }
        }
    }

    /// A container's header (`kind` and `count`), then its `entries` JEntries, each written
    /// after `element` appends the entry's data and returns its JEntry.
    fn container(
        &mut self,
        kind: u32,
        count: usize,
        entries: usize,
        mut element: impl FnMut(&mut Buffer, usize) -> u32,
    ) {
        self.out
            .extend_from_slice(&(kind | count as u32).to_ne_bytes());
        let first_entry = self.len();
        self.out.resize(first_entry + 4 * entries, 0);
        let data_start = self.len();
        for index in 0..entries {
            let entry = element(self, index);
            let end = (self.len() - data_start) as u32;
            let entry = if index.is_multiple_of(JB_OFFSET_STRIDE) {
                (entry & !JENTRY_OFFLENMASK) | end | JENTRY_HAS_OFF
            } else {
                entry
            };
            self.u32_at(first_entry + 4 * index, entry);
        }
    }
}

/// The `numeric` varlena `numeric_in` makes of the integer `n` (|n| < 10^15): short format,
/// base-10000 digits without leading or trailing zero digits, scale 0.
fn numeric(n: i64, out: &mut Vec<u8>) {
    let mut digits = [0i16; 4];
    let mut count = 0;
    let mut rest = n.unsigned_abs() as i64;
    while rest > 0 {
        digits[count] = (rest % NBASE) as i16;
        rest /= NBASE;
        count += 1;
    }
    digits[..count].reverse(); // most significant first
                               // weight: the power of NBASE of the first digit; trailing zero digits are dropped.
    let weight = count as i16 - 1;
    let kept = digits[..count]
        .iter()
        .rposition(|&d| d != 0)
        .map_or(0, |last| last + 1);
    let (weight, negative) = if kept == 0 {
        (0, false)
    } else {
        (weight, n < 0)
    };
    let mut header = NUMERIC_SHORT | (weight as u16 & 0x003F);
    if negative {
        header |= NUMERIC_SHORT_SIGN_MASK;
    }
    let size = VARHDRSZ + 2 + 2 * kept;
    out.extend_from_slice(&((size as u32) << 2).to_ne_bytes()); // SET_VARSIZE (4-byte header)
    out.extend_from_slice(&header.to_ne_bytes());
    for digit in &digits[..kept] {
        out.extend_from_slice(&digit.to_ne_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(n: i64) -> Vec<u8> {
        let mut out = Vec::new();
        numeric(n, &mut out);
        out
    }

    #[test]
    fn numbers_are_numeric_in_s_short_format() {
        // numeric_in('0'): 6 bytes, header NUMERIC_SHORT, no digits.
        assert_eq!(numeric_bytes(0), [24, 0, 0, 0, 0x00, 0x80]);
        // 1: weight 0, one digit 1.
        assert_eq!(numeric_bytes(1), [32, 0, 0, 0, 0x00, 0x80, 1, 0]);
        // -20000: weight 1, digits [2] (the trailing 0000 dropped), negative.
        assert_eq!(numeric_bytes(-20000), [32, 0, 0, 0, 0x01, 0xA0, 2, 0]);
        // 1796185641: digits [17, 9618, 5641], weight 2.
        let mut expected = vec![48, 0, 0, 0, 0x02, 0x80];
        for d in [17i16, 9618, 5641] {
            expected.extend_from_slice(&d.to_ne_bytes());
        }
        assert_eq!(numeric_bytes(1_796_185_641), expected);
        // 999999999999999 (15 digits): [9, 9999, 9999, 9999], weight 3.
        assert_eq!(numeric_bytes(999_999_999_999_999).len(), 4 + 2 + 8);
    }

    #[test]
    fn outside_the_subset_is_left_to_jsonb_in() {
        for json in [
            r#"[1]"#,
            r#""s""#,
            r#"{"a":1.5}"#,
            r#"{"a":"\n"}"#,
            r#"{"a":1} x"#,
        ] {
            assert_eq!(jsonb_body(json.as_bytes()), None, "{json}");
        }
    }

    #[test]
    fn an_object_s_layout() {
        // {"b":true,"a":"xy","a":null}: keys a, b (sorted), a's last value null.
        let body = jsonb_body(br#"{"b":true,"a":"xy","a":null}"#).unwrap();
        let words: Vec<u32> = body[..20]
            .chunks(4)
            .map(|w| u32::from_ne_bytes(w.try_into().unwrap()))
            .collect();
        assert_eq!(words[0], JB_FOBJECT | 2);
        assert_eq!(words[1], JENTRY_HAS_OFF | 1, "key a, ends at 1");
        assert_eq!(words[2], 1, "key b, length 1");
        assert_eq!(words[3], JENTRY_ISNULL, "a's value: the last one");
        assert_eq!(words[4], JENTRY_ISBOOL_TRUE);
        assert_eq!(&body[20..], b"ab");
    }
}
