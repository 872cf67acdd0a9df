//! Materials delivered to public security and market regulation, each in its own protocol, on
//! the demo catalogue's material lists (docs/materials.md, "Delivery to departments"):
//!
//! - 企业开办 (`one-thing.open-business`): the 公司章程 goes to market regulation in chunks
//!   behind its OAuth token (open, one `PUT` per chunk with its SM3, complete with the whole's
//!   SM3), the 住所使用证明 promised (容缺); the 印章印模 goes to public security as base64
//!   inside the XML over mutual TLS, with the SM3 it checks, and the business licence the first
//!   step issued travels as its GB/T 36904 identifier, which public security verifies at the
//!   gateway's licence-sharing endpoint with its own key (one audited read);
//! - 食品经营许可 for that enterprise once it exists (`one-thing.food-permit-for-enterprise`):
//!   its business licence is obtained (免提交), never uploaded, and market regulation verifies it
//!   at the gateway's licence-sharing endpoint (an audited read);
//! - a material damaged on the way is refused by each department with its own error, shows on
//!   the case, and goes again once the line is clean.
//!
//! Each department records what it found (SM3 and size it computed itself): the tests compare
//! that with what the applicant uploaded, and count it once. Runs on SQLite, and on PostgreSQL
//! with `GATEWAY_TEST_STORE=postgres`. The files are made here: nothing binary is committed.

use departments::Faults;
use integration_tests::files::{jpeg, ofd, pdf, png};
use integration_tests::licence_reads;
use integration_tests::{Env, PORTAL_KEY, Setup};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

// ---- files, made the way their formats say ----

/// A material as uploaded: its code, SM3 and size.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Uploaded {
    code: String,
    sm3: String,
    size: u64,
}

// ---- the portal's side ----

async fn env() -> Env {
    env_with(false).await
}

/// With market regulation served by the JavaScript adapter when `js`.
async fn env_with(market_regulation_js: bool) -> Env {
    Env::start_with(Setup {
        demo_materials: true,
        admin: true,
        market_regulation_js,
        ..Setup::default()
    })
    .await
    .unwrap()
}

