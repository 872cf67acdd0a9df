//! Files uploaded in chunks ahead of the applications that name them (`/v2/files`): opened
//! once per application, material and digest (opening again answers what is there, so an
//! upload cut off resumes), each chunk checked against its SM3 and kept once, the whole
//! reassembled at completion and checked against the SM3 and size declared. Once complete, only
//! the file's digest and size are kept: what the department found is what an application may
//! name.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Value, json};
use sm3::Digest as _;

/// The chunk sizes the department takes.
pub(crate) const MIN_CHUNK: u64 = 64 * 1024;
pub(crate) const MAX_CHUNK: u64 = 8 << 20;
/// The largest file.
pub(crate) const MAX_FILE: u64 = 50 << 20;

/// What `POST /v2/files` declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Declared {
    pub request_id: String,
    pub code: String,
    pub name: String,
    pub media_type: String,
    pub size: u64,
    /// Lowercase hex.
    pub sm3: String,
    pub chunk_size: u64,
}

impl Declared {
    /// Read an open request's JSON.
    pub fn read(body: &Value) -> Result<Declared, String> {
        let text = |field: &str| {
            body.get(field)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| format!("缺少{field}"))
        };
        let number = |field: &str| {
            body.get(field)
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("{field}须为非负整数"))
        };
        let sm3 = text("sm3")?.to_ascii_lowercase();
        if sm3.len() != 64 || !sm3.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("sm3须为64位十六进制".into());
        }
        let declared = Declared {
            request_id: text("requestId")?,
            code: text("code")?,
            name: text("name")?,
            media_type: text("mediaType")?,
            size: number("size")?,
            sm3,
            chunk_size: number("chunkSize")?,
        };
        if !(MIN_CHUNK..=MAX_CHUNK).contains(&declared.chunk_size) {
            return Err(format!(
                "chunkSize须在{}KB至{}MB之间",
                MIN_CHUNK >> 10,
                MAX_CHUNK >> 20
            ));
        }
        if declared.size > MAX_FILE {
            return Err(format!("文件不得超过{}MB", MAX_FILE >> 20));
        }
        Ok(declared)
    }

    fn chunks(&self) -> u64 {
        self.size.div_ceil(self.chunk_size).max(1)
    }

    /// The length chunk `n` (below [`Declared::chunks`]) must have.
    fn chunk_len(&self, n: u64) -> u64 {
        self.chunk_size.min(self.size - n * self.chunk_size)
    }
}

/// A refusal: its status, code and message, as the department answers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    pub status: StatusCode,
    pub error: &'static str,
    pub message: String,
}

impl Refused {
    fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        Refused {
            status,
            error,
            message: message.into(),
        }
    }

    pub fn body(&self) -> Value {
        json!({ "error": self.error, "message": self.message })
    }
}

#[derive(Debug)]
struct Upload {
    id: String,
    declared: Declared,
    /// Chunks received, by number: their SM3 and, until the file is complete, their bytes.
    received: BTreeMap<u64, (String, Bytes)>,
    /// Set at completion: the SM3 and size of the file reassembled.
    complete: Option<(String, u64)>,
}

impl Upload {
    fn answer(&self) -> Value {
        json!({
            "fileId": self.id,
            "chunkSize": self.declared.chunk_size,
            "chunks": self.declared.chunks(),
            "received": self.received.keys().collect::<Vec<_>>(),
            "status": if self.complete.is_some() { "COMPLETE" } else { "UPLOADING" },
        })
    }
}

/// A complete file, as an application may name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Complete {
    pub request_id: String,
    pub code: String,
    /// SM3 and size of the bytes the department reassembled.
    pub sm3: String,
    pub size: u64,
}

/// Every upload, open or complete.
#[derive(Debug, Default)]
pub(crate) struct Files {
    uploads: HashMap<String, Upload>,
    /// (request id, material code, SM3) → file id: one upload per file of an application.
    by_key: HashMap<(String, String, String), String>,
}

