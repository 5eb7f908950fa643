//! Revocation (issue 33): ending a token, or every token of a user, before it expires. The pure
//! rules; the glue (`src/revocation/`) keeps the list in shared memory, WAL-logs it and
//! persists it.
//!
//! **What is revoked by what.** A token with a `jti` is revoked by its `jti` with its `iss` (so
//! every token of that issuer carrying that `jti` is refused, however its JSON spells it: the
//! claims are compared decoded); a token without one by its signature — the first
//! [`SIGNATURE_ID_BYTES`] bytes of the decoded signature, which for ECDSA are the first bytes
//! of `r`, the half an attacker cannot change (`(r, n - s)` verifies too), and which nobody
//! can steer to another token's without its key. A user is revoked by the user id `user_id()`
//! returns (issuer-scoped under `electric_auth.issuers`) with a time: tokens issued before it
//! (`iat` earlier than its whole second) are refused, later ones verify ("log out everywhere",
//! then log in again).
//!
//! **The table.** Every entry is a 64-bit key and a 64-bit value (a token's `exp`, a user's
//! time), side by side in an open-addressing table of atomics that readers probe without a lock
//! (the glue brackets each probe with a sequence count); writers hold the glue's lock. A token
//! revoked by its signature is keyed by its first 12 bytes as their base64url text says them
//! (folded and mixed) — random to anyone without the signing key, so no decoding and no keyed
//! hash is needed, and nobody can aim at an entry; one
//! revoked by `jti`, and a user, by a keyed SipHash (random keys for each server start), since
//! those texts are chosen by whoever mints the token. A Bloom filter in front of the table
//! (8 bits per entry, two probes) answers "not revoked" for almost every token from a few
//! cache lines, whatever the list's size.

use serde::{Deserialize, Serialize};
use std::hash::Hasher as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// How many bytes of a signature identify it.
pub const SIGNATURE_ID_BYTES: usize = 16;

/// The empty slot; a removed entry's slot (probes go on past it).
const EMPTY: u64 = 0;
const TOMBSTONE: u64 = 4;
/// The low two bits of a key say what it is (never 0: no key is [`EMPTY`] or [`TOMBSTONE`]).
const BY_SIGNATURE: u64 = 1;
const BY_JTI: u64 = 2;
const BY_USER: u64 = 3;

/// What a token is revoked by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenId {
    /// Its `jti` with its `iss` (empty when it has none).
    Jti { iss: String, jti: String },
    /// The first [`SIGNATURE_ID_BYTES`] bytes of its decoded signature, in hex.
    Signature(String),
}

impl TokenId {
    /// What `token` (already verified) is revoked by: `jti` with `iss` when it has a `jti`.
    pub fn of(token: &[u8], iss: Option<&str>, jti: Option<&str>) -> Option<TokenId> {
        match jti {
            Some(jti) => Some(TokenId::Jti {
                iss: iss.unwrap_or("").to_owned(),
                jti: jti.to_owned(),
            }),
            None => signature_id(token).map(|id| TokenId::Signature(hex(&id))),
        }
    }
}

/// The first [`SIGNATURE_ID_BYTES`] bytes of the token's signature (its third part, base64url),
/// decoded; `None` when it has fewer.
pub fn signature_id(token: &[u8]) -> Option<[u8; SIGNATURE_ID_BYTES]> {
    use base64::Engine;
    let at = token.iter().rposition(|&b| b == b'.')?;
    let signature = &token[at + 1..];
    // 24 base64 characters decode to 18 bytes: enough, and no padding question.
    let head = signature.get(..24)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head)
        .ok()?;
    bytes.get(..SIGNATURE_ID_BYTES)?.try_into().ok()
}

/// How many base64url characters of the signature key a token revoked by it: 16, exactly its
/// first 12 bytes (96 bits; no other spelling of them exists: only a text's last character can
/// carry unused bits).
const SIGNATURE_KEY_CHARS: usize = 16;

