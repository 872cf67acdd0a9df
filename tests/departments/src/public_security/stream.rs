//! Reading a request whose materials are base64 inside the XML, as it arrives: the `<nr>`
//! elements' content is decoded, hashed (SM3) and counted on the fly and never kept, and the rest
//! of the document — a few small elements — is kept as a skeleton whose `<nr>` elements hold the
//! index of what was decoded there. The skeleton is then parsed as any other request.
//!
//! So a 50 MB file costs the department a few kilobytes of memory, as it would a real system
//! that writes files to disk while it parses. The scanner knows just enough XML to find `<nr>`
//! start tags: comments, CDATA sections, processing instructions and quoted attribute values
//! are passed over whole, so an `<nr>` inside them is not taken for one.

use axum::body::Body;
use base64::Engine as _;
use futures::StreamExt as _;
use sm3::Digest as _;

/// The most a request may carry, files included.
pub(crate) const MAX_REQUEST: u64 = 160 << 20;
/// The most the document may hold outside its `<nr>` elements.
const MAX_SKELETON: usize = 1 << 20;
/// Base64 characters decoded at a time (a multiple of 4).
const BATCH: usize = 64 * 1024;

/// What one `<nr>` element held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// Well-formed base64 of these bytes.
    Bytes { sm3: String, size: u64 },
    /// Not base64: why.
    Invalid(String),
}

/// A request read through: the document without its files, and each file's digest.
#[derive(Debug)]
pub(crate) struct Split {
    /// The document, each `<nr>` element's content replaced by its index in `files`.
    pub skeleton: String,
    pub files: Vec<Decoded>,
}

/// Read `body` through the scanner. `corrupt` flips a bit of every file (a fault switch).
pub(crate) async fn split(body: Body, corrupt: bool) -> Result<Split, String> {
    let mut scanner = Scanner::new(corrupt);
    let mut stream = body.into_data_stream();
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("请求读取失败：{e}"))?;
        total += chunk.len() as u64;
        if total > MAX_REQUEST {
            return Err(format!("请求超过{}MB", MAX_REQUEST >> 20));
        }
        scanner.feed(&chunk)?;
    }
    scanner.finish()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Character data between tags.
    Text,
    /// Inside `<…>`; `quote` is the open attribute quote, if any.
    Tag { quote: Option<u8> },
    /// Inside `<!-- … -->`.
    Comment,
    /// Inside `<![CDATA[ … ]]>`.
    CData,
    /// Inside `<nr>`: base64.
    Base64,
}

/// The scanner's state between chunks.
struct Scanner {
    mode: Mode,
    skeleton: Vec<u8>,
    /// Where the tag being read starts in `skeleton`.
    tag_start: usize,
    files: Vec<Decoded>,
    file: FileDecoder,
    corrupt: bool,
}

impl Scanner {
    fn new(corrupt: bool) -> Self {
        Scanner {
            mode: Mode::Text,
            skeleton: Vec::new(),
            tag_start: 0,
            files: Vec::new(),
            file: FileDecoder::new(corrupt),
            corrupt,
        }
    }

    fn keep(&mut self, byte: u8) -> Result<(), String> {
        if self.skeleton.len() >= MAX_SKELETON {
            return Err(format!("报文（不含材料内容）超过{}KB", MAX_SKELETON >> 10));
        }
        self.skeleton.push(byte);
        Ok(())
    }

    fn feed(&mut self, chunk: &[u8]) -> Result<(), String> {
        let mut rest = chunk;
        while !rest.is_empty() {
            if self.mode == Mode::Base64 {
                // The file's characters, up to the `<` of its end tag, in one go.
                let end = rest.iter().position(|&b| b == b'<').unwrap_or(rest.len());
                self.file.feed(&rest[..end]);
                rest = &rest[end..];
                if !rest.is_empty() {
                    let done = std::mem::replace(&mut self.file, FileDecoder::new(self.corrupt));
                    self.files.push(done.finish());
                    self.mode = Mode::Text;
                }
                continue;
            }
            let byte = rest[0];
            rest = &rest[1..];
            self.step(byte)?;
        }
        Ok(())
    }

