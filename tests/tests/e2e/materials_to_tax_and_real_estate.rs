//! Materials delivered to the tax department and the real-estate registry, each in its own
//! protocol, from uploads into a draft to the case's end (docs/materials.md, "Delivery to
//! departments"), on the demo catalogue's material lists:
//!
//! - 二手房 (`one-thing.home-transfer`): one 20 MB sale contract uploaded once reaches tax (a
//!   signed `multipart/form-data` upload, then the return lists its file id) and the registry
//!   (an MTOM/XOP package, the file an `xop:Include`d part of a GBK SOAP envelope); the
//!   registry also gets the property certificate's scan, the deed tax receipt the tax step
//!   issued (免提交, by its GB/T 36904 identifier, which the registry verifies at the gateway's
//!   licence-sharing endpoint with its own key: one audited read) and the promise of the
//!   marriage certificate (容缺). Each department's own record shows every file once, with the
//!   SM3 and size of what it received, equal to what the applicant uploaded. The adapters run
//!   limited to 8 MiB of linear memory and the default CPU time.
//! - A receipt the gateway the registry asks never issued (its check character right): the
//!   registry refuses the transfer (fault `E113`), and the step shows it.
//! - 税务登记 (`tax.registration`): two uploads reach tax once each, after a first attempt the
//!   department refused because a bit of the file was flipped on the way (retried, not
//!   charged twice).
//! - A material a department will not take (a PNG the hall's catalogue allowed, neither tax nor
//!   the registry takes) ends its step failed, the material named, and nothing filed.
//!
//! Runs on SQLite, and on PostgreSQL with `GATEWAY_TEST_STORE=postgres`.

