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
        .map(|e| format!("{} at {}", e, e.instance_path()))
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
                "put" => env.http.put(url).body("x").send().await.unwrap(),
                "delete" => env.http.delete(url).send().await.unwrap(),
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
    // The page fetches this document (browser_docs.rs renders it in a browser).
    assert!(docs.text().await.unwrap().contains("id=\"swagger-ui\""));

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

/// `encodeURIComponent` of a text: what a browser portal sends for a Chinese header value.
fn encode_uri_component(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'!'
            | b'~'
            | b'*'
            | b'\''
            | b'('
            | b')' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What a generated client needs of the document of a running gateway: a typed path (and a
/// named schema with an example) for every service and lookup of the catalogue, each example
/// accepted by the gateway; no object without a shape, no nullable header, an example on every
/// request body, 500 on every operation, an ASCII title; the departments' callback apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_types_every_service_and_lookup_for_generated_clients() {
    let env = Env::start().await.unwrap();
    let (status, doc) = env.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(
        doc["info"]["title"].as_str().unwrap().is_ascii(),
        "{}",
        doc["info"]
    );
    assert!(
        doc["info"]["x-title-zh"]
            .as_str()
            .is_some_and(|t| !t.is_ascii())
    );
    fn bare_objects(value: &Value, at: &str, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if map.get("type") == Some(&json!("object"))
                    && !map.contains_key("properties")
                    && !map.contains_key("additionalProperties")
                {
                    found.push(at.to_string());
                }
                for (k, v) in map {
                    bare_objects(v, &format!("{at}/{k}"), found);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    bare_objects(v, &format!("{at}/{i}"), found);
                }
            }
            _ => {}
        }
    }
    let mut bare = Vec::new();
    bare_objects(&doc, "", &mut bare);
    assert!(bare.is_empty(), "objects without a shape: {bare:#?}");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                assert!(
                    !parameter["schema"].to_string().contains("null"),
                    "{method} {path}: {parameter}"
                );
            }
            if let Some(content) = operation["requestBody"]["content"].as_object() {
                for (media_type, media) in content {
                    assert_ne!(media_type, "*/*", "{method} {path}");
                    assert!(
                        media["examples"].as_object().is_some_and(|e| !e.is_empty()),
                        "{method} {path}: no example"
                    );
                }
            }
            assert!(operation["responses"]["500"].is_object(), "{method} {path}");
        }
    }
    assert!(doc["paths"].get("/callbacks/{department}").is_none());
    // The departments' document is served without a credential, with typed bodies.
    let callbacks = integration_tests::client_with(&[])
        .get(format!("{}/callbacks/openapi.json", env.gateway.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(callbacks.status(), 200);
    let callbacks: Value = callbacks.json().await.unwrap();
    let body = &callbacks["paths"]["/callbacks/{department}"]["post"]["requestBody"]["content"];
    assert!(
        body["application/json"].is_object() && body.get("*/*").is_none(),
        "{body}"
    );

    // Every service and lookup of the catalogue has its typed path, and its example passes.
    let (_, catalogue) = env.get("/api/v1/catalogue").await;
    let services = catalogue["services"].as_array().unwrap();
    assert!(services.len() >= 10, "{catalogue}");
    for service in services {
        let code = service["code"].as_str().unwrap();
        for route in ["pre-review", "applications"] {
            let path = format!("/api/v1/services/{code}/{route}");
            let media = &doc["paths"][&path]["post"]["requestBody"]["content"]["application/json"];
            let schema = media["schema"]["$ref"].as_str().unwrap_or_default();
            let name = schema.trim_start_matches("#/components/schemas/");
            assert!(name.ends_with("Form") && name.is_ascii(), "{path}: {media}");
            assert!(doc["components"]["schemas"][name].is_object(), "{name}");
        }
        let path = format!("/api/v1/services/{code}/pre-review");
        let media = &doc["paths"][&path]["post"]["requestBody"]["content"]["application/json"];
        let example = media["examples"]
            .as_object()
            .and_then(|e| e.values().next())
            .map(|e| e["value"].clone())
            .unwrap_or_else(|| panic!("{path}: no example"));
        let (status, review) =
            documented(&env, &doc, "post", &path, &path, Some(example.to_string())).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(
            review["ok"], true,
            "{path}: the example does not pass: {review}"
        );
    }
    for lookup in catalogue["lookups"].as_array().unwrap() {
        let name = lookup["name"].as_str().unwrap();
        let path = format!("/api/v1/lookups/{name}");
        let media = &doc["paths"][&path]["post"]["requestBody"]["content"]["application/json"];
        assert!(
            media["schema"]["$ref"].as_str().unwrap().ends_with("Query"),
            "{media}"
        );
        let example = media["examples"]
            .as_object()
            .and_then(|e| e.values().next())
            .map(|e| e["value"].clone())
            .unwrap_or_else(|| panic!("{path}: no example"));
        let (status, _) =
            documented(&env, &doc, "post", &path, &path, Some(example.to_string())).await;
        assert_eq!(status, 200, "{path}: {example}");
    }
}

/// A value of the wrong type is one problem, on its field, in Chinese: not a second one from
/// the department's adapter on the whole form with serde's text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_type_is_one_problem_in_chinese() {
    let env = Env::start().await.unwrap();
    let mut form = licence_form();
    form["registered_capital"] = json!("lots");
    form["legal_representative"]["id_number"] = json!("34052419800101001");
    let (status, review) = env
        .post(
            "/api/v1/services/market-regulation.business-licence/pre-review",
            &form,
        )
        .await;
    assert_eq!(status, 200);
    let problems: Vec<(String, String, String)> = review["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["field"].as_str().unwrap().to_string(),
                p["code"].as_str().unwrap().to_string(),
                p["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        problems
            .iter()
            .filter(|p| p.0 == "registered_capital")
            .cloned()
            .collect::<Vec<_>>(),
        vec![(
            "registered_capital".into(),
            "type".into(),
            "应为数字".into()
        )],
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.0 == "legal_representative.id_number"),
        "the other fields are still checked: {problems:?}"
    );
    let mut fields: Vec<&str> = problems.iter().map(|p| p.0.as_str()).collect();
    fields.dedup();
    assert_eq!(
        fields.len(),
        problems.len(),
        "one problem per field: {problems:?}"
    );
    for (field, _, message) in &problems {
        assert!(!field.is_empty(), "{problems:?}");
        assert!(
            message
                .chars()
                .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
                && !message.contains("invalid type")
                && !message.contains("line "),
            "{message}"
        );
    }
}

