//! Application materials end to end (docs/materials.md), on the catalogue
//! `tests/catalogues/materials.toml`: the form lists each material once; uploads into a draft
//! are typed by their content, streamed, stored once by SM3 and sealed at rest; every bad input
//! is refused in the one error format with nothing half-stored left behind; pre-review reports
//! missing materials with every other problem and says what the gateway obtained instead
//! (免提交); an application stores its materials with the case and consumes its draft; a
//! stored case takes a material it was promised; drafts expire with their files; on
//! PostgreSQL a second node reads what the first stored.
//!
//! The files are made here (PDF, PNG, JPEG, OFD bytes): nothing binary is committed.

use integration_tests::files::{ofd, sm3_hex};
use integration_tests::{Env, PORTAL_KEY, Setup, suite_on_postgres, workspace_root};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const OTHER_KEY: &str = "other-portal-key";

fn setup(server_extra: &str, config_extra: &str) -> Setup {
    Setup {
        catalogue: Some(workspace_root().join("tests/catalogues/materials.toml")),
        server_extra: server_extra.into(),
        config_extra: format!(
            "[[auth.clients]]\nid = \"other-portal\"\napi_key_sha256 = \"{}\"\nscopes = [\"apply:*\"]\n{config_extra}",
            gateway_http::auth::sha256_hex(OTHER_KEY)
        ),
        ..Setup::default()
    }
}

// ---- files, made the way their formats say ----

fn filler(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 7 + seed as usize) % 251) as u8)
        .collect()
}

fn pdf(len: usize, seed: u8) -> Vec<u8> {
    [
        &b"%PDF-1.7\n"[..],
        &filler(len, seed),
        b"\ntrailer\n<<>>\n%%EOF\n",
    ]
    .concat()
}

fn png(len: usize) -> Vec<u8> {
    let end = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82];
    [
        &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A][..],
        &filler(len, 3),
        &end,
    ]
    .concat()
}

fn jpeg(len: usize) -> Vec<u8> {
    [
        &[0xFF, 0xD8, 0xFF, 0xE0][..],
        &filler(len, 4),
        &[0xFF, 0xD9],
    ]
    .concat()
}

/// An executable (ELF) as a portal might send one named `申请书.pdf`.
fn executable() -> Vec<u8> {
    [&b"\x7fELF\x02\x01\x01\x00"[..], &filler(4000, 9)].concat()
}

// ---- requests ----