/// The key of a token revoked by its signature, from the first [`SIGNATURE_KEY_CHARS`]
/// characters of its base64url text: folded to 64 bits and mixed with the server's random
/// keys (an issuer grinding signatures cannot tell where its entries land, so cannot pile them
/// into one long probe run), tagged. No decoding and no SipHash (see the module notes).
#[inline]
fn signature_key(keys: &Keys, text: &[u8; SIGNATURE_KEY_CHARS]) -> u64 {
    let (a, b) = text.split_at(8);
    let a = u64::from_le_bytes(a.try_into().expect("8 bytes"));
    let b = u64::from_le_bytes(b.try_into().expect("8 bytes"));
    let mixed = (a ^ keys.k0 ^ b.rotate_left(29)).wrapping_mul(keys.k1 | 1);
    ((mixed ^ (mixed >> 31)) & !3) | BY_SIGNATURE
}

/// The first [`SIGNATURE_KEY_CHARS`] characters of the token's signature.
#[inline]
fn signature_head(token: &[u8]) -> Option<&[u8; SIGNATURE_KEY_CHARS]> {
    let at = memchr::memrchr(b'.', token)?;
    token
        .get(at + 1..at + 1 + SIGNATURE_KEY_CHARS)?
        .try_into()
        .ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One change to the list, as the WAL and the file record it (one JSON line each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Record {
    /// A token, until `expires_at` (its `exp`, Unix seconds); `by_holder`: revoked by a role
    /// without the revoker role, holding the token (counted against their share of the list).
    RevokeToken {
        token: TokenId,
        expires_at: i64,
        by: String,
        at: i64,
        #[serde(default)]
        by_holder: bool,
    },
    /// Every token of `user_id` issued before `issued_before` (Unix seconds).
    RevokeUser {
        user_id: String,
        issued_before: i64,
        by: String,
        at: i64,
    },
    /// `user_id` is no longer revoked — if its revocation is still the one the unrevoking
    /// transaction saw (`expected`: its `issued_before` then; a revocation made since stays).
    UnrevokeUser {
        user_id: String,
        by: String,
        at: i64,
        #[serde(default)]
        expected: Option<i64>,
    },
}

impl Record {
    /// The record as one line of JSON (no newline in it: JSON strings escape theirs).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a record always serializes")
    }

    /// A record from one line; `None` for a line that is not one (a torn last line).
    pub fn from_line(line: &[u8]) -> Option<Record> {
        serde_json::from_slice(line).ok()
    }

    /// `records` as the file and the WAL hold them: one line each, each ending in a newline.
    pub fn to_lines(records: &[Record]) -> String {
        records
            .iter()
            .map(|record| record.to_line() + "\n")
            .collect()
    }

    /// The records of `text` (lines as [`Record::to_lines`] writes them), and how many
    /// non-empty lines were not one.
    pub fn from_lines(text: &[u8]) -> (Vec<Record>, usize) {
        let mut records = Vec::new();
        let mut bad = 0;
        for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            match Record::from_line(line) {
                Some(record) => records.push(record),
                None => bad += 1,
            }
        }
        (records, bad)
    }
}

/// The keyed hash of every entry: random keys for each server start (the table is rebuilt from
/// the file at each start, so they are never stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keys {
    pub k0: u64,
    pub k1: u64,
}

impl Keys {
    fn hash(&self, kind: u64, parts: &[&[u8]]) -> u64 {
        #[allow(deprecated)] // SipHash-2-4, keyed: what this needs, without a dependency
        let mut hasher = std::hash::SipHasher::new_with_keys(self.k0, self.k1);
        hasher.write_u64(kind);
        for part in parts {
            hasher.write_usize(part.len());
            hasher.write(part);
        }
        (hasher.finish() & !3) | kind
    }

