//! Chinese character sets on the wire: GB18030 (and its subset GBK) bodies, and
//! `application/x-www-form-urlencoded` forms whose bytes are GB18030 or GBK rather than UTF-8,
//! as many department systems still send and expect them.
//!
//! ```
//! use sdk::encoding::{Charset, form_encode, form_parse};
//!
//! let body = form_encode(&[("qymc", "福州测试有限公司"), ("lx", "a b")], Charset::Gb18030).unwrap();
//! assert_eq!(body, "qymc=%B8%A3%D6%DD%B2%E2%CA%D4%D3%D0%CF%DE%B9%AB%CB%BE&lx=a+b");
//! let pairs = form_parse(body.as_bytes(), Charset::Gb18030).unwrap();
//! assert_eq!(pairs[0], ("qymc".to_string(), "福州测试有限公司".to_string()));
//! ```
//!
//! The form's byte rules (WHATWG's urlencoded serializer: letters, digits and `*-._` as they
//! are, space as `+`, every other byte `%XX`) are written here rather than taken from a crate:
//! they are a few lines, and the sdk is linked into every component, so each dependency it
//! takes is carried by every adapter.

use std::fmt;

/// A text that cannot be encoded in, or bytes that are not valid in, the charset asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodingError(pub String);

impl fmt::Display for EncodingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EncodingError {}

/// The character set of a form's or a body's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// UTF-8.
    Utf8,
    /// GBK (CP936): refuses characters outside it (some rare names' characters, emoji).
    Gbk,
    /// GB18030: every Unicode character has a code.
    Gb18030,
}

impl Charset {
    /// `text` in this charset's bytes.
    pub fn encode(self, text: &str) -> Result<Vec<u8>, EncodingError> {
        match self {
            Charset::Utf8 => Ok(text.as_bytes().to_vec()),
            Charset::Gbk => {
                let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
                if unmappable {
                    let first = text
                        .chars()
                        .find(|c| encoding_rs::GBK.encode(&c.to_string()).2)
                        .unwrap_or('?');
                    return Err(EncodingError(format!(
                        "`{first}` (U+{:04X}) has no GBK code",
                        first as u32
                    )));
                }
                Ok(bytes.into_owned())
            }
            Charset::Gb18030 => Ok(encode_gb18030(text)),
        }
    }

    /// `bytes` read in this charset, refusing bytes that are not valid in it.
    pub fn decode(self, bytes: &[u8]) -> Result<String, EncodingError> {
        match self {
            Charset::Utf8 => String::from_utf8(bytes.to_vec())
                .map_err(|e| EncodingError(format!("not valid UTF-8: {e}"))),
            // Every GBK text is GB18030: one decoder reads both.
            Charset::Gbk | Charset::Gb18030 => decode_gb18030(bytes),
        }
    }
}

/// `text` as GB18030 bytes (every Unicode character has one, so this cannot fail).
pub fn encode_gb18030(text: &str) -> Vec<u8> {
    let (bytes, _, _) = encoding_rs::GB18030.encode(text);
    bytes.into_owned()
}

/// GB18030 (or GBK) bytes as text, refusing malformed sequences instead of replacing them.
pub fn decode_gb18030(bytes: &[u8]) -> Result<String, EncodingError> {
    let (text, malformed) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
    if malformed {
        return Err(EncodingError("the bytes are not valid GB18030".into()));
    }
    Ok(text.into_owned())
}

/// An `application/x-www-form-urlencoded` body of `pairs`, each name and value first encoded
/// in `charset`, then percent-encoded byte by byte.
pub fn form_encode<K: AsRef<str>, V: AsRef<str>>(
    pairs: &[(K, V)],
    charset: Charset,
) -> Result<String, EncodingError> {
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode(&charset.encode(name.as_ref())?, &mut out);
        out.push('=');
        percent_encode(&charset.encode(value.as_ref())?, &mut out);
    }
    Ok(out)
}

/// The pairs of an `application/x-www-form-urlencoded` body whose bytes are in `charset`, in
/// their order (a name may repeat). A malformed `%` escape or bytes invalid in the charset
/// are refused, not replaced.
pub fn form_parse(body: &[u8], charset: Charset) -> Result<Vec<(String, String)>, EncodingError> {
    body.split(|b| *b == b'&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = match part.iter().position(|b| *b == b'=') {
                Some(at) => (&part[..at], &part[at + 1..]),
                None => (part, &[][..]),
            };
            Ok((
                charset.decode(&percent_decode(name)?)?,
                charset.decode(&percent_decode(value)?)?,
            ))
        })
        .collect()
}

fn percent_encode(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

fn percent_decode(bytes: &[u8]) -> Result<Vec<u8>, EncodingError> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| EncodingError(format!("a malformed `%` escape at byte {i}")))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gb18030_round_trips_what_gbk_cannot_encode() {
        // 𠀀 (U+20000) and € have GB18030 codes; GBK has none for the first.
        let text = "张𠀀€";
        let bytes = encode_gb18030(text);
        assert_eq!(&bytes[..2], &[0xD5, 0xC5]);
        assert_eq!(decode_gb18030(&bytes).unwrap(), text);
        assert!(Charset::Gbk.encode(text).unwrap_err().0.contains("U+20000"));
        assert!(
            decode_gb18030(&[0xD5]).is_err(),
            "a truncated sequence is refused"
        );
    }

    #[test]
    fn a_gbk_form_encodes_and_parses_back() {
        let body = form_encode(
            &[("xm", "王五"), ("dz", "五四路1号 A&B=C"), ("bz", "")],
            Charset::Gbk,
        )
        .unwrap();
        assert_eq!(
            body,
            "xm=%CD%F5%CE%E5&dz=%CE%E5%CB%C4%C2%B71%BA%C5+A%26B%3DC&bz="
        );
        let pairs = form_parse(body.as_bytes(), Charset::Gbk).unwrap();
        assert_eq!(
            pairs,
            vec![
                ("xm".to_string(), "王五".to_string()),
                ("dz".to_string(), "五四路1号 A&B=C".to_string()),
                ("bz".to_string(), String::new()),
            ]
        );
    }

    #[test]
    fn a_form_parse_refuses_what_it_cannot_read() {
        assert!(form_parse(b"a=%ZZ", Charset::Gb18030).is_err());
        assert!(form_parse(b"a=%C", Charset::Gb18030).is_err());
        // A lone lead byte is not GB18030.
        assert!(form_parse(b"a=%D5", Charset::Gb18030).is_err());
        // A name without `=` has an empty value.
        assert_eq!(
            form_parse(b"flag&x=1", Charset::Utf8).unwrap(),
            vec![("flag".into(), String::new()), ("x".into(), "1".into())]
        );
    }
}
