//! A hand-written reader for the payloads identity providers and JWT libraries write, in front
//! of the `serde_json` reader of `super` (issue 24: claim parsing was a third of the fast path).
//!
//! It reads a strict subset of JSON and gives up (`None`) on everything else, which then takes
//! the `serde_json` path, so it can only be slow, never different:
//! - strings and object keys without escapes; bytes `0x20..` except `"` and `\`, non-ASCII ones
//!   checked as UTF-8 (so no U+0000 and nothing `text` or `jsonb` cannot hold);
//! - integers of at most 15 digits, which an `f64` holds exactly and `numeric` always can (no
//!   fraction, no exponent, no `-0`);
//! - `true`, `false`, `null`, arrays and objects nested at most [`MAX_DEPTH`] deep;
//! - JSON whitespace between tokens.
//!
//! What it reads for the rules is what `serde_json::Value` reads from the same text: the last
//! value of a key given twice, numbers as `as_f64`, strings borrowed. The tests compare the two
//! readers on every input either accepts, and the fuzz target compares the paths end to end.

use super::lean::{Claims, Lean};
use std::borrow::Cow;

/// Deeper payloads go to `serde_json` (whose own limit is 128).
const MAX_DEPTH: usize = 16;

/// Integers with more digits go to `serde_json` (exact in an `f64` up to 2^53).
const MAX_DIGITS: usize = 15;

/// What a byte is inside a string: one table lookup per byte.
const PLAIN: u8 = 0;
const QUOTE: u8 = 1;
const NOT_ASCII: u8 = 2;
const REFUSED: u8 = 3;

static BYTE_CLASS: [u8; 256] = {
    let mut class = [PLAIN; 256];
    let mut byte = 0;
    while byte < 256 {
        class[byte] = match byte as u8 {
            b'"' => QUOTE,
            b'\\' | 0x00..=0x1f => REFUSED,
            0x80.. => NOT_ASCII,
            _ => PLAIN,
        };
        byte += 1;
    }
    class
};