    /// The key of a token's entry.
    pub fn token(&self, id: &TokenId) -> u64 {
        match id {
            TokenId::Jti { iss, jti } => self.hash(BY_JTI, &[iss.as_bytes(), jti.as_bytes()]),
            TokenId::Signature(hex) => {
                use base64::Engine;
                let bytes: Vec<u8> = (0..12)
                    .map(|i| {
                        hex.get(2 * i..2 * i + 2)
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                            .unwrap_or(0)
                    })
                    .collect();
                let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
                let mut head = [0u8; SIGNATURE_KEY_CHARS];
                head.copy_from_slice(&text.as_bytes()[..SIGNATURE_KEY_CHARS]);
                signature_key(self, &head)
            }
        }
    }

    /// The key of a token's entry, from what verification read (no allocation, and for a
    /// token without `jti` no hashing: see the module notes).
    #[inline]
    pub fn token_of(&self, token: &[u8], iss: Option<&str>, jti: Option<&str>) -> Option<u64> {
        match jti {
            Some(jti) => Some(self.hash(BY_JTI, &[iss.unwrap_or("").as_bytes(), jti.as_bytes()])),
            None => signature_head(token).map(|head| signature_key(self, head)),
        }
    }

    /// The key of a user's entry.
    pub fn user(&self, user_id: &str) -> u64 {
        self.hash(BY_USER, &[user_id.as_bytes()])
    }
}