impl Files {
    /// Open an upload, or find the one this application's file has: whether it is new, and
    /// the answer (`fileId`, `chunkSize`, `chunks`, `received`, `status`).
    pub fn open(&mut self, declared: Declared, new_id: impl FnOnce() -> String) -> (bool, Value) {
        let key = (
            declared.request_id.clone(),
            declared.code.clone(),
            declared.sm3.clone(),
        );
        if let Some(upload) = self.by_key.get(&key).and_then(|id| self.uploads.get(id)) {
            return (false, upload.answer());
        }
        let id = new_id();
        let upload = Upload {
            id: id.clone(),
            declared,
            received: BTreeMap::new(),
            complete: None,
        };
        let answer = upload.answer();
        self.by_key.insert(key, id.clone());
        self.uploads.insert(id, upload);
        (true, answer)
    }

    fn upload(&self, id: &str) -> Result<&Upload, Refused> {
        self.uploads.get(id).ok_or_else(|| {
            Refused::new(
                StatusCode::NOT_FOUND,
                "file_not_found",
                format!("文件{id}不存在"),
            )
        })
    }

    /// Take chunk `n` of file `id`, whose SM3 the sender says is `claimed` (already computed
    /// over `bytes` as `actual`). A chunk it has already, with the same SM3, is accepted once.
    pub fn chunk(
        &mut self,
        id: &str,
        n: u64,
        claimed: Option<&str>,
        actual: &str,
        bytes: Bytes,
    ) -> Result<Value, Refused> {
        let upload = self.upload(id)?;
        let d = &upload.declared;
        let bad =
            |error, message: String| Err(Refused::new(StatusCode::BAD_REQUEST, error, message));
        if n >= d.chunks() {
            return bad(
                "chunk_out_of_range",
                format!("分片{n}超出范围（共{}片）", d.chunks()),
            );
        }
        let Some(claimed) = claimed.map(str::to_ascii_lowercase) else {
            return bad("invalid", "缺少X-Chunk-SM3".into());
        };
        if let Some((sm3, _)) = upload.received.get(&n) {
            return if *sm3 == claimed && claimed == actual {
                Ok(json!({ "fileId": id, "chunk": n, "duplicate": true }))
            } else {
                Err(Refused::new(
                    StatusCode::CONFLICT,
                    "chunk_conflict",
                    format!("分片{n}已收到，内容不同"),
                ))
            };
        }
        if bytes.len() as u64 != d.chunk_len(n) {
            return bad(
                "chunk_size_mismatch",
                format!("分片{n}应为{}字节，收到{}字节", d.chunk_len(n), bytes.len()),
            );
        }
        if claimed != actual {
            return bad("chunk_digest_mismatch", format!("分片{n}的SM3与内容不符"));
        }
        let upload = self.uploads.get_mut(id).expect("found above");
        upload.received.insert(n, (claimed, bytes));
        Ok(json!({ "fileId": id, "chunk": n }))
    }

    /// The chunks of file `id` in order, to reassemble (`Ok(Ok)`), or its answer when it is
    /// complete already (`Ok(Err)`), or why it cannot complete: a chunk missing.
    pub fn to_reassemble(&self, id: &str) -> Result<Result<Vec<Bytes>, Value>, Refused> {
        let upload = self.upload(id)?;
        if upload.complete.is_some() {
            return Ok(Err(self.completion(upload)));
        }
        let missing: Vec<u64> = (0..upload.declared.chunks())
            .filter(|n| !upload.received.contains_key(n))
            .collect();
        if !missing.is_empty() {
            return Err(Refused::new(
                StatusCode::CONFLICT,
                "chunks_missing",
                format!("文件不完整，缺少分片{missing:?}"),
            ));
        }
        Ok(Ok(upload
            .received
            .values()
            .map(|(_, b)| b.clone())
            .collect()))
    }