pub(super) struct Scanner<'a> {
    json: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.json.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// Skips whitespace, then takes `byte` if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_whitespace();
        if self.peek() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// A string without escapes, its opening quote next (after whitespace).
    fn string(&mut self) -> Option<&'a str> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.at;
        let mut ascii = true;
        loop {
            match BYTE_CLASS[usize::from(*self.json.get(self.at)?)] {
                PLAIN => {}
                QUOTE => break,
                NOT_ASCII => ascii = false,
                _ => return None, // `\` or a control character
            }
            self.at += 1;
        }
        let bytes = &self.json[start..self.at];
        self.at += 1;
        if ascii {
            // SAFETY: every byte is ASCII (checked in the loop), and ASCII is UTF-8.
            Some(unsafe { std::str::from_utf8_unchecked(bytes) })
        } else {
            std::str::from_utf8(bytes).ok()
        }
    }

    /// An integer of at most [`MAX_DIGITS`] digits, its first byte next.
    fn integer(&mut self) -> Option<f64> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let start = self.at;
        let mut value: i64 = 0;
        while let Some(digit @ b'0'..=b'9') = self.peek() {
            value = value * 10 + i64::from(digit - b'0');
            self.at += 1;
            if self.at - start > MAX_DIGITS {
                return None;
            }
        }
        let digits = self.at - start;
        let leading_zero = digits > 1 && self.json[start] == b'0';
        if digits == 0 || leading_zero || (negative && value == 0) {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return None;
        }
        Some(if negative { -value } else { value } as f64)
    }

    fn literal(&mut self, text: &[u8]) -> Option<()> {
        let end = self.at.checked_add(text.len())?;
        (self.json.get(self.at..end)? == text).then(|| self.at = end)
    }

    /// Any value, read as far as the rules need it (`depth`: the containers around it).
    fn value(&mut self, depth: usize) -> Option<Lean<'a>> {
        self.skip_whitespace();
        match self.peek()? {
            b'"' => self.string().map(|s| Lean::String(Cow::Borrowed(s))),
            b'-' | b'0'..=b'9' => self.integer().map(Lean::Number),
            b't' => self.literal(b"true").map(|_| Lean::Other),
            b'f' => self.literal(b"false").map(|_| Lean::Other),
            b'n' => self.literal(b"null").map(|_| Lean::Null),
            b'[' if depth < MAX_DEPTH => {
                self.at += 1;
                if !self.eat(b']') {
                    loop {
                        self.value(depth + 1)?;
                        if self.eat(b']') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                Some(Lean::Other)
            }
            b'{' if depth < MAX_DEPTH => {
                self.object(depth, |_, _| ())?;
                Some(Lean::Other)
            }
            _ => None,
        }
    }

    /// An object, its `{` next; `member` sees each key and value in order.
    fn object(&mut self, depth: usize, mut member: impl FnMut(&'a str, Lean<'a>)) -> Option<()> {
        if !self.eat(b'{') {
            return None;
        }
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            let key = self.string()?;
            if !self.eat(b':') {
                return None;
            }
            member(key, self.value(depth + 1)?);
            if self.eat(b'}') {
                return Some(());
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }
}

/// A JSON value of the subset, kept whole (for building `jsonb`, see `jsonb.rs`).
#[derive(Debug, PartialEq)]
pub(super) enum Tree<'a> {
    String(&'a str),
    Integer(i64),
    Bool(bool),
    Null,
    Array(Vec<Tree<'a>>),
    Object(Vec<(&'a str, Tree<'a>)>),
}

impl<'a> Scanner<'a> {
    pub(super) fn new(json: &'a [u8]) -> Scanner<'a> {
        Scanner { json, at: 0 }
    }

    /// Any value of the subset as a [`Tree`] (`depth`: the containers around it).
    pub(super) fn tree(&mut self, depth: usize) -> Option<Tree<'a>> {
        self.skip_whitespace();
        match self.peek()? {
            b'"' => self.string().map(Tree::String),
            b'-' | b'0'..=b'9' => self.integer().map(|n| Tree::Integer(n as i64)),
            b't' => self.literal(b"true").map(|_| Tree::Bool(true)),
            b'f' => self.literal(b"false").map(|_| Tree::Bool(false)),
            b'n' => self.literal(b"null").map(|_| Tree::Null),
            b'[' if depth < MAX_DEPTH => {
                self.at += 1;
                let mut items = Vec::with_capacity(4);
                if !self.eat(b']') {
                    loop {
                        items.push(self.tree(depth + 1)?);
                        if self.eat(b']') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                Some(Tree::Array(items))
            }
            b'{' if depth < MAX_DEPTH => {
                self.at += 1;
                // Room for the claims of a typical token without growing.
                let mut members = Vec::with_capacity(8);
                if !self.eat(b'}') {
                    loop {
                        let key = self.string()?;
                        if !self.eat(b':') {
                            return None;
                        }
                        members.push((key, self.tree(depth + 1)?));
                        if self.eat(b'}') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                Some(Tree::Object(members))
            }
            _ => None,
        }
    }

    /// Whether only whitespace is left.
    pub(super) fn at_end(&mut self) -> bool {
        self.skip_whitespace();
        self.at == self.json.len()
    }
}

/// The payload as a [`Tree`] (an object, nothing after it), when it is in the subset this
/// reader takes; `None` sends it to `serde_json` (or `jsonb_in`).
pub(super) fn document(json: &[u8]) -> Option<Tree<'_>> {
    let mut scanner = Scanner::new(json);
    let tree = scanner.tree(0)?;
    (scanner.at_end() && matches!(tree, Tree::Object(_))).then_some(tree)
}

impl<'a> Tree<'a> {
    /// A top-level object's claims, as [`claims`] reads them from the same text.
    pub(super) fn claims(&self) -> Claims<'a> {
        let mut claims = Claims::default();
        let Tree::Object(members) = self else {
            return claims;
        };
        for (key, value) in members {
            if let Some(slot) = claims.slot(key) {
                *slot = Some(match value {
                    Tree::String(s) => Lean::String(Cow::Borrowed(s)),
                    Tree::Integer(n) => Lean::Number(*n as f64),
                    Tree::Null => Lean::Null,
                    Tree::Bool(_) | Tree::Array(_) | Tree::Object(_) => Lean::Other,
                });
            }
        }
        claims
    }
}

/// The payload's claims, when the payload is in the subset this reader takes (module notes);
/// `None` sends it to `serde_json`.
pub(super) fn claims(json: &[u8]) -> Option<Claims<'_>> {
    let mut scanner = Scanner { json, at: 0 };
    let mut claims = Claims::default();
    scanner.object(0, |key, value| {
        if let Some(slot) = claims.slot(key) {
            *slot = Some(value);
        }
    })?;
    scanner.skip_whitespace();
    (scanner.at == json.len()).then_some(claims)
}

#[cfg(test)]
mod tests {
    use super::super::lean::parse_claims;
    use super::super::numbers_fit;
    use super::*;

    /// What the module promises: whatever this reader takes, `serde_json` takes too and reads
    /// the same claims from it (and `numeric` holds its numbers).
    fn agrees(json: &[u8]) -> bool {
        match claims(json) {
            None => true,
            Some(ours) => numbers_fit(json) && parse_claims(json).as_ref() == Some(&ours),
        }
    }

    /// `document(..).claims()` (verify's single reading) is `claims(..)` (user_id's).
    fn one_reading_agrees(json: &[u8]) -> bool {
        document(json).map(|tree| tree.claims()) == claims(json)
    }

    #[test]
    fn the_common_payloads_are_read_here_as_serde_json_reads_them() {
        for json in [
            r#"{"sub":"user-0","iat":1796185641,"exp":1796272051,"name":"Benchmark User","roles":["reader"]}"#,
            r#"{"sub":"u","iat":1,"exp":2,"nbf":0,"iss":"https://idp.example/","aud":"electric"}"#,
            r#"{"user_id":"legacy","iat":-5,"exp":9,"sub":null,"email_verified":true,"x":false}"#,
            r#"{ "sub" : "José" , "iat" : 1 ,"exp":2, "org":{"id":7,"teams":[[],{},[1,[2]]]} }"#,
            "{\n\t\"sub\": \"u\",\r\n \"iat\": 1, \"exp\": 2\n}\n",
            r#"{"sub":"a","sub":"b","iat":1,"exp":2}"#,
            "{}",
        ] {
            let ours = claims(json.as_bytes()).unwrap_or_else(|| panic!("{json}"));
            assert_eq!(Some(ours), parse_claims(json.as_bytes()), "{json}");
        }
        let c = claims(br#"{"sub":"a","sub":"b","exp":"soon","iat":true}"#).unwrap();
        assert_eq!(
            c.sub,
            Some(Lean::String(Cow::Borrowed("b"))),
            "the last wins"
        );
        assert_eq!(
            (c.exp, c.iat),
            (Some(Lean::String("soon".into())), Some(Lean::Other))
        );
    }

    #[test]
    fn anything_else_is_left_to_serde_json() {
        let deep = format!(
            "{{\"x\":{}{}}}",
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        );
        for json in [
            r#"{"sub":"a\"b"}"#,
            r#"{"sub":"\u0041"}"#,
            r#"{"s\u0075b":"a"}"#,
            r#"{"iat":1.5}"#,
            r#"{"iat":1e3}"#,
            r#"{"iat":-0}"#,
            r#"{"iat":0123}"#,
            r#"{"iat":1234567890123456}"#,
            r#"{"iat":-}"#,
            r#"{"iat":+1}"#,
            "{\"sub\":\"a\tb\"}",
            r#"{"sub":"a"} x"#,
            r#"{"sub":"a",}"#,
            r#"{"sub" "a"}"#,
            r#"{sub:"a"}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":tru}"#,
            r#"{"a":nul"#,
            r#"[]"#,
            r#""x""#,
            "",
            "{",
            &deep,
        ] {
            assert!(claims(json.as_bytes()).is_none(), "{json}");
            assert!(agrees(json.as_bytes()));
            assert!(one_reading_agrees(json.as_bytes()));
        }
        assert!(claims(b"{\"sub\":\"\xc3\"}").is_none(), "truncated UTF-8");
        assert!(
            claims(b"{\"sub\":\"\xed\xa0\x80\"}").is_none(),
            "a lone surrogate"
        );
        let fits = format!(
            "{{\"x\":{}{}}}",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert!(claims(fits.as_bytes()).is_some());
        assert!(claims(br#"{"iat":123456789012345,"exp":-123456789012345}"#).is_some());
    }

    /// Mutations of real payloads, hundreds of thousands of them: whatever this reader takes
    /// (valid or not, it must never take what `serde_json` refuses) is read as `serde_json`
    /// reads it.
    #[test]
    fn mutated_payloads_never_read_differently() {
        let seeds: [&[u8]; 4] = [
            br#"{"sub":"user-0","iat":1796185641,"exp":1796272051,"name":"B","roles":["r",1]}"#,
            br#"{"user_id":"u","sub":null,"iat":-5,"exp":9,"aud":"a","iss":"i","nbf":0}"#,
            br#"{"a":{"b":[true,false,null,{"c":"d"}]},"sub":"x","iat":1,"exp":2}"#,
            b"{ \"sub\" : \"\xc3\xa9\" ,\n\"iat\":1 }",
        ];
        let alphabet = b"{}[]\",:0123456789-+.eE \t\ntrufalsn\\x\xc3\xa9\x00\x1f";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        let (mut taken, mut total) = (0, 0);
        for seed in seeds {
            for _ in 0..50_000 {
                let mut json = seed.to_vec();
                for _ in 0..1 + next(3) {
                    let at = next(json.len() + 1);
                    let byte = alphabet[next(alphabet.len())];
                    match next(3) {
                        0 if at < json.len() => json[at] = byte,
                        1 if at < json.len() => {
                            json.remove(at);
                        }
                        _ => json.insert(at, byte),
                    }
                }
                assert!(agrees(&json), "{:?}", String::from_utf8_lossy(&json));
                assert!(
                    one_reading_agrees(&json),
                    "{:?}",
                    String::from_utf8_lossy(&json)
                );
                taken += usize::from(claims(&json).is_some());
                total += 1;
            }
        }
        // The mutations reach both sides: some are taken here, most are not.
        assert!(taken > total / 20 && taken < total, "{taken} of {total}");
    }
}
