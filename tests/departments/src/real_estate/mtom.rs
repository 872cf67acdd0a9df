//! SOAP with attachments as MTOM/XOP (`multipart/related; type="application/xop+xml"`), read
//! as the package streams in: the root part (the SOAP envelope, GBK) is kept, up to
//! [`MAX_ENVELOPE`]; every other part is an attachment, hashed and counted as it passes and
//! kept by its Content-ID as its type, size, SM3 and first bytes. The envelope's
//! `xop:Include` elements are resolved against them afterwards ([`Package::resolve`]).

use std::collections::HashMap;

use sm3::{Digest, Sm3};

use super::{Fault, client_fault};
use crate::multipart::{self, Event, Parser};

/// The XOP include namespace.
pub(super) const XOP_NS: &str = "http://www.w3.org/2004/08/xop/include";

/// The largest envelope the registry reads.
const MAX_ENVELOPE: usize = 1 << 20;

/// The largest attachment the registry takes (its published limit: 50 MiB).
pub(super) const MAX_ATTACHMENT: u64 = 50 << 20;

/// Attachment types the registry takes, and how each file begins.
const ACCEPTED: &[(&str, &[u8])] = &[
    ("application/pdf", b"%PDF-"),
    ("application/ofd", b"PK\x03\x04"),
    ("image/jpeg", b"\xFF\xD8\xFF"),
];

/// One attachment as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Attachment {
    /// Its declared type (the value of its `Content-Type`, lowercased, without parameters).
    pub content_type: String,
    pub size: u64,
    /// SM3 of its bytes, computed here.
    pub sm3: String,
    /// Its first bytes, to check the type by.
    pub head: Vec<u8>,
}

/// A whole package: the envelope's bytes and the attachments by Content-ID.
#[derive(Debug, Default)]
pub(super) struct Package {
    /// The envelope's charset, from the root part's `Content-Type`.
    pub charset: Option<String>,
    pub envelope: Vec<u8>,
    pub attachments: HashMap<String, Attachment>,
}

/// The part being read.
enum Current {
    None,
    Root,
    Attachment {
        id: String,
        content_type: String,
        hash: Sm3,
        size: u64,
        head: Vec<u8>,
    },
}

/// Reads one package (see the module).
pub(super) struct PackageReader {
    parser: Parser,
    /// The root part's Content-ID (the `start` parameter); none: the first part is the root.
    start: Option<String>,
    current: Current,
    package: Package,
    root_seen: bool,
    /// Flip a bit of each attachment's first byte as it arrives (the `corrupt_materials`
    /// fault switch), as a line damaging it would.
    corrupt: bool,
    refused: Option<Fault>,
}

fn malformed(reason: impl Into<String>) -> Fault {
    client_fault("E110", format!("MTOM报文格式错误：{}", reason.into()))
}

impl PackageReader {
    /// A reader for a body of this `Content-Type`; refused unless it is an MTOM package.
    pub(super) fn new(content_type: &str, corrupt: bool) -> Result<PackageReader, Fault> {
        let (value, params) = multipart::parse_header_value(content_type);
        if value != "multipart/related" {
            return Err(malformed("Content-Type须为multipart/related"));
        }
        if multipart::param(&params, "type") != Some("application/xop+xml") {
            return Err(malformed("type参数须为application/xop+xml"));
        }
        if multipart::param(&params, "start-info").is_some_and(|i| i != "text/xml") {
            return Err(malformed("start-info须为text/xml（SOAP 1.1）"));
        }
        let boundary =
            multipart::param(&params, "boundary").ok_or_else(|| malformed("缺少boundary参数"))?;
        Ok(PackageReader {
            parser: Parser::new(boundary).map_err(malformed)?,
            start: multipart::param(&params, "start")
                .map(|s| multipart::bare_content_id(s).to_string()),
            current: Current::None,
            package: Package::default(),
            root_seen: false,
            corrupt,
            refused: None,
        })
    }

