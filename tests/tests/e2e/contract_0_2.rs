//! Contract 0.2 in the plugin host: a submission's materials, read by the adapter in slices and
//! streamed by the host from the store into department requests.
//!
//! The hostile adapter's `hostile.upload` (built with the sdk's body builders) sends a 20 MB
//! material stored in a real store (SQLite, chunks of 256 KiB) to a department that checks
//! every byte: as a multipart form (with the body's SM3, read through by the adapter), as base64
//! inside GBK XML, and in chunks with each chunk's SM3. The instance runs with a linear memory
//! limit of 8 MiB, and reports how far its memory grew; the department compares what it got with
//! what was stored, and the audit log's record of each exchange has the digest and size of the
//! body as it went out.

use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{post, put};
use gateway_base::config::{Config, Limits};
use gateway_plugins::connection::Connection;
use gateway_plugins::host::contract::{FileInfo, Material, MaterialSource, Submission};
use gateway_plugins::host::{CallError, Department, LoadedAdapter, PluginEngine};
use gateway_store::Store;
use gateway_store::audit::{AuditConfig, AuditLog};
use gateway_store::materials::Attach;
use integration_tests::files::sm3_hex as sm3;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The material's size: 20 MB.
const SIZE: usize = 20_000_000;
/// The bound the adapter instance runs under, and what the issue asks of its memory.
const MEMORY_MIB: u32 = 8;

/// What the department received.
#[derive(Debug, Default)]
struct Received {
    /// Per request: path, the `content-length` it declared, the bytes it got, their SM3.
    requests: Vec<(String, Option<u64>, usize, String)>,
    /// The material's content as each request carried it (the file part, the decoded base64,
    /// the chunk), SM3 and size.
    files: Vec<(String, usize)>,
    /// Chunks by number, reassembled at the end.
    chunks: BTreeMap<u64, Vec<u8>>,
    /// Problems the department found (a digest header that does not match).
    problems: Vec<String>,
}

type Shared = Arc<Mutex<Received>>;