    /// One byte outside a file.
    fn step(&mut self, byte: u8) -> Result<(), String> {
        if byte == b'<' && self.mode == Mode::Text {
            self.tag_start = self.skeleton.len();
            self.mode = Mode::Tag { quote: None };
            return self.keep(byte);
        }
        self.keep(byte)?;
        let tag = &self.skeleton[self.tag_start..];
        match self.mode {
            Mode::Text | Mode::Base64 => {}
            Mode::Comment if tag.ends_with(b"-->") && tag.len() >= 7 => self.mode = Mode::Text,
            Mode::CData if tag.ends_with(b"]]>") => self.mode = Mode::Text,
            Mode::Comment | Mode::CData => {}
            Mode::Tag { quote: Some(q) } => {
                if byte == q {
                    self.mode = Mode::Tag { quote: None };
                }
            }
            Mode::Tag { quote: None } => {
                if tag == b"<!--" {
                    self.mode = Mode::Comment;
                } else if tag == b"<![CDATA[" {
                    self.mode = Mode::CData;
                } else if (byte == b'"' || byte == b'\'') && !tag.starts_with(b"<!") {
                    self.mode = Mode::Tag { quote: Some(byte) };
                } else if byte == b'>' {
                    self.mode = Mode::Text;
                    if is_file_start(tag) {
                        // The index of this file stands in for its content.
                        for b in self.files.len().to_string().into_bytes() {
                            self.keep(b)?;
                        }
                        self.mode = Mode::Base64;
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Split, String> {
        if self.mode != Mode::Text {
            return Err("XML不完整".into());
        }
        let skeleton =
            String::from_utf8(self.skeleton).map_err(|_| "请求须为UTF-8编码".to_string())?;
        Ok(Split {
            skeleton,
            files: self.files,
        })
    }
}

/// Whether a complete tag is the start tag of an `<nr>` element (unqualified, not empty).
fn is_file_start(tag: &[u8]) -> bool {
    let Some(inner) = tag.strip_prefix(b"<").and_then(|t| t.strip_suffix(b">")) else {
        return false;
    };
    if inner.ends_with(b"/") {
        return false;
    }
    let name_end = inner
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(inner.len());
    &inner[..name_end] == b"nr"
}

/// One file's base64, decoded and hashed as it comes.
struct FileDecoder {
    /// Base64 characters not decoded yet (whitespace dropped).
    pending: Vec<u8>,
    /// Decoded bytes go here before they are hashed.
    out: Vec<u8>,
    hash: sm3::Sm3,
    size: u64,
    /// Padding was seen: nothing but padding may follow.
    padded: bool,
    problem: Option<String>,
    /// Flip a bit of the first byte (a fault switch).
    corrupt: bool,
}

impl FileDecoder {
    fn new(corrupt: bool) -> Self {
        FileDecoder {
            pending: Vec::new(),
            out: Vec::new(),
            hash: sm3::Sm3::new(),
            size: 0,
            padded: false,
            problem: None,
            corrupt,
        }
    }

    fn feed(&mut self, text: &[u8]) {
        for &b in text {
            if self.problem.is_some() {
                return;
            }
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => {}
                b'=' => {
                    self.padded = true;
                    self.pending.push(b);
                }
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' if self.padded => {
                    self.problem = Some("填充符“=”之后仍有内容".into());
                }
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' => {
                    self.pending.push(b);
                    if self.pending.len() >= BATCH {
                        self.decode_pending();
                    }
                }
                other => {
                    self.problem = Some(format!("含有非Base64字符（0x{other:02X}）"));
                }
            }
        }
    }

    /// Decode the whole groups of four pending.
    fn decode_pending(&mut self) {
        let whole = self.pending.len() / 4 * 4;
        if whole == 0 {
            return;
        }
        self.out.resize(whole / 4 * 3, 0);
        match base64::engine::general_purpose::STANDARD
            .decode_slice(&self.pending[..whole], &mut self.out)
        {
            Ok(n) => {
                self.out.truncate(n);
                if self.corrupt
                    && self.size == 0
                    && let Some(first) = self.out.first_mut()
                {
                    *first ^= 1;
                }
                self.hash.update(&self.out);
                self.size += n as u64;
            }
            Err(e) => self.problem = Some(format!("不是有效的Base64（{e}）")),
        }
        self.pending.drain(..whole);
    }

    fn finish(mut self) -> Decoded {
        self.decode_pending();
        if self.problem.is_none() && !self.pending.is_empty() {
            self.problem = Some("Base64长度不是4的倍数".into());
        }
        match self.problem {
            Some(why) => Decoded::Invalid(why),
            None => Decoded::Bytes {
                sm3: hex::encode(self.hash.finalize()),
                size: self.size,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(pieces: &[&[u8]]) -> Result<Split, String> {
        let mut s = Scanner::new(false);
        for p in pieces {
            s.feed(p)?;
        }
        s.finish()
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn file(bytes: &[u8]) -> Decoded {
        Decoded::Bytes {
            sm3: sdk::sign::sm3_hex(bytes),
            size: bytes.len() as u64,
        }
    }

    #[test]
    fn files_are_decoded_at_any_chunk_boundary_and_replaced_by_their_index() {
        let one: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let two = b"%PDF-1.7 tiny".to_vec();
        let doc = format!(
            "<?xml version=\"1.0\"?><request><!-- <nr>not a file</nr> --><a x=\"<nr>\">&amp;</a>\
             <cllb><cl><nr>{}</nr></cl><cl><nr>\r\n{}\n</nr></cl><![CDATA[<nr>]]></cllb></request>",
            b64(&one),
            b64(&two)
        );
        for size in [1, 2, 3, 7, 64, 1000, doc.len()] {
            let pieces: Vec<&[u8]> = doc.as_bytes().chunks(size).collect();
            let split = scan(&pieces).unwrap();
            assert_eq!(
                split.files,
                vec![file(&one), file(&two)],
                "chunks of {size}"
            );
            assert!(
                split
                    .skeleton
                    .contains("<cl><nr>0</nr></cl><cl><nr>1</nr></cl>"),
                "{}",
                split.skeleton
            );
            assert!(split.skeleton.contains("<!-- <nr>not a file</nr> -->"));
            crate::xml::parse(&split.skeleton).unwrap();
        }
    }

    #[test]
    fn bad_base64_is_named_and_the_rest_still_read() {
        let cases = [
            ("QUJD*EFG", "非Base64字符"),
            ("QQ==QUJD", "填充符"),
            ("QUJDR", "4的倍数"),
            ("Q===", "Base64"),
        ];
        for (text, why) in cases {
            let doc = format!("<r><nr>{text}</nr><nr>QUJD</nr></r>");
            let split = scan(&[doc.as_bytes()]).unwrap();
            match &split.files[0] {
                Decoded::Invalid(m) => assert!(m.contains(why), "{text}: {m}"),
                other => panic!("{text}: {other:?}"),
            }
            assert_eq!(split.files[1], file(b"ABC"));
        }
        // An empty file is well-formed base64 of nothing; an empty element too.
        let split = scan(&[b"<r><nr></nr><nr/></r>"]).unwrap();
        assert_eq!(split.files, vec![file(b"")]);
    }

    #[test]
    fn a_corrupted_file_has_another_digest_and_the_same_size() {
        let mut s = Scanner::new(true);
        s.feed(format!("<r><nr>{}</nr></r>", b64(b"ABCDEF")).as_bytes())
            .unwrap();
        assert_eq!(s.finish().unwrap().files, vec![file(b"@BCDEF")]);
    }

    #[test]
    fn unfinished_or_oversized_documents_are_refused() {
        assert!(scan(&[b"<r><nr>QUJD"]).is_err());
        assert!(scan(&[b"<r><!-- open"]).is_err());
        assert!(scan(&[b"<r a=\"1>"]).is_err());
        let big = vec![b'x'; MAX_SKELETON + 1];
        assert!(scan(&[b"<r>", &big]).unwrap_err().contains("KB"));
        assert!(scan(&[b"<r>\xff</r>"]).unwrap_err().contains("UTF-8"));
    }
}
