//! 文件上传 (`POST /api/v1/wjsc`): one material file per signed `multipart/form-data` request,
//! answered with the department's file id (`wjid`), which the application (`swdj`, `qssb`)
//! then lists in `fjlb` (PROTOCOLS.md, "Tax", "Materials").
//!
//! The body streams through: its SM3 and the file's are computed as the bytes arrive, the
//! form's parts read with [`crate::multipart`], and only the file's digest, size and first
//! bytes are kept. The request is signed over the SM3 of the whole body (`X-Content-SM3`,
//! checked by the signature layer before the body is read); once the body is in, a body whose
//! SM3 is not the signed one is refused (`4014`), as are an empty file (`3001`), one over
//! [`MAX_FILE_BYTES`] (`3002`), a file whose SM3 is not the declared `wjsm3` (`3003`) and a type
//! the department does not take (`3004`). The same file (by SM3) uploaded again for the same
//! application (`qqid`) gets the same file id: a sender that crashed after uploading and
//! uploads again is not charged twice.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::json;
use sm3::{Digest, Sm3};

use crate::common::{Answer, Sim};
use crate::multipart::{self, Event, Parser};

/// The upload path.
pub(crate) const WJSC_PATH: &str = "/api/v1/wjsc";

/// The largest file the department takes (its published limit: 20 MiB).
pub(crate) const MAX_FILE_BYTES: u64 = 20 << 20;

/// What the form may carry besides the file: at most this much per field.
const MAX_FIELD_BYTES: usize = 1024;

/// Media types the department takes, and how each file begins.
const ACCEPTED: &[(&str, &[u8])] = &[
    ("application/pdf", b"%PDF-"),
    ("application/ofd", b"PK\x03\x04"),
    ("image/jpeg", b"\xFF\xD8\xFF"),
];

/// One file the department holds, under its id.
#[derive(Clone, Debug)]
pub(crate) struct StoredFile {
    /// The application (request id) it was uploaded for.
    pub qqid: String,
    /// 材料编码, as the uploader named it.
    pub clbm: String,
    /// SM3 of the bytes received, computed here.
    pub sm3: String,
    /// Bytes received.
    pub size: u64,
    /// How many times it arrived (a repeat after a crash gets the same id).
    pub uploads: usize,
}

/// The files received, by id, and the id of each (application, file SM3).
#[derive(Default)]
pub(crate) struct Files {
    by_id: HashMap<String, StoredFile>,
    by_content: HashMap<(String, String), String>,
}

impl Files {
    /// The file `wjid` if it was uploaded for application `qqid`.
    pub(crate) fn of_application(&self, qqid: &str, wjid: &str) -> Option<&StoredFile> {
        self.by_id.get(wjid).filter(|f| f.qqid == qqid)
    }

    /// Keep a received file, or count it again when this application has it already: its id.
    fn keep(&mut self, file: StoredFile, new_id: impl FnOnce() -> String) -> (String, &StoredFile) {
        let key = (file.qqid.clone(), file.sm3.clone());
        let id = match self.by_content.get(&key) {
            Some(id) => id.clone(),
            None => {
                let id = new_id();
                self.by_content.insert(key, id.clone());
                id
            }
        };
        let stored = self
            .by_id
            .entry(id.clone())
            .and_modify(|f| f.uploads += 1)
            .or_insert(file);
        (id, stored)
    }
}

/// A refusal of an upload: the department's code and message, and the counter's reason.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub msg: String,
    pub reason: &'static str,
}

fn refusal(code: &'static str, msg: impl Into<String>, reason: &'static str) -> Refusal {
    Refusal {
        status: StatusCode::OK,
        code,
        msg: msg.into(),
        reason,
    }
}

/// A form part being read.
#[derive(Default)]
enum Part {
    #[default]
    Ignored,
    Field(String, Vec<u8>),
    File(FileReader),
}

/// The file part, read through: its digest, size, declared type and first bytes.
struct FileReader {
    hash: Sm3,
    size: u64,
    media_type: String,
    head: Vec<u8>,
}

/// What a whole upload form said, once read.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Upload {
    pub fields: HashMap<String, String>,
    /// The file part: declared type, SM3 and size of what arrived, its first bytes.
    pub file: Option<(String, String, u64, Vec<u8>)>,
}

/// Reads an upload form as it arrives (see the module).
pub(crate) struct FormReader {
    parser: Parser,
    body_hash: Sm3,
    body_size: u64,
    part: Part,
    upload: Upload,
    max_file: u64,
    /// Flip a bit of the file's first byte as it arrives (the `corrupt_materials` fault
    /// switch), as a line damaging it would.
    corrupt: bool,
    /// The first refusal found; the rest of the body is still read (and hashed) so the
    /// answer reaches the sender rather than a reset connection.
    refused: Option<Refusal>,
}

