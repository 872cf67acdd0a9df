//! Cases that are never lost, with their materials: a gateway process killed with SIGKILL while a
//! department is receiving a large material, then started again on the same store and config,
//! delivers the case once. The department's own idempotency sees one application (one request
//! id, one submission) holding every material once, each with exactly the SM3 and size the
//! applicant uploaded; the bytes cut off on the way were never kept as a file.
//!
//! - Tax (`tax.registration`): each file a signed `multipart/form-data` upload, then the
//!   registration listing the file ids. The department stops reading the 20 MB upload part way
//!   (the `stall_materials_ms` fault switch) and the gateway is killed while it is held there.
//! - Market regulation (`market-regulation.business-licence`): the 20 MB 公司章程 in 1 MiB
//!   chunks (open, chunks, complete), then the application. Every answer is slowed and the
//!   gateway is killed once some chunks are in; the restarted gateway resumes from the chunks
//!   the department has.
//!
//! The gateway runs as its own process; the departments run in this process. Runs on SQLite,
//! and on PostgreSQL with `GATEWAY_TEST_STORE=postgres`.

use departments::{Department, Departments, Faults};
use integration_tests::files::{jpeg, pdf};
use integration_tests::{GatewayProcess, PORTAL_KEY, Setup, write_config};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The large material: under both departments' 20 MiB limit, large enough that its upload is
/// a while on the line.
const LARGE: usize = 20_000_000;

/// Long enough for a 20 MB material through unoptimised builds (the gateway, its audit log and
/// the department each read it through for its SM3), twice over.
const WAIT: Duration = Duration::from_secs(180);

/// The adapters as the materials tests run them: linear memory bounded whatever the material
/// size, and a whole-call bound for unoptimised builds.
const LIMITS: &str = "limits = { memory_mib = 8, cpu_ms = 1000, call_timeout_ms = 60000 }";

// ---- files ----

/// A material as a department recorded it, or as uploaded: code, kind, SM3, size.
type Material = (String, String, Option<String>, Option<u64>);

fn file(code: &str, bytes: &[u8]) -> Material {
    (
        code.into(),
        "file".into(),
        Some(sdk::sign::sm3_hex(bytes)),
        Some(bytes.len() as u64),
    )
}

fn promised(code: &str) -> Material {
    (code.into(), "promised".into(), None, None)
}

// ---- the gateway as its own process ----