async fn new_draft(env: &Env, service: &str) -> String {
    let (status, body) = env
        .post(&format!("/api/v1/services/{service}/drafts"), &json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    body["draft_id"].as_str().unwrap().to_string()
}

/// Upload into the draft; what the gateway stored.
async fn upload(env: &Env, draft: &str, code: &str, bytes: Vec<u8>) -> Uploaded {
    let (size, sm3) = (bytes.len() as u64, sdk::sign::sm3_hex(&bytes));
    let response = env
        .http
        .put(format!(
            "{}/api/v1/drafts/{draft}/materials/{code}",
            env.gateway.url()
        ))
        .header("x-api-key", PORTAL_KEY)
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{code}: {body}");
    assert_eq!(
        (body["sm3"].as_str(), body["size"].as_u64()),
        (Some(sm3.as_str()), Some(size))
    );
    Uploaded {
        code: code.into(),
        sm3,
        size,
    }
}

/// Pre-review with the draft (it must pass: what it obtained instead, by code), then apply;
/// the case id.
async fn apply(
    env: &Env,
    service: &str,
    draft: &str,
    form: &Value,
) -> (String, Vec<(String, String)>) {
    let (status, review) = env
        .post(
            &format!("/api/v1/services/{service}/pre-review?draft={draft}"),
            form,
        )
        .await;
    assert_eq!((status, &review["ok"]), (200, &json!(true)), "{review:#}");
    let obtained = review["materials"]["obtained"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["code"].as_str().unwrap().to_string(),
                o["by"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let (status, accepted) = env
        .post(
            &format!("/api/v1/services/{service}/applications?draft={draft}"),
            form,
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    (accepted["case_id"].as_str().unwrap().to_string(), obtained)
}

fn all_final(view: &Value) -> bool {
    view["status"] == "completed"
        || view["matters"].as_array().is_some_and(|m| {
            m.iter()
                .any(|m| m["state"] == "failed" || m["state"] == "rejected")
        })
}

/// Wait until every matter of the case is approved (woken by the case's events).
async fn completed(env: &Env, case_id: &str) -> Value {
    let view = env
        .wait_for_case(case_id, Duration::from_secs(90), all_final)
        .await;
    assert_eq!(view["status"], "completed", "{view:#}");
    view
}

fn matter<'v>(view: &'v Value, step: &str) -> &'v Value {
    view["matters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["step"] == step)
        .unwrap_or_else(|| panic!("no step {step}: {view:#}"))
}

/// The business licence a case issued: its identifier and holder's credit code.
fn business_licence(view: &Value) -> (String, String) {
    let licence = view["licences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"] == "business_licence")
        .unwrap_or_else(|| panic!("no business licence: {view:#}"));
    (
        licence["id"].as_str().unwrap().to_string(),
        licence["holder_id"].as_str().unwrap().to_string(),
    )
}

fn open_business_form() -> Value {
    json!({
        "enterprise_name": "福州一套材料科技有限公司",
        "address": "福州市鼓楼区五四路2号",
        "legal_representative": {"name": "李四", "id_number": "34052419800101001X"},
        "registered_capital": 100,
        "business_scope": "软件开发",
        "seal_types": ["法定名称章", "财务专用章"]
    })
}

/// 企业开办 with its materials: the case, once completed, and what was uploaded.
async fn open_business(env: &Env) -> (Value, Vec<Uploaded>) {
    let draft = new_draft(env, "one-thing.open-business").await;
    // 2.5 MB: three chunks at market regulation. 3 MB: 4 MB of base64 at public security.
    let articles = upload(env, &draft, "articles-of-association", pdf(5 << 19, 1)).await;
    let impression = upload(env, &draft, "seal-impression", png(3 << 20, 2)).await;
    let (case_id, obtained) = apply(
        env,
        "one-thing.open-business",
        &draft,
        &open_business_form(),
    )
    .await;
    assert_eq!(
        obtained,
        [
            ("shareholder-id".to_string(), "lookup".to_string()),
            ("business-licence".to_string(), "step".to_string())
        ],
        "identity verified at public security; the licence the first step issues"
    );
    (completed(env, &case_id).await, vec![articles, impression])
}

// ---- what the departments found ----

/// One material a department took, as it found it.
type Found = (
    String,
    String,
    Option<String>,
    Option<u64>,
    Option<String>,
    Option<String>,
);

/// The materials each application brought (by request id), as the department found them:
/// (code, kind, SM3, size, licence id, how verified), in order.
fn received(department: &departments::Department) -> BTreeMap<String, Vec<Found>> {
    let mut by_application: BTreeMap<String, Vec<Found>> = BTreeMap::new();
    for m in department.stats().materials {
        by_application
            .entry(m.request_id.clone())
            .or_default()
            .push((m.code, m.kind, m.sm3, m.size, m.licence_id, m.verified_by));
    }
    for found in by_application.values_mut() {
        found.sort();
    }
    by_application
}

fn file(u: &Uploaded) -> Found {
    (
        u.code.clone(),
        "file".into(),
        Some(u.sm3.clone()),
        Some(u.size),
        None,
        None,
    )
}

fn licence(code: &str, id: &str, by: &str) -> Found {
    (
        code.into(),
        "licence".into(),
        None,
        None,
        Some(id.into()),
        Some(by.into()),
    )
}

fn promised(code: &str) -> Found {
    (code.into(), "promised".into(), None, None, None, None)
}

/// The application (by request id) among `found` that brought material `code`.
fn application_with<'f>(found: &'f BTreeMap<String, Vec<Found>>, code: &str) -> &'f Vec<Found> {
    found
        .values()
        .find(|materials| materials.iter().any(|m| m.0 == code))
        .unwrap_or_else(|| panic!("no application brought {code}: {found:#?}"))
}