impl FormReader {
    /// A reader for a body of this `Content-Type`, taking files up to `max_file` bytes.
    pub(crate) fn new(
        content_type: Option<&str>,
        max_file: u64,
        corrupt: bool,
    ) -> Result<FormReader, Refusal> {
        let (value, params) = multipart::parse_header_value(content_type.unwrap_or_default());
        let boundary = multipart::param(&params, "boundary");
        let (true, Some(boundary)) = (value == "multipart/form-data", boundary) else {
            return Err(refusal(
                "1001",
                "参数错误：文件上传须为multipart/form-data",
                "invalid_request",
            ));
        };
        let parser = Parser::new(boundary)
            .map_err(|m| refusal("1001", format!("参数错误：{m}"), "invalid_request"))?;
        Ok(FormReader {
            parser,
            body_hash: Sm3::new(),
            body_size: 0,
            part: Part::Ignored,
            upload: Upload::default(),
            max_file,
            corrupt,
            refused: None,
        })
    }

    /// The next piece of the body.
    pub(crate) fn feed(&mut self, piece: &[u8]) {
        self.body_hash.update(piece);
        self.body_size += piece.len() as u64;
        if self.refused.is_some() {
            return;
        }
        let FormReader {
            parser,
            part,
            upload,
            max_file,
            corrupt,
            ..
        } = self;
        let result = parser.feed(piece, &mut |event| {
            on_event(event, part, upload, *max_file, *corrupt)
        });
        if let Err(msg) = result {
            self.refused = Some(match msg.strip_prefix(TOO_LARGE) {
                Some(_) => refusal(
                    "3002",
                    format!("文件超过大小限制（{} 字节）", self.max_file),
                    "file_too_large",
                ),
                None => refusal("1001", format!("参数错误：{msg}"), "invalid_request"),
            });
        }
    }

    /// The body has ended: what the form said, or the first refusal. `signed_sm3` is the
    /// body's SM3 as the sender signed it.
    pub(crate) fn finish(self, signed_sm3: &str) -> Result<Upload, Refusal> {
        let body_sm3 = hex::encode(self.body_hash.finalize());
        // The signature covers the declared digest: a body that is not the one signed was
        // altered on the way, whatever else is wrong with it. (A bit the fault switch flipped
        // in the file is one flipped in the body: its SM3 is another too.)
        let damaged = self.corrupt && self.upload.file.as_ref().is_some_and(|f| f.2 > 0);
        if body_sm3 != signed_sm3 || damaged {
            return Err(Refusal {
                status: StatusCode::UNAUTHORIZED,
                code: "4014",
                msg: "请求体SM3摘要与签名不符".into(),
                reason: "body_digest_mismatch",
            });
        }
        if let Some(refused) = self.refused {
            return Err(refused);
        }
        self.parser
            .finish()
            .map_err(|m| refusal("1001", format!("参数错误：{m}"), "invalid_request"))?;
        Ok(self.upload)
    }
}

/// The prefix of the sink's error for a file over the limit.
const TOO_LARGE: &str = "too-large:";

fn on_event(
    event: Event<'_>,
    part: &mut Part,
    upload: &mut Upload,
    max_file: u64,
    corrupt: bool,
) -> Result<(), String> {
    match event {
        Event::Headers(headers) => {
            let disposition = multipart::header(&headers, "content-disposition").unwrap_or("");
            let (kind, params) = multipart::parse_header_value(disposition);
            let name = multipart::param(&params, "name");
            *part = match (kind.as_str(), name) {
                ("form-data", Some("file")) => {
                    if upload.file.is_some() {
                        return Err("一次只能上传一个文件".into());
                    }
                    let media_type = multipart::header(&headers, "content-type")
                        .map(|v| multipart::parse_header_value(v).0)
                        .unwrap_or_default();
                    Part::File(FileReader {
                        hash: Sm3::new(),
                        size: 0,
                        media_type,
                        head: Vec::new(),
                    })
                }
                ("form-data", Some(name)) => Part::Field(name.to_string(), Vec::new()),
                _ => return Err("表单部分缺少Content-Disposition: form-data; name".into()),
            };
        }
        Event::Data(bytes) => match part {
            Part::Ignored => {}
            Part::Field(name, value) => {
                value.extend_from_slice(bytes);
                if value.len() > MAX_FIELD_BYTES {
                    return Err(format!("字段{name}过长"));
                }
            }
            Part::File(file) => {
                if corrupt && file.size == 0 && !bytes.is_empty() {
                    file.hash.update([bytes[0] ^ 0x01]);
                    file.hash.update(&bytes[1..]);
                } else {
                    file.hash.update(bytes);
                }
                file.size += bytes.len() as u64;
                if file.size > max_file {
                    return Err(TOO_LARGE.into());
                }
                let want = 8usize.saturating_sub(file.head.len());
                file.head.extend_from_slice(&bytes[..want.min(bytes.len())]);
            }
        },
        Event::PartEnd => match std::mem::take(part) {
            Part::Ignored => {}
            Part::Field(name, value) => {
                let value =
                    String::from_utf8(value).map_err(|_| format!("字段{name}不是UTF-8文本"))?;
                upload.fields.insert(name, value.trim().to_string());
            }
            Part::File(file) => {
                let sm3 = hex::encode(file.hash.finalize());
                upload.file = Some((file.media_type, sm3, file.size, file.head));
            }
        },
    }
    Ok(())
}

