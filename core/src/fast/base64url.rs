//! base64url without padding, decoded exactly as the `base64` crate's `URL_SAFE_NO_PAD` decodes
//! it (the same inputs accepted, the same bytes; the tests compare the two on random input),
//! but faster for the fast path (issue 24: the crate's decoder was 11–17% of HS256 `user_id`):
//! into a buffer the caller need not zero, and reading a token's part only up to the first byte
//! outside the alphabet, so the part's end (a `.`) is found by the decoding itself.
//!
//! What `URL_SAFE_NO_PAD` refuses is refused here: a byte outside `A–Z a–z 0–9 - _` within the
//! part (padding `=` included), a length of 4n + 1, and set trailing bits in the last quantum
//! (only one text encodes given bytes).

use std::mem::MaybeUninit;

/// Not in the alphabet: both high bits set, which no 6-bit value has.
const INVALID: u8 = 0xFF;

static VALUES: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 26 {
        table[b'A' as usize + i] = i as u8;
        table[b'a' as usize + i] = 26 + i as u8;
        i += 1;
    }
    let mut d = 0;
    while d < 10 {
        table[b'0' as usize + d] = 52 + d as u8;
        d += 1;
    }
    table[b'-' as usize] = 62;
    table[b'_' as usize] = 63;
    table
};

/// The bytes `text` decodes to: its whole length must be base64url (see [`decode_run`]).
pub(super) fn decode<'o>(text: &[u8], out: &'o mut [MaybeUninit<u8>]) -> Option<&'o [u8]> {
    match decode_run(text, out)? {
        (bytes, run) if run == text.len() => Some(bytes),
        _ => None,
    }
}

/// Decodes the run of base64url at the start of `text`, up to its first byte outside the
/// alphabet (or its end), into `out`: the bytes and the run's length in `text`. `None` when
/// the run is not a valid unpadded encoding or does not fit in `out`.
pub(super) fn decode_run<'o>(
    text: &[u8],
    out: &'o mut [MaybeUninit<u8>],
) -> Option<(&'o [u8], usize)> {
    decode_run_with(text, out, Blocks::WhereTheCpuCan)
}

/// Whether [`decode_run_with`] may take sixteen characters at a time.
#[derive(Clone, Copy, PartialEq)]
enum Blocks {
    WhereTheCpuCan,
    /// The scalar loops alone, as on a CPU without SSSE3 (for the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    Never,
}

fn decode_run_with<'o>(
    text: &[u8],
    out: &'o mut [MaybeUninit<u8>],
    blocks: Blocks,
) -> Option<(&'o [u8], usize)> {
    let (mut read, mut written) = (0, 0);
    // Sixteen characters at a time where the CPU can (almost every x86-64 one), while all are
    // in the alphabet and `out` has room; then two quanta at a time (8 characters, 6 bytes);
    // then one at a time.
    #[cfg(target_arch = "x86_64")]
    if blocks == Blocks::WhereTheCpuCan && std::is_x86_feature_detected!("ssse3") {
        // SAFETY: the CPU has SSSE3 (checked just above).
        (read, written) = unsafe { ssse3::blocks(text, out) };
    }
    let octs = text[read..].chunks_exact(8);
    for (oct, slots) in octs.zip(out[written..].chunks_exact_mut(6)) {
        let values: [u8; 8] = std::array::from_fn(|i| VALUES[usize::from(oct[i])]);
        if values.iter().fold(0, |all, value| all | value) & 0xC0 != 0 {
            break; // the run ends in these two quanta
        }
        let bits = values
            .iter()
            .fold(0u64, |bits, &value| bits << 6 | u64::from(value));
        for (slot, byte) in slots.iter_mut().zip(&bits.to_be_bytes()[2..]) {
            slot.write(*byte);
        }
        (read, written) = (read + 8, written + 6);
    }
    let quads = text[read..].chunks_exact(4);
    for (quad, slots) in quads.zip(out[written..].chunks_exact_mut(3)) {
        let [a, b, c, d] = [quad[0], quad[1], quad[2], quad[3]].map(|x| VALUES[usize::from(x)]);
        if (a | b | c | d) & 0xC0 != 0 {
            break; // the run ends in this quad
        }
        let bits = u32::from(a) << 18 | u32::from(b) << 12 | u32::from(c) << 6 | u32::from(d);
        let [_, x, y, z] = bits.to_be_bytes();
        slots[0].write(x);
        slots[1].write(y);
        slots[2].write(z);
        (read, written) = (read + 4, written + 3);
    }
    // Stopped for want of room in `out`, with a whole quantum of the alphabet left.
    if text.get(read..read + 4).is_some_and(|quad| {
        quad.iter()
            .all(|&byte| VALUES[usize::from(byte)] & 0xC0 == 0)
    }) {
        return None;
    }
    // The last, partial quantum: up to three bytes of the alphabet before the run ends.
    let mut tail = [0u8; 3];
    let mut taken = 0;
    while taken < 3 {
        match text
            .get(read + taken)
            .map(|&byte| VALUES[usize::from(byte)])
        {
            Some(value) if value & 0xC0 == 0 => tail[taken] = value,
            _ => break,
        }
        taken += 1;
    }
    let last: &[u8] = match (taken, tail) {
        (0, _) => &[],
        // Two characters carry one byte, three carry two; the bits left over must be zero.
        (2, [a, b, _]) if b & 0x0F == 0 => &[a << 2 | b >> 4],
        (3, [a, b, c]) if c & 0x03 == 0 => &[a << 2 | b >> 4, (b & 0x0F) << 4 | c >> 2],
        _ => return None,
    };
    for &byte in last {
        out.get_mut(written)?.write(byte);
        written += 1;
    }
    // SAFETY: the first `written` elements of `out` were each written above.
    let bytes = unsafe { std::slice::from_raw_parts(out.as_ptr().cast::<u8>(), written) };
    Some((bytes, read + taken))
}