fn record(state: &Shared, path: &str, headers: &HeaderMap, body: &[u8]) {
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    state
        .lock()
        .unwrap()
        .requests
        .push((path.to_string(), declared, body.len(), sm3(body)));
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `POST /upload`: a form whose file part is the material; `X-Body-SM3` must be the body's.
async fn upload(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    record(&state, "/upload", &headers, &body);
    let mut s = state.lock().unwrap();
    let signed = headers.get("x-body-sm3").and_then(|v| v.to_str().ok());
    if signed != Some(sm3(&body).as_str()) {
        s.problems
            .push(format!("X-Body-SM3 {signed:?} is not the body's"));
        return StatusCode::BAD_REQUEST;
    }
    let start = find(&body, b"filename=")
        .and_then(|at| find(&body[at..], b"\r\n\r\n").map(|head| at + head + 4));
    let end = find(&body, b"\r\n--hostile-boundary--\r\n");
    match (start, end) {
        (Some(start), Some(end)) if start <= end => {
            let file = &body[start..end];
            s.files.push((sm3(file), file.len()));
            StatusCode::OK
        }
        _ => {
            s.problems.push("the form has no file part".into());
            StatusCode::BAD_REQUEST
        }
    }
}

/// `POST /upload-xml`: GBK XML with the material in base64 in `<nr>`.
async fn upload_xml(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    use base64::Engine as _;
    record(&state, "/upload-xml", &headers, &body);
    let mut s = state.lock().unwrap();
    let (Some(open), Some(close)) = (find(&body, b"<nr>"), find(&body, b"</nr>")) else {
        s.problems.push("no <nr> in the XML".into());
        return StatusCode::BAD_REQUEST;
    };
    match base64::engine::general_purpose::STANDARD.decode(&body[open + 4..close]) {
        Ok(file) => {
            s.files.push((sm3(&file), file.len()));
            StatusCode::OK
        }
        Err(e) => {
            s.problems.push(format!("the base64 does not decode: {e}"));
            StatusCode::BAD_REQUEST
        }
    }
}

/// `PUT /upload/{code}/{n}`: one chunk, with `X-Chunk-SM3`.
async fn upload_chunk(
    State(state): State<Shared>,
    UrlPath((_code, n)): UrlPath<(String, u64)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    record(&state, &format!("/upload/{n}"), &headers, &body);
    let mut s = state.lock().unwrap();
    let claimed = headers.get("x-chunk-sm3").and_then(|v| v.to_str().ok());
    if claimed != Some(sm3(&body).as_str()) {
        s.problems
            .push(format!("chunk {n}: X-Chunk-SM3 {claimed:?} is not its SM3"));
        return StatusCode::BAD_REQUEST;
    }
    s.chunks.insert(n, body.to_vec());
    StatusCode::OK
}

/// A department that checks what it is sent; its base URL.
async fn department(state: Shared) -> String {
    let app = axum::Router::new()
        .route("/upload", post(upload))
        .route("/upload-xml", post(upload_xml))
        .route("/upload/{code}/{n}", put(upload_chunk))
        .layer(DefaultBodyLimit::max(64 << 20))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// Deterministic bytes that are not a repeating pattern a bug could hide in.
fn material_bytes(size: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

struct Fixture {
    adapter: LoadedAdapter,
    store: Store,
    audit: AuditLog,
    received: Shared,
    material: Material,
    bytes: Vec<u8>,
    _dir: tempfile::TempDir,
}

/// The hostile adapter bound to a checking department, limited to 8 MiB of linear memory, with
/// a 20 MB material in a SQLite store and the audit log running.
async fn fixture() -> Fixture {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!(
        "sqlite://{}",
        dir.path().join("store.db").display()
    ))
    .await
    .unwrap();
    // Stored as an upload stores it: in 256 KiB chunks, under its SM3, attached to a draft.
    let bytes = material_bytes(SIZE);
    store.create_draft("d1", "portal", "svc").await.unwrap();
    let mut writer = store.blob_writer(256 * 1024).await.unwrap();
    for piece in bytes.chunks(1 << 20) {
        writer.write(piece).await.unwrap();
    }
    writer
        .finish(
            "application/pdf",
            Attach::Draft {
                draft_id: "d1",
                code: "articles-of-association",
            },
        )
        .await
        .unwrap();
    let material = Material {
        code: "articles-of-association".into(),
        name: "公司章程".into(),
        source: MaterialSource::File(FileInfo {
            media_type: "application/pdf".into(),
            size: SIZE as u64,
            sm3: sm3(&bytes),
        }),
    };

    let received = Shared::default();
    let base = department(received.clone()).await;
    std::fs::write(dir.path().join("catalogue.toml"), "").unwrap();
    let config_path = dir.path().join("gateway.toml");
    let text = format!(
        r#"catalogue = "catalogue.toml"
[server]
listen = "127.0.0.1:0"
[store]
url = "sqlite://{store}"
[plugins]
dir = "{adapters}"
[departments.hostile]
name = "hostile test adapter"
base_url = "{base}"
adapter = "hostile_adapter.wasm"
timeout_ms = 30000
"#,
        store = dir.path().join("unused.db").display(),
        adapters = integration_tests::adapters_dir().display(),
    );
    let config = Config::parse(&config_path, &text).unwrap();
    let limits = Limits {
        memory_mib: MEMORY_MIB,
        cpu_ms: 20_000,
        call_timeout_ms: 60_000,
        ..Limits::default()
    };
    let connection = Connection::new(&config, &config.departments["hostile"]).unwrap();
    let audit = AuditLog::start(&store, "node-a".into(), &AuditConfig::default())
        .await
        .unwrap();
    connection.attach_audit(audit.sink().recorder("hostile"));
    let department = Arc::new(Department::new(
        "hostile",
        connection,
        BTreeMap::new(),
        &limits,
    ));
    let engine = PluginEngine::new(8, None).unwrap();
    engine.attach_materials(Arc::new(store.clone()));
    let component =
        std::fs::read(integration_tests::adapters_dir().join("hostile_adapter.wasm")).unwrap();
    let adapter = LoadedAdapter::load(&engine, &component, department, limits)
        .await
        .unwrap();
    Fixture {
        adapter,
        store,
        audit,
        received,
        material,
        bytes,
        _dir: dir,
    }
}

fn submission(mode: &str, materials: Vec<Material>) -> Submission {
    Submission {
        case_id: "case-1".into(),
        matter: "hostile.upload".into(),
        idempotency_key: "case-1:hostile.upload".into(),
        payload: serde_json::json!({ "mode": mode }).to_string(),
        callback_url: String::new(),
        materials,
    }
}

/// Submit in `mode`; the adapter's answer and how long it took.
async fn send(f: &Fixture, mode: &str) -> (Value, Duration) {
    let started = Instant::now();
    let receipt = f
        .adapter
        .submit(submission(mode, vec![f.material.clone()]))
        .await
        .unwrap_or_else(|e| panic!("{mode}: {e:?}"));
    let took = started.elapsed();
    let outputs: Value = serde_json::from_str(&receipt.outputs).unwrap();
    let memory = outputs["memory_bytes"].as_u64().unwrap();
    eprintln!(
        "{mode}: a {SIZE}-byte material streamed in {took:?}; the adapter's linear memory: {} bytes ({:.2} MiB)",
        memory,
        memory as f64 / (1 << 20) as f64
    );
    assert!(
        memory <= u64::from(MEMORY_MIB) << 20,
        "{mode}: the adapter grew to {memory} bytes"
    );
    (outputs, took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20_mb_material_streams_through_an_adapter_within_8_mib() {
    let f = fixture().await;
    let whole = (f.material.source.clone(), sm3(&f.bytes));
    let MaterialSource::File(file) = whole.0 else {
        unreachable!()
    };

    // A multipart form, signed over the whole body: the adapter reads all 20 MB through in
    // slices for the digest, and the host streams them again into the request.
    let (outputs, _) = send(&f, "multipart").await;
    assert_eq!(outputs["statuses"], serde_json::json!([200]), "{outputs}");
    {
        let r = f.received.lock().unwrap();
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.files, vec![(whole.1.clone(), SIZE)]);
        let (_, declared, got, _) = &r.requests[0];
        assert_eq!(
            *declared,
            Some(*got as u64),
            "content-length is the body's size"
        );
    }

    // Base64 inside GBK XML.
    let (outputs, _) = send(&f, "base64").await;
    assert_eq!(outputs["statuses"], serde_json::json!([200]), "{outputs}");
    {
        let r = f.received.lock().unwrap();
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.files[1], (whole.1.clone(), SIZE));
        let (_, declared, got, _) = &r.requests[1];
        assert_eq!(*declared, Some(*got as u64));
        assert!(*got as u64 > file.size * 4 / 3, "the file went as base64");
    }

    // In 4 MiB chunks, each with its SM3, reassembled by the department.
    let (outputs, _) = send(&f, "chunks").await;
    assert_eq!(outputs["sent"], 5, "{outputs}");
    {
        let r = f.received.lock().unwrap();
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        let whole_again: Vec<u8> = r.chunks.values().flatten().copied().collect();
        assert_eq!(whole_again.len(), SIZE);
        assert_eq!(sm3(&whole_again), whole.1);
    }

    // The audit log has each exchange with the digest and size of the body as it went out.
    let requests: Vec<(String, Option<u64>, usize, String)> =
        f.received.lock().unwrap().requests.clone();
    f.audit.close(Duration::from_secs(5)).await;
    let records = f
        .store
        .audit_records(Some("hostile"), None, 0, 100)
        .await
        .unwrap();
    assert_eq!(records.len(), requests.len(), "{records:#?}");
    for (record, (path, _, size, digest)) in records.iter().zip(&requests) {
        let exchange = &record["record"];
        assert_eq!(
            exchange["request_bytes"].as_u64(),
            Some(*size as u64),
            "{path}: {record}"
        );
        assert_eq!(
            exchange["request_digest"].as_str(),
            Some(digest.as_str()),
            "{path}: {record}"
        );
        assert_eq!(exchange["adapter"]["call"], "submit", "{record}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_calls_own_materials_can_be_sent_or_read() {
    let f = fixture().await;
    // A code the call does not carry is refused by the host before anything is sent.
    let (outputs, _) = send(&f, "unknown").await;
    assert_eq!(outputs["statuses"][0]["outcome"], "forbidden", "{outputs}");
    assert!(
        outputs["statuses"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("not-in-this-call"),
        "{outputs}"
    );
    assert!(f.received.lock().unwrap().requests.is_empty());

    // The stored file is not the call's when the call does not carry it: the material is in
    // the store, but a submission without it cannot stream it.
    let receipt = f
        .adapter
        .submit(submission("multipart", Vec::new()))
        .await
        .unwrap();
    let outputs: Value = serde_json::from_str(&receipt.outputs).unwrap();
    assert_eq!(outputs["sent"], 0);

    // A material whose file the store does not have: the call fails by the gateway's fault,
    // not the department's or the adapter's.
    let mut missing = f.material.clone();
    if let MaterialSource::File(file) = &mut missing.source {
        file.sm3 = "0".repeat(64);
    }
    let failed = f
        .adapter
        .submit(submission("multipart", vec![missing]))
        .await
        .unwrap_err();
    assert!(matches!(failed, CallError::Materials(_)), "{failed:?}");
    assert_eq!(failed.fault(), gateway_base::model::Fault::Gateway);
    assert!(f.received.lock().unwrap().requests.is_empty());
}