/// Clerks and lookup purposes in Chinese: percent-encoded UTF-8 (what `fetch` can send) and
/// raw UTF-8 (what earlier clients send) read the same; what cannot be read is a 422 on the
/// header, with every problem at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chinese_headers_are_read_percent_encoded_or_raw() {
    let env = Env::start_with(Setup {
        admin: true,
        ..Setup::default()
    })
    .await
    .unwrap();
    let url = env.gateway.url();
    let (id, window, hall) = ("王小明", "综合受理 3号窗口", "福州市鼓楼区政务服务中心");
    let purpose = "二手房转移登记受理";
    let encoded =
        |text: &str| reqwest::header::HeaderValue::from_str(&encode_uri_component(text)).unwrap();
    let raw = |text: &str| reqwest::header::HeaderValue::from_bytes(text.as_bytes()).unwrap();
    for (how, value) in [
        (
            "encoded",
            &encoded as &dyn Fn(&str) -> reqwest::header::HeaderValue,
        ),
        ("raw", &raw),
    ] {
        let response = env
            .http
            .post(format!(
                "{url}/api/v1/services/market-regulation.business-licence/applications"
            ))
            .header("x-clerk-id", value(id))
            .header("x-clerk-window", value(window))
            .header("x-clerk-hall", value(hall))
            .json(&licence_form())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "{how}");
        let accepted: Value = response.json().await.unwrap();
        let (_, view) = env
            .get(&format!(
                "/api/v1/cases/{}",
                accepted["case_id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(
            view["timeline"][0]["clerk"],
            json!({"id": id, "window": window, "hall": hall}),
            "{how}"
        );
        let response = env
            .http
            .post(format!("{url}/api/v1/lookups/tax.clearance"))
            .header("x-lookup-purpose", value(&format!("{purpose}（{how}）")))
            .header("x-clerk-id", value(id))
            .json(&json!({"taxpayer_id": "91350100M000100Y43"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{how}");
    }
    let records: Value = integration_tests::admin_client()
        .get(format!("{}/admin/v1/lookups", env.admin_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let purposes: Vec<&str> = records["lookups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["purpose"].as_str().unwrap())
        .collect();
    for how in ["encoded", "raw"] {
        assert!(
            purposes.contains(&format!("{purpose}（{how}）").as_str()),
            "{purposes:?}"
        );
    }
    for record in records["lookups"].as_array().unwrap() {
        assert_eq!(record["clerk"]["id"], id, "{record}");
    }

    // Unreadable: bytes that are not UTF-8 once decoded, a control character, a key with a
    // space; each a problem on its header, all at once.
    let response = env
        .http
        .post(format!(
            "{url}/api/v1/services/market-regulation.business-licence/applications"
        ))
        .header("x-clerk-id", "%FF%FE")
        .header("x-clerk-hall", "%E7%AA%0A")
        .header("idempotency-key", "two words")
        .json(&licence_form())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    let fields: Vec<(&str, &str)> = body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["field"].as_str().unwrap(), f["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("Idempotency-Key", "format"),
            ("X-Clerk-Id", "format"),
            ("X-Clerk-Hall", "format")
        ],
        "{body}"
    );
    let response = integration_tests::client_with(&[("x-api-key", integration_tests::PORTAL_KEY)])
        .post(format!("{url}/api/v1/lookups/tax.clearance"))
        .header("x-lookup-purpose", "%E4%BA")
        .json(&json!({"taxpayer_id": "91350100M000100Y43"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    let fields: Vec<(&str, &str)> = body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["field"].as_str().unwrap(), f["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        fields,
        vec![("X-Lookup-Purpose", "format"), ("X-Case-Id", "required")],
        "{body}"
    );
}

/// An event stream's request, as a reconnecting `EventSource` sends it when `after` is given.
async fn open_stream(env: &Env, case_id: &str, after: Option<&str>) -> reqwest::Response {
    let mut request = env.http.get(format!(
        "{}/api/v1/cases/{case_id}/events",
        env.gateway.url()
    ));
    if let Some(after) = after {
        request = request.header("Last-Event-ID", after);
    }
    request.send().await.unwrap()
}

/// Read an event stream to its end (bounded): its content type and its messages' `id` with
/// their `data`.
async fn read_stream(
    env: &Env,
    case_id: &str,
    after: Option<&str>,
    within: Duration,
) -> (String, Vec<(String, Value)>) {
    let response = open_stream(env, case_id, after).await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    let text = tokio::time::timeout(within, response.text())
        .await
        .expect("the stream ends once the case is final")
        .unwrap();
    let events = text
        .split("\n\n")
        .filter_map(|message| {
            let data = message.lines().find_map(|l| l.strip_prefix("data:"))?;
            let kind = message.lines().find_map(|l| l.strip_prefix("event:"))?;
            let id = message.lines().find_map(|l| l.strip_prefix("id:"))?;
            let event: Value = serde_json::from_str(data.trim()).unwrap();
            assert_eq!(event["kind"], kind.trim(), "{message}");
            Some((id.trim().to_string(), event))
        })
        .collect();
    (content_type, events)
}

/// The event stream sends the history, then each new event, and ends after the event that made
/// the case final: a generated client's call returns with the whole timeline. A reconnection
/// goes on after the last event it names, and one to the finished case with nothing after it
/// is told 204, so a browser's `EventSource` stops reconnecting instead of receiving the
/// timeline again every few seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_ends_after_the_final_event() {
    let env = Env::start().await.unwrap();
    let case_id = env
        .apply("market-regulation.business-licence", &licence_form())
        .await;
    let (content_type, events) = read_stream(&env, &case_id, None, Duration::from_secs(30)).await;
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    assert_eq!(events[0].1["kind"], "received");
    assert_eq!(events.last().unwrap().1["state"], "approved", "{events:#?}");
    let (_, view) = env.get(&format!("/api/v1/cases/{case_id}")).await;
    assert_eq!(view["status"], "completed");
    assert_eq!(events.len(), view["timeline"].as_array().unwrap().len());
    // A finished case's stream is its history, and ends at once.
    let (_, again) = read_stream(&env, &case_id, None, Duration::from_secs(5)).await;
    assert_eq!(again, events);
    // Reconnected after the first event: the rest, and no event twice.
    let (_, rest) = read_stream(&env, &case_id, Some(&events[0].0), Duration::from_secs(5)).await;
    assert_eq!(rest, events[1..], "the events after the first");
    // Reconnected after the last: nothing to send, and the client is told to stop.
    let last = &events.last().unwrap().0;
    let ended = open_stream(&env, &case_id, Some(last)).await;
    assert_eq!(ended.status(), 204);
    assert!(ended.bytes().await.unwrap().is_empty());
}
