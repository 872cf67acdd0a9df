//! The department's upload of materials in chunks, as pure functions: what to send and how to
//! read the answers. Nothing here calls the host.
//!
//! A file is uploaded before the application that names it:
//! - `POST /v2/files` `{"requestId", "code", "name", "mediaType", "size", "sm3", "chunkSize"}`
//!   opens it → `201` (or `200` when this application's file with this code and SM3 is open or
//!   complete already) `{"fileId", "chunkSize", "chunks", "received": [n…], "status":
//!   "UPLOADING"|"COMPLETE"}`. The department's `chunkSize` is the one to cut by.
//! - `PUT /v2/files/{fileId}/chunks/{n}`, the chunk's bytes with `X-Chunk-SM3` → `200`; a chunk
//!   it has already is accepted once (`"duplicate": true`), so a chunk sent again after a crash
//!   is harmless, and the chunks `received` need not be sent again.
//! - `POST /v2/files/{fileId}/complete` `{"sm3", "size"}`: the department reassembles the file,
//!   checks every chunk is there and the whole's SM3 and size → `200 {"fileId", "status":
//!   "COMPLETE", "sm3", "size"}`.
//!
//! The application then lists its materials (`"materials"`, [`materials_field`]): each file by
//! its `fileId`, each 免提交 licence by its GB/T 36904 identifier, each promise (容缺) as such.
//!
//! Refusals (`4xx {"error", "message"}`: `chunk_digest_mismatch`, `chunk_size_mismatch`,
//! `chunk_conflict`, `chunks_missing`, `file_digest_mismatch`, `file_not_found` …) say the bytes
//! or the transfer went wrong, never the applicant: they are `Protocol` errors, so the gateway
//! sends again (from the open, which says what the department has) and an operator looks if it
//! persists.

use crate::protocol::percent_encode;
use sdk::{AdapterError, FileInfo, Material, MaterialSource};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Where uploads are opened.
pub const FILES_PATH: &str = "/v2/files";
/// The chunk size the adapter asks for: 1 MiB (the department takes 64 KiB to 8 MiB).
pub const CHUNK_SIZE: u64 = 1 << 20;
/// The header with a chunk's SM3.
pub const CHUNK_SM3_HEADER: &str = "X-Chunk-SM3";
/// The largest chunk the adapter accepts the department to ask for (its own limit is 8 MiB).
const MAX_CHUNK: u64 = 64 << 20;

/// The `POST /v2/files` body for one file of an application.
pub fn open_body(request_id: &str, material: &Material, file: &FileInfo) -> Value {
    json!({
        "requestId": request_id,
        "code": material.code,
        "name": material.name,
        "mediaType": file.media_type,
        "size": file.size,
        "sm3": file.sm3,
        "chunkSize": CHUNK_SIZE,
    })
}

/// An open upload, as the department answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The department's id of the file.
    pub file_id: String,
    /// The size to cut the file by.
    pub chunk_size: u64,
    /// Chunks the department has already (sent before a crash, say).
    pub received: BTreeSet<u64>,
    /// The department has the whole file: nothing more to send.
    pub complete: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OpenAnswer {
    file_id: String,
    chunk_size: u64,
    #[serde(default)]
    received: Vec<u64>,
    status: String,
}

#[derive(Deserialize)]
struct Refusal {
    #[serde(default)]
    error: String,
    #[serde(default)]
    message: String,
}

/// The error of an upload answer that is not 2xx (401 is the caller's to retry): 5xx
/// `Unavailable`, every refusal `Protocol` with the department's code and message.
pub fn upload_error(status: u16, body: &[u8]) -> AdapterError {
    if status >= 500 {
        return AdapterError::Unavailable(format!("department answered HTTP {status}"));
    }
    let refusal: Option<Refusal> = serde_json::from_slice(body).ok();
    let (error, message) = refusal.map_or((String::new(), String::new()), |r| (r.error, r.message));
    AdapterError::Protocol(format!(
        "department refused the upload: HTTP {status} {error} {message}"
    ))
}

fn answer(status: u16, body: &[u8]) -> Result<&[u8], AdapterError> {
    if (200..300).contains(&status) {
        Ok(body)
    } else {
        Err(upload_error(status, body))
    }
}

