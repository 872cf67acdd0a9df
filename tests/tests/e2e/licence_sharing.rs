//! Licence sharing: a department verifies a licence an applicant named (免提交) by its GB/T
//! 36904 identifier at `GET /licence-sharing/v1/licences/{id}`, with its own bearer token, over
//! real HTTP; each read is in the audit log (department, licence id, outcome) before it is
//! answered, and the log never names the holder. SQLite, or PostgreSQL with
//! `GATEWAY_TEST_STORE=postgres`.

use integration_tests::{
    Env, MARKET_REGULATION_LICENCE_SHARING_TOKEN, Setup, TAX_LICENCE_SHARING_TOKEN,
};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn all_final(view: &Value) -> bool {
    view["matters"].as_array().unwrap().iter().all(|m| {
        matches!(
            m["state"].as_str(),
            Some("approved" | "rejected" | "returned" | "failed" | "blocked")
        )
    })
}

/// `GET` the licence-sharing path for `id` with these headers: status, `WWW-Authenticate`,
/// JSON answer.
async fn read(env: &Env, headers: &[(&str, &str)], id: &str) -> (u16, Option<String>, Value) {
    let response = integration_tests::client_with(headers)
        .get(format!(
            "{}/licence-sharing/v1/licences/{id}",
            env.gateway.url()
        ))
        .send()
        .await
        .expect("the gateway answers");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    (
        status,
        challenge,
        response.json().await.unwrap_or(Value::Null),
    )
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The licence-sharing records of the audit log for `department`, oldest first.
async fn reads(env: &Env, department: &str) -> Vec<Value> {
    let answer = env
        .admin_get(&format!(
            "/admin/v1/audit?department={department}&limit=5000"
        ))
        .await;
    answer["records"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer:#}"))
        .iter()
        .map(|r| r["record"].clone())
        .filter(|r| r["kind"] == "licence_read")
        .collect()
}

/// (department, licence id, outcome) of each record.
fn summary(records: &[Value]) -> Vec<(String, String, String)> {
    records
        .iter()
        .map(|r| {
            (
                r["department"].as_str().unwrap().to_string(),
                r["licence_id"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A well-formed identifier (its check character holds) that nobody issued: `id` with another
/// serial.
fn unissued(id: &str) -> String {
    let parts: Vec<&str> = id.split('.').collect();
    let serial = "20990000000000000001";
    let checked = format!("{}{}{serial}{}", parts[5], parts[6], parts[8]);
    let check = sdk::ids::licence_check_char(&checked).unwrap();
    format!(
        "1.2.156.3005.2.{}.{}.{serial}.{}.{check}",
        parts[5], parts[6], parts[8]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_department_reads_a_business_licence_with_its_key_and_every_read_is_audited() {
    let setup = Setup {
        admin: true,
        ..Setup::default()
    };
    let env = Env::start_with(setup.clone()).await.unwrap();
    let form = json!({
        "enterprise_name": "福州证照共享科技有限公司",
        "address": "福州市鼓楼区五四路8号",
        "legal_representative": {"name": "李四", "id_number": "34052419800101001X"},
        "registered_capital": 100,
        "business_scope": "软件开发",
        "seal_types": ["法定名称章"]
    });
    let case_id = env.apply("one-thing.open-business", &form).await;
    let case = env.wait_for_case(&case_id, WAIT, all_final).await;
    assert_eq!(case["status"], "completed", "{case:#}");
    let business = case["licences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"] == "business_licence")
        .unwrap_or_else(|| panic!("no business licence: {case:#}"));
    let id = business["id"].as_str().unwrap().to_string();
    let credit_code = business["holder_id"].as_str().unwrap().to_string();
    let mr = bearer(MARKET_REGULATION_LICENCE_SHARING_TOKEN);
    let market_regulation = [("authorization", mr.as_str())];

    // Market regulation reads it as issued: the portal's own view of the licence.
    let (status, _, shared) = read(&env, &market_regulation, &id).await;
    assert_eq!(status, 200, "{shared:#}");
    let (status, portal) = env.get(&format!("/api/v1/licences/{id}")).await;
    assert_eq!(status, 200, "{portal:#}");
    assert_eq!(shared, portal, "the same Licence the portal answers");
    assert_eq!(shared["id"], id.as_str());
    assert_eq!(shared["name"], "营业执照");
    assert_eq!(shared["holder_kind"], "enterprise");
    assert_eq!(shared["holder_id"], credit_code.as_str());
    assert_eq!(shared["holder_name"], "福州证照共享科技有限公司");
    assert_eq!(shared["issuer"], "market-regulation");

    // Without a department's key, nothing: no token, a wrong one, the portal's API key, the
    // operator's token, the token's hash itself.
    let hash = bearer(&gateway_http::auth::sha256_hex(
        MARKET_REGULATION_LICENCE_SHARING_TOKEN,
    ));
    let operator = bearer(integration_tests::OPERATOR_TOKEN);
    let wrong = bearer("not-a-department-token");
    for headers in [
        vec![],
        vec![("authorization", wrong.as_str())],
        vec![("x-api-key", integration_tests::PORTAL_KEY)],
        vec![("authorization", operator.as_str())],
        vec![("authorization", hash.as_str())],
    ] {
        let (status, challenge, answer) = read(&env, &headers, &id).await;
        assert_eq!(status, 401, "{headers:?}: {answer:#}");
        assert_eq!(answer["error"]["code"], "unauthorized", "{answer:#}");
        assert_eq!(challenge.as_deref(), Some("Bearer"), "{headers:?}");
        assert!(
            answer.get("id").is_none(),
            "nothing of the licence: {answer:#}"
        );
    }

    // An identifier nobody issued is 404; one whose check character fails, 422 on `id`; both
    // in the one error format.
    let unknown = unissued(&id);
    let (status, _, answer) = read(&env, &market_regulation, &unknown).await;
    assert_eq!(status, 404, "{answer:#}");
    assert_eq!(answer["error"]["code"], "not_found", "{answer:#}");
    let (body, check) = id.split_at(id.len() - 1);
    let broken = format!("{body}{}", if check == "0" { '1' } else { '0' });
    let (status, _, answer) = read(&env, &market_regulation, &broken).await;
    assert_eq!(status, 422, "{answer:#}");
    assert_eq!(answer["error"]["fields"][0]["field"], "id", "{answer:#}");
    assert_eq!(
        answer["error"]["fields"][0]["code"], "checksum",
        "{answer:#}"
    );

    // Tax holds a key of its own and reads the same licence, as tax.
    let tax = bearer(TAX_LICENCE_SHARING_TOKEN);
    let (status, _, answer) = read(&env, &[("authorization", tax.as_str())], &id).await;
    assert_eq!(status, 200, "{answer:#}");
    assert_eq!(answer["id"], id.as_str());

    // The operator revokes tax's key with a config reload: refused from the next request on,
    // while market regulation's key still reads.
    let path = integration_tests::write_config(
        env.dir.path(),
        &env.departments,
        &Setup {
            without_licence_sharing_key: vec!["tax"],
            ..setup.clone()
        },
        &env.store_url,
    )
    .unwrap();
    assert!(
        !std::fs::read_to_string(&path)
            .unwrap()
            .contains(&gateway_http::auth::sha256_hex(TAX_LICENCE_SHARING_TOKEN))
    );
    let reloaded = integration_tests::admin_client()
        .post(format!("{}/admin/v1/config/reload", env.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(reloaded.status(), 200, "{:?}", reloaded.text().await);
    let (status, challenge, answer) = read(&env, &[("authorization", tax.as_str())], &id).await;
    assert_eq!(status, 401, "a revoked key: {answer:#}");
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    let (status, _, answer) = read(&env, &market_regulation, &id).await;
    assert_eq!(status, 200, "{answer:#}");

    // One record per answered read, written before the answer (no waiting here), each naming
    // the department, the licence and the outcome; refused requests name no department and
    // are not recorded.
    let records = reads(&env, "market-regulation").await;
    let expected =
        |d: &str, id: &str, outcome: &str| (d.to_string(), id.to_string(), outcome.to_string());
    assert_eq!(
        summary(&records),
        [
            expected("market-regulation", &id, "found"),
            expected("market-regulation", &unknown, "not_found"),
            expected("market-regulation", &broken, "invalid"),
            expected("market-regulation", &id, "found"),
        ],
        "{records:#?}"
    );
    let tax_records = reads(&env, "tax").await;
    assert_eq!(
        summary(&tax_records),
        [expected("tax", &id, "found")],
        "the revoked key's refusal is not a read: {tax_records:#?}"
    );
    for record in records.iter().chain(&tax_records) {
        assert!(record["at"].as_i64().unwrap() > 0, "{record}");
        assert_eq!(record["trace_id"].as_str().unwrap().len(), 32, "{record}");
        // The holder is not in the log: neither the credit code, nor the name, nor the legal
        // representative.
        let text = record.to_string();
        for holder in [
            credit_code.as_str(),
            "福州证照共享科技有限公司",
            "34052419800101001X",
            "李四",
        ] {
            assert!(!text.contains(holder), "{holder} in {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_licence_is_shared_as_issued_and_the_log_keeps_no_identity_number() {
    let env = Env::start_with(Setup {
        admin: true,
        ..Setup::default()
    })
    .await
    .unwrap();
    let buyer = "34052419800101001X";
    let form = json!({
        "certificate_number": "闽(2019)平潭不动产权第0011364号",
        "seller": {"name": "张三", "id_number": "11010519491231002X"},
        "buyer": {"name": "李四", "id_number": buyer},
        "buyer_birth_date": "1980-01-01",
        "price": 1200000
    });
    let case_id = env.apply("one-thing.home-transfer", &form).await;
    let case = env.wait_for_case(&case_id, WAIT, all_final).await;
    assert_eq!(case["status"], "completed", "{case:#}");
    let deed = case["licences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"] == "deed_tax_receipt")
        .unwrap_or_else(|| panic!("no deed tax receipt: {case:#}"));
    let id = deed["id"].as_str().unwrap();

    // The department verifying the holder gets the identity number as issued, unmasked.
    let mr = bearer(MARKET_REGULATION_LICENCE_SHARING_TOKEN);
    let (status, _, shared) = read(&env, &[("authorization", mr.as_str())], id).await;
    assert_eq!(status, 200, "{shared:#}");
    assert_eq!(shared["holder_kind"], "person");
    assert_eq!(shared["holder_id"], buyer);
    assert_eq!(shared["holder_name"], "李四");

    // The log names the read, not the person, in no form (masked included).
    let records = reads(&env, "market-regulation").await;
    assert_eq!(
        summary(&records),
        [(
            "market-regulation".to_string(),
            id.to_string(),
            "found".to_string()
        )]
    );
    let text = records[0].to_string();
    for holder in [buyer, "3405**", "李四", "李*"] {
        assert!(!text.contains(holder), "{holder} in {text}");
    }

    // The read is a link of the chain like any exchange: the chain still verifies.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&env.store_url).await.unwrap();
    let report = gateway_store::audit::verify::verify(&pool, &[])
        .await
        .unwrap();
    assert!(report.ok(), "{report}");
    assert!(
        report.chains.iter().map(|c| c.records).sum::<u64>() > 1,
        "{report}"
    );
}