async fn put(env: &Env, path: &str, body: Vec<u8>, key: &str) -> (u16, Value) {
    let response = env
        .http
        .put(format!("{}{path}", env.gateway.url()))
        .header("x-api-key", key)
        .header("content-type", "application/pdf")
        .header("content-disposition", "attachment; filename=\"申请书.pdf\"")
        .body(body)
        .send()
        .await
        .expect("the gateway answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn send(env: &Env, method: reqwest::Method, path: &str, key: &str) -> (u16, Value) {
    let response = env
        .http
        .request(method, format!("{}{path}", env.gateway.url()))
        .header("x-api-key", key)
        .send()
        .await
        .expect("the gateway answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn new_draft(env: &Env, service: &str) -> String {
    let (status, body) = env
        .post(&format!("/api/v1/services/{service}/drafts"), &json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    body["draft_id"].as_str().unwrap().to_string()
}

async fn upload(env: &Env, draft: &str, code: &str, body: Vec<u8>) -> (u16, Value) {
    put(
        env,
        &format!("/api/v1/drafts/{draft}/materials/{code}"),
        body,
        PORTAL_KEY,
    )
    .await
}

/// The one problem of a refused upload: (field, code).
fn problem(body: &Value) -> (String, String) {
    let field = &body["error"]["fields"][0];
    (
        field["field"].as_str().unwrap_or_default().to_string(),
        field["code"].as_str().unwrap_or_default().to_string(),
    )
}

async fn count(env: &Env, sql: &str) -> i64 {
    use sqlx::Row as _;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&env.store_url).await.unwrap();
    let n = sqlx::query(sql)
        .fetch_one(&pool)
        .await
        .unwrap()
        .get::<i64, _>(0);
    pool.close().await;
    n
}

/// Every stored chunk's text, as the table holds it.
async fn stored_chunks(env: &Env) -> Vec<String> {
    use sqlx::Row as _;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&env.store_url).await.unwrap();
    let rows = sqlx::query("SELECT data FROM material_chunks")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows.iter().map(|r| r.get::<String, _>("data")).collect()
}

/// Wait until nothing of an unfinished upload is left (its removal runs in the background).
async fn no_upload_left(env: &Env) {
    for _ in 0..100 {
        if count(env, "SELECT COUNT(*) FROM material_uploads").await == 0
            && count(env, "SELECT COUNT(*) FROM material_upload_chunks").await == 0
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("an unfinished upload was left in the store");
}

fn restaurant_form() -> Value {
    json!({
        "enterprise_name": "福州好味道餐饮有限公司",
        "address": "福州市鼓楼区五四路2号",
        "legal_representative": {"name": "李四", "id_number": "34052419800101001X"},
        "registered_capital": 100,
        "business_scope": "餐饮服务",
        "business_items": ["热食类食品制售"],
        "premises_area": 120
    })
}

fn codes(problems: &Value) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = problems
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["field"].as_str().unwrap().to_string(),
                p["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    found
}

fn encryption(dir: &std::path::Path) -> String {
    use base64::Engine as _;
    let key: Vec<u8> = (0..16u8).map(|i| i.wrapping_mul(29) ^ 0x3c).collect();
    let path = dir.join("materials.key");
    std::fs::write(&path, base64::engine::general_purpose::STANDARD.encode(key)).unwrap();
    format!(
        "\n[store.encryption]\ncurrent = \"k1\"\n[[store.encryption.keys]]\nid = \"k1\"\nalgorithm = \"sm4-gcm\"\nkey_file = \"{}\"\n",
        path.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_typed_by_content_stored_once_sealed_and_every_bad_input_is_refused() {
    let keys = tempfile::tempdir().unwrap();
    let env = Env::start_with(setup(
        "",
        &format!("[materials]\nchunk_kib = 64\n{}", encryption(keys.path())),
    ))
    .await
    .unwrap();

    // The form: each material once, with the matters that need it.
    let (_, form) = env
        .get("/api/v1/services/one-thing.open-restaurant/form")
        .await;
    let listed: Vec<&str> = form["materials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        [
            "articles-of-association",
            "shareholder-id",
            "premises-proof",
            "business-licence",
            "food-safety-rules",
            "floor-plan"
        ]
    );
    let articles = &form["materials"][0];
    // Both matters list it: one file for both, so the form asks what both take — the first
    // matter's name, the strictest need, the formats both accept, the smaller size.
    assert_eq!(articles["name"], "公司章程");
    assert_eq!(
        articles["need"], "required",
        "required by one, optional for the other"
    );
    assert_eq!(
        articles["matters"],
        json!(["market-regulation.business-licence", "tax.registration"])
    );
    assert_eq!(articles["formats"], json!(["pdf"]), "tax takes no OFD");
    assert_eq!(articles["max_mib"], 2);
    assert_eq!(
        form["materials"][3]["obtain"],
        json!({"licence": "business_licence", "holder": "credit_code"})
    );

    let draft = new_draft(&env, "one-thing.open-restaurant").await;
    let (status, view) = env.get(&format!("/api/v1/drafts/{draft}")).await;
    assert_eq!((status, view["materials"].clone()), (200, json!([])));
    assert_eq!(view["service"], "one-thing.open-restaurant");

    // Each bad input, each refused in the one error format.
    let articles = "articles-of-association";
    let (status, body) = upload(&env, &draft, articles, Vec::new()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        problem(&body),
        (format!("materials.{articles}"), "empty".into())
    );
    let (status, body) = upload(&env, &draft, articles, executable()).await;
    assert_eq!(
        (status, problem(&body).1.as_str()),
        (422, "format"),
        "an executable named .pdf and sent as application/pdf: {body}"
    );
    let whole = pdf(100_000, 1);
    let (status, body) = upload(&env, &draft, articles, whole[..60_000].to_vec()).await;
    assert_eq!(
        (status, problem(&body).1.as_str()),
        (422, "truncated"),
        "{body}"
    );
    let (status, body) = upload(&env, &draft, articles, png(1000)).await;
    assert_eq!(
        (status, problem(&body).1.as_str()),
        (422, "format"),
        "{body}"
    );
    assert!(
        body["error"]["fields"][0]["message"]
            .as_str()
            .unwrap()
            .contains("只接受 PDF 格式"),
        "what it takes, in Chinese: {body}"
    );
    let (status, body) = upload(&env, &draft, "no-such-material", pdf(100, 1)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let over = pdf(2 * 1024 * 1024, 2);
    let (status, body) = upload(&env, &draft, articles, over).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("payload_too_large")),
        "{body}"
    );
    // Another client's draft is not found, whatever it asks.
    let (status, _) = put(
        &env,
        &format!("/api/v1/drafts/{draft}/materials/{articles}"),
        whole.clone(),
        OTHER_KEY,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = send(
        &env,
        reqwest::Method::GET,
        &format!("/api/v1/drafts/{draft}"),
        OTHER_KEY,
    )
    .await;
    assert_eq!(status, 404);
    no_upload_left(&env).await;
    assert_eq!(
        count(&env, "SELECT COUNT(*) FROM material_blobs").await,
        0,
        "nothing refused was kept"
    );

    // Good files: typed by content, whatever they are called.
    let (status, stored) = upload(&env, &draft, articles, whole.clone()).await;
    assert_eq!(status, 201, "{stored}");
    assert_eq!(
        stored,
        json!({"code": articles, "media_type": "application/pdf", "size": whole.len(), "sm3": sm3_hex(&whole)})
    );
    let (status, body) = upload(&env, &draft, articles, pdf(10, 7)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("conflict")),
        "the same material twice"
    );
    let (status, body) = upload(&env, &draft, "food-safety-rules", ofd(3000, 5)).await;
    assert_eq!(
        (status, body["media_type"].as_str()),
        (201, Some("application/ofd")),
        "{body}"
    );
    let (status, body) = upload(&env, &draft, "shareholder-id", jpeg(3000)).await;
    assert_eq!(
        (status, body["media_type"].as_str()),
        (201, Some("image/jpeg")),
        "{body}"
    );
    // The same bytes again, for another material: stored once.
    let (status, again) = upload(&env, &draft, "floor-plan", whole.clone()).await;
    assert_eq!((status, &again["sm3"]), (201, &stored["sm3"]));
    assert_eq!(count(&env, "SELECT COUNT(*) FROM material_blobs").await, 3);
    let (_, view) = env.get(&format!("/api/v1/drafts/{draft}")).await;
    let held: Vec<(&str, &str)> = view["materials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["code"].as_str().unwrap(),
                m["media_type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        held,
        [
            (articles, "application/pdf"),
            ("floor-plan", "application/pdf"),
            ("food-safety-rules", "application/ofd"),
            ("shareholder-id", "image/jpeg")
        ]
    );

    // Sealed at rest, chunk by chunk: no plaintext in the table; the bytes read back whole.
    let chunks = count(&env, "SELECT COUNT(*) FROM material_chunks").await;
    assert!(chunks >= 3, "{chunks}");
    let sealed = count(
        &env,
        "SELECT COUNT(*) FROM material_chunks WHERE data LIKE 'enc1:k1:%'",
    )
    .await;
    assert_eq!(sealed, chunks);
    // Not the plaintext, nor any 16 bytes of it, however the stored text is decoded.
    for stored in stored_chunks(&env).await {
        use base64::Engine as _;
        let body = stored.strip_prefix("enc1:k1:").unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        for window in whole.windows(16).step_by(4096) {
            assert!(!bytes.windows(16).any(|w| w == window), "plaintext at rest");
        }
        assert!(!stored.contains("JVBERi0"), "base64 of %PDF-");
    }
    let store = env.gateway.orchestrator.store();
    let sm3 = stored["sm3"].as_str().unwrap();
    assert_eq!(
        store.read_blob(sm3, 0, 1 << 20).await.unwrap().unwrap(),
        whole
    );
    assert_eq!(
        store.read_blob(sm3, 65_530, 20).await.unwrap().unwrap(),
        whole[65_530..65_550],
        "across a chunk's edge"
    );

    // Removed, then uploaded again.
    let path = format!("/api/v1/drafts/{draft}/materials/floor-plan");
    assert_eq!(
        send(&env, reqwest::Method::DELETE, &path, PORTAL_KEY)
            .await
            .0,
        204
    );
    assert_eq!(
        send(&env, reqwest::Method::DELETE, &path, PORTAL_KEY)
            .await
            .0,
        404
    );
    assert_eq!(upload(&env, &draft, "floor-plan", png(500)).await.0, 201);

    // Expiry: a day later the draft and the files only it held are gone.
    let swept = env
        .gateway
        .orchestrator
        .sweep_materials(gateway_base::time::now_ms() + 25 * 3_600_000)
        .await
        .unwrap();
    assert_eq!((swept.drafts, swept.blobs), (1, 4));
    assert_eq!(env.get(&format!("/api/v1/drafts/{draft}")).await.0, 404);
    assert_eq!(count(&env, "SELECT COUNT(*) FROM material_blobs").await, 0);
    assert_eq!(count(&env, "SELECT COUNT(*) FROM material_chunks").await, 0);
    assert!(store.read_blob(sm3, 0, 10).await.unwrap().is_none());
}

/// An upload over a raw connection: the request head, then what the test writes.
async fn raw_upload(env: &Env, path: &str, length: Option<usize>) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(env.gateway.addr)
        .await
        .unwrap();
    let framing = match length {
        Some(n) => format!("content-length: {n}"),
        None => "transfer-encoding: chunked".to_string(),
    };
    let head = format!(
        "PUT {path} HTTP/1.1\r\nhost: gateway\r\nx-api-key: {PORTAL_KEY}\r\ncontent-type: application/octet-stream\r\n{framing}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// One chunk of a chunked body.
fn chunk(bytes: &[u8]) -> Vec<u8> {
    [format!("{:x}\r\n", bytes.len()).as_bytes(), bytes, b"\r\n"].concat()
}

/// The status and JSON body of the answer on a raw connection.
async fn answer(reader: &mut (impl tokio::io::AsyncRead + Unpin)) -> (u16, Value) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = reader.read(&mut buf).await.unwrap_or(0);
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length || n == 0 {
                let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                return (status, serde_json::from_str(body).unwrap_or(Value::Null));
            }
        }
        assert!(n > 0, "the connection closed without an answer: {got:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_off_stalled_or_endless_is_ended_and_leaves_nothing() {
    // Uploads may take 4 s and pause 1.5 s (the request timeout), not more.
    let env = Env::start_with(setup(
        "upload_timeout_ms = 4000\nrequest_timeout_ms = 1500",
        "",
    ))
    .await
    .unwrap();
    let draft = new_draft(&env, "one-thing.open-restaurant").await;
    let path = |code: &str| format!("/api/v1/drafts/{draft}/materials/{code}");
    let whole = pdf(300_000, 1);

    // Cut off half way: the client goes away; nothing is kept, nothing referenced.
    let mut stream = raw_upload(&env, &path("articles-of-association"), Some(whole.len())).await;
    stream.write_all(&whole[..150_000]).await.unwrap();
    drop(stream);
    no_upload_left(&env).await;
    let (_, view) = env.get(&format!("/api/v1/drafts/{draft}")).await;
    assert_eq!(view["materials"], json!([]), "{view}");
    assert_eq!(count(&env, "SELECT COUNT(*) FROM material_blobs").await, 0);
    // And the whole file afterwards is taken.
    let (status, body) = upload(&env, &draft, "articles-of-association", whole.clone()).await;
    assert_eq!(status, 201, "{body}");

    // Stalled: the head and a few bytes, then nothing. Ended after the request timeout.
    let started = std::time::Instant::now();
    let mut stream = raw_upload(&env, &path("food-safety-rules"), Some(100_000)).await;
    stream.write_all(&pdf(1000, 2)[..1000]).await.unwrap();
    let (status, body) = answer(&mut stream).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (408, Some("upload_timeout")),
        "{body}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("paused"),
        "{body}"
    );

    // Endless, slowly: a few bytes every 100 ms, never a long pause, never over the size.
    // Not cut short by the request timeout (1.5 s); ended by the upload's own (4 s).
    let started = std::time::Instant::now();
    let stream = raw_upload(&env, &path("floor-plan"), None).await;
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        writer.write_all(&chunk(b"%PDF-1.7\n")).await?;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            writer.write_all(&chunk(&[b'x'; 100])).await?;
        }
        #[allow(unreachable_code)]
        Ok::<_, std::io::Error>(())
    });
    let (status, body) = answer(&mut reader).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (408, Some("upload_timeout")),
        "{body}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(3900),
        "{:?}",
        started.elapsed()
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer than 4000"),
        "{body}"
    );
    trickle.abort();

    // Endless, fast, with no declared length: refused at the material's limit (1 MiB).
    let stream = raw_upload(&env, &path("floor-plan"), None).await;
    let (mut reader, mut writer) = stream.into_split();
    let flood = tokio::spawn(async move {
        writer.write_all(&chunk(b"%PDF-1.7\n")).await?;
        let block = vec![b'y'; 64 * 1024];
        loop {
            writer.write_all(&chunk(&block)).await?;
        }
        #[allow(unreachable_code)]
        Ok::<_, std::io::Error>(())
    });
    let (status, body) = answer(&mut reader).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("payload_too_large")),
        "{body}"
    );
    flood.abort();

    no_upload_left(&env).await;
    assert_eq!(
        count(&env, "SELECT COUNT(*) FROM material_blobs").await,
        1,
        "the one whole file"
    );
    let (_, view) = env.get(&format!("/api/v1/drafts/{draft}")).await;
    assert_eq!(view["materials"].as_array().unwrap().len(), 1, "{view}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_review_reports_materials_with_every_other_problem_and_what_was_obtained() {
    let env = Env::start_with(setup("", "")).await.unwrap();
    let service = "one-thing.open-restaurant";
    let draft = new_draft(&env, service).await;
    assert_eq!(
        upload(&env, &draft, "articles-of-association", pdf(5000, 1))
            .await
            .0,
        201
    );
    let review = |form: Value, draft: Option<String>| {
        let env = &env;
        async move {
            let query = draft.map(|d| format!("?draft={d}")).unwrap_or_default();
            env.post(
                &format!("/api/v1/services/{service}/pre-review{query}"),
                &form,
            )
            .await
        }
    };
    // A form problem and a missing material, at once; what the gateway obtains is not asked.
    let mut form = restaurant_form();
    form["registered_capital"] = json!("lots");
    let (status, body) = review(form, Some(draft.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], false);
    assert_eq!(
        codes(&body["problems"]),
        [
            (
                "materials.food-safety-rules".to_string(),
                "required".to_string()
            ),
            ("registered_capital".to_string(), "type".to_string()),
        ]
    );
    let obtained: Vec<(&str, &str)> = body["materials"]["obtained"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["code"].as_str().unwrap(), o["by"].as_str().unwrap()))
        .collect();
    assert_eq!(
        obtained,
        [("shareholder-id", "lookup"), ("business-licence", "step")],
        "identity verified at public security; the licence the first step issues: {body}"
    );
    assert_eq!(body["materials"]["deferrable"], json!(["premises-proof"]));
    // Without the draft, the uploaded material is missing too.
    let (_, body) = review(restaurant_form(), None).await;
    assert_eq!(
        codes(&body["problems"]),
        [
            (
                "materials.articles-of-association".to_string(),
                "required".to_string()
            ),
            (
                "materials.food-safety-rules".to_string(),
                "required".to_string()
            ),
        ]
    );
    // Another client's draft, or one for another service, is not found.
    let (status, _) = env
        .post(
            &format!("/api/v1/services/one-thing.open-business/pre-review?draft={draft}"),
            &restaurant_form(),
        )
        .await;
    assert_eq!(status, 404);

    // Complete: the application stores the case with its materials and consumes the draft.
    assert_eq!(
        upload(&env, &draft, "food-safety-rules", ofd(2000, 5))
            .await
            .0,
        201
    );
    let (_, body) = review(restaurant_form(), Some(draft.clone())).await;
    assert_eq!(body["ok"], true, "{body}");
    let path = format!("/api/v1/services/{service}/applications?draft={draft}");
    let (status, accepted) = env.post(&path, &restaurant_form()).await;
    assert_eq!(status, 202, "{accepted}");
    let case_id = accepted["case_id"].as_str().unwrap().to_string();
    assert_eq!(
        env.get(&format!("/api/v1/drafts/{draft}")).await.0,
        404,
        "consumed"
    );
    let (status, body) = env.post(&path, &restaurant_form()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found")),
        "used once"
    );
    let store = env.gateway.orchestrator.store();
    let kinds = |refs: &[gateway_base::model::MaterialRef]| -> Vec<(String, String)> {
        refs.iter()
            .map(|r| {
                let kind = serde_json::to_value(&r.source).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_string();
                (r.code.clone(), kind)
            })
            .collect()
    };
    assert_eq!(
        kinds(&store.case_materials(&case_id).await.unwrap()),
        [
            ("articles-of-association".into(), "file".into()),
            ("food-safety-rules".into(), "file".into()),
            ("premises-proof".into(), "promised".into()),
        ],
        "the licence the first step issues is handed over once issued"
    );
    // The promised material, after the application; by its own client only, once.
    let case_path = format!("/api/v1/cases/{case_id}/materials/premises-proof");
    let (status, _) = put(&env, &case_path, png(800), OTHER_KEY).await;
    assert_eq!(status, 404, "another client's case");
    let (status, body) = put(&env, &case_path, png(800), PORTAL_KEY).await;
    assert_eq!(
        (status, body["media_type"].as_str()),
        (201, Some("image/png")),
        "{body}"
    );
    let (status, _) = put(&env, &case_path, png(801), PORTAL_KEY).await;
    assert_eq!(status, 409);
    let (status, _) = put(
        &env,
        &format!("/api/v1/cases/{case_id}/materials/nothing-like-it"),
        png(10),
        PORTAL_KEY,
    )
    .await;
    assert_eq!(status, 404);
    // Once the first step is approved, its licence stands in for the business licence.
    env.wait_for_case(&case_id, Duration::from_secs(60), |v| {
        v["licences"].as_array().is_some_and(|l| !l.is_empty())
    })
    .await;
    let refs = store.case_materials(&case_id).await.unwrap();
    let licence = refs.iter().find(|r| r.code == "business-licence").unwrap();
    assert!(
        matches!(&licence.source, gateway_base::model::MaterialSource::Licence { kind, id, .. }
            if kind == "business_licence" && id.starts_with("1.2.156.3005.2.")),
        "{licence:?}"
    );

    // An enterprise whose licence is in the library now need not provide it.
    let credit_code =
        env.get(&format!("/api/v1/cases/{case_id}")).await.1["licences"][0]["holder_id"]
            .as_str()
            .unwrap()
            .to_string();
    let existing = json!({
        "credit_code": credit_code,
        "legal_representative_id_number": "34052419800101001X",
        "business_items": ["预包装食品销售"],
        "premises_area": 40
    });
    let (status, body) = env
        .post(
            "/api/v1/services/one-thing.food-permit-for-enterprise/pre-review",
            &existing,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let obtained = &body["materials"]["obtained"][0];
    assert_eq!(
        (obtained["code"].as_str(), obtained["by"].as_str()),
        (Some("business-licence"), Some("licence")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_on_one_node_is_read_and_applied_on_another() {
    if !suite_on_postgres() {
        // SQLite is one node's store; the suite on PostgreSQL runs this.
        return;
    }
    let env = Env::start_with(setup("", "")).await.unwrap();
    // Node A takes the uploads; node B reads them and takes the application.
    let a = env.start_node("a").await.unwrap();
    let b = env.start_node("b").await.unwrap();
    let on = |node: &gateway::Gateway, path: &str| format!("{}{path}", node.url());
    let draft: Value = env
        .http
        .post(on(&a, "/api/v1/services/one-thing.open-restaurant/drafts"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let draft = draft["draft_id"].as_str().unwrap().to_string();
    let articles = pdf(700_000, 3);
    let rules = ofd(5000, 5);
    for (code, bytes) in [
        ("articles-of-association", &articles),
        ("food-safety-rules", &rules),
    ] {
        let status = env
            .http
            .put(on(&a, &format!("/api/v1/drafts/{draft}/materials/{code}")))
            .body(bytes.clone())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 201, "{code}");
    }
    // Node A is gone before anything is applied: what is delivered is read from the shared
    // store by another node.
    assert!(a.shutdown().await, "node A stops cleanly");
    let view: Value = env
        .http
        .get(on(&b, &format!("/api/v1/drafts/{draft}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["materials"].as_array().unwrap().len(), 2, "{view}");
    let sm3 = sm3_hex(&articles);
    let mut read = Vec::new();
    while read.len() < articles.len() {
        let part = b
            .orchestrator
            .store()
            .read_blob(&sm3, read.len() as u64, 256 * 1024)
            .await
            .unwrap()
            .unwrap();
        read.extend_from_slice(&part);
    }
    assert_eq!(read, articles);
    let response = env
        .http
        .post(on(
            &b,
            &format!("/api/v1/services/one-thing.open-restaurant/applications?draft={draft}"),
        ))
        .json(&restaurant_form())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let case: Value = response.json().await.unwrap();
    let refs = env
        .gateway
        .orchestrator
        .store()
        .case_materials(case["case_id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(refs.len(), 3, "two files and the promised one: {refs:?}");
    // Market regulation receives both files whole, as uploaded on node A. The simulator sends
    // no signal: its record is read in a short loop with a deadline.
    let wanted = [
        (
            "articles-of-association",
            sm3.clone(),
            articles.len() as u64,
        ),
        ("food-safety-rules", sm3_hex(&rules), rules.len() as u64),
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let received: Vec<(String, String, u64)> = env
            .departments
            .market_regulation
            .stats()
            .materials
            .into_iter()
            .filter_map(|m| Some((m.code, m.sm3?, m.size?)))
            .collect();
        if wanted.iter().all(|(code, sm3, size)| {
            received
                .iter()
                .any(|r| (&r.0, &r.1, r.2) == (&code.to_string(), sm3, *size))
        }) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "market regulation did not receive both files: {received:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.shutdown().await;
}