// ---- the tests ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_business_delivers_each_material_once_in_each_departments_protocol() {
    let env = env().await;
    let (view, uploaded) = open_business(&env).await;
    let (articles, impression) = (&uploaded[0], &uploaded[1]);
    let (licence_id, _) = business_licence(&view);

    // Market regulation: the articles reassembled from three chunks, each sent once; the
    // deferred 住所使用证明 named as promised. Exactly one application, with these.
    let mr = &env.departments.market_regulation;
    let found = received(mr);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        found.values().next().unwrap(),
        &vec![file(articles), promised("premises-proof")]
    );
    assert_eq!(
        (
            mr.received("file_open"),
            mr.received("file_chunk"),
            mr.received("file_complete")
        ),
        (1, 3, 1),
        "opened once, 2.5 MB in three 1 MiB chunks, completed once"
    );
    assert_eq!(mr.applications(), 1);

    // Public security: the impression decoded from the XML's base64, its SM3 checked; the
    // licence the first step issued, by its identifier, verified at the gateway.
    let ps = &env.departments.public_security;
    let found = received(ps);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        found.values().next().unwrap(),
        &vec![
            licence("business-licence", &licence_id, "gateway"),
            file(impression)
        ]
    );
    assert_eq!((ps.applications(), ps.received("kzba")), (1, 1));
    assert!(ps.stats().rejected.is_empty(), "{:?}", ps.stats().rejected);
    assert_eq!(matter(&view, "seal")["state"], "approved");
    // One read at the gateway, by public security with its own key; market regulation was
    // named no licence.
    assert_eq!(
        licence_reads(&env.admin_url(), "public-security").await,
        [(licence_id, "found".to_string())]
    );
    assert!(
        licence_reads(&env.admin_url(), "market-regulation")
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_food_permit_for_an_existing_enterprise_names_its_licence_and_the_department_verifies_it_at_the_gateway()
 {
    food_permit_naming_the_licence(env().await).await;
}

/// The same 企业开办 and food permit, market regulation's files uploaded in chunks and the
/// licence named, through the JavaScript adapter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_javascript_adapter_uploads_the_same_files_and_names_the_same_licence() {
    food_permit_naming_the_licence(env_with(true).await).await;
}