/// Sixteen characters at a time with SSSE3 (the method of Muła and Lemire, "Faster Base64
/// Encoding and Decoding Using AVX2 Instructions", 2018, with range comparisons in place of its
/// lookup tables, for the URL-safe alphabet).
#[cfg(target_arch = "x86_64")]
mod ssse3 {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    /// Decodes blocks of 16 characters of `text` into 12 bytes each of `out`, from the start,
    /// while every character of a block is in the alphabet and `out` has 16 bytes of room (a
    /// block's store writes 16, of which 12 count): how many characters were read and bytes
    /// written.
    #[target_feature(enable = "ssse3")]
    pub(super) unsafe fn blocks(text: &[u8], out: &mut [MaybeUninit<u8>]) -> (usize, usize) {
        let (mut read, mut written) = (0, 0);
        // `c <= v` and `v <= c` for bytes as signed: anything from 0x80 up is below every
        // character of the alphabet, so in no range.
        let at_least = |v, c: u8| _mm_cmpgt_epi8(v, _mm_set1_epi8(c as i8 - 1));
        let at_most = |v, c: u8| _mm_cmpgt_epi8(_mm_set1_epi8(c as i8 + 1), v);
        while read + 16 <= text.len() && written + 16 <= out.len() {
            // SAFETY: 16 bytes of `text` from `read` (checked by the loop's condition).
            let v = unsafe { _mm_loadu_si128(text.as_ptr().add(read).cast()) };
            let upper = _mm_and_si128(at_least(v, b'A'), at_most(v, b'Z'));
            let lower = _mm_and_si128(at_least(v, b'a'), at_most(v, b'z'));
            let digit = _mm_and_si128(at_least(v, b'0'), at_most(v, b'9'));
            let dash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'-' as i8));
            let under = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'_' as i8));
            let valid = _mm_or_si128(
                _mm_or_si128(upper, lower),
                _mm_or_si128(digit, _mm_or_si128(dash, under)),
            );
            if _mm_movemask_epi8(valid) != 0xFFFF {
                break; // the run ends in this block
            }
            // Each character's value: A–Z 0–25, a–z 26–51, 0–9 52–61, `-` 62, `_` 63.
            let offset = _mm_or_si128(
                _mm_or_si128(
                    _mm_and_si128(upper, _mm_set1_epi8(-65)),
                    _mm_and_si128(lower, _mm_set1_epi8(-71)),
                ),
                _mm_or_si128(
                    _mm_and_si128(digit, _mm_set1_epi8(4)),
                    _mm_or_si128(
                        _mm_and_si128(dash, _mm_set1_epi8(17)),
                        _mm_and_si128(under, _mm_set1_epi8(-32)),
                    ),
                ),
            );
            let values = _mm_add_epi8(v, offset);
            // Pairs of values into 12 bits (first << 6 | second), pairs of those into 24.
            let twelve = _mm_maddubs_epi16(values, _mm_set1_epi32(0x0140_0140));
            let quanta = _mm_madd_epi16(twelve, _mm_set1_epi32(0x0001_1000));
            // Each 32-bit lane's three low bytes, most significant first; the last 4 zero.
            let order = _mm_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
            let bytes = _mm_shuffle_epi8(quanta, order);
            // SAFETY: 16 bytes of `out` from `written` (checked by the loop's condition).
            unsafe { _mm_storeu_si128(out.as_mut_ptr().add(written).cast(), bytes) };
            (read, written) = (read + 16, written + 12);
        }
        (read, written)
    }
}

