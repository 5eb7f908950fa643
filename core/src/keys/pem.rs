//! Our PEM tolerance, in front of jsonwebtoken's strict PEM parser.
//!
//! `postgresql.conf` values are one line, so the spec accepts a PEM whose line breaks are real,
//! written as the two characters `\n`, or replaced by spaces (one-line PEM). This module finds
//! the first PEM block in such text (or splits text into its blocks), decodes it, and writes it
//! back as canonical PEM (64-column base64 lines) for jsonwebtoken. Encrypted PEM (with headers) is refused: no passphrase
//! prompt can ever be reached. It also reads the one DER fact jsonwebtoken does not give us: an
//! RSA key's modulus size.

use base64::engine::{general_purpose::GeneralPurpose, DecodePaddingMode, GeneralPurposeConfig};
use base64::Engine;

const PEM_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One decoded PEM block.
pub struct PemBlock {
    /// The label, e.g. `PUBLIC KEY`, `RSA PRIVATE KEY`, `CERTIFICATE`.
    pub label: String,
    pub der: Vec<u8>,
}

impl PemBlock {
    /// The block as canonical PEM text.
    pub fn to_canonical_pem(&self) -> String {
        let body = PEM_BASE64.encode(&self.der);
        let mut out = format!("-----BEGIN {}-----\n", self.label);
        for line in body.as_bytes().chunks(64) {
            // base64 output is ASCII, so every chunk is valid UTF-8.
            out.push_str(std::str::from_utf8(line).unwrap_or_default());
            out.push('\n');
        }
        out.push_str(&format!("-----END {}-----\n", self.label));
        out
    }
}

/// Finds the first PEM block in `text`, tolerating literal `\n` escapes and one-line PEM.
pub fn decode(text: &str) -> Option<PemBlock> {
    let text = text.replace("\\r", "").replace("\\n", "\n");
    let after_begin = &text[text.find("-----BEGIN ")? + "-----BEGIN ".len()..];
    let label_len = after_begin.find("-----")?;
    let label = after_begin[..label_len].trim().to_owned();
    let body_and_rest = &after_begin[label_len + "-----".len()..];
    let end_marker = format!("-----END {label}-----");
    let body = &body_and_rest[..body_and_rest.find(&end_marker)?];
    if body.contains(':') {
        return None; // RFC 1421 headers: an encrypted key
    }
    let body: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = PEM_BASE64.decode(body.as_bytes()).ok()?;
    Some(PemBlock { label, der })
}

/// One DER element: its tag and contents, and what follows it.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, &rest[count..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The modulus size in bits of a PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, ... }`.
pub fn rsa_modulus_bits(pkcs1: &[u8]) -> Option<u32> {
    const SEQUENCE: u8 = 0x30;
    const INTEGER: u8 = 0x02;
    let (SEQUENCE, fields, _) = der_element(pkcs1)? else {
        return None;
    };
    let (INTEGER, modulus, _) = der_element(fields)? else {
        return None;
    };
    // A positive INTEGER may start with a zero byte; the size counts from the first 1 bit.
    let first = modulus.iter().position(|&b| b != 0)?;
    let significant = &modulus[first..];
    let bits = (significant.len() as u32 - 1) * 8 + (8 - significant[0].leading_zeros());
    Some(bits)
}

/// The PEM blocks of `text`, one slice each, in order: `text` split before each
/// `-----BEGIN ` (so every form [`decode`] tolerates splits the same way). Text before the
/// first block is dropped; no block yields an empty list.
pub fn blocks(text: &str) -> Vec<&str> {
    const BEGIN: &str = "-----BEGIN ";
    let starts: Vec<usize> = text.match_indices(BEGIN).map(|(at, _)| at).collect();
    starts
        .iter()
        .enumerate()
        .map(|(i, &start)| &text[start..starts.get(i + 1).copied().unwrap_or(text.len())])
        .collect()
}

/// A DER length.
fn der_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// A DER INTEGER holding the unsigned big-endian `magnitude` (leading zeros dropped, one zero
/// byte added when the high bit is set, so it stays positive).
fn der_unsigned_integer(magnitude: &[u8], out: &mut Vec<u8>) {
    let first = magnitude
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(magnitude.len());
    let significant = &magnitude[first..];
    let pad = significant.first().is_none_or(|&b| b & 0x80 != 0);
    out.push(0x02);
    der_length(significant.len() + usize::from(pad), out);
    if pad {
        out.push(0);
    }
    out.extend_from_slice(significant);
}