use departments::Faults;
use integration_tests::files::{jpeg, pdf, png, sm3_hex as sm3};
use integration_tests::licence_reads;
use integration_tests::{Env, PORTAL_KEY, Setup, workspace_root};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Long enough for a 20 MB material through unoptimised test builds (SM3 there runs at a
/// few tens of MB/s, and the gateway, the audit log and the department each take one).
const WAIT: Duration = Duration::from_secs(120);

/// The 20 MB material.
const LARGE: usize = 20_000_000;

/// The adapters' limits for these tests: linear memory as the issue bounds it for any
/// material size, the default CPU time, and a whole-call bound for unoptimised builds.
const LIMITS: &str = "limits = { memory_mib = 8, cpu_ms = 1000, call_timeout_ms = 60000 }";

fn setup() -> Setup {
    Setup {
        demo_materials: true,
        admin: true,
        department_timeout: Some(Duration::from_secs(60)),
        ticket_delay: Some(Duration::from_millis(200)),
        department_extra: vec![("tax", LIMITS.into()), ("real-estate", LIMITS.into())],
        ..Setup::default()
    }
}

// ---- files ----

// ---- the portal's side ----

async fn new_draft(env: &Env, service: &str) -> String {
    let (status, body) = env
        .post(&format!("/api/v1/services/{service}/drafts"), &json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    body["draft_id"].as_str().unwrap().to_string()
}

/// Upload a material into a draft; what the gateway says it stored.
async fn upload(env: &Env, draft: &str, code: &str, bytes: &[u8]) -> Value {
    let response = env
        .http
        .put(format!(
            "{}/api/v1/drafts/{draft}/materials/{code}",
            env.gateway.url()
        ))
        .header("x-api-key", PORTAL_KEY)
        .body(bytes.to_vec())
        .send()
        .await
        .expect("the gateway answers");
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 201, "{code}: {body}");
    assert_eq!(body["sm3"], sm3(bytes), "{code}");
    body
}

/// Pre-review then apply with the draft; the case id.
async fn apply(env: &Env, service: &str, draft: &str, form: &Value) -> (String, Value) {
    let (status, review) = env
        .post(
            &format!("/api/v1/services/{service}/pre-review?draft={draft}"),
            form,
        )
        .await;
    assert_eq!((status, &review["ok"]), (200, &json!(true)), "{review:#}");
    let (status, accepted) = env
        .post(
            &format!("/api/v1/services/{service}/applications?draft={draft}"),
            form,
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    (accepted["case_id"].as_str().unwrap().to_string(), review)
}

fn step<'v>(view: &'v Value, id: &str) -> &'v Value {
    view["matters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["step"] == id)
        .unwrap_or_else(|| panic!("no step {id}: {view:#}"))
}

fn all_final(view: &Value) -> bool {
    view["matters"].as_array().unwrap().iter().all(|m| {
        matches!(
            m["state"].as_str(),
            Some("approved" | "rejected" | "returned" | "failed" | "blocked")
        )
    })
}

// ---- the departments' side ----

/// One material as a department recorded it: code, kind, SM3, size, licence id, how the
/// licence was verified.
type Received = (
    String,
    String,
    Option<String>,
    Option<u64>,
    Option<String>,
    Option<String>,
);

/// What a department recorded for one application (request id), in the order it took them.
fn received(department: &departments::Department, request_id: &str) -> Vec<Received> {
    department
        .stats()
        .materials
        .into_iter()
        .filter(|m| m.request_id == request_id)
        .map(|m| (m.code, m.kind, m.sm3, m.size, m.licence_id, m.verified_by))
        .collect()
}

fn file(code: &str, bytes: &[u8]) -> Received {
    (
        code.into(),
        "file".into(),
        Some(sm3(bytes)),
        Some(bytes.len() as u64),
        None,
        None,
    )
}

fn home_transfer_form() -> Value {
    json!({
        "certificate_number": "闽(2019)平潭不动产权第0011364号",
        "seller": {"name": "张三", "id_number": "11010519491231002X"},
        "buyer": {"name": "李四", "id_number": "34052419800101001X"},
        "buyer_birth_date": "1980-01-01",
        "price": 1200000
    })
}

fn registration_form() -> Value {
    json!({
        "credit_code": "91350100M000100Y43",
        "enterprise_name": "福州测试科技有限公司",
        "legal_representative": {"name": "张三", "id_number": "11010519491231002X"},
        "address": "福州市鼓楼区五四路1号",
        "business_scope": "软件开发"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_transfer_delivers_one_set_of_materials_to_tax_and_the_registry() {
    let env = Env::start_with(setup()).await.unwrap();
    let service = "one-thing.home-transfer";

    // The form lists each material once, with the matters that need it.
    let (_, form) = env.get(&format!("/api/v1/services/{service}/form")).await;
    let contract = form["materials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["code"] == "sale-contract")
        .unwrap_or_else(|| panic!("{form:#}"));
    assert_eq!(
        contract["matters"],
        json!(["tax.deed-tax", "real-estate.transfer"])
    );

    let draft = new_draft(&env, service).await;
    let sale_contract = pdf(LARGE, 1);
    let certificate = jpeg(300_000, 2);
    let started = Instant::now();
    upload(&env, &draft, "sale-contract", &sale_contract).await;
    let uploaded_in = started.elapsed();
    upload(&env, &draft, "property-certificate", &certificate).await;

    let (case_id, review) = apply(&env, service, &draft, &home_transfer_form()).await;
    // What this applicant need not provide: identities verified at public security, the
    // receipt the tax step issues; the marriage certificate may come later.
    let mut obtained: Vec<(String, String)> = review["materials"]["obtained"]
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
    obtained.sort();
    assert_eq!(
        obtained,
        [
            ("buyer-id".to_string(), "lookup".to_string()),
            ("deed-tax-receipt".to_string(), "step".to_string()),
            ("seller-id".to_string(), "lookup".to_string()),
        ],
        "{review:#}"
    );
    assert_eq!(
        review["materials"]["deferrable"],
        json!(["marriage-status"])
    );

    let started = Instant::now();
    let view = env.wait_for_case(&case_id, WAIT, all_final).await;
    let delivered_in = started.elapsed();
    assert_eq!(view["status"], "completed", "{view:#}");
    eprintln!(
        "a {LARGE}-byte contract uploaded in {uploaded_in:?}; the case (deed tax, then the \
         transfer, each with it) completed in {delivered_in:?}"
    );

    // Tax: the contract, once, exactly as uploaded; one upload request for it.
    let tax = &env.departments.tax;
    assert_eq!(
        received(tax, &format!("{case_id}:deed_tax")),
        vec![file("sale-contract", &sale_contract)]
    );
    assert_eq!(tax.received("wjsc"), 1, "{:?}", tax.stats());

    // The registry: both files exactly as uploaded, the receipt the tax step issued by its
    // identifier (verified at the gateway), the promised certificate; each once.
    let receipt_id = view["licences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"] == "deed_tax_receipt")
        .and_then(|l| l["id"].as_str())
        .unwrap_or_else(|| panic!("the tax step issued no receipt: {view:#}"))
        .to_string();
    let mut registry = received(&env.departments.real_estate, &format!("{case_id}:transfer"));
    registry.sort();
    assert_eq!(
        registry,
        vec![
            (
                "deed-tax-receipt".into(),
                "licence".into(),
                None,
                None,
                Some(receipt_id.clone()),
                Some("gateway".into())
            ),
            (
                "marriage-status".into(),
                "promised".into(),
                None,
                None,
                None,
                None
            ),
            file("property-certificate", &certificate),
            file("sale-contract", &sale_contract),
        ]
    );
    assert_eq!(env.departments.real_estate.received("submitTransfer"), 1);
    assert!(step(&view, "transfer")["outputs"]["certificate_number"].is_string());
    // One read of the receipt at the gateway, by the registry with its own key; tax named no
    // licence.
    let admin = env.admin_url();
    assert_eq!(
        licence_reads(&admin, "real-estate").await,
        [(receipt_id, "found".to_string())]
    );
    assert!(licence_reads(&admin, "tax").await.is_empty());
}

/// Another hall's gateway: the same departments and adapters, a store of its own (SQLite)
/// whose licence library is empty.
async fn another_hall(env: &Env) -> gateway::Gateway {
    let dir = env.dir.path().join("another-hall");
    std::fs::create_dir_all(&dir).unwrap();
    let store = format!("sqlite://{}", dir.join("gateway.db").display());
    let config = integration_tests::write_config(&dir, &env.departments, &env.setup, &store)
        .expect("another hall's config");
    gateway::Gateway::start(gateway_base::config::Config::load(&config).unwrap())
        .await
        .expect("another hall's gateway starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_the_gateway_never_issued_is_refused_by_the_registry_and_the_step_says_so() {
    let env = Env::start_with(setup()).await.unwrap();
    // The departments verify licences at a gateway that never issued this case's receipt: an
    // identifier whose check character holds, unknown where it is asked.
    let other = another_hall(&env).await;
    env.departments
        .gateway
        .set_url(&format!("http://{}", other.addr));

    let draft = new_draft(&env, "one-thing.home-transfer").await;
    upload(&env, &draft, "sale-contract", &pdf(50_000, 7)).await;
    upload(&env, &draft, "property-certificate", &jpeg(3000, 8)).await;
    let (case_id, _) = apply(
        &env,
        "one-thing.home-transfer",
        &draft,
        &home_transfer_form(),
    )
    .await;
    let view = env.wait_for_case(&case_id, WAIT, all_final).await;
    assert_eq!(step(&view, "deed_tax")["state"], "approved", "{view:#}");
    let receipt_id = view["licences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"] == "deed_tax_receipt")
        .and_then(|l| l["id"].as_str())
        .unwrap_or_else(|| panic!("the tax step issued no receipt: {view:#}"))
        .to_string();
    assert!(sdk::ids::licence_id(&receipt_id).is_ok(), "{receipt_id}");

    // The registry refuses on the merits, in its own fault, and the step says why.
    let transfer = step(&view, "transfer");
    assert_eq!(transfer["state"], "rejected", "{view:#}");
    let message = transfer["message"].as_str().unwrap();
    assert!(
        message.contains("E113") && message.contains("电子证照核验未通过"),
        "{message}"
    );
    let registry = &env.departments.real_estate;
    assert_eq!(registry.stats().rejected.get("E113"), Some(&1));
    assert_eq!(
        (registry.received("submitTransfer"), registry.applications()),
        (1, 0),
        "refused once, nothing filed"
    );
    assert!(registry.stats().materials.is_empty());

    // The read is in the asked gateway's audit log, by the registry: not found. This hall's
    // log has none.
    let other_admin = format!("http://{}", other.admin_addr.expect("an admin listener"));
    assert_eq!(
        licence_reads(&other_admin, "real-estate").await,
        [(receipt_id, "not_found".to_string())]
    );
    assert!(
        licence_reads(&env.admin_url(), "real-estate")
            .await
            .is_empty()
    );
    other.shutdown().await;
}

/// The single-matter service's one step.
fn only_step(view: &Value) -> &Value {
    let matters = view["matters"].as_array().unwrap();
    assert_eq!(matters.len(), 1, "{view:#}");
    &matters[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tax_registration_delivers_its_uploads_once_after_a_damaged_attempt() {
    let env = Env::start_with(setup()).await.unwrap();
    let service = "tax.registration";
    let draft = new_draft(&env, service).await;
    // The enterprise's licence is not in the gateway's library: the applicant uploads it.
    let licence = jpeg(200_000, 3);
    let premises = pdf(1_500_000, 4);
    upload(&env, &draft, "business-licence", &licence).await;
    upload(&env, &draft, "premises-proof", &premises).await;

    // The line to tax flips a bit of every file: the department refuses the upload, the
    // gateway tries again.
    let tax = &env.departments.tax;
    tax.set_faults(Faults {
        corrupt_materials: true,
        ..Faults::default()
    });
    let (case_id, _) = apply(&env, service, &draft, &registration_form()).await;
    let view = env
        .wait_for_case(&case_id, WAIT, |v| {
            // The portal reads a plain reason; the department's 4014 goes to the log.
            only_step(v)["message"].as_str() == Some("部门系统暂时无法访问")
        })
        .await;
    assert_eq!(only_step(&view)["state"], "pending", "{view:#}");
    assert_eq!(tax.applications(), 0, "nothing filed");
    tax.set_faults(Faults::default());

    let view = env.wait_for_case(&case_id, WAIT, all_final).await;
    assert_eq!(view["status"], "completed", "{view:#}");
    let request_id = format!("{case_id}:{}", only_step(&view)["step"].as_str().unwrap());
    let mut got = received(tax, &request_id);
    got.sort();
    assert_eq!(
        got,
        vec![
            file("business-licence", &licence),
            file("premises-proof", &premises)
        ],
        "each file once, as uploaded"
    );
    // The refused uploads (one per damaged attempt), then one each.
    let refused = tax.stats().rejected["body_digest_mismatch"];
    assert!(refused >= 1);
    assert_eq!(tax.received("wjsc"), refused + 2, "{:?}", tax.stats());
    assert_eq!(tax.applications(), 1);
}

/// The demo catalogue with a PNG allowed where the department takes none: the hall's list
/// more lenient than the department's system.
fn lenient_catalogue(dir: &std::path::Path) -> std::path::PathBuf {
    let text = integration_tests::without_social_security(
        &std::fs::read_to_string(workspace_root().join("config/catalogue.toml")).unwrap(),
    );
    let lenient = |text: String, code: &str, formats: &str| {
        let at = text
            .find(&format!("code = \"{code}\""))
            .unwrap_or_else(|| panic!("{code} is in the catalogue"));
        let line = text[at..].find(formats).expect("its formats") + at;
        let mut text = text;
        text.replace_range(
            line..line + formats.len(),
            &formats.replace('[', "[\"png\", "),
        );
        text
    };
    let text = lenient(
        text,
        "premises-proof\"\nname = \"经营场所证明",
        "formats = [\"pdf\", \"ofd\", \"jpeg\"]",
    );
    let text = lenient(
        text,
        "property-certificate",
        "formats = [\"pdf\", \"jpeg\", \"ofd\"]",
    );
    let path = dir.join("lenient-catalogue.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_material_the_department_will_not_take_ends_its_step_with_the_material_named() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start_with(Setup {
        catalogue: Some(lenient_catalogue(dir.path())),
        ..setup()
    })
    .await
    .unwrap();

    // Tax takes PDF, OFD and JPEG.
    let draft = new_draft(&env, "tax.registration").await;
    upload(&env, &draft, "business-licence", &jpeg(5000, 5)).await;
    upload(&env, &draft, "premises-proof", &png(4000, 9)).await;
    let (case_id, _) = apply(&env, "tax.registration", &draft, &registration_form()).await;
    let view = env.wait_for_case(&case_id, WAIT, all_final).await;
    let refused = only_step(&view);
    assert_eq!(refused["state"], "failed", "{view:#}");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.starts_with("materials.premises-proof: 税务部门拒收该材料：文件类型不支持"),
        "{message}"
    );
    let tax = &env.departments.tax;
    assert_eq!(tax.stats().rejected.get("file_type"), Some(&1));
    assert_eq!(tax.applications(), 0, "nothing filed");
    assert!(tax.stats().materials.is_empty());

    // The registry takes PDF, OFD and JPEG attachments: the deed tax is paid, the transfer
    // fails on the certificate's scan.
    let draft = new_draft(&env, "one-thing.home-transfer").await;
    upload(&env, &draft, "sale-contract", &pdf(50_000, 6)).await;
    upload(&env, &draft, "property-certificate", &png(3000, 9)).await;
    let (case_id, _) = apply(
        &env,
        "one-thing.home-transfer",
        &draft,
        &home_transfer_form(),
    )
    .await;
    let view = env.wait_for_case(&case_id, WAIT, all_final).await;
    assert_eq!(step(&view, "deed_tax")["state"], "approved", "{view:#}");
    let transfer = step(&view, "transfer");
    assert_eq!(transfer["state"], "failed", "{view:#}");
    let message = transfer["message"].as_str().unwrap();
    assert!(
        message
            .starts_with("materials.property-certificate: 不动产登记部门拒收该材料：附件类型错误"),
        "{message}"
    );
    let registry = &env.departments.real_estate;
    assert_eq!(registry.stats().rejected.get("E107"), Some(&1));
    assert_eq!(registry.applications(), 0, "nothing filed");
    assert!(registry.stats().materials.is_empty());
}