/// What the department checks of a complete upload before keeping it: the fields it needs,
/// the file's presence, size, declared digest and type.
pub(crate) fn check(upload: &Upload) -> Result<(), Refusal> {
    for field in ["qqid", "clbm", "wjsm3"] {
        if upload.fields.get(field).is_none_or(|v| v.is_empty()) {
            return Err(refusal(
                "1001",
                format!("参数错误：缺少{field}"),
                "invalid_request",
            ));
        }
    }
    let Some((media_type, sm3, size, head)) = &upload.file else {
        return Err(refusal("1001", "参数错误：缺少file", "invalid_request"));
    };
    if *size == 0 {
        return Err(refusal("3001", "文件为空", "empty_file"));
    }
    if !upload.fields["wjsm3"].eq_ignore_ascii_case(sm3) {
        return Err(refusal(
            "3003",
            "文件SM3摘要与wjsm3不一致",
            "file_digest_mismatch",
        ));
    }
    let accepted = ACCEPTED
        .iter()
        .find(|(t, _)| t == media_type)
        .is_some_and(|(_, magic)| head.starts_with(magic));
    if !accepted {
        return Err(refusal(
            "3004",
            format!("文件类型不支持：{media_type}（仅接受PDF、OFD、JPEG）"),
            "file_type",
        ));
    }
    Ok(())
}

