//! Shared-data lookups through each department's adapter, against the simulated departments.

use integration_tests::{Env, Setup};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalogue_lists_every_matter_service_and_lookup() {
    let env = Env::start().await.unwrap();
    let (status, body) = env.get("/api/v1/catalogue").await;
    assert_eq!(status, 200);
    let codes: Vec<&str> = body["matters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["code"].as_str().unwrap())
        .collect();
    for code in [
        "market-regulation.business-licence",
        "public-security.seal-filing",
        "tax.registration",
        "real-estate.transfer",
    ] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
    let licence = body["matters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["code"] == "market-regulation.business-licence")
        .unwrap();
    assert_eq!(licence["matter_type"], "01");
    assert_eq!(licence["time_limit_days"], 3);
    let lookups: Vec<&str> = body["lookups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    for name in [
        "public-security.identity",
        "market-regulation.enterprise",
        "real-estate.property",
        "tax.clearance",
    ] {
        assert!(lookups.contains(&name), "{name} missing from {lookups:?}");
    }
    let (status, form) = env.get("/api/v1/services/tax.registration/form").await;
    assert_eq!(status, 200);
    assert_eq!(form["schema"]["type"], "object");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_verification_at_public_security_over_mutual_tls() {
    let env = Env::start().await.unwrap();
    let path = "/api/v1/lookups/public-security.identity";
    let (status, body) = env
        .post(
            path,
            &json!({"name": "张三", "id_number": "11010519491231002X"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["result"], "match");
    let (_, body) = env
        .post(
            path,
            &json!({"name": "李四", "id_number": "11010519491231002X"}),
        )
        .await;
    assert_eq!(body["result"]["result"], "mismatch");
    // A valid number the department has never issued.
    let (_, body) = env
        .post(
            path,
            &json!({"name": "赵六", "id_number": "110101199003070011"}),
        )
        .await;
    assert_eq!(body["result"]["result"], "not_found", "{body}");
    assert!(env.departments.public_security.received("sfhc") >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enterprise_by_credit_code_at_market_regulation_with_oauth() {
    enterprise_by_credit_code(Setup::default()).await;
}

/// The same lookup through the JavaScript adapter (`plugins/market-regulation-js`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enterprise_by_credit_code_through_the_javascript_adapter() {
    enterprise_by_credit_code(Setup {
        market_regulation_js: true,
        ..Setup::default()
    })
    .await;
}

async fn enterprise_by_credit_code(setup: Setup) {
    let env = Env::start_with(setup).await.unwrap();
    let path = "/api/v1/lookups/market-regulation.enterprise";
    let (status, body) = env
        .post(path, &json!({"credit_code": "91350100M000100Y43"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["name"], "福州测试科技有限公司");
    let (status, body) = env
        .post(path, &json!({"credit_code": "91110000600037341L"}))
        .await;
    assert_eq!(status, 404, "an unknown enterprise is not found: {body}");
    assert_eq!(body["error"]["code"], "not_found");
    // The token was obtained once and reused from the adapter cache.
    assert_eq!(
        env.departments.market_regulation.received("token"),
        1,
        "{:?}",
        env.departments.market_regulation.stats()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn property_by_certificate_or_unit_at_real_estate_in_gbk_soap() {
    let env = Env::start().await.unwrap();
    let path = "/api/v1/lookups/real-estate.property";
    let (status, by_cert) = env
        .post(
            path,
            &json!({"certificate_number": "闽(2019)平潭不动产权第0011364号"}),
        )
        .await;
    assert_eq!(status, 200, "{by_cert}");
    assert_eq!(
        by_cert["result"]["unit_number"],
        "351001012010GB01859F00040015"
    );
    assert_eq!(by_cert["result"]["owner"]["name"], "张三");
    let (status, by_unit) = env
        .post(
            path,
            &json!({"unit_number": "351001012010GB01859F00040015"}),
        )
        .await;
    assert_eq!(status, 200, "{by_unit}");
    assert_eq!(
        by_unit["result"]["certificate_number"],
        by_cert["result"]["certificate_number"]
    );
    let (status, _) = env
        .post(
            path,
            &json!({"unit_number": "351001012010GB01859F00049999"}),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tax_clearance_with_signed_requests() {
    let env = Env::start().await.unwrap();
    let path = "/api/v1/lookups/tax.clearance";
    let (status, clear) = env
        .post(path, &json!({"taxpayer_id": "91350100M000100Y43"}))
        .await;
    assert_eq!(status, 200, "{clear}");
    assert_eq!(clear["result"]["cleared"], true);
    let (_, owing) = env
        .post(path, &json!({"taxpayer_id": "91110108551385082Q"}))
        .await;
    assert_eq!(owing["result"]["cleared"], false);
    assert_eq!(owing["result"]["arrears"], "12800.00");
    // Nothing was refused for signature, timestamp or nonce on the way.
    assert!(
        env.departments.tax.stats().rejected.is_empty(),
        "{:?}",
        env.departments.tax.stats()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_lookup_and_malformed_query_get_the_error_format() {
    let env = Env::start().await.unwrap();
    let (status, body) = env.post("/api/v1/lookups/nothing.here", &json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = env
        .post_raw("/api/v1/lookups/tax.clearance", "{not json".into())
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "malformed_json");
}
