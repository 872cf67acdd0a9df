//! Electronic licences (电子证照): what approved steps issue is kept with the case under a
//! GB/T 36904 identifier, and found by its holder — an enterprise by credit code (the 企业码
//! view of its licences and cases), a person by identity number.

use integration_tests::Env;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn all_final(view: &Value) -> bool {
    view["matters"].as_array().unwrap().iter().all(|m| {
        matches!(
            m["state"].as_str(),
            Some("approved" | "rejected" | "returned" | "failed" | "blocked")
        )
    })
}

fn matter<'v>(view: &'v Value, step: &str) -> &'v Value {
    view["matters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["step"] == step)
        .unwrap_or_else(|| panic!("no step {step}: {view:#}"))
}

fn kinds(view: &Value) -> Vec<&str> {
    let mut kinds: Vec<&str> = view["licences"]
        .as_array()
        .unwrap_or_else(|| panic!("no licences: {view:#}"))
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    kinds.sort_unstable();
    kinds
}

fn licence<'v>(view: &'v Value, kind: &str) -> &'v Value {
    view["licences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}: {view:#}"))
}

/// GET `path` until its answer satisfies `done`, woken by the gateway's case events (a licence
/// is stored before the step's change is announced).
async fn wait_for(env: &Env, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut events = env.gateway.orchestrator.subscribe();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = env.get(path).await;
        if status == 200 && done(&body) {
            return body;
        }
        if tokio::time::timeout_at(deadline, events.recv())
            .await
            .is_err()
        {
            panic!("{path} did not answer as expected in {WAIT:?}: {status} {body:#}");
        }
    }
}