    /// The next piece of the body. After a refusal the rest is read and dropped, so the fault
    /// reaches the sender rather than a reset connection.
    pub(super) fn feed(&mut self, piece: &[u8]) {
        if self.refused.is_some() {
            return;
        }
        let PackageReader {
            parser,
            start,
            current,
            package,
            root_seen,
            corrupt,
            ..
        } = self;
        let mut refused = None;
        let result = parser.feed(piece, &mut |event| match on_event(
            event,
            start.as_deref(),
            current,
            package,
            root_seen,
            *corrupt,
        ) {
            Ok(()) => Ok(()),
            Err(fault) => {
                let reason = fault.reason.clone();
                refused = Some(fault);
                Err(reason)
            }
        });
        if let Err(reason) = result {
            self.refused = Some(refused.unwrap_or_else(|| malformed(reason)));
        }
    }

    /// The body has ended: the package, or why it is refused.
    pub(super) fn finish(self) -> Result<Package, Fault> {
        if let Some(fault) = self.refused {
            return Err(fault);
        }
        self.parser.finish().map_err(malformed)?;
        if !self.root_seen {
            return Err(malformed("缺少SOAP信封部分"));
        }
        Ok(self.package)
    }
}

fn on_event(
    event: Event<'_>,
    start: Option<&str>,
    current: &mut Current,
    package: &mut Package,
    root_seen: &mut bool,
    corrupt: bool,
) -> Result<(), Fault> {
    match event {
        Event::Headers(headers) => {
            let id = multipart::header(&headers, "content-id")
                .map(|i| multipart::bare_content_id(i).to_string());
            let (content_type, params) = multipart::parse_header_value(
                multipart::header(&headers, "content-type").unwrap_or_default(),
            );
            let is_root = match start {
                Some(start) => id.as_deref() == Some(start),
                None => !*root_seen,
            };
            if is_root {
                if *root_seen {
                    return Err(malformed("SOAP信封部分重复"));
                }
                if content_type != "application/xop+xml" {
                    return Err(malformed("SOAP信封部分的类型须为application/xop+xml"));
                }
                *root_seen = true;
                package.charset = multipart::param(&params, "charset").map(str::to_string);
                *current = Current::Root;
                return Ok(());
            }
            let encoding = multipart::header(&headers, "content-transfer-encoding")
                .unwrap_or("binary")
                .to_ascii_lowercase();
            if encoding != "binary" && encoding != "8bit" {
                return Err(malformed(format!("附件须以binary传输，而非{encoding}")));
            }
            let id = id.ok_or_else(|| malformed("附件缺少Content-ID"))?;
            if package.attachments.contains_key(&id) {
                return Err(malformed(format!("Content-ID重复：{id}")));
            }
            *current = Current::Attachment {
                id,
                content_type,
                hash: Sm3::new(),
                size: 0,
                head: Vec::new(),
            };
        }
        Event::Data(bytes) => match current {
            Current::None => {}
            Current::Root => {
                package.envelope.extend_from_slice(bytes);
                if package.envelope.len() > MAX_ENVELOPE {
                    return Err(malformed("SOAP信封过大"));
                }
            }
            Current::Attachment {
                id,
                hash,
                size,
                head,
                ..
            } => {
                if corrupt && *size == 0 && !bytes.is_empty() {
                    hash.update([bytes[0] ^ 0x01]);
                    hash.update(&bytes[1..]);
                } else {
                    hash.update(bytes);
                }
                *size += bytes.len() as u64;
                if *size > MAX_ATTACHMENT {
                    return Err(client_fault(
                        "E111",
                        format!("附件超过大小限制（{MAX_ATTACHMENT} 字节）：cid:{id}"),
                    ));
                }
                let want = 8usize.saturating_sub(head.len());
                head.extend_from_slice(&bytes[..want.min(bytes.len())]);
            }
        },
        Event::PartEnd => {
            if let Current::Attachment {
                id,
                content_type,
                hash,
                size,
                head,
            } = std::mem::replace(current, Current::None)
            {
                package.attachments.insert(
                    id,
                    Attachment {
                        content_type,
                        size,
                        sm3: hex::encode(hash.finalize()),
                        head,
                    },
                );
            }
            *current = Current::None;
        }
    }
    Ok(())
}

/// `cid:` URL → Content-ID (RFC 2392: percent-encoded).
fn content_id_of(href: &str) -> Option<String> {
    let encoded = href.strip_prefix("cid:")?;
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = encoded.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// One material an application carries as an attachment, once resolved and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Resolved {
    pub clbm: String,
    pub sm3: String,
    pub size: u64,
}

