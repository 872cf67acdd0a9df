//! What a file is, from its bytes alone (never its name or declared type), decided while it
//! streams past: the first bytes name the format, a bounded tail says whether it is whole.
//!
//! - PDF: starts `%PDF-`; whole when `%%EOF` is in its last 1024 bytes.
//! - JPEG: starts `FF D8 FF`; whole when it ends `FF D9` (trailing zero or line-end padding
//!   allowed).
//! - PNG: starts with its 8-byte signature; whole when it ends with the `IEND` chunk.
//! - OFD (GB/T 33190): a ZIP (`PK\x03\x04`) whose central directory lists `OFD.xml` at its
//!   root; whole when the end-of-central-directory record is there and the directory it points
//!   to ends where that record starts. The directory is read from the tail ([`TAIL`] bytes: an
//!   OFD's directory is a few KiB); ZIP64 archives are not taken.
//!
//! ZIP's few fields are read here directly rather than with a ZIP crate: only the end record
//! and the directory's names are needed, on a bounded tail, and reading no more than that
//! keeps a hostile archive (a zip bomb, a lying header) from costing anything: nothing is
//! ever decompressed.

use gateway_base::config::MaterialFormat;
use std::collections::VecDeque;

/// The most of a file's end kept while it streams: what an OFD's central directory and end
/// record must fit in.
pub(crate) const TAIL: usize = 512 * 1024;

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
const PNG_END: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82];
const ZIP_LOCAL: [u8; 4] = [b'P', b'K', 3, 4];
const ZIP_END: [u8; 4] = [b'P', b'K', 5, 6];
const ZIP_CENTRAL: [u8; 4] = [b'P', b'K', 1, 2];

/// Why a file is not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No bytes at all.
    Empty,
    /// Not one of the four formats (or a ZIP that is not OFD …): the reason, in Chinese.
    Format(String),
    /// Starts as this format but ends before the format says it does.
    Truncated(MaterialFormat),
}

/// Watches a file stream past.
#[derive(Debug, Default)]
pub(crate) struct Sniffer {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    size: u64,
}

impl Sniffer {
    /// Take the next bytes.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.head.len() < 8 {
            let take = (8 - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
        }
        self.size += bytes.len() as u64;
        let keep = bytes.len().min(TAIL);
        self.tail.extend(&bytes[bytes.len() - keep..]);
        let over = self.tail.len().saturating_sub(TAIL);
        self.tail.drain(..over);
    }

    /// The format the first bytes name, once enough of them are in (`None` until then, or
    /// until [`Sniffer::finish`] decides with fewer).
    pub(crate) fn format(&self) -> Option<Result<MaterialFormat, Refusal>> {
        let head = &self.head[..];
        if head.starts_with(b"%PDF-") {
            return Some(Ok(MaterialFormat::Pdf));
        }
        if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            return Some(Ok(MaterialFormat::Jpeg));
        }
        if head.starts_with(&PNG_SIGNATURE) {
            return Some(Ok(MaterialFormat::Png));
        }
        if head.starts_with(&ZIP_LOCAL) {
            return Some(Ok(MaterialFormat::Ofd));
        }
        // A prefix of a signature may still become one.
        let could_be = [
            &b"%PDF-"[..],
            &[0xFF, 0xD8, 0xFF],
            &PNG_SIGNATURE,
            &ZIP_LOCAL,
        ]
        .iter()
        .any(|sig| sig.starts_with(head));
        if could_be && head.len() < 8 {
            return None;
        }
        Some(Err(Refusal::Format(
            "无法识别的文件格式：只接受 PDF、JPEG、PNG、OFD 文件（按内容判断，与文件名无关）"
                .into(),
        )))
    }

    /// The file is over: what it is, or why it is not taken.
    pub(crate) fn finish(&self) -> Result<MaterialFormat, Refusal> {
        if self.size == 0 {
            return Err(Refusal::Empty);
        }
        let format = match self.format() {
            Some(found) => found?,
            None => {
                return Err(Refusal::Format(
                    "文件过短，无法识别格式：只接受 PDF、JPEG、PNG、OFD 文件".into(),
                ));
            }
        };
        let tail = self.tail.iter().copied().collect::<Vec<u8>>();
        let whole = match format {
            MaterialFormat::Pdf => {
                let last = &tail[tail.len().saturating_sub(1024)..];
                last.windows(5).any(|w| w == b"%%EOF")
            }
            MaterialFormat::Jpeg => {
                let trimmed = trim_padding(&tail);
                trimmed.len() >= 4 && trimmed.ends_with(&[0xFF, 0xD9])
            }
            MaterialFormat::Png => self.size >= 8 + 12 && trim_padding(&tail).ends_with(&PNG_END),
            MaterialFormat::Ofd => return ofd(&tail, self.size),
        };
        if whole {
            Ok(format)
        } else {
            Err(Refusal::Truncated(format))
        }
    }
}