fn unreadable(what: &str, e: impl std::fmt::Display) -> AdapterError {
    AdapterError::Protocol(format!("unreadable answer to {what}: {e}"))
}

/// Read the answer of `POST /v2/files` for a file of `size` bytes.
pub fn read_opened(status: u16, body: &[u8], size: u64) -> Result<Opened, AdapterError> {
    let a: OpenAnswer =
        serde_json::from_slice(answer(status, body)?).map_err(|e| unreadable("the open", e))?;
    if a.file_id.is_empty() {
        return Err(unreadable("the open", "an empty fileId"));
    }
    if !(1..=MAX_CHUNK).contains(&a.chunk_size) {
        return Err(unreadable(
            "the open",
            format!("a chunk size of {}", a.chunk_size),
        ));
    }
    let chunks = size.div_ceil(a.chunk_size).max(1);
    if let Some(n) = a.received.iter().find(|n| **n >= chunks) {
        return Err(unreadable(
            "the open",
            format!("chunk {n} received of a file of {chunks}"),
        ));
    }
    let complete = match a.status.as_str() {
        "UPLOADING" => false,
        "COMPLETE" => true,
        other => return Err(unreadable("the open", format!("status {other}"))),
    };
    Ok(Opened {
        file_id: a.file_id,
        chunk_size: a.chunk_size,
        received: a.received.into_iter().collect(),
        complete,
    })
}

/// Where chunk `n` of a file goes.
pub fn chunk_path(file_id: &str, n: u64) -> String {
    format!("{FILES_PATH}/{}/chunks/{n}", percent_encode(file_id))
}

/// Where a file is completed.
pub fn complete_path(file_id: &str) -> String {
    format!("{FILES_PATH}/{}/complete", percent_encode(file_id))
}

/// Read the answer to a chunk.
pub fn read_chunk(status: u16, body: &[u8]) -> Result<(), AdapterError> {
    answer(status, body).map(|_| ())
}

/// The `POST /v2/files/{fileId}/complete` body.
pub fn complete_body(file: &FileInfo) -> Value {
    json!({ "sm3": file.sm3, "size": file.size })
}

/// Read the answer to the completion: the department must have reassembled this very file.
pub fn read_completed(status: u16, body: &[u8], file: &FileInfo) -> Result<(), AdapterError> {
    let a: Value = serde_json::from_slice(answer(status, body)?)
        .map_err(|e| unreadable("the completion", e))?;
    let sm3 = a.get("sm3").and_then(Value::as_str).unwrap_or_default();
    let size = a.get("size").and_then(Value::as_u64);
    if a.get("status").and_then(Value::as_str) != Some("COMPLETE")
        || !sm3.eq_ignore_ascii_case(&file.sm3)
        || size != Some(file.size)
    {
        return Err(unreadable(
            "the completion",
            format!(
                "it does not confirm {} bytes with SM3 {}: {a}",
                file.size, file.sm3
            ),
        ));
    }
    Ok(())
}