/// The `wjsc` exchange: read the form (see the module), keep the file, answer its id.
pub(crate) async fn upload(
    sim: &Sim,
    files: &std::sync::Mutex<Files>,
    max_file: u64,
    headers: &HeaderMap,
    mut body: Body,
) -> Answer {
    let fail = |r: Refusal| {
        sim.reject(r.reason);
        Answer::json(
            r.status,
            &json!({"code": r.code, "msg": r.msg, "data": null}),
        )
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let signed = headers
        .get("X-Content-SM3")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let corrupt = sim.faults().corrupt_materials;
    let mut reader = match FormReader::new(content_type, max_file, corrupt) {
        Ok(reader) => reader,
        Err(r) => return fail(r),
    };
    // However much arrives, stop reading past a hard cap: the sender is not a client.
    let cap = max_file.saturating_mul(2) + (1 << 20);
    let mut stall = sim.upload_stall();
    while let Some(piece) = multipart::next_piece(&mut body).await {
        match piece {
            Ok(piece) => {
                reader.feed(&piece);
                stall.passed(sim, reader.body_size).await;
            }
            Err(e) => {
                tracing::info!(error = %e, "upload broke off");
                return fail(refusal("1001", "参数错误：请求体不完整", "invalid_request"));
            }
        }
        if reader.body_size > cap {
            break;
        }
    }
    let upload = match reader.finish(signed).and_then(|u| check(&u).map(|()| u)) {
        Ok(upload) => upload,
        Err(r) => return fail(r),
    };
    let (_, sm3, size, _) = upload.file.clone().expect("checked: a file");
    let qqid = upload.fields["qqid"].clone();
    let mut files = files.lock().unwrap_or_else(|e| e.into_inner());
    let (wjid, stored) = files.keep(
        StoredFile {
            qqid: qqid.clone(),
            clbm: upload.fields["clbm"].clone(),
            sm3: sm3.clone(),
            size,
            uploads: 1,
        },
        || sim.next_number("WJ"),
    );
    tracing::info!(
        wjid,
        qqid,
        clbm = stored.clbm,
        size,
        uploads = stored.uploads,
        "file uploaded"
    );
    Answer::json(
        StatusCode::OK,
        &json!({"code": "0000", "msg": "成功", "data": {"wjid": wjid, "wjdx": size, "wjsm3": sm3}}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(boundary: &str, fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                    .as_bytes(),
            );
        }
        if let Some((media_type, bytes)) = file {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\nContent-Type: {media_type}\r\n\r\n")
                    .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        body
    }

    fn read(body: &[u8], max_file: u64, signed: Option<&str>) -> Result<Upload, Refusal> {
        read_with(body, max_file, signed, false)
    }

    fn read_with(
        body: &[u8],
        max_file: u64,
        signed: Option<&str>,
        corrupt: bool,
    ) -> Result<Upload, Refusal> {
        let content_type = "multipart/form-data; boundary=\"b-1\"";
        let mut reader = FormReader::new(Some(content_type), max_file, corrupt)?;
        for piece in body.chunks(5) {
            reader.feed(piece);
        }
        let sm3 = sdk::sign::sm3_hex(body);
        reader
            .finish(signed.unwrap_or(&sm3))
            .and_then(|u| check(&u).map(|()| u))
    }

    const PDF: &[u8] = b"%PDF-1.7\nsome content\n%%EOF\n";

    fn fields(sm3: &str) -> Vec<(&'static str, String)> {
        vec![
            ("qqid", "case-1:tax".into()),
            ("clbm", "premises-proof".into()),
            ("wjsm3", sm3.into()),
        ]
    }

    fn as_refs<'a>(f: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
        f.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    #[test]
    fn a_good_upload_is_read_with_its_digest() {
        let f = fields(&sdk::sign::sm3_hex(PDF));
        let body = form("b-1", &as_refs(&f), Some(("application/pdf", PDF)));
        let upload = read(&body, 1000, None).unwrap();
        assert_eq!(upload.fields["clbm"], "premises-proof");
        let (media_type, sm3, size, _) = upload.file.unwrap();
        assert_eq!(
            (media_type.as_str(), size),
            ("application/pdf", PDF.len() as u64)
        );
        assert_eq!(sm3, sdk::sign::sm3_hex(PDF));
    }

    #[test]
    fn what_the_department_refuses() {
        let code = |r: Result<Upload, Refusal>| r.unwrap_err().code;
        let good = fields(&sdk::sign::sm3_hex(PDF));
        let body = form("b-1", &as_refs(&good), Some(("application/pdf", PDF)));
        assert_eq!(code(read(&body, 1000, Some(&"0".repeat(64)))), "4014");
        assert_eq!(code(read(&body, 10, None)), "3002");
        let empty = fields(&sdk::sign::sm3_hex(b""));
        assert_eq!(
            code(read(
                &form("b-1", &as_refs(&empty), Some(("application/pdf", b""))),
                1000,
                None
            )),
            "3001"
        );
        let wrong = fields(&"a".repeat(64));
        assert_eq!(
            code(read(
                &form("b-1", &as_refs(&wrong), Some(("application/pdf", PDF))),
                1000,
                None
            )),
            "3003"
        );
        let png: &[u8] = b"\x89PNG\r\n\x1a\nrest";
        let f = fields(&sdk::sign::sm3_hex(png));
        assert_eq!(
            code(read(
                &form("b-1", &as_refs(&f), Some(("image/png", png))),
                1000,
                None
            )),
            "3004"
        );
        // A PDF declared as JPEG is not a JPEG.
        assert_eq!(
            code(read(
                &form("b-1", &as_refs(&good), Some(("image/jpeg", PDF))),
                1000,
                None
            )),
            "3004"
        );
        assert_eq!(
            code(read(&form("b-1", &as_refs(&good), None), 1000, None)),
            "1001"
        );
        assert_eq!(code(read(&body[..body.len() - 8], 1000, None)), "1001");
        assert!(FormReader::new(Some("application/json"), 10, false).is_err());
        // A bit flipped on the way: the body is not the one signed.
        assert_eq!(code(read_with(&body, 1000, None, true)), "4014");
    }

    #[test]
    fn the_same_file_for_the_same_application_keeps_its_id() {
        let mut files = Files::default();
        let file = |qqid: &str| StoredFile {
            qqid: qqid.into(),
            clbm: "c".into(),
            sm3: "s".into(),
            size: 1,
            uploads: 1,
        };
        let (first, _) = files.keep(file("a"), || "WJ1".into());
        let (again, stored) = files.keep(file("a"), || "WJ2".into());
        assert_eq!(
            (first.as_str(), again.as_str(), stored.uploads),
            ("WJ1", "WJ1", 2)
        );
        let (other, _) = files.keep(file("b"), || "WJ3".into());
        assert_eq!(other, "WJ3", "another application's copy is its own");
        assert!(files.of_application("a", "WJ1").is_some());
        assert!(files.of_application("b", "WJ1").is_none());
        assert!(files.of_application("a", "WJ9").is_none());
    }
}
