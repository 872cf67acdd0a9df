//! The gateway's parts driven in-process, with no listener: the portal and admin routers
//! answered with `oneshot` (the error format and authentication, without a socket), and the
//! dispatcher delivering a stored case to a real department with no gateway serving.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gateway::Parts;
use integration_tests::{OPERATOR_TOKEN, PORTAL_KEY, Setup, departments_in, write_config};
use serde_json::{Value, json};
use std::time::Duration;
use tower::ServiceExt;

/// A gateway's parts on the simulated departments (a store of their own), serving nothing.
async fn parts(setup: Setup) -> (Parts, departments::Departments, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let departments = departments_in(dir.path()).await;
    let store = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let path = write_config(dir.path(), &departments, &setup, &store).unwrap();
    let config = gateway_base::config::Config::load(&path).unwrap();
    // Departments call back to a port nothing listens on: nothing here needs them to.
    let parts = Parts::build(config, "in-process".into(), "http://127.0.0.1:9".into())
        .await
        .unwrap();
    (parts, departments, dir)
}

/// One request through an app; the status, the headers and the JSON body (`Null` if none).
async fn call(
    app: &gateway_http::App,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let (head, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (head.status, head.headers, json)
}

fn get(path: &str, key: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    request.body(Body::empty()).unwrap()
}

fn post(path: &str, key: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

/// The one error shape: `{"error": {"code", "message", …}}` with the code asked for.
fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

#[tokio::test]
async fn the_portal_router_answers_every_refusal_in_the_one_error_format() {
    let (parts, _departments, _dir) = parts(Setup::default()).await;
    let app = parts.portal_app();
    // No credential: 401 with the scheme to use.
    let (status, headers, body) = call(&app, get("/api/v1/catalogue", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer");
    assert_error(&body, "unauthorized");
    // A wrong key is no better.
    let (status, _, body) = call(&app, get("/api/v1/catalogue", Some("not-a-key"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, "unauthorized");
    // Open routes need nothing.
    let (status, _, body) = call(&app, get("/healthz", None)).await;
    assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("ok")));
    // A route that does not exist: named, method and path.
    let (status, _, body) = call(&app, get("/api/v1/nothing-here", Some(PORTAL_KEY))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");
    assert_eq!(
        body["error"]["message"],
        "route `GET /api/v1/nothing-here` not found"
    );
    // A path carrying an identity number names it masked, as the logs do.
    let (status, _, body) = call(
        &app,
        get("/api/v1/people/11010519491231002X/x", Some(PORTAL_KEY)),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("route `GET /api/v1/people/") && !message.contains("19491231"),
        "{message}"
    );
    // A service that does not exist.
    let (status, _, body) =
        call(&app, get("/api/v1/services/no.such/form", Some(PORTAL_KEY))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");
    // A body that is not JSON.
    let (status, _, body) = call(
        &app,
        post(
            "/api/v1/services/tax.registration/pre-review",
            PORTAL_KEY,
            "{not json",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "malformed_json");
    // A body over the limit keeps the format too (the limit's own answer is plain text).
    let big = format!("{{\"x\":\"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let (status, _, body) = call(
        &app,
        post(
            "/api/v1/services/tax.registration/pre-review",
            PORTAL_KEY,
            big,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&body, "payload_too_large");
    // Every problem with a form at once, as a 200 with the problems (pre-review) …
    let (status, _, body) = call(
        &app,
        post(
            "/api/v1/services/tax.registration/pre-review",
            PORTAL_KEY,
            "{}",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["ok"], false);
    assert!(body["problems"].as_array().unwrap().len() > 1, "{body}");
    // … and as a 422 listing them when applying.
    let (status, _, body) = call(
        &app,
        post(
            "/api/v1/services/tax.registration/applications",
            PORTAL_KEY,
            "{}",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&body, "invalid_input");
    assert!(
        body["error"]["fields"].as_array().unwrap().len() > 1,
        "{body}"
    );
}

#[tokio::test]
async fn the_admin_router_takes_only_an_operators_token() {
    let (parts, _departments, _dir) = parts(Setup {
        admin: true,
        ..Setup::default()
    })
    .await;
    let app = parts.admin_app();
    let admin = |token: Option<&str>| {
        let mut request = Request::get("/admin/v1/adapters");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request.body(Body::empty()).unwrap()
    };
    let (status, _, body) = call(&app, admin(None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, "unauthorized");
    // A portal's key is worth nothing here.
    let (status, _, _) = call(&app, admin(Some(PORTAL_KEY))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = call(&app, admin(Some(OPERATOR_TOKEN))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["departments"].as_array().unwrap().len(), 4, "{body}");
    // An unknown admin route is named, in the one error format.
    let unknown = Request::get("/admin/v1/nothing-here")
        .header("authorization", format!("Bearer {OPERATOR_TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = call(&app, unknown).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["error"]["message"],
        "route `GET /admin/v1/nothing-here` not found"
    );
    // A component over the push limit (64 MiB): 413 in the one error format, not plain text.
    let push = Request::post("/admin/v1/adapters")
        .header("authorization", format!("Bearer {OPERATOR_TOKEN}"))
        .body(Body::from(vec![0u8; (64 << 20) + 1]))
        .unwrap();
    let (status, headers, body) = call(&app, push).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(headers["content-type"], "application/json");
    assert_error(&body, "payload_too_large");
    assert_eq!(
        body["error"]["message"],
        format!("the body exceeds the limit of {} bytes", 64 << 20)
    );
}

#[tokio::test]
async fn the_dispatcher_delivers_a_stored_case_with_no_gateway_serving() {
    let (parts, departments, _dir) = parts(Setup::default()).await;
    let orchestrator = parts.orchestrator.clone();
    let form = json!({
        "credit_code": "91350100M000100Y43",
        "enterprise_name": "福州进程内测试有限公司",
        "legal_representative": {"name": "王五", "id_number": "11010519491231002X"},
        "address": "福州市鼓楼区五四路1号",
        "business_scope": "软件开发"
    });
    let review = orchestrator
        .review("tax.registration", &form)
        .await
        .unwrap();
    assert!(review.problems.is_empty(), "{:?}", review.problems);
    let applied = orchestrator
        .apply("tax.registration", form, gateway_store::Arrival::default())
        .await
        .unwrap();
    let mut changes = orchestrator.subscribe();
    let dispatcher = tokio::spawn(orchestrator.clone().run_dispatcher());
    // The department takes it: the step leaves `pending` with the department's reference.
    let taken = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let change = changes.recv().await.unwrap();
            if change.case_id == applied.case_id && change.state.is_at_department() {
                break;
            }
        }
    })
    .await;
    assert!(taken.is_ok(), "the dispatcher did not deliver within 20 s");
    let steps = orchestrator.store().steps(&applied.case_id).await.unwrap();
    assert!(steps[0].reference.is_some(), "{steps:?}");
    assert_eq!(steps[0].attempts, 0);
    assert_eq!(departments.tax.applications(), 1);
    orchestrator.stop(Duration::from_secs(5)).await;
    dispatcher.abort();
}
