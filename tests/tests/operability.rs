//! What portal developers and operators rely on besides the API itself: the OpenAPI document
//! matches what the gateway answers, readiness follows the departments, request ids and trace
//! context travel, and JSON logs never show an identity number.

use departments::Faults;
use integration_tests::{Env, GatewayProcess, Setup};
use serde_json::{Value, json};
use std::time::Duration;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Send a request and check the answer against the document: its status must be documented for
/// the route, and a JSON answer must match the documented schema. The status and the body.
async fn documented(
    env: &Env,
    doc: &Value,
    method: &str,
    template: &str,
    path: &str,
    body: Option<String>,
) -> (u16, Value) {
    let url = format!("{}{path}", env.gateway.url());
    let request = match method {
        "get" => env.http.get(url),
        "post" => env
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body.unwrap_or_default()),
        other => panic!("no {other} route in this API"),
    };
    let response = request.send().await.expect("the gateway answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = response.text().await.unwrap();
    let documented = &doc["paths"][template][method]["responses"][status.to_string()];
    assert!(
        documented.is_object(),
        "{method} {template}: status {status} is not documented: {text}"
    );
    if !content_type.starts_with("application/json") {
        return (status, Value::Null);
    }
    let answer: Value = serde_json::from_str(&text).unwrap();
    let schema = &documented["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {template} {status}: no JSON schema documented"
    );
    // The document's components are the root the response schema's `$ref`s point into.
    let mut root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
    });
    for (k, v) in schema.as_object().unwrap() {
        root[k] = v.clone();
    }
    let validator = jsonschema::validator_for(&root).expect("the documented schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&answer)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: the answer does not match its documented schema:\n{}\n{answer:#}",
        errors.join("\n")
    );
    (status, answer)
}