/// A gateway process and what it runs on: the departments, the store, the config.
struct Harness {
    departments: Departments,
    config: PathBuf,
    http: reqwest::Client,
    _db: Option<integration_tests::TestDatabase>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let departments = integration_tests::departments_in(dir.path()).await;
        let (store, db) = store_url(dir.path()).await;
        let setup = Setup {
            demo_materials: true,
            department_timeout: Some(Duration::from_secs(60)),
            department_extra: vec![("tax", LIMITS.into()), ("market-regulation", LIMITS.into())],
            server_extra: "node_id = \"node-a\"\nclaim_ms = 3000\nshutdown_grace_ms = 5000".into(),
            ..Setup::default()
        };
        let config = write_config(dir.path(), &departments, &setup, &store).unwrap();
        Harness {
            departments,
            config,
            http: integration_tests::client(),
            _db: db,
            _dir: dir,
        }
    }

    /// Start a gateway process on the store and config; the departments reach it from now on.
    async fn start(&self) -> GatewayProcess {
        let gateway = GatewayProcess::spawn(&self.config).await.unwrap();
        self.departments.gateway.set_url(&gateway.url);
        gateway
    }

    async fn post(&self, gateway: &GatewayProcess, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", gateway.url))
            .header("x-api-key", PORTAL_KEY)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A draft of `service` holding these uploads, then pre-reviewed and applied for: the case.
    async fn apply(
        &self,
        gateway: &GatewayProcess,
        service: &str,
        uploads: &[(&str, &[u8])],
        form: &Value,
    ) -> String {
        let (status, draft) = self
            .post(
                gateway,
                &format!("/api/v1/services/{service}/drafts"),
                &json!({}),
            )
            .await;
        assert_eq!(status, 201, "{draft}");
        let draft = draft["draft_id"].as_str().unwrap();
        for (code, bytes) in uploads {
            let response = self
                .http
                .put(format!(
                    "{}/api/v1/drafts/{draft}/materials/{code}",
                    gateway.url
                ))
                .header("x-api-key", PORTAL_KEY)
                .body(bytes.to_vec())
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let stored: Value = response.json().await.unwrap_or(Value::Null);
            assert_eq!(status, 201, "{code}: {stored}");
            assert_eq!(stored["sm3"], sdk::sign::sm3_hex(bytes), "{code}");
        }
        let (status, review) = self
            .post(
                gateway,
                &format!("/api/v1/services/{service}/pre-review?draft={draft}"),
                form,
            )
            .await;
        assert_eq!((status, &review["ok"]), (200, &json!(true)), "{review:#}");
        let (status, accepted) = self
            .post(
                gateway,
                &format!("/api/v1/services/{service}/applications?draft={draft}"),
                form,
            )
            .await;
        assert_eq!(status, 202, "{accepted}");
        accepted["case_id"].as_str().unwrap().to_string()
    }

    /// Wait until the case is completed; its view.
    async fn completed(&self, gateway: &GatewayProcess, case_id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let view: Value = self
                .http
                .get(format!("{}/api/v1/cases/{case_id}", gateway.url))
                .header("x-api-key", PORTAL_KEY)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if view["status"] == "completed" {
                return view;
            }
            let ended = view["matters"].as_array().is_some_and(|m| {
                m.iter()
                    .any(|m| matches!(m["state"].as_str(), Some("failed" | "rejected")))
            });
            assert!(
                !ended && tokio::time::Instant::now() < deadline,
                "case {case_id} did not complete: {view:#}"
            );
            // A separate process has no in-process events to wait on: poll its API.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn store_url(dir: &Path) -> (String, Option<integration_tests::TestDatabase>) {
    match integration_tests::TestDatabase::create_if_switched_on()
        .await
        .unwrap()
    {
        Some(db) => (db.url.clone(), Some(db)),
        None => (
            format!("sqlite://{}", dir.join("gateway.db").display()),
            None,
        ),
    }
}

/// Wait until `reached` holds of the department. The simulators live in this process but
/// signal nothing: their counters are polled in a short loop, with a deadline.
async fn until(department: &Department, what: &str, reached: impl Fn(&Department) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !reached(department) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: {what} never came: {:?}",
            department.name,
            department.stats()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The case's one step: its department request id (`<case>:<step>`).
fn request_id(view: &Value, case_id: &str) -> String {
    let matters = view["matters"].as_array().unwrap();
    assert_eq!(matters.len(), 1, "{view:#}");
    format!("{case_id}:{}", matters[0]["step"].as_str().unwrap())
}

/// Every material the department recorded, with the application it came with, sorted.
fn recorded(department: &Department) -> Vec<(String, Material)> {
    let mut found: Vec<_> = department
        .stats()
        .materials
        .into_iter()
        .map(|m| (m.request_id, (m.code, m.kind, m.sm3, m.size)))
        .collect();
    found.sort();
    found
}

fn of(request_id: &str, mut materials: Vec<Material>) -> Vec<(String, Material)> {
    materials.sort();
    materials
        .into_iter()
        .map(|m| (request_id.to_string(), m))
        .collect()
}

// ---- the tests ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_mid_upload_to_tax_files_one_registration_with_each_file_as_uploaded() {
    let h = Harness::new().await;
    let tax = &h.departments.tax;
    let gateway = h.start().await;
    // The enterprise's licence is not in the gateway's library: uploaded, with the premises.
    let licence = jpeg(200_000, 1);
    let premises = pdf(LARGE, 2);
    // The department stops reading the premises' upload 4 MiB in (the licence is smaller):
    // the gateway is then mid-upload, most of the file still to send.
    const HELD_AT: u64 = 4 << 20;
    tax.set_faults(Faults {
        stall_materials_ms: 10_000,
        stall_materials_after_bytes: HELD_AT,
        ..Faults::default()
    });
    let case_id = h
        .apply(
            &gateway,
            "tax.registration",
            &[
                ("business-licence", &licence),
                ("premises-proof", &premises),
            ],
            &json!({
                "credit_code": "91350100M000100Y43",
                "enterprise_name": "福州测试科技有限公司",
                "legal_representative": {"name": "张三", "id_number": "11010519491231002X"},
                "address": "福州市鼓楼区五四路1号",
                "business_scope": "软件开发"
            }),
        )
        .await;

    until(tax, "an upload held mid-body", |d| d.stats().stalled == 1).await;
    gateway.kill().await;
    assert_eq!(
        (tax.received("swdj"), tax.applications()),
        (0, 0),
        "killed before the registration was sent"
    );
    tax.set_faults(Faults::default());

    let gateway = h.start().await;
    let view = h.completed(&gateway, &case_id).await;
    let request_id = request_id(&view, &case_id);
    assert_eq!(
        (tax.received_ids(), tax.submitted_ids()),
        (vec![request_id.clone()], vec![request_id.clone()]),
        "one registration, sent once"
    );
    assert_eq!(
        recorded(tax),
        of(
            &request_id,
            vec![
                file("business-licence", &licence),
                file("premises-proof", &premises)
            ]
        ),
        "each file once, with the SM3 and size uploaded"
    );
    // The upload cut off was refused as incomplete once the department read on (its hold
    // over): never kept as a file, so never listed.
    until(tax, "the cut-off upload refused", |d| {
        d.stats().rejected.get("invalid_request") == Some(&1)
    })
    .await;
    assert_eq!(
        tax.stats().rejected.keys().collect::<Vec<_>>(),
        ["invalid_request"],
        "nothing else refused: {:?}",
        tax.stats()
    );
    assert!(gateway.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_mid_upload_to_market_regulation_resumes_the_chunks_and_applies_once() {
    let h = Harness::new().await;
    let mr = &h.departments.market_regulation;
    let gateway = h.start().await;
    let articles = pdf(LARGE, 3);
    let shareholder_id = jpeg(100_000, 4);
    // Each answer 150 ms late: the articles' twenty 1 MiB chunks take seconds.
    mr.set_faults(Faults {
        latency_ms: 150,
        ..Faults::default()
    });
    let case_id = h
        .apply(
            &gateway,
            "market-regulation.business-licence",
            &[
                ("articles-of-association", &articles),
                ("shareholder-id", &shareholder_id),
            ],
            &json!({
                "enterprise_name": "福州断电续传科技有限公司",
                "address": "福州市鼓楼区五四路3号",
                "legal_representative": {"name": "李四", "id_number": "34052419800101001X"},
                "registered_capital": 100,
                "business_scope": "软件开发"
            }),
        )
        .await;

    // Five chunks in (the shareholder's file is one at most): the articles are part way.
    until(mr, "five chunks", |d| d.received("file_chunk") >= 5).await;
    gateway.kill().await;
    let chunks_before = mr.received("file_chunk");
    assert!(chunks_before < 21, "killed before the last chunk");
    assert_eq!(mr.applications(), 0, "killed before the application");
    mr.set_faults(Faults::default());

    let gateway = h.start().await;
    let view = h.completed(&gateway, &case_id).await;
    let request_id = request_id(&view, &case_id);
    assert_eq!(
        (mr.received_ids(), mr.submitted_ids()),
        (vec![request_id.clone()], vec![request_id.clone()]),
        "one application, sent once"
    );
    assert_eq!(
        recorded(mr),
        of(
            &request_id,
            vec![
                file("articles-of-association", &articles),
                file("shareholder-id", &shareholder_id),
                promised("premises-proof"),
            ]
        ),
        "each file once, reassembled to the SM3 and size uploaded"
    );
    // Resumed, not started over: the 21 chunks (20 of the articles, 1 of the shareholder's
    // file) once each, and at most the one in flight at the kill again.
    let chunks = mr.received("file_chunk");
    assert!(
        (21..=22).contains(&chunks),
        "{chunks} chunks sent ({chunks_before} before the kill)"
    );
    assert!(
        mr.stats().rejected.is_empty(),
        "no chunk or file refused: {:?}",
        mr.stats()
    );
    assert!(gateway.terminate().await.success());
}