/// The PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` of a
/// JWK's `n` and `e` (decoded), as AWS-LC and [`rsa_modulus_bits`] read RSA keys.
pub fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut fields = Vec::with_capacity(n.len() + e.len() + 16);
    der_unsigned_integer(n, &mut fields);
    der_unsigned_integer(e, &mut fields);
    let mut out = vec![0x30];
    der_length(fields.len(), &mut out);
    out.extend_from_slice(&fields);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_public_key_der_round_trips_through_the_reader() {
        // A 2048-bit modulus with the high bit set gets a zero byte; e = 65537.
        let mut n = vec![0xc5u8; 256];
        n[255] = 0x01;
        let der = rsa_public_key_der(&n, &[0x01, 0x00, 0x01]);
        assert_eq!(rsa_modulus_bits(&der), Some(2048));
        assert_eq!(&der[..4], &[0x30, 0x82, 0x01, 0x0a]); // 266 bytes of fields
        assert_eq!(&der[4..9], &[0x02, 0x82, 0x01, 0x01, 0x00]);
        assert_eq!(&der[der.len() - 5..], &[0x02, 0x03, 0x01, 0x00, 0x01]);
        // Leading zeros in n are dropped; a small value has a short length.
        assert_eq!(
            rsa_public_key_der(&[0, 0, 0x7f], &[3]),
            [0x30, 0x06, 0x02, 0x01, 0x7f, 0x02, 0x01, 0x03]
        );
        assert_eq!(
            rsa_public_key_der(&[], &[3]),
            [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x03]
        );
    }

    #[test]
    fn der_lengths_switch_to_the_long_form_at_128() {
        let length = |len| {
            let mut out = Vec::new();
            der_length(len, &mut out);
            out
        };
        assert_eq!(length(0), [0x00]);
        assert_eq!(length(127), [0x7f]);
        assert_eq!(length(128), [0x81, 0x80]);
        assert_eq!(length(255), [0x81, 0xff]);
        assert_eq!(length(256), [0x82, 0x01, 0x00]);
        assert_eq!(length(65_536), [0x83, 0x01, 0x00, 0x00]);
    }

    #[test]
    fn blocks_split_before_each_begin_in_every_tolerated_form() {
        let one = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        assert_eq!(blocks(one), vec![one]);
        let two = format!("  {one}{one}");
        assert_eq!(blocks(&two), vec![one, one]);
        let escaped =
            r"-----BEGIN A-----\nAA==\n-----END A-----\n-----BEGIN B-----\nAA==\n-----END B-----";
        let split = blocks(escaped);
        assert_eq!(split.len(), 2);
        assert!(split[1].starts_with("-----BEGIN B"));
        let one_line =
            "-----BEGIN A----- AA== -----END A----- -----BEGIN B----- AA== -----END B-----";
        assert_eq!(blocks(one_line).len(), 2);
        assert!(blocks("no pem here").is_empty());
    }

    #[test]
    fn modulus_bits_count_from_the_first_one_bit() {
        // SEQUENCE { INTEGER 0x00 0x80 0x00 (16 bits), INTEGER 3 }
        assert_eq!(
            rsa_modulus_bits(&[0x30, 0x07, 0x02, 0x03, 0x00, 0x80, 0x00, 0x02, 0x01, 0x03][..]),
            Some(16)
        );
        // SEQUENCE { INTEGER 0x01 0xff (9 bits) }
        assert_eq!(
            rsa_modulus_bits(&[0x30, 0x04, 0x02, 0x02, 0x01, 0xff]),
            Some(9)
        );
        // Long-form length: SEQUENCE(0x81 0x05) { INTEGER 0x7f 0x00 0x00 (23 bits) }
        assert_eq!(
            rsa_modulus_bits(&[0x30, 0x81, 0x05, 0x02, 0x03, 0x7f, 0x00, 0x00]),
            Some(23)
        );
        // Not a SEQUENCE, truncated, or a zero modulus.
        assert_eq!(rsa_modulus_bits(&[0x31, 0x03, 0x02, 0x01, 0x01]), None);
        assert_eq!(rsa_modulus_bits(&[0x30, 0x09, 0x02, 0x01]), None);
        assert_eq!(rsa_modulus_bits(&[0x30, 0x03, 0x02, 0x01, 0x00]), None);
    }

    #[test]
    fn der_lengths_short_long_and_malformed() {
        // Short form.
        assert_eq!(
            der_element(&[0x04, 0x01, 0xaa, 0xbb]),
            Some((0x04, &[0xaa][..], &[0xbb][..]))
        );
        // Long form with one to four length bytes (the last exactly filling the input).
        assert_eq!(
            der_element(&[0x04, 0x81, 0x01, 0xaa]),
            Some((0x04, &[0xaa][..], &[][..]))
        );
        assert_eq!(
            der_element(
                &[0x04, 0x82, 0x01, 0x00, 0xcc]
                    .iter()
                    .chain(&[0u8; 255])
                    .copied()
                    .collect::<Vec<_>>()
            )
            .map(|(t, c, r)| (t, c.len(), r.len())),
            Some((0x04, 256, 0))
        );
        assert_eq!(
            der_element(&[0x04, 0x84, 0, 0, 0, 1, 0xaa]),
            Some((0x04, &[0xaa][..], &[][..]))
        );
        // The length bytes end the input: an empty element.
        assert_eq!(
            der_element(&[0x04, 0x81, 0x00]),
            Some((0x04, &[][..], &[][..]))
        );
        // Indefinite length (0x80, even with 128 bytes after it), five length bytes, length
        // bytes cut short, content cut short.
        assert_eq!(der_element(&[0x04, 0x80, 0xaa, 0x00, 0x00]), None);
        assert_eq!(
            der_element(&[&[0x04, 0x80][..], &[0u8; 130]].concat()),
            None
        );
        assert_eq!(der_element(&[0x04, 0x85, 0, 0, 0, 0, 1, 0xaa]), None);
        assert_eq!(der_element(&[0x04, 0x82, 0x01]), None);
        assert_eq!(der_element(&[0x04, 0x82]), None);
        assert_eq!(der_element(&[0x04, 0x02, 0xaa]), None);
        assert_eq!(der_element(&[0x04]), None);
    }

    #[test]
    fn canonical_pem_round_trips() {
        let block = PemBlock {
            label: "PUBLIC KEY".into(),
            der: (0..=255u8).collect(),
        };
        let text = block.to_canonical_pem();
        assert!(text.lines().all(|l| l.len() <= 64));
        let again = decode(&text).unwrap();
        assert_eq!((again.label, again.der), (block.label, block.der));
        let one_line = text.replace('\n', " ");
        assert_eq!(decode(&one_line).unwrap().der.len(), 256);
        let escaped = text.replace('\n', "\\n");
        assert_eq!(decode(&escaped).unwrap().der.len(), 256);
    }

    #[test]
    fn encrypted_pem_is_refused() {
        let text = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----";
        assert!(decode(text).is_none());
    }
}