/// The field problems of a 422 answer, as (field, code).
fn problems(status: u16, body: &Value) -> Vec<(String, String)> {
    assert_eq!(status, 422, "{body:#}");
    assert_eq!(body["error"]["code"], "invalid_input", "{body:#}");
    body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap().to_string(),
                f["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_enterprise_code_view_lists_the_licences_and_cases_of_a_new_enterprise() {
    let env = Env::start().await.unwrap();
    let form = json!({
        "enterprise_name": "福州电子证照科技有限公司",
        "address": "福州市鼓楼区五四路2号",
        "legal_representative": {"name": "李四", "id_number": "34052419800101001X"},
        "registered_capital": 100,
        "business_scope": "软件开发",
        "seal_types": ["法定名称章", "财务专用章"]
    });
    let case_id = env.apply("one-thing.open-business", &form).await;
    let case = env.wait_for_case(&case_id, WAIT, all_final).await;
    assert_eq!(case["status"], "completed", "{case:#}");
    let outputs = &matter(&case, "licence")["outputs"];
    let credit_code = outputs["credit_code"].as_str().unwrap().to_string();

    let path = format!("/api/v1/subjects/enterprises/{credit_code}");
    let view = wait_for(&env, &path, |v| {
        v["licences"].as_array().is_some_and(|l| l.len() >= 3)
    })
    .await;
    assert_eq!(view["credit_code"], credit_code.as_str());
    assert_eq!(
        kinds(&view),
        ["business_licence", "seal_filing", "tax_registration"],
        "one licence per issuing step, each once: {view:#}"
    );
    let business = licence(&view, "business_licence");
    let id = business["id"].as_str().unwrap();
    sdk::ids::licence_id(id).unwrap_or_else(|e| panic!("{id}: {e}"));
    assert!(id.starts_with("1.2.156.3005.2."), "{id}");
    assert_eq!(business["name"], "营业执照");
    assert_eq!(business["holder_kind"], "enterprise");
    assert_eq!(business["holder_id"], credit_code.as_str());
    assert_eq!(business["number"], outputs["licence_no"]);
    assert_eq!(business["case_id"], case_id.as_str());
    assert_eq!(business["issuer"], "market-regulation");
    assert_eq!(
        licence(&view, "seal_filing")["number"],
        matter(&case, "seal")["outputs"]["filing_no"]
    );
    assert_eq!(licence(&view, "tax_registration")["name"], "税务登记信息");
    for l in view["licences"].as_array().unwrap() {
        assert_eq!(l["holder_id"], credit_code.as_str());
        assert_eq!(l["holder_name"], "福州电子证照科技有限公司");
        sdk::ids::licence_id(l["id"].as_str().unwrap()).unwrap();
    }
    let cases = view["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1, "{view:#}");
    assert_eq!(cases[0]["case_id"], case_id.as_str());
    assert_eq!(cases[0]["service"], "one-thing.open-business");
    assert_eq!(cases[0]["status"], "completed");

    // The case lists what it issued.
    let (_, case) = env.get(&format!("/api/v1/cases/{case_id}")).await;
    assert_eq!(
        kinds(&case),
        ["business_licence", "seal_filing", "tax_registration"]
    );

    // One licence by its identifier.
    let (status, one) = env.get(&format!("/api/v1/licences/{id}")).await;
    assert_eq!(status, 200, "{one:#}");
    assert_eq!(one["id"], id);
    assert_eq!(one["holder_id"], credit_code.as_str());
    assert_eq!(one["data"]["credit_code"], credit_code.as_str());

    // A changed check character is refused before the store is asked (422 on `id`) …
    let (body, check) = id.split_at(id.len() - 1);
    let other = if check == "0" { '1' } else { '0' };
    let (status, answer) = env.get(&format!("/api/v1/licences/{body}{other}")).await;
    assert_eq!(
        problems(status, &answer),
        [("id".to_string(), "checksum".to_string())]
    );
    // … a well-formed identifier nobody issued is 404.
    let parts: Vec<&str> = id.split('.').collect();
    let serial = "20990000000000000001";
    let checked = format!("{}{}{serial}{}", parts[5], parts[6], parts[8]);
    let check = sdk::ids::licence_check_char(&checked).unwrap();
    let unknown = format!(
        "1.2.156.3005.2.{}.{}.{serial}.{}.{check}",
        parts[5], parts[6], parts[8]
    );
    let (status, answer) = env.get(&format!("/api/v1/licences/{unknown}")).await;
    assert_eq!(status, 404, "{answer:#}");
    assert_eq!(answer["error"]["code"], "not_found");

    // An invalid credit code names the field; a valid one with nothing yet is an empty view.
    let (status, answer) = env
        .get("/api/v1/subjects/enterprises/91350100M000100Y44")
        .await;
    assert_eq!(
        problems(status, &answer),
        [("credit_code".to_string(), "checksum".to_string())]
    );
    let (status, answer) = env.get("/api/v1/subjects/enterprises/9135010").await;
    assert_eq!(problems(status, &answer)[0].0, "credit_code");
    let (status, empty) = env
        .get("/api/v1/subjects/enterprises/91110000600037341L")
        .await;
    assert_eq!(status, 200, "{empty:#}");
    assert_eq!(empty["licences"], json!([]));
    assert_eq!(empty["cases"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_buyer_holds_the_deed_tax_proof_and_the_new_property_certificate() {
    let env = Env::start().await.unwrap();
    let form = json!({
        "certificate_number": "闽(2019)平潭不动产权第0011364号",
        "seller": {"name": "张三", "id_number": "11010519491231002X"},
        "buyer": {"name": "李四", "id_number": "34052419800101001X"},
        "buyer_birth_date": "1980-01-01",
        "price": 1200000
    });
    let case_id = env.apply("one-thing.home-transfer", &form).await;
    let case = env.wait_for_case(&case_id, WAIT, all_final).await;
    assert_eq!(case["status"], "completed", "{case:#}");

    let view = wait_for(&env, "/api/v1/subjects/persons/34052419800101001X", |v| {
        v["licences"].as_array().is_some_and(|l| l.len() >= 2)
    })
    .await;
    assert_eq!(
        kinds(&view),
        ["deed_tax_receipt", "property_certificate"],
        "{view:#}"
    );
    let deed = licence(&view, "deed_tax_receipt");
    assert_eq!(deed["name"], "契税完税证明");
    assert_eq!(
        deed["number"],
        matter(&case, "deed_tax")["outputs"]["tax_receipt_no"]
    );
    let property = licence(&view, "property_certificate");
    assert_eq!(property["name"], "不动产权证书");
    assert_eq!(
        property["number"],
        matter(&case, "transfer")["outputs"]["certificate_number"]
    );
    for l in [deed, property] {
        assert_eq!(l["holder_kind"], "person");
        assert_eq!(l["holder_id"], "34052419800101001X");
        assert_eq!(l["holder_name"], "李四");
        assert_eq!(l["case_id"], case_id.as_str());
        sdk::ids::licence_id(l["id"].as_str().unwrap()).unwrap();
    }
    assert_ne!(deed["id"], property["id"]);

    // The seller holds nothing new; an invalid identity number names the field.
    let (status, seller) = env.get("/api/v1/subjects/persons/11010519491231002X").await;
    assert_eq!(status, 200, "{seller:#}");
    assert_eq!(seller["licences"], json!([]));
    let (status, answer) = env.get("/api/v1/subjects/persons/110105194912310021").await;
    assert_eq!(
        problems(status, &answer),
        [("id_number".to_string(), "checksum".to_string())]
    );
    assert!(
        !answer.to_string().contains("110105194912310021"),
        "identity numbers are not echoed in errors: {answer}"
    );
}