/// The application's `materials`: each file by the department's id for it (`uploaded`, by
/// material code), each licence by its identifier, each promise with its date.
pub fn materials_field(materials: &[Material], uploaded: &BTreeMap<String, String>) -> Value {
    materials
        .iter()
        .map(|m| {
            let mut entry = json!({ "code": m.code, "name": m.name });
            match &m.source {
                MaterialSource::File(_) => {
                    entry["fileId"] = uploaded.get(&m.code).cloned().unwrap_or_default().into();
                }
                MaterialSource::Licence(l) => {
                    entry["licence"] = json!({ "id": l.id, "kind": l.kind, "number": l.number });
                }
                MaterialSource::Promised(due) => {
                    entry["promised"] = json!({ "due": due });
                }
            }
            entry
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(size: u64) -> FileInfo {
        FileInfo {
            media_type: "application/pdf".into(),
            size,
            sm3: "ab".repeat(32),
        }
    }

    #[test]
    fn an_open_says_what_the_department_has() {
        let opened = read_opened(
            200,
            br#"{"fileId":"F1","chunkSize":1048576,"chunks":3,"received":[0,2],"status":"UPLOADING"}"#,
            3 << 20,
        )
        .unwrap();
        assert_eq!(opened.received, BTreeSet::from([0, 2]));
        assert!(!opened.complete);
        let done = read_opened(
            200,
            br#"{"fileId":"F1","chunkSize":1048576,"received":[0],"status":"COMPLETE"}"#,
            10,
        )
        .unwrap();
        assert!(done.complete);
        for bad in [
            &br#"{"fileId":"","chunkSize":1024,"status":"UPLOADING"}"#[..],
            br#"{"fileId":"F","chunkSize":0,"status":"UPLOADING"}"#,
            br#"{"fileId":"F","chunkSize":1024,"received":[1],"status":"UPLOADING"}"#,
            br#"{"fileId":"F","chunkSize":1024,"status":"LOST"}"#,
            b"<html>",
        ] {
            assert!(
                matches!(read_opened(201, bad, 1024), Err(AdapterError::Protocol(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn refusals_are_for_the_gateway_to_send_again() {
        let refused =
            r#"{"error":"chunk_digest_mismatch","message":"分片1的SM3与内容不符"}"#.as_bytes();
        assert!(
            matches!(read_chunk(400, refused), Err(AdapterError::Protocol(m)) if m.contains("chunk_digest_mismatch") && m.contains("分片1"))
        );
        assert!(matches!(
            read_chunk(409, br#"{"error":"chunks_missing"}"#),
            Err(AdapterError::Protocol(_))
        ));
        assert!(matches!(
            read_chunk(503, b""),
            Err(AdapterError::Unavailable(_))
        ));
        assert!(read_chunk(200, br#"{"duplicate":true}"#).is_ok());
    }

    #[test]
    fn a_completion_must_confirm_this_very_file() {
        let f = file(5);
        let ok = json!({"fileId": "F", "status": "COMPLETE", "sm3": "AB".repeat(32), "size": 5});
        assert!(read_completed(200, ok.to_string().as_bytes(), &f).is_ok());
        let other = json!({"fileId": "F", "status": "COMPLETE", "sm3": "cd".repeat(32), "size": 5});
        assert!(matches!(
            read_completed(200, other.to_string().as_bytes(), &f),
            Err(AdapterError::Protocol(_))
        ));
        let wrong =
            r#"{"error":"file_digest_mismatch","message":"文件重组后的SM3与声明不符"}"#.as_bytes();
        assert!(
            matches!(read_completed(400, wrong, &f), Err(AdapterError::Protocol(m)) if m.contains("file_digest_mismatch"))
        );
    }

    #[test]
    fn the_application_names_files_licences_and_promises() {
        let materials = vec![
            sdk::testing::material_file(
                "articles-of-association",
                "公司章程",
                "application/pdf",
                b"%PDF",
            ),
            Material {
                code: "business-licence".into(),
                name: "营业执照".into(),
                source: MaterialSource::Licence(sdk::LicenceRef {
                    id: "1.2.156.3005.2.X".into(),
                    kind: "business_licence".into(),
                    number: "N1".into(),
                }),
            },
            Material {
                code: "premises-proof".into(),
                name: "住所使用证明".into(),
                source: MaterialSource::Promised(None),
            },
        ];
        let uploaded = BTreeMap::from([("articles-of-association".to_string(), "F9".to_string())]);
        assert_eq!(
            materials_field(&materials, &uploaded),
            json!([
                {"code": "articles-of-association", "name": "公司章程", "fileId": "F9"},
                {"code": "business-licence", "name": "营业执照",
                 "licence": {"id": "1.2.156.3005.2.X", "kind": "business_licence", "number": "N1"}},
                {"code": "premises-proof", "name": "住所使用证明", "promised": {"due": null}},
            ])
        );
        let body = open_body("k", &materials[0], &file(4));
        assert_eq!(body["chunkSize"], CHUNK_SIZE);
        assert_eq!(body["requestId"], "k");
        assert_eq!(chunk_path("F/1", 2), "/v2/files/F%2F1/chunks/2");
        assert_eq!(complete_path("F1"), "/v2/files/F1/complete");
    }
}