    /// Finish file `id`, whose reassembled bytes have `sm3` and `size`, against what the
    /// sender declared at open and at completion (`claimed`). A file that does not add up
    /// starts over: its chunks are dropped, so a new attempt sends them all again.
    pub fn complete(
        &mut self,
        id: &str,
        (sm3, size): (String, u64),
        claimed: (&str, u64),
    ) -> Result<Value, Refused> {
        let upload = self.uploads.get_mut(id).ok_or_else(|| {
            Refused::new(
                StatusCode::NOT_FOUND,
                "file_not_found",
                format!("文件{id}不存在"),
            )
        })?;
        if upload.complete.is_none() {
            let d = &upload.declared;
            let agrees = sm3 == d.sm3
                && size == d.size
                && claimed.0.eq_ignore_ascii_case(&sm3)
                && claimed.1 == size;
            if !agrees {
                upload.received.clear();
                return Err(Refused::new(
                    StatusCode::BAD_REQUEST,
                    "file_digest_mismatch",
                    "文件重组后的SM3摘要或大小与声明不符，请重新上传",
                ));
            }
            // Only the digests are kept once the file is known whole.
            for (_, bytes) in upload.received.values_mut() {
                *bytes = Bytes::new();
            }
            upload.complete = Some((sm3, size));
        }
        let upload = &self.uploads[id];
        Ok(self.completion(upload))
    }

    fn completion(&self, upload: &Upload) -> Value {
        let (sm3, size) = upload.complete.clone().unwrap_or_default();
        json!({ "fileId": upload.id, "status": "COMPLETE", "sm3": sm3, "size": size })
    }

    /// File `id` when it is complete.
    pub fn completed(&self, id: &str) -> Option<Complete> {
        let upload = self.uploads.get(id)?;
        let (sm3, size) = upload.complete.clone()?;
        Some(Complete {
            request_id: upload.declared.request_id.clone(),
            code: upload.declared.code.clone(),
            sm3,
            size,
        })
    }
}

