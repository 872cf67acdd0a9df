//! 补正 and 撤回 at each of the four departments, in each one's own protocol, end to end: the
//! gateway's API, the real adapters (wasm components) and the simulated departments
//! (tests/departments, each department's trigger documented in its `lifecycle` module).
//!
//! For each department: a matter it returns (what it asks shown on the case), supplemented
//! through `POST /api/v1/cases/{id}/matters/{step}/supplements`, taken once by the department
//! and approved; and a returned matter withdrawn through `POST /api/v1/cases/{id}/withdrawal`,
//! the department told once and the matter withdrawn, never supplemented after.
//!
//! - 税务 (signed JSON): a 税务登记 without a house number is returned for the address and a
//!   proof of premises; a supplement of the address only is returned again for the proof
//!   alone, and the proof's supplement registers it.
//! - 不动产登记 (SOAP in GBK): a transfer declared below the flat's assessed value is returned
//!   for the price; the corrected price registers it.
//! - 公安 (XML over mutual TLS): a seal filing whose impression is too small to read is
//!   returned for a readable one, uploaded to the case and supplemented: filed.
//! - 市场监管 (OAuth, signed callbacks): a licence application whose 经营范围 sums up with 等
//!   is returned by callback; the scope listed item by item is registered.
//!
//! - A supplement the registry took whose answer came after the gateway gave up is sent again
//!   with the same request id: answered from the first, taken once.
//!
//! Supplements carrying a file, uploaded to the case first and named by the supplement, each
//! department holding that supplement's file with the uploaded bytes' SM3 and size:
//! - 不动产登记 (MTOM): a transfer whose sale contract is on file is returned for the price and
//!   the contract stating the corrected one; the price alone is returned again for the contract,
//!   whose supplement registers it.
//! - 市场监管 (chunked upload): a dwelling's application (住改商) whose scope sums up with 等 is
//!   returned for the scope and a premises proof carrying the owners' consent; one supplement
//!   with both registers it.
//! - Each of those files damaged on the way (a bit flipped): refused by the department in its
//!   own way (E108; chunk_digest_mismatch), nothing taken, sent again with the same request id
//!   and taken once with the uploaded bytes.
//!
//! Runs on SQLite, and on PostgreSQL with `GATEWAY_TEST_STORE=postgres`.

use integration_tests::files::{delivered, file, jpeg, pdf, png, sm3_hex};
use integration_tests::{Env, PORTAL_KEY, Setup};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn step<'v>(view: &'v Value, id: &str) -> &'v Value {
    view["matters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["step"] == id)
        .unwrap_or_else(|| panic!("no step {id}: {view:#}"))
}

fn setup(demo_materials: bool) -> Setup {
    Setup {
        demo_materials,
        ticket_delay: Some(Duration::from_millis(300)),
        ..Setup::default()
    }
}

async fn put_bytes(env: &Env, path: &str, bytes: &[u8]) {
    let response = env
        .http
        .put(format!("{}{path}", env.gateway.url()))
        .header("x-api-key", PORTAL_KEY)
        .body(bytes.to_vec())
        .send()
        .await
        .expect("the gateway answers");
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 201, "{path}: {body}");
}

/// Apply for `service` with files uploaded to a draft first: the case id.
async fn apply_with_files(
    env: &Env,
    service: &str,
    form: &Value,
    files: &[(&str, Vec<u8>)],
) -> String {
    let (status, draft) = env
        .post(&format!("/api/v1/services/{service}/drafts"), &json!({}))
        .await;
    assert_eq!(status, 201, "{draft}");
    let draft = draft["draft_id"].as_str().unwrap().to_string();
    for (code, bytes) in files {
        put_bytes(
            env,
            &format!("/api/v1/drafts/{draft}/materials/{code}"),
            bytes,
        )
        .await;
    }
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
    accepted["case_id"].as_str().unwrap().to_string()
}

/// Wait for step `id` of the case to be returned: the step.
async fn returned(env: &Env, case_id: &str, id: &str) -> Value {
    let view = env
        .wait_for_case(case_id, WAIT, |v| {
            let s = step(v, id);
            s["state"] == "returned" || s["state"] == "approved" || s["state"] == "failed"
        })
        .await;
    let s = step(&view, id).clone();
    assert_eq!(s["state"], "returned", "{view:#}");
    assert!(s["requested"]["due"].is_string(), "{s:#}");
    s
}