/// The most bytes `len` characters of base64url decode to.
pub(super) fn decoded_len(len: usize) -> usize {
    len / 4 * 3 + (len % 4) * 3 / 4
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    /// Decoded by [`decode`], after checking that the scalar loops alone (a CPU without SSSE3)
    /// decode it alike.
    fn ours(text: &[u8]) -> Option<Vec<u8>> {
        let mut out = vec![MaybeUninit::uninit(); decoded_len(text.len())];
        // (The block decoder needs 16 bytes of room: an exact buffer also takes the others.)
        let scalar = decode_run_with(text, &mut out, Blocks::Never)
            .filter(|&(_, run)| run == text.len())
            .map(|(bytes, _)| bytes.to_vec());
        let decoded = decode(text, &mut out).map(<[u8]>::to_vec);
        assert_eq!(decoded, scalar, "the scalar loops alone");
        decoded
    }

    /// A small deterministic generator (no dependency): xorshift64.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn the_same_inputs_and_bytes_as_the_base64_crate() {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut state = 0x9E37_79B9_7F4A_7C15;
        let mut accepted = 0;
        for round in 0..200_000 {
            let len = (next(&mut state) % 160) as usize;
            let mut text: Vec<u8> = (0..len)
                .map(|_| alphabet[(next(&mut state) % 64) as usize])
                .collect();
            // Now and then a byte from outside the alphabet ('=', '.', '+', '/', NUL, 0xFF...).
            if round % 4 == 0 && len > 0 {
                let at = (next(&mut state) % len as u64) as usize;
                text[at] = [b'=', b'.', b'+', b'/', 0, 0xFF, b' ', 0x80][round / 4 % 8];
            }
            let theirs = URL_SAFE_NO_PAD.decode(&text).ok();
            assert_eq!(ours(&text), theirs, "{:?}", String::from_utf8_lossy(&text));
            accepted += usize::from(theirs.is_some());
        }
        assert!(
            accepted > 40_000,
            "about a quarter of the texts decode (a length of 4n + 1, trailing bits, a byte \
             outside the alphabet refuse the rest)"
        );
    }

    #[test]
    fn a_run_is_decoded_up_to_the_dot_at_any_position() {
        let mut state = 0x2545_F491_4F6C_DD1D;
        for _ in 0..20_000 {
            let bytes: Vec<u8> = (0..next(&mut state) % 120)
                .map(|_| next(&mut state) as u8)
                .collect();
            let part = URL_SAFE_NO_PAD.encode(&bytes);
            let text = format!("{part}.{}", URL_SAFE_NO_PAD.encode(b"after"));
            for blocks in [Blocks::WhereTheCpuCan, Blocks::Never] {
                let mut out = vec![MaybeUninit::uninit(); decoded_len(text.len())];
                let (decoded, run) = decode_run_with(text.as_bytes(), &mut out, blocks).unwrap();
                assert_eq!((decoded, run), (&bytes[..], part.len()));
            }
        }
    }

    #[test]
    fn trailing_bits_and_lengths_are_refused() {
        assert_eq!(ours(b""), Some(vec![]));
        assert_eq!(ours(b"YQ"), Some(b"a".to_vec()));
        assert_eq!(ours(b"YR"), None, "trailing bits set");
        assert_eq!(ours(b"YWI"), Some(b"ab".to_vec()));
        assert_eq!(ours(b"YWJ"), None, "trailing bits set");
        assert_eq!(ours(b"YWJj"), Some(b"abc".to_vec()));
        assert_eq!(ours(b"YWJjZ"), None, "4n + 1 characters");
        assert_eq!(ours(b"YQ=="), None, "padding");
    }

    #[test]
    fn a_run_ends_at_the_first_byte_outside_the_alphabet() {
        let mut out = [MaybeUninit::uninit(); 16];
        let (bytes, run) = decode_run(b"YWJj.xyz", &mut out).unwrap();
        assert_eq!((bytes, run), (&b"abc"[..], 4));
        let (bytes, run) = decode_run(b"YWI.", &mut out).unwrap();
        assert_eq!((bytes, run), (&b"ab"[..], 3));
        assert!(
            decode_run(b"YWJjZ.", &mut out).is_none(),
            "4n + 1 before the dot"
        );
        let (bytes, run) = decode_run(b".", &mut out).unwrap();
        assert_eq!((bytes, run), (&b""[..], 0));
        let mut small = [MaybeUninit::uninit(); 2];
        assert!(decode_run(b"YWJj", &mut small).is_none(), "does not fit");
        assert_eq!(
            decode_run(b"YWI", &mut small).map(|(b, r)| (b.to_vec(), r)),
            Some((b"ab".to_vec(), 3))
        );
        for len in 0..20 {
            assert_eq!(
                decoded_len(len),
                URL_SAFE_NO_PAD
                    .decode("A".repeat(len))
                    .map_or(len * 3 / 4, |v| v.len())
            );
        }
    }
}