/// Zero bytes and line ends some writers leave after a file's last marker.
fn trim_padding(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, 0 | b'\r' | b'\n' | b' '))
        .map_or(0, |i| i + 1);
    &bytes[..end]
}

fn u16_at(bytes: &[u8], at: usize) -> Option<usize> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?) as usize)
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as u64)
}

/// A ZIP whose central directory names `OFD.xml`, from its `tail` (the last bytes of a file
/// of `size` bytes).
fn ofd(tail: &[u8], size: u64) -> Result<MaterialFormat, Refusal> {
    let not_ofd = |why: &str| Refusal::Format(format!("不是有效的 OFD 文件：{why}"));
    if tail.len() < 22 {
        return Err(Refusal::Truncated(MaterialFormat::Ofd));
    }
    // The end record: 22 bytes and a comment of up to 65535, whose length it states.
    let end = (0..=tail.len().saturating_sub(22))
        .rev()
        .take(65_536)
        .find(|&i| {
            tail[i..].starts_with(&ZIP_END) && u16_at(tail, i + 20) == Some(tail.len() - i - 22)
        });
    let Some(end) = end else {
        return Err(Refusal::Truncated(MaterialFormat::Ofd));
    };
    let tail_start = size - tail.len() as u64;
    let end_at = tail_start + end as u64;
    let (entries, dir_size, dir_offset) = (
        u16_at(tail, end + 10).unwrap_or(0),
        u32_at(tail, end + 12).unwrap_or(0),
        u32_at(tail, end + 16).unwrap_or(0),
    );
    if dir_offset == 0xFFFF_FFFF || dir_size == 0xFFFF_FFFF || entries == 0xFFFF {
        return Err(not_ofd("不支持 ZIP64 格式"));
    }
    if dir_offset + dir_size != end_at {
        // The directory does not end where the end record starts: bytes are missing (or were
        // added) in between.
        return Err(Refusal::Truncated(MaterialFormat::Ofd));
    }
    if dir_offset < tail_start {
        return Err(not_ofd("目录过大"));
    }
    let dir = &tail[(dir_offset - tail_start) as usize..end];
    let mut at = 0;
    for _ in 0..entries {
        if !dir
            .get(at..)
            .is_some_and(|rest| rest.starts_with(&ZIP_CENTRAL))
        {
            return Err(not_ofd("ZIP 目录损坏"));
        }
        let (Some(name_len), Some(extra), Some(comment)) = (
            u16_at(dir, at + 28),
            u16_at(dir, at + 30),
            u16_at(dir, at + 32),
        ) else {
            return Err(not_ofd("ZIP 目录损坏"));
        };
        let Some(name) = dir.get(at + 46..at + 46 + name_len) else {
            return Err(not_ofd("ZIP 目录损坏"));
        };
        if name == b"OFD.xml" {
            return Ok(MaterialFormat::Ofd);
        }
        at += 46 + name_len + extra + comment;
    }
    Err(not_ofd("ZIP 文件中没有 OFD.xml"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ZIP of stored (uncompressed) entries, made the way the format says.
    pub(crate) fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut dir = Vec::new();
        for (name, data) in entries {
            let offset = out.len() as u32;
            let local = |v: &mut Vec<u8>| {
                v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]); // flags, method, time, date
                v.extend_from_slice(&[0, 0, 0, 0]); // crc (not checked here)
                v.extend_from_slice(&(data.len() as u32).to_le_bytes());
                v.extend_from_slice(&(data.len() as u32).to_le_bytes());
                v.extend_from_slice(&(name.len() as u16).to_le_bytes());
                v.extend_from_slice(&0u16.to_le_bytes());
            };
            out.extend_from_slice(&ZIP_LOCAL);
            out.extend_from_slice(&20u16.to_le_bytes());
            local(&mut out);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(data);
            dir.extend_from_slice(&ZIP_CENTRAL);
            dir.extend_from_slice(&20u16.to_le_bytes());
            dir.extend_from_slice(&20u16.to_le_bytes());
            local(&mut dir);
            dir.extend_from_slice(&[0; 10]); // comment length, disk, internal and external attributes
            dir.extend_from_slice(&offset.to_le_bytes());
            dir.extend_from_slice(name.as_bytes());
        }
        let dir_offset = out.len() as u32;
        out.extend_from_slice(&dir);
        out.extend_from_slice(&ZIP_END);
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(dir.len() as u32).to_le_bytes());
        out.extend_from_slice(&dir_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    /// A small file of each format, `body` bytes in the middle.
    pub(crate) fn sample(format: MaterialFormat, body: usize) -> Vec<u8> {
        let filler: Vec<u8> = (0..body).map(|i| (i % 251) as u8).collect();
        match format {
            MaterialFormat::Pdf => [&b"%PDF-1.7\n"[..], &filler, b"\ntrailer\n%%EOF\n"].concat(),
            MaterialFormat::Jpeg => {
                [&[0xFF, 0xD8, 0xFF, 0xE0][..], &filler, &[0xFF, 0xD9]].concat()
            }
            MaterialFormat::Png => [&PNG_SIGNATURE[..], &filler, &PNG_END].concat(),
            MaterialFormat::Ofd => zip(&[
                (
                    "OFD.xml",
                    b"<ofd:OFD xmlns:ofd=\"http://www.ofdspec.org/2016\"/>",
                ),
                ("Doc_0/Document.xml", &filler),
            ]),
        }
    }

    fn sniff(bytes: &[u8], piece: usize) -> Result<MaterialFormat, Refusal> {
        let mut s = Sniffer::default();
        for part in bytes.chunks(piece.max(1)) {
            s.push(part);
        }
        s.finish()
    }

    #[test]
    fn each_format_is_known_by_its_content_in_any_pieces() {
        for format in MaterialFormat::ALL {
            for body in [0, 100, 700_000] {
                let bytes = sample(format, body);
                for piece in [1, 7, 4096, bytes.len()] {
                    if piece == 1 && body > 100 {
                        continue;
                    }
                    assert_eq!(
                        sniff(&bytes, piece),
                        Ok(format),
                        "{format:?} {body} {piece}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_file_cut_short_is_truncated_and_anything_else_is_refused() {
        for format in MaterialFormat::ALL {
            let bytes = sample(format, 5000);
            assert_eq!(
                sniff(&bytes[..bytes.len() / 2], 512),
                Err(Refusal::Truncated(format)),
                "{format:?}"
            );
        }
        assert_eq!(sniff(b"", 1), Err(Refusal::Empty));
        // An executable renamed .pdf, a text file, a ZIP that is not OFD, a lone signature.
        let elf = [&b"\x7fELF\x02\x01\x01"[..], &[0; 100]].concat();
        let pe = [&b"MZ\x90\x00"[..], &[0; 100], b"%%EOF"].concat();
        for bad in [&elf[..], &pe, b"hello, world", b"%PD"] {
            assert!(matches!(sniff(bad, 3), Err(Refusal::Format(_))), "{bad:?}");
        }
        let docx = zip(&[("word/document.xml", b"<w/>")]);
        assert!(
            matches!(sniff(&docx, 100), Err(Refusal::Format(m)) if m.contains("OFD.xml")),
            "a ZIP without OFD.xml is not OFD"
        );
        let nested = zip(&[("Doc_0/OFD.xml", b"<x/>")]);
        assert!(
            matches!(sniff(&nested, 100), Err(Refusal::Format(_))),
            "only at the root"
        );
        // The format is known from the first bytes, before the file is over.
        let mut s = Sniffer::default();
        s.push(b"MZ");
        assert!(matches!(s.format(), Some(Err(Refusal::Format(_)))));
        let mut s = Sniffer::default();
        s.push(b"%PD");
        assert_eq!(s.format(), None, "may still be a PDF");
        s.push(b"F-1.4");
        assert_eq!(s.format(), Some(Ok(MaterialFormat::Pdf)));
    }

    #[test]
    fn the_tail_kept_is_bounded() {
        let mut s = Sniffer::default();
        for _ in 0..40 {
            s.push(&[7u8; 64 * 1024]);
        }
        assert_eq!(s.tail.len(), TAIL);
        assert_eq!(s.size, 40 * 64 * 1024);
    }
}