impl Package {
    /// Resolve an attachment entry of the envelope (`<fj>`: `clbm`, `wjlx`, `wjdx`, `wjsm3`,
    /// and `nr` holding one `xop:Include`) against the parts received, and check it as the
    /// registry does: the part is there (`E106`), of the declared type and one the registry
    /// takes, its content that type (`E107`), not empty (`E109`), of the declared size and SM3
    /// (`E108`).
    pub(super) fn resolve(&self, fj: &crate::xml::Element) -> Result<Resolved, Fault> {
        let field = |name: &str| {
            fj.field(name)
                .ok_or_else(|| client_fault("E102", format!("参数错误：附件缺少{name}")))
        };
        let clbm = field("clbm")?;
        let with_code = |mut fault: Fault| {
            fault.material = Some(clbm.to_string());
            fault
        };
        let include = fj
            .child(None, "nr")
            .and_then(|nr| nr.child(Some(XOP_NS), "Include"))
            .ok_or_else(|| with_code(client_fault("E102", "参数错误：附件的nr须为xop:Include")))?;
        let id = include
            .attribute("href")
            .and_then(content_id_of)
            .ok_or_else(|| {
                with_code(client_fault("E102", "参数错误：xop:Include的href须为cid:"))
            })?;
        let part = self
            .attachments
            .get(&id)
            .ok_or_else(|| with_code(client_fault("E106", format!("附件缺失：cid:{id}"))))?;
        let declared = field("wjlx")?;
        let accepted = ACCEPTED
            .iter()
            .find(|(t, _)| *t == part.content_type)
            .is_some_and(|(_, magic)| part.head.starts_with(magic));
        if part.content_type != declared.to_ascii_lowercase() || !accepted {
            return Err(with_code(client_fault(
                "E107",
                format!(
                    "附件类型错误：{}（声明为{declared}；仅接受PDF、OFD、JPEG）",
                    part.content_type
                ),
            )));
        }
        if part.size == 0 {
            return Err(with_code(client_fault("E109", "附件为空")));
        }
        let size_ok = field("wjdx")?.parse::<u64>().ok() == Some(part.size);
        if !size_ok || !field("wjsm3")?.eq_ignore_ascii_case(&part.sm3) {
            return Err(with_code(client_fault(
                "E108",
                "附件大小或SM3摘要与声明不一致",
            )));
        }
        Ok(Resolved {
            clbm: clbm.to_string(),
            sm3: part.sm3.clone(),
            size: part.size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = r#"multipart/related; type="application/xop+xml"; start="<root@gw>"; start-info="text/xml"; boundary="MIME-b""#;

    fn package(parts: &[(&str, &str, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (content_type, id, content) in parts {
            body.extend_from_slice(
                format!("--MIME-b\r\nContent-Type: {content_type}\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <{id}>\r\n\r\n")
                    .as_bytes(),
            );
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--MIME-b--\r\n");
        body
    }

    fn read(content_type: &str, body: &[u8]) -> Result<Package, Fault> {
        read_with(content_type, body, false)
    }

    fn read_with(content_type: &str, body: &[u8], corrupt: bool) -> Result<Package, Fault> {
        let mut reader = PackageReader::new(content_type, corrupt)?;
        for piece in body.chunks(3) {
            reader.feed(piece);
        }
        reader.finish()
    }

    const PDF: &[u8] = b"%PDF-1.7\n\r\n--MIME-c\r\n%%EOF\n";
    const ROOT: &str = "application/xop+xml; charset=GBK; type=\"text/xml\"";

    fn fj(cid: &str, wjlx: &str, size: usize, sm3: &str) -> crate::xml::Element {
        crate::xml::parse(&format!(
            r#"<fj><clbm>sale-contract</clbm><wjlx>{wjlx}</wjlx><wjdx>{size}</wjdx><wjsm3>{sm3}</wjsm3><nr><xop:Include xmlns:xop="{XOP_NS}" href="cid:{cid}"/></nr></fj>"#
        ))
        .unwrap()
    }

    #[test]
    fn the_envelope_and_each_attachment() {
        let body = package(&[
            (
                ROOT,
                "root@gw",
                b"<?xml version=\"1.0\" encoding=\"GBK\"?><e/>",
            ),
            ("application/pdf", "sale-contract@gw", PDF),
        ]);
        let p = read(CT, &body).unwrap();
        assert_eq!(p.charset.as_deref(), Some("GBK"));
        assert_eq!(p.envelope, b"<?xml version=\"1.0\" encoding=\"GBK\"?><e/>");
        let a = &p.attachments["sale-contract@gw"];
        assert_eq!(
            (a.size, a.sm3.clone()),
            (PDF.len() as u64, sdk::sign::sm3_hex(PDF))
        );
        let sm3 = sdk::sign::sm3_hex(PDF);
        let resolved = p
            .resolve(&fj(
                "sale-contract%40gw",
                "application/pdf",
                PDF.len(),
                &sm3,
            ))
            .unwrap();
        assert_eq!(resolved.clbm, "sale-contract");
        assert_eq!(resolved.size, PDF.len() as u64);
        // What the registry refuses, each with the material's code.
        let code = |r: Result<Resolved, Fault>| {
            let f = r.unwrap_err();
            (f.code, f.material)
        };
        let refused = code(p.resolve(&fj("other@gw", "application/pdf", PDF.len(), &sm3)));
        assert_eq!(refused, ("E106", Some("sale-contract".into())));
        assert_eq!(
            code(p.resolve(&fj("sale-contract@gw", "image/jpeg", PDF.len(), &sm3))).0,
            "E107"
        );
        assert_eq!(
            code(p.resolve(&fj("sale-contract@gw", "application/pdf", 3, &sm3))).0,
            "E108"
        );
        assert_eq!(
            code(p.resolve(&fj(
                "sale-contract@gw",
                "application/pdf",
                PDF.len(),
                &"0".repeat(64)
            )))
            .0,
            "E108"
        );
        // A bit flipped on the way: the same size, another SM3.
        let damaged = read_with(CT, &body, true).unwrap();
        let refused = damaged.resolve(&fj("sale-contract@gw", "application/pdf", PDF.len(), &sm3));
        assert_eq!(refused.unwrap_err().code, "E108");
    }

    #[test]
    fn a_type_the_registry_does_not_take_and_an_empty_part() {
        let png: &[u8] = b"\x89PNG\r\n\x1a\nIEND";
        let body = package(&[
            (ROOT, "root@gw", b"<e/>"),
            ("image/png", "p@gw", png),
            ("application/pdf", "empty@gw", b""),
        ]);
        let p = read(CT, &body).unwrap();
        let png_sm3 = sdk::sign::sm3_hex(png);
        assert_eq!(
            p.resolve(&fj("p@gw", "image/png", png.len(), &png_sm3))
                .unwrap_err()
                .code,
            "E107"
        );
        let empty = sdk::sign::sm3_hex(b"");
        // An empty part cannot show it is a PDF either.
        assert!(
            p.resolve(&fj("empty@gw", "application/pdf", 0, &empty))
                .is_err()
        );
    }

    #[test]
    fn malformed_packages_are_refused() {
        let good = package(&[(ROOT, "root@gw", b"<e/>")]);
        assert_eq!(read("text/xml", &good).unwrap_err().code, "E110");
        assert_eq!(
            read(&CT.replace("application/xop+xml", "text/xml"), &good)
                .unwrap_err()
                .code,
            "E110"
        );
        assert_eq!(read(CT, &good[..good.len() - 6]).unwrap_err().code, "E110");
        let no_root = package(&[("application/pdf", "a@gw", PDF)]);
        assert_eq!(read(CT, &no_root).unwrap_err().code, "E110");
        let base64 = b"--MIME-b\r\nContent-Type: application/xop+xml\r\nContent-ID: <root@gw>\r\n\r\n<e/>\r\n--MIME-b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <a@gw>\r\n\r\nJVBERi0=\r\n--MIME-b--\r\n";
        assert!(read(CT, base64).unwrap_err().reason.contains("base64"));
    }

    #[test]
    fn cid_urls_are_percent_decoded() {
        assert_eq!(content_id_of("cid:a%40b.c").as_deref(), Some("a@b.c"));
        assert_eq!(content_id_of("cid:plain@x").as_deref(), Some("plain@x"));
        assert_eq!(content_id_of("http://x"), None);
        assert_eq!(content_id_of("cid:%4"), None);
    }
}