async fn supplement(env: &Env, case_id: &str, id: &str, body: &Value) {
    let (status, accepted) = env
        .post(
            &format!("/api/v1/cases/{case_id}/matters/{id}/supplements"),
            body,
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["state"], "supplemented", "{accepted}");
}

/// Withdraw the case, wait for step `id` to be withdrawn: the case's view.
async fn withdraw(env: &Env, case_id: &str, id: &str) -> Value {
    let (status, accepted) = env
        .post(
            &format!("/api/v1/cases/{case_id}/withdrawal"),
            &json!({"reason": "申请人决定暂不办理"}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    assert!(
        accepted["notifying"]
            .as_array()
            .unwrap()
            .contains(&json!(id)),
        "the department holding {id} is told: {accepted}"
    );
    let view = env
        .wait_for_case(case_id, WAIT, |v| {
            matches!(
                step(v, id)["state"].as_str(),
                Some("withdrawn" | "approved" | "rejected" | "failed")
            )
        })
        .await;
    assert_eq!(step(&view, id)["state"], "withdrawn", "{view:#}");
    view
}

fn fields_asked(step: &Value) -> Vec<String> {
    step["requested"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_string())
        .collect()
}

fn materials_asked(step: &Value) -> Vec<String> {
    step["requested"]["materials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["code"].as_str().unwrap().to_string())
        .collect()
}

fn reference(step: &Value) -> String {
    step["reference"].as_str().unwrap().to_string()
}

// ---- 税务 ----

fn registration(address: &str) -> Value {
    json!({
        "credit_code": "91350100M000100Y43",
        "enterprise_name": "福州测试科技有限公司",
        "legal_representative": {"name": "张三", "id_number": "11010519491231002X"},
        "address": address,
        "business_scope": "软件开发"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tax_returns_again_for_what_a_supplement_lacks_and_takes_a_withdrawal_once() {
    let env = Env::start_with(setup(true)).await.unwrap();
    let service = "tax.registration";
    let id = "tax.registration";
    let licence = [("business-licence", pdf(40_000, 1))];
    let case_id =
        apply_with_files(&env, service, &registration("福州市鼓楼区五四路"), &licence).await;

    // Returned for the address and a proof of premises, in the unified names.
    let first = returned(&env, &case_id, id).await;
    assert_eq!(fields_asked(&first), ["address"], "{first:#}");
    assert_eq!(materials_asked(&first), ["premises-proof"], "{first:#}");
    assert!(
        first["requested"]["fields"][0]["message"]
            .as_str()
            .unwrap()
            .contains("门牌号"),
        "the department's reason: {first:#}"
    );
    let slh = reference(&first);

    // The address alone: returned again, for the proof alone.
    supplement(
        &env,
        &case_id,
        id,
        &json!({"fields": {"address": "福州市鼓楼区五四路1号"}}),
    )
    .await;
    let view = env
        .wait_for_case(&case_id, WAIT, |v| {
            let s = step(v, id);
            s["state"] == "returned" && s["requested"]["fields"] == json!([])
        })
        .await;
    let again = step(&view, id);
    assert_eq!(materials_asked(again), ["premises-proof"], "{again:#}");
    assert_eq!(reference(again), slh, "the same 受理号");

    // The proof, uploaded to the case and supplemented: registered.
    let proof = pdf(30_000, 2);
    put_bytes(
        &env,
        &format!("/api/v1/cases/{case_id}/materials/premises-proof"),
        &proof,
    )
    .await;
    supplement(
        &env,
        &case_id,
        id,
        &json!({"materials": ["premises-proof"]}),
    )
    .await;
    let view = env
        .wait_for_case(&case_id, WAIT, |v| step(v, id)["state"] == "approved")
        .await;
    let done = step(&view, id);
    assert_eq!(
        done["outputs"]["taxpayer_id"], "91350100M000100Y43",
        "{done:#}"
    );
    assert_eq!(done["requested"], Value::Null);

    // Tax took two supplements, each once: the address, then the proof (its bytes whole).
    let taken = env.departments.tax.supplements(&slh);
    assert_eq!(taken.len(), 2, "{taken:#?}");
    assert!(taken.iter().all(|t| t.repeats == 0), "{taken:#?}");
    assert_eq!(taken[0].body["bzzd"]["scjydz"], "福州市鼓楼区五四路1号");
    assert_eq!(taken[0].body["clbm"], json!([]));
    assert_eq!(taken[1].body["clbm"], json!(["premises-proof"]));
    let delivered: Vec<_> = env
        .departments
        .tax
        .stats()
        .materials
        .into_iter()
        .filter(|m| m.request_id == taken[1].request_id)
        .collect();
    assert_eq!(delivered.len(), 1, "{delivered:#?}");
    assert_eq!(delivered[0].size, Some(proof.len() as u64));
    assert_eq!(
        delivered[0].sm3.as_deref(),
        Some(integration_tests::files::sm3_hex(&proof).as_str())
    );
    assert!(env.departments.tax.withdrawals(&slh).is_empty());

    // Another registration returned, then withdrawn: tax is told once, and it stays withdrawn.
    let case_id =
        apply_with_files(&env, service, &registration("福州市鼓楼区五四路"), &licence).await;
    let slh = reference(&returned(&env, &case_id, id).await);
    let view = withdraw(&env, &case_id, id).await;
    assert_eq!(view["status"], "withdrawn", "{view:#}");
    let told = env.departments.tax.withdrawals(&slh);
    assert_eq!(told.len(), 1, "{told:#?}");
    assert_eq!(told[0].body["zt"], "05", "已撤回: {told:#?}");
    assert!(env.departments.tax.supplements(&slh).is_empty());
    env.gateway.shutdown().await;
}

// ---- 不动产登记 ----

fn home_transfer(price: u64) -> Value {
    json!({
        "certificate_number": "闽(2019)平潭不动产权第0011364号",
        "seller": {"name": "张三", "id_number": "11010519491231002X"},
        "buyer": {"name": "李四", "id_number": "34052419800101001X"},
        "buyer_birth_date": "1980-01-01",
        "price": price
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_returns_a_price_below_its_assessment_and_registers_the_corrected_one() {
    let env = Env::start_with(setup(false)).await.unwrap();
    let id = "transfer";
    let case_id = env
        .apply("one-thing.home-transfer", &home_transfer(500_000))
        .await;
    let asked = returned(&env, &case_id, id).await;
    assert_eq!(fields_asked(&asked), ["price"], "{asked:#}");
    assert!(
        asked["requested"]["fields"][0]["message"]
            .as_str()
            .unwrap()
            .contains("评估价格"),
        "{asked:#}"
    );
    let slbh = reference(&asked);

    supplement(&env, &case_id, id, &json!({"fields": {"price": 1_200_000}})).await;
    let view = env
        .wait_for_case(&case_id, WAIT, |v| step(v, id)["state"] == "approved")
        .await;
    assert_eq!(view["status"], "completed", "{view:#}");
    let done = step(&view, id);
    assert!(
        done["outputs"]["certificate_number"]
            .as_str()
            .is_some_and(|c| c.contains("不动产权第")),
        "{done:#}"
    );
    // The registry took one supplement: the price, in its own name and form.
    let taken = env.departments.real_estate.supplements(&slbh);
    assert_eq!(taken.len(), 1, "{taken:#?}");
    assert_eq!(taken[0].repeats, 0);
    assert_eq!(
        taken[0].body["bzzd"],
        json!([{"zdmc": "jyjg", "zdz": "1200000.00"}])
    );

    // Another transfer returned, then withdrawn: the registry is told once.
    let case_id = env
        .apply("one-thing.home-transfer", &home_transfer(500_000))
        .await;
    let slbh = reference(&returned(&env, &case_id, id).await);
    let view = withdraw(&env, &case_id, id).await;
    assert_eq!(
        step(&view, "deed_tax")["state"],
        "approved",
        "decided first"
    );
    let told = env.departments.real_estate.withdrawals(&slbh);
    assert_eq!(told.len(), 1, "{told:#?}");
    assert!(
        told[0].body["state"]
            .as_str()
            .unwrap()
            .contains("<zt>已撤回</zt>"),
        "{told:#?}"
    );
    assert!(env.departments.real_estate.supplements(&slbh).is_empty());
    env.gateway.shutdown().await;
}

// ---- 公安 ----

fn open_business(name: &str) -> Value {
    json!({
        "enterprise_name": name,
        "address": "福州市鼓楼区五四路2号",
        "legal_representative": {"name": "李四", "id_number": "34052419800101001X"},
        "registered_capital": 100,
        "business_scope": "软件开发",
        "seal_types": ["法定名称章"]
    })
}

/// 企业开办 whose seal impression is too small to read (2 KB): the case id.
async fn open_business_with_small_impression(env: &Env, name: &str) -> String {
    apply_with_files(
        env,
        "one-thing.open-business",
        &open_business(name),
        &[
            ("articles-of-association", pdf(50_000, 3)),
            ("seal-impression", png(2_000, 4)),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_security_returns_an_unreadable_impression_and_files_the_readable_one() {
    let env = Env::start_with(setup(true)).await.unwrap();
    let id = "seal";
    let case_id = open_business_with_small_impression(&env, "福州补正印模科技有限公司").await;
    let asked = returned(&env, &case_id, id).await;
    assert_eq!(materials_asked(&asked), ["seal-impression"], "{asked:#}");
    assert_eq!(fields_asked(&asked), Vec::<String>::new());
    let babh = reference(&asked);

    let readable = png(200_000, 5);
    put_bytes(
        &env,
        &format!("/api/v1/cases/{case_id}/materials/seal-impression"),
        &readable,
    )
    .await;
    supplement(
        &env,
        &case_id,
        id,
        &json!({"materials": ["seal-impression"]}),
    )
    .await;
    let view = env
        .wait_for_case(&case_id, WAIT, |v| step(v, id)["state"] == "approved")
        .await;
    assert_eq!(step(&view, id)["outputs"]["filing_no"], babh.as_str());

    // One supplement, the readable impression decoded from its base64 whole.
    let ps = &env.departments.public_security;
    let taken = ps.supplements(&babh);
    assert_eq!(taken.len(), 1, "{taken:#?}");
    assert_eq!(taken[0].body["clbm"], json!(["seal-impression"]));
    let delivered: Vec<_> = ps
        .stats()
        .materials
        .into_iter()
        .filter(|m| m.request_id == taken[0].request_id)
        .collect();
    assert_eq!(delivered.len(), 1, "{delivered:#?}");
    assert_eq!(delivered[0].size, Some(readable.len() as u64));

    // Another filing returned, then withdrawn: public security is told once.
    let case_id = open_business_with_small_impression(&env, "福州撤回印模科技有限公司").await;
    let babh = reference(&returned(&env, &case_id, id).await);
    withdraw(&env, &case_id, id).await;
    let told = ps.withdrawals(&babh);
    assert_eq!(told.len(), 1, "{told:#?}");
    assert!(
        told[0].body["state"]
            .as_str()
            .unwrap()
            .starts_with("<blzt>3</blzt>"),
        "{told:#?}"
    );
    assert!(ps.supplements(&babh).is_empty());
    env.gateway.shutdown().await;
}

// ---- 市场监管 ----

fn licence(name: &str, scope: &str) -> Value {
    json!({
        "enterprise_name": name,
        "address": "福州市鼓楼区五四路2号",
        "legal_representative": {"name": "李四", "id_number": "34052419800101001X"},
        "registered_capital": 100,
        "business_scope": scope
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_regulation_returns_a_scope_summed_up_by_callback_and_registers_it_listed() {
    scope_returned_supplemented_and_withdrawn(setup(false)).await;
}

/// The same 补正 and 撤回 through the JavaScript adapter (`plugins/market-regulation-js`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_regulation_in_javascript_returns_supplements_and_withdraws_the_same() {
    scope_returned_supplemented_and_withdrawn(Setup {
        market_regulation_js: true,
        ..setup(false)
    })
    .await;
}

async fn scope_returned_supplemented_and_withdrawn(setup: Setup) {
    let env = Env::start_with(setup).await.unwrap();
    let service = "market-regulation.business-licence";
    let id = "market-regulation.business-licence";
    let case_id = env
        .apply(
            service,
            &licence("福州补正范围科技有限公司", "软件开发、技术服务等"),
        )
        .await;
    let asked = returned(&env, &case_id, id).await;
    assert_eq!(fields_asked(&asked), ["business_scope"], "{asked:#}");
    let no = reference(&asked);

    supplement(
        &env,
        &case_id,
        id,
        &json!({"fields": {"business_scope": "软件开发、信息技术咨询服务"}}),
    )
    .await;
    let view = env
        .wait_for_case(&case_id, WAIT, |v| step(v, id)["state"] == "approved")
        .await;
    let done = step(&view, id);
    assert!(done["outputs"]["credit_code"].is_string(), "{done:#}");
    let mr = &env.departments.market_regulation;
    let taken = mr.supplements(&no);
    assert_eq!(taken.len(), 1, "{taken:#?}");
    assert_eq!(
        taken[0].body["fields"],
        json!({"businessScope": "软件开发、信息技术咨询服务"})
    );

    // Another application returned, then withdrawn: market regulation is told once.
    let case_id = env
        .apply(service, &licence("福州撤回范围科技有限公司", "餐饮服务等"))
        .await;
    let no = reference(&returned(&env, &case_id, id).await);
    let view = withdraw(&env, &case_id, id).await;
    assert_eq!(view["status"], "withdrawn", "{view:#}");
    let told = mr.withdrawals(&no);
    assert_eq!(told.len(), 1, "{told:#?}");
    assert_eq!(told[0].body["status"], "WITHDRAWN");
    assert!(mr.supplements(&no).is_empty());
    env.gateway.shutdown().await;
}

// ---- supplements carrying files ----

/// A transfer below the assessment filed with its sale contract `filed` (and the property
/// certificate): the case id.
async fn transfer_with_contract(env: &Env, filed: &[u8]) -> String {
    apply_with_files(
        env,
        "one-thing.home-transfer",
        &home_transfer(500_000),
        &[
            ("sale-contract", filed.to_vec()),
            ("property-certificate", jpeg(80_000, 21)),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_asks_for_the_contract_stating_a_corrected_price_and_takes_it_whole() {
    let env = Env::start_with(setup(true)).await.unwrap();
    let id = "transfer";
    let filed = pdf(60_000, 20);
    let case_id = transfer_with_contract(&env, &filed).await;

    // The price, and the contract stating it: the one on file states the price returned.
    let asked = returned(&env, &case_id, id).await;
    assert_eq!(fields_asked(&asked), ["price"], "{asked:#}");
    assert_eq!(materials_asked(&asked), ["sale-contract"], "{asked:#}");
    assert!(
        asked["requested"]["materials"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("补充协议"),
        "the registry's reason: {asked:#}"
    );
    let slbh = reference(&asked);

    // The price alone: returned again, for the contract alone.
    supplement(&env, &case_id, id, &json!({"fields": {"price": 1_200_000}})).await;
    let view = env
        .wait_for_case(&case_id, WAIT, |v| {
            let s = step(v, id);
            s["state"] == "returned" && s["requested"]["fields"] == json!([])
        })
        .await;
    assert_eq!(materials_asked(step(&view, id)), ["sale-contract"]);

    // The contract stating the corrected price, uploaded to the case (it replaces the one
    // asked anew) and supplemented: registered.
    let corrected = pdf(90_000, 22);
    put_bytes(
        &env,
        &format!("/api/v1/cases/{case_id}/materials/sale-contract"),
        &corrected,
    )
    .await;
    supplement(&env, &case_id, id, &json!({"materials": ["sale-contract"]})).await;
    let view = env
        .wait_for_case(&case_id, WAIT, |v| step(v, id)["state"] == "approved")
        .await;
    assert_eq!(view["status"], "completed", "{view:#}");
    let done = step(&view, id);
    assert!(
        done["outputs"]["certificate_number"].is_string(),
        "{done:#}"
    );
    assert_eq!(done["requested"], Value::Null);

    // Two supplements, each once: the price, then the contract in an MTOM package, its bytes
    // whole; the contract filed with the transfer was the first one.
    let registry = &env.departments.real_estate;
    let taken = registry.supplements(&slbh);
    assert_eq!(taken.len(), 2, "{taken:#?}");
    assert!(taken.iter().all(|t| t.repeats == 0), "{taken:#?}");
    assert_eq!(
        taken[0].body,
        json!({"bzzd": [{"zdmc": "jyjg", "zdz": "1200000.00"}], "clbm": []})
    );
    assert_eq!(
        taken[1].body,
        json!({"bzzd": [], "clbm": ["sale-contract"]})
    );
    assert!(delivered(registry, &taken[0].request_id).is_empty());
    assert_eq!(
        delivered(registry, &taken[1].request_id),
        [file("sale-contract", &corrected)]
    );
    let with_transfer = registry
        .stats()
        .materials
        .into_iter()
        .filter(|m| m.code == "sale-contract" && m.request_id != taken[1].request_id)
        .map(|m| m.sm3)
        .collect::<Vec<_>>();
    assert_eq!(with_transfer, [Some(sm3_hex(&filed))]);
    env.gateway.shutdown().await;
}

/// A business licence for `name` at a dwelling (住宅), its scope summed up with 等, filed with
/// its materials (a premises proof among them): the case id.
async fn licence_at_a_dwelling(env: &Env, name: &str) -> String {
    let mut form = licence(name, "软件开发、技术服务等");
    form["address"] = json!("福州市鼓楼区五四路3号2座501室（住宅）");
    apply_with_files(
        env,
        "market-regulation.business-licence",
        &form,
        &[
            ("articles-of-association", pdf(40_000, 23)),
            ("shareholder-id", jpeg(50_000, 26)),
            ("premises-proof", pdf(30_000, 24)),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_regulation_asks_a_dwelling_for_a_premises_proof_and_takes_it_in_chunks() {
    premises_proof_supplemented_in_chunks(setup(true)).await;
}

/// The same supplement of a file in chunks through the JavaScript adapter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_regulation_in_javascript_takes_a_premises_proof_in_chunks_the_same() {
    premises_proof_supplemented_in_chunks(Setup {
        market_regulation_js: true,
        ..setup(true)
    })
    .await;
}

async fn premises_proof_supplemented_in_chunks(setup: Setup) {
    let env = Env::start_with(setup).await.unwrap();
    let id = "market-regulation.business-licence";
    let case_id = licence_at_a_dwelling(&env, "福州住改商科技有限公司").await;

    // The scope, and a proof of premises carrying the owners' consent.
    let asked = returned(&env, &case_id, id).await;
    assert_eq!(fields_asked(&asked), ["business_scope"], "{asked:#}");
    assert_eq!(materials_asked(&asked), ["premises-proof"], "{asked:#}");
    assert!(
        asked["requested"]["materials"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("业主同意"),
        "the department's reason: {asked:#}"
    );
    let no = reference(&asked);
    let mr = &env.departments.market_regulation;
    let uploads = |mr: &departments::Department| {
        (
            mr.received("file_open"),
            mr.received("file_chunk"),
            mr.received("file_complete"),
        )
    };
    let before = uploads(mr);

    // Both in one supplement: the proof uploaded to the case first (2.5 MB: three chunks).
    let consent = pdf(2_500_000, 25);
    put_bytes(
        &env,
        &format!("/api/v1/cases/{case_id}/materials/premises-proof"),
        &consent,
    )
    .await;
    supplement(
        &env,
        &case_id,
        id,
        &json!({
            "fields": {"business_scope": "软件开发、信息技术咨询服务"},
            "materials": ["premises-proof"]
        }),
    )
    .await;
    let view = env
        .wait_for_case(&case_id, WAIT, |v| step(v, id)["state"] == "approved")
        .await;
    let done = step(&view, id);
    assert!(done["outputs"]["credit_code"].is_string(), "{done:#}");
    assert_eq!(done["requested"], Value::Null);

    // One supplement: the scope, and the proof reassembled from three 1 MiB chunks, each sent
    // once, its bytes whole.
    let after = uploads(mr);
    assert_eq!(
        (after.0 - before.0, after.1 - before.1, after.2 - before.2),
        (1, 3, 1),
        "opened once, three chunks, completed once"
    );
    let taken = mr.supplements(&no);
    assert_eq!(taken.len(), 1, "{taken:#?}");
    assert_eq!(taken[0].repeats, 0);
    assert_eq!(
        taken[0].body,
        json!({
            "fields": {"businessScope": "软件开发、信息技术咨询服务"},
            "materials": ["premises-proof"]
        })
    );
    assert_eq!(
        delivered(mr, &taken[0].request_id),
        [file("premises-proof", &consent)]
    );
    env.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supplements_file_damaged_on_the_way_is_refused_and_sent_again_whole() {
    let env = Env::start_with(setup(true)).await.unwrap();
    let damaged = departments::Faults {
        corrupt_materials: true,
        ..departments::Faults::default()
    };

    // 不动产登记: the contract's part arrives with a bit flipped, the registry faults E108 (its
    // SM3 is not the one declared) and takes nothing; sent again with the same ywh.
    let id = "transfer";
    let case_id = transfer_with_contract(&env, &pdf(60_000, 30)).await;
    let slbh = reference(&returned(&env, &case_id, id).await);
    let corrected = pdf(70_000, 31);
    put_bytes(
        &env,
        &format!("/api/v1/cases/{case_id}/materials/sale-contract"),
        &corrected,
    )
    .await;
    let registry = &env.departments.real_estate;
    registry.set_faults(damaged.clone());
    supplement(
        &env,
        &case_id,
        id,
        &json!({"fields": {"price": 1_200_000}, "materials": ["sale-contract"]}),
    )
    .await;
    until("the registry refuses the damaged contract", || {
        registry.stats().rejected.contains_key("E108")
    })
    .await;
    assert!(registry.supplements(&slbh).is_empty(), "nothing taken");
    registry.set_faults(departments::Faults::default());
    let view = env
        .wait_for_case(&case_id, WAIT, |v| step(v, id)["state"] == "approved")
        .await;
    assert_eq!(view["status"], "completed", "{view:#}");
    let taken = registry.supplements(&slbh);
    assert_eq!(taken.len(), 1, "{taken:#?}");
    assert_eq!(
        delivered(registry, &taken[0].request_id),
        [file("sale-contract", &corrected)]
    );
    assert!(registry.received("submitSupplement") >= 2);

    // 市场监管: the proof's first chunk arrives damaged, refused (chunk_digest_mismatch);
    // uploaded again under the same requestId, the supplement is taken once.
    let id = "market-regulation.business-licence";
    let case_id = licence_at_a_dwelling(&env, "福州损坏补正科技有限公司").await;
    let no = reference(&returned(&env, &case_id, id).await);
    let consent = pdf(1_500_000, 32);
    put_bytes(
        &env,
        &format!("/api/v1/cases/{case_id}/materials/premises-proof"),
        &consent,
    )
    .await;
    let mr = &env.departments.market_regulation;
    mr.set_faults(damaged);
    supplement(
        &env,
        &case_id,
        id,
        &json!({
            "fields": {"business_scope": "软件开发、信息技术咨询服务"},
            "materials": ["premises-proof"]
        }),
    )
    .await;
    until("market regulation refuses the damaged chunk", || {
        mr.stats().rejected.contains_key("chunk_digest_mismatch")
    })
    .await;
    assert!(mr.supplements(&no).is_empty(), "nothing taken");
    mr.set_faults(departments::Faults::default());
    let view = env
        .wait_for_case(&case_id, WAIT, |v| step(v, id)["state"] == "approved")
        .await;
    assert!(step(&view, id)["outputs"]["credit_code"].is_string());
    let taken = mr.supplements(&no);
    assert_eq!(taken.len(), 1, "{taken:#?}");
    assert_eq!(
        delivered(mr, &taken[0].request_id),
        [file("premises-proof", &consent)]
    );
    env.gateway.shutdown().await;
}

// ---- a lost answer ----

/// Poll `done` every 20 ms until it holds, failing after `WAIT`: the departments' records have
/// no event to wait on.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "waited too long: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supplement_whose_answer_is_lost_is_sent_again_and_taken_once() {
    let env = Env::start_with(Setup {
        department_timeout: Some(Duration::from_secs(1)),
        ..setup(false)
    })
    .await
    .unwrap();
    let id = "transfer";
    let case_id = env
        .apply("one-thing.home-transfer", &home_transfer(500_000))
        .await;
    let slbh = reference(&returned(&env, &case_id, id).await);

    // The registry takes the supplement but its answer comes after the gateway gave up on it.
    let registry = &env.departments.real_estate;
    registry.set_faults(departments::Faults {
        latency_ms: 2_500,
        ..departments::Faults::default()
    });
    supplement(&env, &case_id, id, &json!({"fields": {"price": 1_200_000}})).await;
    until("the registry takes the supplement", || {
        registry.supplements(&slbh).len() == 1
    })
    .await;
    registry.set_faults(departments::Faults::default());

    // Sent again with the same request id: answered from the first, the transfer registered.
    let view = env
        .wait_for_case(&case_id, WAIT, |v| step(v, id)["state"] == "approved")
        .await;
    assert!(step(&view, id)["outputs"]["certificate_number"].is_string());
    let taken = registry.supplements(&slbh);
    assert_eq!(taken.len(), 1, "taken once: {taken:#?}");
    assert!(taken[0].repeats >= 1, "sent again with its key: {taken:#?}");
    assert!(registry.received("submitSupplement") >= 2);
    env.gateway.shutdown().await;
}