/// The SM3 and size of chunks in order.
pub(crate) fn digest(chunks: &[Bytes]) -> (String, u64) {
    let mut hash = sm3::Sm3::new();
    let mut size = 0;
    for chunk in chunks {
        hash.update(chunk);
        size += chunk.len() as u64;
    }
    (hex::encode(hash.finalize()), size)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNK: usize = 64 * 1024;

    fn file() -> Vec<u8> {
        (0..CHUNK * 2 + 100).map(|i| (i * 31 % 253) as u8).collect()
    }

    fn declared(bytes: &[u8]) -> Declared {
        Declared::read(&json!({"requestId": "r1", "code": "food-safety-rules",
            "name": "食品安全管理制度", "mediaType": "application/pdf", "size": bytes.len(),
            "sm3": sdk::sign::sm3_hex(bytes), "chunkSize": CHUNK}))
        .unwrap()
    }

    fn put(files: &mut Files, bytes: &[u8], n: usize) -> Result<Value, Refused> {
        let part = &bytes[n * CHUNK..((n + 1) * CHUNK).min(bytes.len())];
        let sm3 = sdk::sign::sm3_hex(part);
        files.chunk(
            "F1",
            n as u64,
            Some(&sm3),
            &sm3,
            Bytes::copy_from_slice(part),
        )
    }

    fn finish(files: &mut Files, bytes: &[u8]) -> Result<Value, Refused> {
        let chunks = match files.to_reassemble("F1")? {
            Ok(chunks) => chunks,
            Err(done) => return Ok(done),
        };
        let sm3 = sdk::sign::sm3_hex(bytes);
        files.complete("F1", digest(&chunks), (&sm3, bytes.len() as u64))
    }

    #[test]
    fn chunks_are_checked_kept_once_and_reassembled() {
        let bytes = file();
        let mut files = Files::default();
        let (new, answer) = files.open(declared(&bytes), || "F1".into());
        assert!(new);
        assert_eq!(answer["chunks"], 3);
        put(&mut files, &bytes, 2).unwrap();
        put(&mut files, &bytes, 0).unwrap();
        // Sent again after a crash: accepted, once.
        assert_eq!(put(&mut files, &bytes, 0).unwrap()["duplicate"], true);
        // Opening again says what is there; the same id.
        let (new, answer) = files.open(declared(&bytes), || "F2".into());
        assert!(!new);
        assert_eq!(
            (answer["fileId"].as_str(), &answer["received"]),
            (Some("F1"), &json!([0, 2]))
        );
        // A chunk missing.
        let missing = finish(&mut files, &bytes).unwrap_err();
        assert_eq!(
            (missing.status, missing.error),
            (StatusCode::CONFLICT, "chunks_missing")
        );
        assert!(missing.message.contains("[1]"));
        put(&mut files, &bytes, 1).unwrap();
        let done = finish(&mut files, &bytes).unwrap();
        assert_eq!(done["sm3"], sdk::sign::sm3_hex(&bytes));
        assert_eq!(done["size"], bytes.len());
        assert_eq!(
            finish(&mut files, &bytes).unwrap(),
            done,
            "completing twice"
        );
        let complete = files.completed("F1").unwrap();
        assert_eq!(
            (complete.request_id.as_str(), complete.size),
            ("r1", bytes.len() as u64)
        );
        assert_eq!(
            files.open(declared(&bytes), || "F3".into()).1["status"],
            "COMPLETE"
        );
    }

    #[test]
    fn bad_chunks_and_totals_are_refused_with_their_own_codes() {
        let bytes = file();
        let mut files = Files::default();
        files.open(declared(&bytes), || "F1".into());
        let part = Bytes::copy_from_slice(&bytes[..CHUNK]);
        let sm3 = sdk::sign::sm3_hex(&part);
        let refused = |r: Result<Value, Refused>| r.unwrap_err().error;
        assert_eq!(
            refused(files.chunk("F1", 0, Some(&"0".repeat(64)), &sm3, part.clone())),
            "chunk_digest_mismatch"
        );
        assert_eq!(
            refused(files.chunk("F1", 0, None, &sm3, part.clone())),
            "invalid"
        );
        assert_eq!(
            refused(files.chunk("F1", 3, Some(&sm3), &sm3, part.clone())),
            "chunk_out_of_range"
        );
        assert_eq!(
            refused(files.chunk("F1", 2, Some(&sm3), &sm3, part.clone())),
            "chunk_size_mismatch"
        );
        assert_eq!(
            refused(files.chunk("F2", 0, Some(&sm3), &sm3, part.clone())),
            "file_not_found"
        );
        files.chunk("F1", 0, Some(&sm3), &sm3, part).unwrap();
        let other = Bytes::from(vec![0u8; CHUNK]);
        let other_sm3 = sdk::sign::sm3_hex(&other);
        assert_eq!(
            refused(files.chunk("F1", 0, Some(&other_sm3), &other_sm3, other)),
            "chunk_conflict"
        );
        // A whole that does not add up starts over.
        put(&mut files, &bytes, 1).unwrap();
        put(&mut files, &bytes, 2).unwrap();
        let chunks = files.to_reassemble("F1").unwrap().unwrap();
        let wrong = files
            .complete("F1", digest(&chunks), (&"1".repeat(64), bytes.len() as u64))
            .unwrap_err();
        assert_eq!(wrong.error, "file_digest_mismatch");
        assert_eq!(
            files.open(declared(&bytes), || "F9".into()).1["received"],
            json!([])
        );
        assert!(files.completed("F1").is_none());
    }

    #[test]
    fn opens_are_checked() {
        let mut body = json!({"requestId": "r", "code": "c", "name": "甲", "mediaType": "application/pdf",
            "size": 10, "sm3": "A".repeat(64), "chunkSize": 1024});
        assert!(Declared::read(&body).unwrap_err().contains("chunkSize"));
        body["chunkSize"] = json!(MIN_CHUNK);
        assert_eq!(Declared::read(&body).unwrap().sm3, "a".repeat(64));
        body["size"] = json!(MAX_FILE + 1);
        assert!(Declared::read(&body).is_err());
        body["size"] = json!(10);
        body["sm3"] = json!("xyz");
        assert!(Declared::read(&body).unwrap_err().contains("sm3"));
        // An empty file is one empty chunk.
        let empty = Declared {
            size: 0,
            ..Declared::read(&json!({"requestId": "r", "code": "c", "name": "甲",
                "mediaType": "application/pdf", "size": 0, "sm3": "a".repeat(64),
                "chunkSize": MIN_CHUNK}))
            .unwrap()
        };
        assert_eq!((empty.chunks(), empty.chunk_len(0)), (1, 0));
    }
}