/// Whether a verified token is revoked, by the table's answers for its keys: its own entry
/// (any: an entry outlives its token's `exp` only until pruned), or its user's with a time
/// after the token's `iat` (in whole seconds).
pub fn is_revoked(token_entry: Option<i64>, user_entry: Option<i64>, iat: Option<f64>) -> bool {
    if token_entry.is_some() {
        return true;
    }
    match (user_entry, iat) {
        (Some(before), Some(iat)) => iat < before as f64,
        // No `iat` (insecure mode only): issued whenever, so before.
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// The table over shared memory: `pairs` holds each slot's key then its value (one cache line
/// for both), a power-of-two number of slots; `bloom` a power-of-two number of words.
pub struct Table<'a> {
    pairs: &'a [AtomicU64],
    bloom: &'a [AtomicU64],
}

/// Why an entry could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// Fibonacci hashing's multipliers: a key's bits spread over a slot or bit index.
const SPREAD: [u64; 3] = [
    0x9E37_79B9_7F4A_7C15,
    0xC2B2_AE3D_27D4_EB4F,
    0x1656_67B1_9E37_79F9,
];

impl<'a> Table<'a> {
    /// # Panics
    /// When the slot or word counts are not powers of two.
    pub fn new(pairs: &'a [AtomicU64], bloom: &'a [AtomicU64]) -> Table<'a> {
        assert!(pairs.len().is_multiple_of(2) && (pairs.len() / 2).is_power_of_two());
        assert!(bloom.len().is_power_of_two());
        Table { pairs, bloom }
    }

    fn slot_count(&self) -> usize {
        self.pairs.len() / 2
    }

    fn key_at(&self, slot: usize) -> &AtomicU64 {
        &self.pairs[2 * slot]
    }

    fn value_at(&self, slot: usize) -> &AtomicI64 {
        // SAFETY: AtomicI64 and AtomicU64 have the same size, alignment and representation.
        unsafe { &*std::ptr::from_ref(&self.pairs[2 * slot + 1]).cast::<AtomicI64>() }
    }

    fn slots(&self, key: u64) -> impl Iterator<Item = usize> + '_ {
        let count = self.slot_count();
        let shift = 64 - count.trailing_zeros();
        let start = if shift >= 64 {
            0
        } else {
            (key.wrapping_mul(SPREAD[0]) >> shift) as usize
        };
        (0..count).map(move |i| (start + i) & (count - 1))
    }

    /// The Bloom filter's word for `key` and its two bits there (a blocked filter: one cache
    /// line per lookup).
    #[inline]
    fn bloom_bits(&self, key: u64) -> (usize, u64) {
        let words = self.bloom.len();
        let word = if words == 1 {
            0
        } else {
            (key.wrapping_mul(SPREAD[1]) >> (64 - words.trailing_zeros())) as usize
        };
        let bits = key.wrapping_mul(SPREAD[2]);
        (word, (1u64 << (bits >> 58)) | (1u64 << ((bits >> 52) & 63)))
    }

    /// Whether `key` may be in the table (false: certainly not).
    #[inline]
    pub fn may_contain(&self, key: u64) -> bool {
        let (word, mask) = self.bloom_bits(key);
        self.bloom[word].load(Relaxed) & mask == mask
    }

    /// The value of `key` (lock-free: the caller checks the sequence count around it).
    #[inline]
    pub fn get(&self, key: u64) -> Option<i64> {
        if !self.may_contain(key) {
            return None;
        }
        for slot in self.slots(key) {
            match self.key_at(slot).load(Relaxed) {
                EMPTY => return None,
                k if k == key => return Some(self.value_at(slot).load(Relaxed)),
                _ => {}
            }
        }
        None
    }

    fn put(&self, slot: usize, key: u64, value: i64) {
        self.value_at(slot).store(value, Relaxed);
        self.key_at(slot).store(key, Relaxed);
        let (word, mask) = self.bloom_bits(key);
        self.bloom[word].fetch_or(mask, Relaxed);
    }

    /// Adds `key` with `value`, or sets the value of an entry it has (`merge` of the old and new
    /// value); writers only. The caller keeps the table at most half full.
    pub fn insert(
        &self,
        key: u64,
        value: i64,
        merge: impl Fn(i64, i64) -> i64,
    ) -> Result<bool, Full> {
        let mut free = None;
        for slot in self.slots(key) {
            match self.key_at(slot).load(Relaxed) {
                EMPTY => {
                    self.put(free.unwrap_or(slot), key, value);
                    return Ok(true);
                }
                TOMBSTONE => {
                    free.get_or_insert(slot);
                }
                k if k == key => {
                    let old = self.value_at(slot).load(Relaxed);
                    self.value_at(slot).store(merge(old, value), Relaxed);
                    return Ok(false);
                }
                _ => {}
            }
        }
        match free {
            Some(slot) => {
                self.put(slot, key, value);
                Ok(true)
            }
            None => Err(Full),
        }
    }

    /// Removes `key`; whether it was there (its Bloom bits stay: a false "maybe" only).
    /// Writers only.
    pub fn remove(&self, key: u64) -> bool {
        for slot in self.slots(key) {
            match self.key_at(slot).load(Relaxed) {
                EMPTY => return false,
                k if k == key => {
                    self.key_at(slot).store(TOMBSTONE, Relaxed);
                    return true;
                }
                _ => {}
            }
        }
        false
    }

    /// Empties the table and its filter. Writers only.
    pub fn clear(&self) {
        for word in self.pairs.iter().chain(self.bloom) {
            word.store(EMPTY, Relaxed);
        }
    }
}