fn licence_form() -> Value {
    json!({
        "enterprise_name": "福州文档测试餐饮有限公司",
        "address": "福州市鼓楼区五四路2号",
        "legal_representative": {"name": "李四", "id_number": "34052419800101001X"},
        "registered_capital": 100,
        "business_scope": "餐饮服务"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_describes_every_route_and_every_answer() {
    let env = Env::start().await.unwrap();
    let (status, doc) = env.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");

    // Every documented route is served: not the fallback's 404, not 405.
    for (template, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let path = template
                .split('/')
                .map(|s| if s.starts_with('{') { "x" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let url = format!("{}{path}", env.gateway.url());
            let response = match method.as_str() {
                "get" => env.http.get(url).send().await.unwrap(),
                "post" => env.http.post(url).body("{}").send().await.unwrap(),
                other => panic!("{other} {template}: no such method in this API"),
            };
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            assert_ne!(status, 405, "{method} {template} is not served");
            assert!(
                !text.contains("route `this path` not found"),
                "{method} {template} is documented but not served"
            );
        }
    }

    let docs = env
        .http
        .get(format!("{}/docs", env.gateway.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("\"openapi\":\"3.1.0\""));

    // Real answers, good and bad, match the document.
    let (e, o) = (&env, &doc);
    let d = move |m, t, p: &str| {
        let p = p.to_string();
        async move { documented(e, o, m, t, &p, None).await }
    };
    d("get", "/api/v1/catalogue", "/api/v1/catalogue").await;
    let form_t = "/api/v1/services/{code}/form";
    d(
        "get",
        form_t,
        "/api/v1/services/one-thing.open-business/form",
    )
    .await;
    assert_eq!(d("get", form_t, "/api/v1/services/none/form").await.0, 404);
    let service = "market-regulation.business-licence";
    let review_t = "/api/v1/services/{code}/pre-review";
    let review = format!("/api/v1/services/{service}/pre-review");
    let bad_form = json!({"legal_representative": {"id_number": "34052419800101001"}});
    let (status, body) = documented(
        &env,
        &doc,
        "post",
        review_t,
        &review,
        Some(bad_form.to_string()),
    )
    .await;
    assert_eq!((status, body["ok"].as_bool()), (200, Some(false)));
    let (status, _) = documented(
        &env,
        &doc,
        "post",
        review_t,
        &review,
        Some("{not json".into()),
    )
    .await;
    assert_eq!(status, 400);
    let apply_t = "/api/v1/services/{code}/applications";
    let apply = format!("/api/v1/services/{service}/applications");
    let (status, _) = documented(
        &env,
        &doc,
        "post",
        apply_t,
        &apply,
        Some(bad_form.to_string()),
    )
    .await;
    assert_eq!(status, 422);
    let (status, accepted) = documented(
        &env,
        &doc,
        "post",
        apply_t,
        &apply,
        Some(licence_form().to_string()),
    )
    .await;
    assert_eq!(status, 202);
    let case_id = accepted["case_id"].as_str().unwrap();
    let view = env
        .wait_for_case(case_id, Duration::from_secs(20), |v| {
            v["status"] == "completed"
        })
        .await;
    let case_t = "/api/v1/cases/{id}";
    d("get", case_t, &format!("/api/v1/cases/{case_id}")).await;
    assert_eq!(d("get", case_t, "/api/v1/cases/none").await.0, 404);
    let credit_code = view["matters"][0]["outputs"]["credit_code"]
        .as_str()
        .unwrap();
    let (_, enterprise) = d(
        "get",
        "/api/v1/subjects/enterprises/{credit_code}",
        &format!("/api/v1/subjects/enterprises/{credit_code}"),
    )
    .await;
    let licence_id = enterprise["licences"][0]["id"].as_str().unwrap();
    let licence_t = "/api/v1/licences/{id}";
    d("get", licence_t, &format!("/api/v1/licences/{licence_id}")).await;
    assert_eq!(d("get", licence_t, "/api/v1/licences/1.2.3").await.0, 422);
    let person_t = "/api/v1/subjects/persons/{id_number}";
    d(
        "get",
        person_t,
        "/api/v1/subjects/persons/34052419800101001X",
    )
    .await;
    assert_eq!(
        d(
            "get",
            person_t,
            "/api/v1/subjects/persons/34052419800101001"
        )
        .await
        .0,
        422
    );
    let supervision_t = "/api/v1/supervision/deadlines";
    d("get", supervision_t, supervision_t).await;
    let bad = "/api/v1/supervision/deadlines?light=purple";
    assert_eq!(d("get", supervision_t, bad).await.0, 422);
    let unknown = "/api/v1/supervision/deadlines?department=none";
    assert_eq!(d("get", supervision_t, unknown).await.0, 404);
    let lookup_t = "/api/v1/lookups/{name}";
    let query = json!({"name": "张三", "id_number": "11010519491231002X"}).to_string();
    let identity = "/api/v1/lookups/public-security.identity";
    let (status, _) = documented(&env, &doc, "post", lookup_t, identity, Some(query)).await;
    assert_eq!(status, 200);
    let (status, _) = documented(
        &env,
        &doc,
        "post",
        lookup_t,
        "/api/v1/lookups/none",
        Some("{}".into()),
    )
    .await;
    assert_eq!(status, 404);
    d("get", "/healthz", "/healthz").await;
    d("get", "/readyz", "/readyz").await;
}

async fn readiness(url: &str) -> (u16, Value) {
    let response = integration_tests::client()
        .get(format!("{url}/readyz"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Ask `/readyz` until `done` holds; the readiness probes run on their own schedule, so this
/// polls, within a bound.
async fn readiness_until(url: &str, done: impl Fn(u16, &Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = readiness(url).await;
        if done(status, &body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "readiness did not change as expected: {status} {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_departments() {
    let env = Env::start_with(Setup {
        server_extra: "readiness_interval_ms = 200".into(),
        admin: true,
        ..Setup::default()
    })
    .await
    .unwrap();
    let url = env.gateway.url();
    let body = readiness_until(&url, |s, _| s == 200).await;
    assert_eq!(body["status"], "ready");
    for check in [
        "store",
        "adapter.tax",
        "department.tax",
        "department.public-security",
    ] {
        assert_eq!(body["checks"][check]["state"], "up", "{check}: {body:#}");
    }

    env.departments.tax.set_faults(Faults {
        down: true,
        ..Faults::default()
    });
    let body = readiness_until(&url, |s, _| s == 503).await;
    assert_eq!(body["status"], "not_ready");
    assert_eq!(
        body["checks"]["department.tax"]["state"], "down",
        "{body:#}"
    );
    assert_eq!(body["checks"]["department.real-estate"]["state"], "up");
    assert_eq!(body["checks"]["store"]["state"], "up");
    // The admin listener answers the same; liveness does not depend on departments.
    assert_eq!(readiness(&env.admin_url()).await.0, 503);
    assert_eq!(env.get("/healthz").await, (200, json!({"status": "ok"})));

    env.departments.tax.set_faults(Faults::default());
    readiness_until(&url, |s, _| s == 200).await;
    readiness_until(&env.admin_url(), |s, _| s == 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_context_reaches_the_departments_and_request_ids_are_echoed() {
    let env = Env::start().await.unwrap();
    let response = env
        .http
        .post(format!(
            "{}/api/v1/lookups/tax.clearance",
            env.gateway.url()
        ))
        .header("traceparent", TRACEPARENT)
        .header("x-request-id", "portal-req-42")
        .json(&json!({"taxpayer_id": "91350100M000100Y43"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "portal-req-42");
    let at_tax = env.departments.tax.traceparents();
    let continued: Vec<_> = at_tax
        .iter()
        .filter_map(|(_, tp)| tp.as_deref())
        .filter(|tp| tp.contains(TRACE_ID))
        .collect();
    assert!(
        !continued.is_empty(),
        "the department saw the portal's trace: {at_tax:?}"
    );
    for tp in continued {
        assert!(tp.starts_with("00-"), "{tp}");
        assert!(
            !tp.contains("00f067aa0ba902b7"),
            "the gateway's own span is the parent: {tp}"
        );
    }

    // Without an id, one is made and echoed.
    let response = env
        .http
        .get(format!("{}/api/v1/catalogue", env.gateway.url()))
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");

    // Deliveries run outside any request; their department calls carry a trace of their own.
    let case_id = env
        .apply("market-regulation.business-licence", &licence_form())
        .await;
    env.wait_for_case(&case_id, Duration::from_secs(20), |v| {
        v["status"] == "completed"
    })
    .await;
    let at_market = env.departments.market_regulation.traceparents();
    assert!(
        at_market.iter().any(|(op, _)| op == "licence"),
        "{at_market:?}"
    );
    for (operation, tp) in &at_market {
        assert!(tp.is_some(), "{operation} came without a traceparent");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_request_id_and_mask_identity_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let departments = integration_tests::departments_in(dir.path()).await;
    let store = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let config =
        integration_tests::write_config(dir.path(), &departments, &Setup::default(), &store)
            .unwrap();
    let gateway = GatewayProcess::spawn_with_env(
        &config,
        &[
            ("GATEWAY_LOG_FORMAT", "json"),
            ("RUST_LOG", "info,gateway=debug,tower_http=debug"),
        ],
    )
    .await
    .unwrap();
    let http = integration_tests::client();
    let id_number = "11010519491231002X";
    let answer = http
        .get(format!(
            "{}/api/v1/subjects/persons/{id_number}",
            gateway.url
        ))
        .header("x-request-id", format!("req-{id_number}"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.headers()["x-request-id"],
        format!("req-{id_number}").as_str(),
        "the caller gets its own id back"
    );
    let answer = http
        .post(format!(
            "{}/api/v1/lookups/public-security.identity",
            gateway.url
        ))
        .json(&json!({"name": "张三", "id_number": id_number}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let answer = http
        .post(format!(
            "{}/api/v1/services/public-security.seal-filing/pre-review",
            gateway.url
        ))
        .json(&json!({"legal_representative": {"id_number": id_number}}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let output = gateway.output.clone();
    gateway.terminate().await;
    let lines = output.lock().unwrap().clone();
    let mut with_request_id = 0;
    for line in &lines {
        assert!(
            !line.contains(id_number),
            "an identity number in the log: {line}"
        );
        if line.starts_with("gateway ready at ") {
            continue;
        }
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(entry["timestamp"].is_string(), "{line}");
        if entry["span"]["request_id"] == "req-1101**********002X" {
            with_request_id += 1;
        }
    }
    assert!(
        with_request_id > 0,
        "the request's lines name its request id (masked): {lines:#?}"
    );
}