async fn food_permit_naming_the_licence(env: Env) {
    let (view, _) = open_business(&env).await;
    let (licence_id, credit_code) = business_licence(&view);
    assert!(
        licence_reads(&env.admin_url(), "market-regulation")
            .await
            .is_empty(),
        "企业开办 names no licence to market regulation"
    );

    let service = "one-thing.food-permit-for-enterprise";
    let draft = new_draft(&env, service).await;
    let rules = upload(&env, &draft, "food-safety-rules", ofd(1_500_000, 3)).await;
    let plan = upload(&env, &draft, "premises-plan", jpeg(400_000, 4)).await;
    let form = json!({
        "credit_code": credit_code,
        "legal_representative_id_number": "34052419800101001X",
        "business_items": ["热食类食品制售"],
        "premises_area": 120
    });
    let (case_id, obtained) = apply(&env, service, &draft, &form).await;
    assert_eq!(
        obtained,
        [("business-licence".to_string(), "licence".to_string())],
        "the enterprise's licence is in the library: not asked"
    );
    let permit = completed(&env, &case_id).await;
    assert!(
        matter(&permit, "food_permit")["outputs"]["permit_no"]
            .as_str()
            .is_some_and(|n| n.starts_with("JY")),
        "{permit:#}"
    );

    // The permit application brought the two files, as uploaded, and the licence, verified at
    // the gateway: never a file of it.
    let mr = &env.departments.market_regulation;
    let found = received(mr);
    assert_eq!(found.len(), 2, "the licence and the permit: {found:#?}");
    assert_eq!(
        application_with(&found, "food-safety-rules"),
        &vec![
            licence("business-licence", &licence_id, "gateway"),
            file(&rules),
            file(&plan),
        ]
    );
    assert_eq!(
        mr.received("file_open"),
        3,
        "the articles, the rules and the plan: no upload of the licence"
    );
    // One read at the gateway's licence-sharing endpoint, in its audit log.
    assert_eq!(
        licence_reads(&env.admin_url(), "market-regulation").await,
        [(licence_id, "found".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_material_damaged_on_the_way_is_refused_by_each_department_and_sent_again() {
    let env = env().await;
    let damaged = Faults {
        corrupt_materials: true,
        ..Faults::default()
    };
    let mr = &env.departments.market_regulation;
    let ps = &env.departments.public_security;
    mr.set_faults(damaged.clone());
    ps.set_faults(damaged);

    let draft = new_draft(&env, "one-thing.open-business").await;
    let articles = upload(&env, &draft, "articles-of-association", pdf(1_500_000, 5)).await;
    let impression = upload(&env, &draft, "seal-impression", png(200_000, 6)).await;
    let (case_id, _) = apply(
        &env,
        "one-thing.open-business",
        &draft,
        &open_business_form(),
    )
    .await;

    // Market regulation refuses the first chunk (its SM3 does not match what arrived): the
    // gateway keeps the step and says why.
    let view = env
        .wait_for_case(&case_id, Duration::from_secs(30), |v| {
            matter(v, "licence")["attempts"].as_i64() >= Some(1)
        })
        .await;
    let licence_step = matter(&view, "licence");
    assert_eq!(licence_step["state"], "pending", "{view:#}");
    assert!(
        licence_step["message"]
            // The portal reads a plain reason; the department's chunk_digest_mismatch goes to
            // the log.
            .as_str()
            .is_some_and(|m| m == "部门系统的答复无法识别"),
        "{licence_step:#}"
    );
    assert_eq!(mr.applications(), 0, "no application without its materials");
    mr.set_faults(Faults::default());
    // Each damaged attempt: an open and a refused first chunk (a retry may have come before
    // the line was clean).
    let mr_refused = mr.stats().rejected["chunk_digest_mismatch"];
    assert!(mr_refused >= 1);

    // Public security refuses the filing: the decoded impression is not the SM3 sent (30).
    let view = env
        .wait_for_case(&case_id, Duration::from_secs(60), |v| {
            matter(v, "seal")["attempts"].as_i64() >= Some(1)
        })
        .await;
    let seal = matter(&view, "seal");
    assert!(
        seal["message"]
            .as_str()
            // A plain reason for the portal; the department's 30 材料校验失败 goes to the log.
            .is_some_and(|m| m == "部门系统的答复无法识别"),
        "{seal:#}"
    );
    assert_eq!(ps.applications(), 0);
    ps.set_faults(Faults::default());
    let ps_refused = ps.stats().rejected["material_digest"];
    assert!(ps_refused >= 1);

    // Sent again on a clean line: each department took one application with the bytes as
    // uploaded. The upload resumed from what market regulation had (nothing of the damaged
    // chunk): opened once more, both chunks sent.
    let view = completed(&env, &case_id).await;
    let (licence_id, _) = business_licence(&view);
    assert_eq!(
        received(mr).into_values().collect::<Vec<_>>(),
        [vec![file(&articles), promised("premises-proof")]]
    );
    assert_eq!(
        (mr.received("file_open"), mr.received("file_chunk")),
        (mr_refused + 1, mr_refused + 2)
    );
    assert_eq!(
        received(ps).into_values().collect::<Vec<_>>(),
        [vec![
            licence("business-licence", &licence_id, "gateway"),
            file(&impression)
        ]]
    );
    assert_eq!(ps.received("kzba"), ps_refused + 1);
    assert_eq!((mr.applications(), ps.applications()), (1, 1));
    // The damaged filings were refused before the licence was asked about: one read.
    assert_eq!(
        licence_reads(&env.admin_url(), "public-security").await,
        [(licence_id, "found".to_string())]
    );
}