/// The list a series of records leaves at `now`: tokens whose `exp` plus `keep_secs` has not
/// passed (past it the token is refused as expired anyway, within any clock drift), and users
/// revoked and not unrevoked since (the latest time for each). Used to build the table and to
/// rewrite the file without what is over.
pub fn current(records: impl IntoIterator<Item = Record>, now: i64, keep_secs: i64) -> Vec<Record> {
    let mut tokens: Vec<Record> = Vec::new();
    let mut token_at = std::collections::HashMap::new();
    let mut users: std::collections::HashMap<String, Record> = std::collections::HashMap::new();
    let mut user_order: Vec<String> = Vec::new();
    for record in records {
        match &record {
            Record::RevokeToken {
                token, expires_at, ..
            } => {
                if expires_at.saturating_add(keep_secs) < now {
                    continue;
                }
                match token_at.get(token) {
                    Some(&at) => {
                        if let Record::RevokeToken {
                            expires_at: old, ..
                        } = &mut tokens[at]
                        {
                            *old = (*old).max(*expires_at);
                        }
                    }
                    None => {
                        token_at.insert(token.clone(), tokens.len());
                        tokens.push(record);
                    }
                }
            }
            Record::RevokeUser { user_id, .. } => {
                if !users.contains_key(user_id) {
                    user_order.push(user_id.clone());
                }
                users.insert(user_id.clone(), record.clone());
            }
            Record::UnrevokeUser {
                user_id, expected, ..
            } => {
                let seen = match users.get(user_id) {
                    Some(Record::RevokeUser { issued_before, .. }) => Some(*issued_before),
                    _ => None,
                };
                if expected.is_none() || *expected == seen {
                    users.remove(user_id);
                }
            }
        }
    }
    let users = user_order.into_iter().filter_map(|u| users.remove(&u));
    tokens.into_iter().chain(users).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    const KEYS: Keys = Keys { k0: 7, k1: 11 };

    fn token_with_signature(signature: &[u8]) -> Vec<u8> {
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature);
        format!("eyJhbGciOiJIUzI1NiJ9.e30.{sig}").into_bytes()
    }

    #[test]
    fn a_token_is_revoked_by_its_jti_and_iss_else_by_its_signature() {
        let token = token_with_signature(&[9u8; 32]);
        let by_jti = TokenId::of(&token, Some("https://a"), Some("j-1")).unwrap();
        assert_eq!(
            by_jti,
            TokenId::Jti {
                iss: "https://a".into(),
                jti: "j-1".into()
            }
        );
        assert_eq!(
            KEYS.token(&by_jti),
            KEYS.token_of(&token, Some("https://a"), Some("j-1"))
                .unwrap()
        );
        // Another issuer's jti is another entry.
        assert_ne!(
            KEYS.token(&by_jti),
            KEYS.token_of(&token, Some("https://b"), Some("j-1"))
                .unwrap()
        );
        let by_signature = TokenId::of(&token, None, None).unwrap();
        assert_eq!(by_signature, TokenId::Signature("09".repeat(16)));
        assert_eq!(
            KEYS.token(&by_signature),
            KEYS.token_of(&token, Some("x"), None).unwrap()
        );
        // An ECDSA signature's other form (r, n - s) keeps r: the same entry.
        let mut other = [9u8; 64];
        other[40] = 1;
        let mut first = [9u8; 64];
        first[40] = 2;
        assert_eq!(
            KEYS.token_of(&token_with_signature(&first), None, None),
            KEYS.token_of(&token_with_signature(&other), None, None)
        );
        assert_eq!(signature_id(b"a.b.c2ln"), None, "too short a signature");
        // Kinds never meet: a user named like a token's key text is another entry.
        assert_ne!(KEYS.user(&"09".repeat(16)), KEYS.token(&by_signature));
        // Other keys, other hashes (a sender cannot aim at an entry).
        let other_keys = Keys { k0: 8, k1: 11 };
        assert_ne!(other_keys.user("alice"), KEYS.user("alice"));
    }

    #[test]
    fn a_user_is_revoked_for_tokens_issued_before_the_time() {
        assert!(is_revoked(Some(0), None, Some(5.0)), "the token itself");
        assert!(is_revoked(None, Some(100), Some(99.9)));
        assert!(
            !is_revoked(None, Some(100), Some(100.0)),
            "issued in the second of it"
        );
        assert!(!is_revoked(None, Some(100), Some(101.0)));
        assert!(!is_revoked(None, None, Some(1.0)));
    }

    #[test]
    fn the_table_adds_finds_merges_and_removes() {
        let pairs: Vec<AtomicU64> = (0..16).map(|_| AtomicU64::new(0)).collect();
        let bloom: Vec<AtomicU64> = (0..2).map(|_| AtomicU64::new(0)).collect();
        let table = Table::new(&pairs, &bloom);
        let (a, b) = (KEYS.user("a"), KEYS.user("b"));
        assert!(!table.may_contain(a), "an empty filter holds nothing");
        assert_eq!(table.get(a), None);
        assert_eq!(table.insert(a, 10, i64::max), Ok(true));
        assert_eq!(table.insert(a, 5, i64::max), Ok(false));
        assert_eq!(table.get(a), Some(10));
        assert_eq!(table.insert(a, 20, |_, new| new), Ok(false));
        assert_eq!(table.get(a), Some(20));
        assert_eq!(table.insert(b, 1, i64::max), Ok(true));
        assert!(table.remove(a));
        assert_eq!(table.get(a), None);
        assert_eq!(table.get(b), Some(1), "found past the removed entry");
        assert!(!table.remove(a));
        // Full: every slot taken.
        for i in 0..7 {
            let _ = table.insert(KEYS.user(&format!("u{i}")), 1, i64::max);
        }
        assert_eq!(
            table.insert(KEYS.user("one too many"), 1, i64::max),
            Err(Full)
        );
        assert!(table.may_contain(b));
        table.clear();
        assert_eq!(table.get(b), None);
        assert!(!table.may_contain(b));
    }

    #[test]
    fn the_hot_path_decodes_the_signature_as_the_id_does() {
        for signature in [[0u8; 32], [255u8; 32], [0x5a; 32]] {
            let t = token_with_signature(&signature);
            let id = TokenId::of(&t, None, None).unwrap();
            assert_eq!(Some(KEYS.token(&id)), KEYS.token_of(&t, None, None));
            let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&signature[..12]);
            assert_eq!(
                signature_head(&t).map(|h| h.to_vec()),
                Some(text.into_bytes())
            );
        }
        assert_eq!(signature_head(b"a.b.c2ln"), None);
    }

    #[test]
    fn records_are_lines_and_a_torn_line_is_none() {
        let record = Record::RevokeToken {
            token: TokenId::Jti {
                iss: "https://a".into(),
                jti: "line\nbreak".into(),
            },
            expires_at: 1_800_000_000,
            by: "admin".into(),
            at: 1_700_000_000,
            by_holder: false,
        };
        let line = record.to_line();
        assert!(!line.contains('\n'));
        assert_eq!(Record::from_line(line.as_bytes()), Some(record.clone()));
        assert_eq!(Record::from_line(&line.as_bytes()[..line.len() - 3]), None);
        let two = [record.clone(), record.clone()];
        let text = Record::to_lines(&two);
        assert_eq!(Record::from_lines(text.as_bytes()), (two.to_vec(), 0));
        let torn = &text.as_bytes()[..text.len() - 4];
        assert_eq!(Record::from_lines(torn), (vec![record], 1));
    }

    #[test]
    fn the_current_list_drops_what_is_over() {
        let token = |jti: &str, exp| Record::RevokeToken {
            token: TokenId::Jti {
                iss: String::new(),
                jti: jti.into(),
            },
            expires_at: exp,
            by: "r".into(),
            at: 0,
            by_holder: false,
        };
        let user = |u: &str, before| Record::RevokeUser {
            user_id: u.into(),
            issued_before: before,
            by: "r".into(),
            at: 0,
        };
        let records = vec![
            token("old", 100),
            token("live", 1000),
            token("live", 2000),
            user("alice", 5),
            user("bob", 6),
            Record::UnrevokeUser {
                user_id: "bob".into(),
                by: "r".into(),
                at: 0,
                expected: Some(6),
            },
            user("carol", 8),
            user("carol", 9),
            // Decided when carol's time was 8: her revocation of 9 came after and stays.
            Record::UnrevokeUser {
                user_id: "carol".into(),
                by: "r".into(),
                at: 0,
                expected: Some(8),
            },
            user("alice", 7),
        ];
        let now = 500;
        assert_eq!(
            current(records, now, 60),
            vec![token("live", 2000), user("alice", 7), user("carol", 9)]
        );
    }
}
