//! Who may call what: deny by default, scopes, own cases only, tokens, the admin API apart.
//! Each test tries a way around it.

use integration_tests::{Env, PORTAL_CLIENT, Setup, client_with};
use serde_json::{Value, json};

/// A second client that may only run the tax clearance lookup, and a supervisor that may read
/// every case; JWTs signed with a shared secret are accepted too.
const CLIENTS: &str = r#"
[[auth.clients]]
id = "lookup-only"
api_key_sha256 = "KEY_B"
scopes = ["lookup:tax.clearance"]

[[auth.clients]]
id = "supervisor"
api_key_sha256 = "KEY_C"
scopes = ["cases:all", "supervision"]

[auth.jwt]
algorithm = "HS256"
key = "test-jwt-secret-0123456789abcdef"
issuer = "test-idp"
audience = "gateway-portal"
"#;

async fn env() -> Env {
    let extra = CLIENTS
        .replace("KEY_B", &gateway_http::auth::sha256_hex("key-b"))
        .replace("KEY_C", &gateway_http::auth::sha256_hex("key-c"));
    Env::start_with(Setup {
        admin: true,
        config_extra: extra,
        ..Setup::default()
    })
    .await
    .unwrap()
}

async fn call(
    client: &reqwest::Client,
    env: &Env,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client.request(method, format!("{}{path}", env.gateway.url()));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn clearance() -> Value {
    json!({"taxpayer_id": "91350100M000100Y43"})
}

fn seal_form() -> Value {
    json!({
        "credit_code": "91350100M000100Y43",
        "enterprise_name": "福州测试科技有限公司",
        "legal_representative": {"name": "张三", "id_number": "11010519491231002X"},
        "seal_types": ["公章"]
    })
}

/// A client with these credentials that says why and for whom it looks up.
fn portal(credentials: &[(&str, &str)]) -> reqwest::Client {
    let mut headers = credentials.to_vec();
    headers.extend([
        ("x-lookup-purpose", "security-test"),
        ("x-clerk-id", "clerk-9"),
    ]);
    client_with(&headers)
}

const LOOKUP: &str = "/api/v1/lookups/tax.clearance";
const APPLY: &str = "/api/v1/services/public-security.seal-filing/applications";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_valid_credential_nothing_but_health_and_callbacks_answers() {
    let env = env().await;
    let anonymous = reqwest::Client::new();
    let wrong = client_with(&[("x-api-key", "not-a-key")]);
    use reqwest::Method;
    for (method, path, body) in [
        (Method::GET, "/api/v1/catalogue", None),
        (
            Method::GET,
            "/api/v1/services/public-security.seal-filing/form",
            None,
        ),
        (Method::POST, LOOKUP, Some(clearance())),
        (Method::POST, APPLY, Some(seal_form())),
        (Method::GET, "/api/v1/cases/anything", None),
        (Method::GET, "/api/v1/supervision/deadlines", None),
    ] {
        for (who, client) in [("no credential", &anonymous), ("a wrong key", &wrong)] {
            let (status, body) = call(client, &env, method.clone(), path, body.clone()).await;
            assert_eq!(status, 401, "{method} {path} with {who}: {body}");
            assert_eq!(body["error"]["code"], "unauthorized");
        }
    }
    assert_eq!(
        call(&anonymous, &env, Method::GET, "/healthz", None)
            .await
            .0,
        200
    );
    assert_eq!(
        call(&anonymous, &env, Method::GET, "/openapi.json", None)
            .await
            .0,
        200
    );
    // Callbacks are the departments': their adapter authenticates them, not a portal key.
    let (status, body) = call(
        &anonymous,
        &env,
        Method::POST,
        "/callbacks/market-regulation",
        Some(json!({"forged": true})),
    )
    .await;
    assert_ne!(status, 401, "{body}");
    assert_ne!(
        status, 200,
        "an unsigned callback is refused by the adapter: {body}"
    );
    assert_eq!(env.departments.public_security.applications(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_does_only_what_its_scopes_allow_and_reads_only_its_cases() {
    use reqwest::Method;
    let env = env().await;
    let lookup_only = portal(&[("x-api-key", "key-b")]);
    let supervisor = portal(&[("x-api-key", "key-c")]);

    let (status, body) = call(&lookup_only, &env, Method::POST, LOOKUP, Some(clearance())).await;
    assert_eq!(status, 200, "{body}");
    for (path, body) in [
        (APPLY, seal_form()),
        (
            "/api/v1/services/public-security.seal-filing/pre-review",
            seal_form(),
        ),
        (
            "/api/v1/lookups/public-security.identity",
            json!({"name": "张三", "id_number": "11010519491231002X"}),
        ),
    ] {
        let (status, answer) = call(&lookup_only, &env, Method::POST, path, Some(body)).await;
        assert_eq!(status, 403, "{path}: {answer}");
        assert_eq!(answer["error"]["code"], "forbidden");
    }
    let (status, _) = call(
        &lookup_only,
        &env,
        Method::GET,
        "/api/v1/supervision/deadlines",
        None,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        env.departments.public_security.applications(),
        0,
        "nothing reached a department"
    );

    // The fixture's client applies; another client cannot see the case, not even that it exists.
    let case_id = env.apply("public-security.seal-filing", &seal_form()).await;
    let case = format!("/api/v1/cases/{case_id}");
    assert_eq!(env.get(&case).await.0, 200, "the owner reads it");
    let (status, body) = call(&lookup_only, &env, Method::GET, &case, None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        body["error"]["message"],
        format!("case `{case_id}` not found"),
        "the same answer as a case that does not exist"
    );
    let (status, _) = call(
        &lookup_only,
        &env,
        Method::GET,
        &format!("{case}/events"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    // A supervisor with `cases:all` reads every case.
    let (status, body) = call(&supervisor, &env, Method::GET, &case, None).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = call(
        &supervisor,
        &env,
        Method::GET,
        "/api/v1/supervision/deadlines",
        None,
    )
    .await;
    assert_eq!(status, 200);

    // Idempotency keys are the client's own: another client's key finds nothing of the first.
    let keyed = |client: &reqwest::Client| {
        client
            .post(format!("{}{APPLY}", env.gateway.url()))
            .header("idempotency-key", "same-key")
            .json(&seal_form())
    };
    let first: Value = keyed(&env.http).send().await.unwrap().json().await.unwrap();
    let again = keyed(&env.http).send().await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["case_id"], again["case_id"]);
}

fn token(secret: &str, claims: Value) -> String {
    // Signed with the gateway's own jsonwebtoken provider (HS256 on the tree's hmac).
    gateway_http::auth::jwt_crypto::install().unwrap();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_are_verified_and_can_only_narrow_scopes() {
    use reqwest::Method;
    let env = env().await;
    let secret = "test-jwt-secret-0123456789abcdef";
    let bearer = |t: &str| portal(&[("authorization", &format!("Bearer {t}"))]);
    let valid = token(
        secret,
        json!({"sub": PORTAL_CLIENT, "iss": "test-idp", "aud": "gateway-portal", "exp": now() + 300}),
    );
    let (status, body) = call(
        &bearer(&valid),
        &env,
        Method::POST,
        LOOKUP,
        Some(clearance()),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    for (why, t) in [
        (
            "forged",
            token(
                "another-secret-0123456789abcdef0",
                json!({"sub": PORTAL_CLIENT, "iss": "test-idp", "aud": "gateway-portal", "exp": now() + 300}),
            ),
        ),
        (
            "expired",
            token(
                secret,
                json!({"sub": PORTAL_CLIENT, "iss": "test-idp", "aud": "gateway-portal", "exp": now() - 3600}),
            ),
        ),
        (
            "unknown subject",
            token(
                secret,
                json!({"sub": "nobody", "iss": "test-idp", "aud": "gateway-portal", "exp": now() + 300}),
            ),
        ),
        (
            "another issuer",
            token(
                secret,
                json!({"sub": PORTAL_CLIENT, "iss": "elsewhere", "aud": "gateway-portal", "exp": now() + 300}),
            ),
        ),
        (
            "no expiry",
            token(
                secret,
                json!({"sub": PORTAL_CLIENT, "iss": "test-idp", "aud": "gateway-portal"}),
            ),
        ),
        ("not a token", "garbage.garbage.garbage".into()),
    ] {
        let (status, body) = call(&bearer(&t), &env, Method::POST, LOOKUP, Some(clearance())).await;
        assert_eq!(status, 401, "{why}: {body}");
    }
    // A tampered payload with the original signature.
    let mut parts: Vec<String> = valid.split('.').map(str::to_string).collect();
    use base64::Engine as _;
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({"sub": "supervisor", "iss": "test-idp", "aud": "gateway-portal", "exp": now() + 300}).to_string());
    let (status, _) = call(
        &bearer(&parts.join(".")),
        &env,
        Method::GET,
        "/api/v1/supervision/deadlines",
        None,
    )
    .await;
    assert_eq!(status, 401, "a payload swapped under a valid signature");

    // A token's scope narrows its client's; it cannot add one the client lacks.
    let narrow = token(
        secret,
        json!({"sub": PORTAL_CLIENT, "iss": "test-idp", "aud": "gateway-portal", "exp": now() + 300, "scope": "lookup:tax.clearance cases:all"}),
    );
    let (status, _) = call(
        &bearer(&narrow),
        &env,
        Method::POST,
        LOOKUP,
        Some(clearance()),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &bearer(&narrow),
        &env,
        Method::POST,
        APPLY,
        Some(seal_form()),
    )
    .await;
    assert_eq!(status, 403, "apply was not in the token's scope");
    let case_id = env.apply("public-security.seal-filing", &seal_form()).await;
    let lookup_only = token(
        secret,
        json!({"sub": "lookup-only", "iss": "test-idp", "aud": "gateway-portal", "exp": now() + 300, "scope": "cases:all"}),
    );
    let (status, _) = call(
        &bearer(&lookup_only),
        &env,
        Method::GET,
        &format!("/api/v1/cases/{case_id}"),
        None,
    )
    .await;
    assert_eq!(
        status, 404,
        "cases:all claimed by a token whose client lacks it grants nothing"
    );
}

/// The configured issuer and audience are required, not merely checked when a token happens to
/// carry them; `nbf` is honoured; a claim of the wrong JSON type is refused rather than ignored
/// (GHSA-h395-gr6q-cpjc: jsonwebtoken before 10.3 skipped a string `nbf`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_carry_the_configured_issuer_and_audience_and_wait_for_not_before() {
    use reqwest::Method;
    let env = env().await;
    let secret = "test-jwt-secret-0123456789abcdef";
    let bearer = |t: &str| portal(&[("authorization", &format!("Bearer {t}"))]);
    let claims = |extra: Value| {
        let mut claims = json!({
            "sub": PORTAL_CLIENT, "iss": "test-idp", "aud": "gateway-portal", "exp": now() + 300,
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        token(secret, claims)
    };
    let mut wrong = Vec::new();
    for (why, extra, expected) in [
        ("all claims as configured", json!({}), 200),
        ("nbf in the past", json!({"nbf": now() - 60}), 200),
        (
            "an audience list naming the gateway",
            json!({"aud": ["gateway-portal"]}),
            200,
        ),
        ("no iss", json!({"iss": null}), 401),
        ("another iss", json!({"iss": "elsewhere"}), 401),
        ("no aud", json!({"aud": null}), 401),
        ("another aud", json!({"aud": "another-service"}), 401),
        ("nbf in the future", json!({"nbf": now() + 3600}), 401),
        (
            "nbf as a string",
            json!({"nbf": (now() + 3600).to_string()}),
            401,
        ),
        (
            "exp as a string",
            json!({"exp": (now() + 300).to_string()}),
            401,
        ),
        ("no sub", json!({"sub": null}), 401),
    ] {
        let (status, body) = call(
            &bearer(&claims(extra)),
            &env,
            Method::POST,
            LOOKUP,
            Some(clearance()),
        )
        .await;
        if status != expected {
            wrong.push(format!("{why}: {status} (expected {expected}) {body}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_records_its_purpose_and_the_case_or_clerk_it_serves() {
    use reqwest::Method;
    let env = env().await;
    let bare = client_with(&[("x-api-key", integration_tests::PORTAL_KEY)]);
    let (status, body) = call(&bare, &env, Method::POST, LOOKUP, Some(clearance())).await;
    assert_eq!(status, 422, "{body}");
    let fields: Vec<&str> = body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["X-Lookup-Purpose", "X-Case-Id"],
        "both problems at once"
    );

    // For a case of its own, by case id; another client's case is not found.
    let case_id = env.apply("public-security.seal-filing", &seal_form()).await;
    let for_case = client_with(&[
        ("x-api-key", integration_tests::PORTAL_KEY),
        ("x-lookup-purpose", "seal-filing-review"),
        ("x-case-id", case_id.as_str()),
    ]);
    let (status, body) = call(&for_case, &env, Method::POST, LOOKUP, Some(clearance())).await;
    assert_eq!(status, 200, "{body}");
    let other = portal(&[("x-api-key", "key-b")]);
    let stolen = client_with(&[
        ("x-api-key", "key-b"),
        ("x-lookup-purpose", "curiosity"),
        ("x-case-id", case_id.as_str()),
    ]);
    let (status, _) = call(&stolen, &env, Method::POST, LOOKUP, Some(clearance())).await;
    assert_eq!(status, 404, "a case id of another client's is refused");
    let (status, _) = call(
        &other,
        &env,
        Method::POST,
        LOOKUP,
        Some(json!({"taxpayer_id": "bad"})),
    )
    .await;
    assert_eq!(status, 422);

    let records: Value = integration_tests::admin_client()
        .get(format!("{}/admin/v1/lookups", env.admin_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let records = records["lookups"].as_array().unwrap();
    assert_eq!(
        records.len(),
        2,
        "refused before running: not recorded as lookups: {records:?}"
    );
    assert_eq!(records[0]["client"], "lookup-only");
    assert_eq!(records[0]["purpose"], "security-test");
    assert_eq!(records[0]["clerk"]["id"], "clerk-9");
    assert_eq!(records[0]["outcome"], "invalid_input");
    assert_eq!(records[1]["client"], PORTAL_CLIENT);
    assert_eq!(records[1]["purpose"], "seal-filing-review");
    assert_eq!(records[1]["case_id"], case_id.as_str());
    assert_eq!(records[1]["outcome"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_body_and_time_limits_answer_in_the_error_format() {
    use reqwest::Method;
    let extra = format!(
        "[[auth.clients]]\nid = \"slow-lane\"\napi_key_sha256 = \"{}\"\nscopes = [\"lookup:*\"]\nrate_per_minute = 6\n",
        gateway_http::auth::sha256_hex("key-d")
    );
    let env = Env::start_with(Setup {
        config_extra: extra,
        server_extra: "request_timeout_ms = 1500\nbody_limit_bytes = 4096".into(),
        admin: true,
        ..Setup::default()
    })
    .await
    .unwrap();

    // A burst of one (6 a minute, a sixth of it at once): the second request waits its turn.
    let slow_lane = portal(&[("x-api-key", "key-d")]);
    let (status, body) = call(&slow_lane, &env, Method::POST, LOOKUP, Some(clearance())).await;
    assert_eq!(status, 200, "{body}");
    let response = slow_lane
        .post(format!("{}{LOOKUP}", env.gateway.url()))
        .json(&clearance())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "10");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Another client's allowance is its own.
    let (status, _) = call(&env.http, &env, Method::POST, LOOKUP, Some(clearance())).await;
    assert_eq!(status, 200);

    let huge = json!({"taxpayer_id": "9".repeat(8192)});
    let (status, body) = call(&env.http, &env, Method::POST, LOOKUP, Some(huge)).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");

    env.departments.tax.set_faults(departments::Faults {
        latency_ms: 3000,
        ..departments::Faults::default()
    });
    let started = std::time::Instant::now();
    let (status, body) = call(&env.http, &env, Method::POST, LOOKUP, Some(clearance())).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["code"], "request_timeout");
    assert!(
        started.elapsed() < std::time::Duration::from_millis(2900),
        "ended by the gateway's bound"
    );
    // The lookup its time bound cut off was recorded all the same, as cancelled; those answered
    // with how they ended.
    let records = env.admin_get("/admin/v1/lookups").await;
    let outcomes: Vec<&str> = records["lookups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["cancelled", "ok", "ok"], "{records}");
}
