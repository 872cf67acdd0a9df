//! 市场监管: JSON REST behind OAuth2 client credentials; licence applications are decided later
//! and announced by a signed callback, food business permits are decided later and polled
//! (PROTOCOLS.md, "Market regulation").
//!
//! An application's materials are uploaded first, in chunks, behind the same token
//! ([`files`]), and the application names them by file id; a 免提交 licence it names by its
//! GB/T 36904 identifier, which the department verifies with the gateway ([`crate::sharing`])
//! before it takes the application.
//!
//! A licence application whose 经营范围 sums up with 等 is returned (RETURNED, announced by
//! callback like a decision) for a supplement; supplements and withdrawals ([`lifecycle`]).
//!
//! # Layout
//! - this file: tokens, the routes, applications and their decisions.
//! - [`lifecycle`]: returns, 补正 and 撤回 of applications.
//! - [`files`]: uploads in chunks, checked, kept once, reassembled and verified.

mod files;
mod lifecycle;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Form, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

use crate::common::{self, Answer, Profile, ReceivedMaterial, Sim};
use crate::ids;
use crate::sharing::{self, Verifier};

const CLIENT_ID: &str = "gw-demo";
const CLIENT_SECRET: &str = "mr-demo-secret";
const CALLBACK_SECRET: &[u8] = b"mr-callback-secret";
/// Region part of newly issued credit codes: 9 (market regulation), 1 (enterprise), 350100 (福州).
const USCC_PREFIX: &str = "91350100";

#[derive(Clone)]
struct Enterprise {
    name: String,
    address: String,
    legal_representative: String,
    registered_capital: Value,
    /// 经营范围.
    business_scope: String,
}

#[derive(Clone)]
struct Licence {
    request_id: String,
    /// Set when decided.
    approved: Option<(String, String)>,
    /// The enterprise applied for, as the application or the last supplement gave it.
    enterprise: Enterprise,
    /// Where its decision is announced.
    callback_url: reqwest::Url,
    /// 退回补正 (RETURNED) while this is set: what the department asks ([`lifecycle`]).
    returned: Option<lifecycle::Returned>,
    /// WITHDRAWN: never decided after.
    withdrawn: bool,
    /// A supplement brought a 住所使用证明 file: a dwelling's consent is on file
    /// ([`lifecycle::asks`]).
    consented_premises: bool,
    /// Materials the application promised (容缺) and not brought yet: a supplement of only
    /// these is taken while it is being decided (补交容缺材料).
    promised: Vec<String>,
}

/// A 食品经营许可 application, decided (APPROVED) `ticket_delay` after acceptance.
#[derive(Clone)]
struct FoodPermit {
    decided_at: Instant,
    /// WITHDRAWN before its decision: never decided after.
    withdrawn: bool,
    /// 食品经营许可证编号, shown once decided.
    permit_no: String,
}

/// Everything the department knows; one lock, because a licence decision touches all of it.
#[derive(Default)]
struct Registry {
    tokens: HashMap<String, Instant>,
    enterprises: HashMap<String, Enterprise>,
    /// Names of registered enterprises and of pending applications.
    names: HashSet<String>,
    licences: HashMap<String, Licence>,
    food_permits: HashMap<String, FoodPermit>,
    files: files::Files,
}

struct MarketRegulation {
    sim: Arc<Sim>,
    ticket_delay: Duration,
    token_ttl: Duration,
    registry: Mutex<Registry>,
    /// For the signed callbacks.
    client: reqwest::Client,
    /// Where licences named in applications are verified.
    licences: Verifier,
}

impl MarketRegulation {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) fn router(
    sim: Arc<Sim>,
    ticket_delay: Duration,
    token_ttl: Duration,
    client: reqwest::Client,
    licences: Verifier,
) -> Router {
    let mut registry = Registry::default();
    let seed = Enterprise {
        name: "福州测试科技有限公司".into(),
        address: "福州市鼓楼区五四路1号".into(),
        legal_representative: "张三".into(),
        registered_capital: json!("100万元"),
        business_scope: "软件开发".into(),
    };
    registry.names.insert(seed.name.clone());
    registry
        .enterprises
        .insert("91350100M000100Y43".into(), seed);
    let state = Arc::new(MarketRegulation {
        sim: sim.clone(),
        ticket_delay,
        token_ttl,
        registry: Mutex::new(registry),
        client,
        licences,
    });
    let api = Router::new()
        .route("/api/enterprises/{uscc}", get(enterprise))
        .route("/api/licences", post(apply))
        .route("/api/licences/{no}", get(licence))
        .route("/api/food-permits", post(apply_food_permit))
        .route("/api/food-permits/{no}", get(food_permit))
        .route(
            "/api/licences/{no}/supplements",
            post(lifecycle::supplement_licence),
        )
        .route(
            "/api/licences/{no}/withdrawal",
            post(lifecycle::withdraw_licence),
        )
        .route(
            "/api/food-permits/{no}/withdrawal",
            post(lifecycle::withdraw_food_permit),
        )
        .route("/v2/files", post(open_file))
        .route(
            "/v2/files/{id}/chunks/{n}",
            put(put_chunk).layer(DefaultBodyLimit::max(files::MAX_CHUNK as usize)),
        )
        .route("/v2/files/{id}/complete", post(complete_file))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ));
    let routes = Router::new()
        .route("/oauth/token", post(token))
        .merge(api)
        .with_state(state);
    let profile = Profile {
        operation: |req| {
            let path = req.uri().path();
            match (req.method().as_str(), path) {
                (_, "/oauth/token") => "token",
                ("POST", "/api/licences") => "licence",
                ("POST", p) if p.ends_with("/supplements") => "licence_supplement",
                ("POST", p) if p.starts_with("/api/licences/") && p.ends_with("/withdrawal") => {
                    "licence_withdrawal"
                }
                ("POST", p) if p.ends_with("/withdrawal") => "food_permit_withdrawal",
                (_, p) if p.starts_with("/api/licences/") => "licence_status",
                ("POST", "/api/food-permits") => "food_permit",
                (_, p) if p.starts_with("/api/food-permits/") => "food_permit_status",
                (_, p) if p.starts_with("/api/enterprises/") => "enterprise",
                ("POST", "/v2/files") => "file_open",
                (_, p) if p.starts_with("/v2/files/") && p.ends_with("/complete") => {
                    "file_complete"
                }
                (_, p) if p.starts_with("/v2/files/") => "file_chunk",
                _ => "unknown",
            }
            .to_owned()
        },
        content_type: "application/json",
    };
    common::finish(routes, sim, profile)
}

fn error(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

async fn token(
    State(mr): State<Arc<MarketRegulation>>,
    form: Result<Form<HashMap<String, String>>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        mr.sim.reject("invalid_request");
        return error(StatusCode::BAD_REQUEST, json!({"error": "invalid_request"}));
    };
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        mr.sim.reject("unsupported_grant_type");
        return error(
            StatusCode::BAD_REQUEST,
            json!({"error": "unsupported_grant_type"}),
        );
    }
    let id = form.get("client_id").map(String::as_str);
    let secret = form.get("client_secret").map(String::as_str);
    if id != Some(CLIENT_ID) || !secret.is_some_and(client_secret_matches) {
        mr.sim.reject("invalid_client");
        return error(StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"}));
    }
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let now = Instant::now();
    let mut reg = mr.registry();
    reg.tokens.retain(|_, exp| *exp > now);
    reg.tokens.insert(token.clone(), now + mr.token_ttl);
    Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": mr.token_ttl.as_secs()}))
        .into_response()
}

/// Whether `presented` is the client secret, in constant time: the MACs of both under one key
/// are compared with `verify_slice`, so the timing shows neither the right secret's contents
/// nor its length.
fn client_secret_matches(presented: &str) -> bool {
    const KEY: &[u8] = b"client secret comparison";
    let expected = sdk::sign::hmac_sha256_hex(KEY, CLIENT_SECRET.as_bytes());
    sdk::sign::verify_hmac_sha256_hex(KEY, presented.as_bytes(), &expected)
}

async fn require_token(
    State(mr): State<Arc<MarketRegulation>>,
    req: Request,
    next: Next,
) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let valid = presented.is_some_and(|t| {
        mr.registry()
            .tokens
            .get(t)
            .is_some_and(|exp| *exp > Instant::now())
    });
    if !valid {
        mr.sim.reject("invalid_token");
        let mut resp = error(StatusCode::UNAUTHORIZED, json!({"error": "invalid_token"}));
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
        return resp;
    }
    next.run(req).await
}

async fn enterprise(State(mr): State<Arc<MarketRegulation>>, Path(uscc): Path<String>) -> Response {
    let reg = mr.registry();
    match reg.enterprises.get(&uscc) {
        Some(e) => Json(json!({
            "uscc": uscc,
            "name": e.name,
            "address": e.address,
            "legalRepresentative": e.legal_representative,
            "registeredCapital": e.registered_capital,
            "status": "存续",
        }))
        .into_response(),
        None => {
            drop(reg);
            mr.sim.reject("not_found");
            error(StatusCode::NOT_FOUND, json!({"error": "not_found"}))
        }
    }
}

fn invalid(mr: &MarketRegulation, message: &str) -> Answer {
    mr.sim.reject("invalid");
    Answer::json(
        StatusCode::UNPROCESSABLE_ENTITY,
        &json!({"error": "invalid", "message": message}),
    )
}

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

async fn apply(State(mr): State<Arc<MarketRegulation>>, body: Bytes) -> Answer {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return invalid(&mr, "请求体不是JSON");
    };
    let Some(request_id) = text(&body, "/requestId") else {
        return invalid(&mr, "缺少requestId");
    };
    let named = match read_materials(&body) {
        Ok(named) => named,
        Err(m) => return invalid(&mr, &m),
    };
    // Checked, its files found, then its licences verified at the gateway (the new enterprise
    // holds none yet: a licence named is checked as named). A repeated requestId gets its
    // first answer without any of it.
    let verify = async {
        let checked = check_application(&body).map_err(|m| invalid(&mr, &m))?;
        let materials = checked_materials(&mr, request_id, &named, &[]).await?;
        Ok((checked, materials))
    };
    let create = |(checked, materials): (Checked, Vec<ReceivedMaterial>)| {
        let mut reg = mr.registry();
        if !reg.names.insert(checked.name.clone()) {
            mr.sim.reject("name_taken");
            return Err(Answer::json(
                StatusCode::CONFLICT,
                &json!({"error": "name_taken", "message": "企业名称已被登记"}),
            ));
        }
        let no = mr.sim.next_number("SCJG");
        reg.licences.insert(
            no.clone(),
            Licence {
                request_id: request_id.to_owned(),
                approved: None,
                enterprise: checked.enterprise,
                callback_url: checked.callback_url,
                returned: None,
                withdrawn: false,
                consented_premises: false,
                promised: promised_codes(&materials),
            },
        );
        drop(reg);
        record(&mr, request_id, materials);
        tracing::info!(
            application_no = no,
            request_id,
            legal_representative_id = ids::mask(&checked.id_number),
            "licence application accepted"
        );
        tokio::spawn(decide(mr.clone(), no.clone()));
        Ok(Answer::json(
            StatusCode::ACCEPTED,
            &json!({"applicationNo": no, "status": "ACCEPTED"}),
        ))
    };
    mr.sim.submit_verified(request_id, verify, create).await
}

struct Checked {
    name: String,
    id_number: String,
    enterprise: Enterprise,
    callback_url: reqwest::Url,
}

fn check_application(body: &Value) -> Result<Checked, String> {
    let field = |p: &str| text(body, p).ok_or_else(|| format!("缺少{}", &p[1..]));
    let name = field("/name")?;
    let address = field("/address")?;
    let rep = field("/legalRepresentative/name")?;
    let id_number = field("/legalRepresentative/idNumber")?;
    field("/businessScope")?;
    if !ids::resident_id_valid(id_number) {
        return Err("法定代表人身份证号码校验失败".into());
    }
    // Registered capital is accepted as a number (yuan) or a string such as "100万元".
    let capital = match body.get("registeredCapital") {
        Some(Value::Number(n)) if n.as_f64().is_some_and(|v| v > 0.0) => Value::Number(n.clone()),
        Some(Value::String(s)) if !s.trim().is_empty() => Value::String(s.trim().to_owned()),
        _ => return Err("registeredCapital须为正数或金额文本".into()),
    };
    let callback_url = reqwest::Url::parse(field("/callbackUrl")?)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or("callbackUrl须为http(s)地址")?;
    Ok(Checked {
        name: name.to_owned(),
        id_number: id_number.to_owned(),
        enterprise: Enterprise {
            name: name.to_owned(),
            address: address.to_owned(),
            legal_representative: rep.to_owned(),
            registered_capital: capital,
            business_scope: field("/businessScope")?.to_owned(),
        },
        callback_url,
    })
}

/// Issues a fresh credit code whose organisation-code part and whole both pass their checks.
fn new_uscc(taken: &HashMap<String, Enterprise>) -> String {
    loop {
        let body: String = (0..8)
            .map(|_| ids::USCC_ALPHABET[rand::random_range(0..ids::USCC_ALPHABET.len())] as char)
            .collect();
        let code = ids::make_uscc(USCC_PREFIX, &body).expect("alphabet characters only");
        if !taken.contains_key(&code) {
            return code;
        }
    }
}

/// After the ticket delay: approve, register the enterprise, then announce it; or return it
/// for a supplement ([`lifecycle::asks`]) and announce that. The result is stored before the
/// callback so that polling sees it even when the callback is lost. A withdrawn application
/// is not decided.
async fn decide(mr: Arc<MarketRegulation>, no: String) {
    tokio::time::sleep(mr.ticket_delay).await;
    let (body, callback_url) = {
        let mut reg = mr.registry();
        let Some(licence) = reg.licences.get(&no).cloned() else {
            return;
        };
        if licence.withdrawn || licence.approved.is_some() || licence.returned.is_some() {
            return;
        }
        if let Some(returned) = lifecycle::asks(&licence.enterprise, licence.consented_premises) {
            let body = lifecycle::returned_document(&no, &licence.request_id, &returned);
            reg.licences.get_mut(&no).expect("read above").returned = Some(returned);
            tracing::info!(
                application_no = no,
                "licence application returned for a supplement"
            );
            (body, licence.callback_url)
        } else {
            let uscc = new_uscc(&reg.enterprises);
            let licence_no = format!("350100{:09}", rand::random_range(0..1_000_000_000u32));
            reg.enterprises.insert(uscc.clone(), licence.enterprise);
            reg.licences.get_mut(&no).expect("read above").approved =
                Some((uscc.clone(), licence_no.clone()));
            tracing::info!(application_no = no, uscc, "licence approved");
            let body = json!({
                "applicationNo": no,
                "requestId": licence.request_id,
                "status": "APPROVED",
                "uscc": uscc,
                "licenceNo": licence_no,
            });
            (body, licence.callback_url)
        }
    };
    let body = body.to_string();
    let mut mac =
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(CALLBACK_SECRET).expect("any key length");
    mac.update(body.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    let sent = mr
        .client
        .post(callback_url)
        .header(header::CONTENT_TYPE, "application/json")
        .header("X-Signature", signature)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => {
            tracing::info!(application_no = no, "callback delivered")
        }
        Ok(r) => {
            tracing::warn!(application_no = no, status = %r.status(), "callback refused; result stays pollable")
        }
        Err(e) => {
            tracing::warn!(application_no = no, error = %e, "callback failed; result stays pollable")
        }
    }
}

async fn licence(State(mr): State<Arc<MarketRegulation>>, Path(no): Path<String>) -> Response {
    let found = mr.registry().licences.get(&no).cloned();
    let Some(l) = found else {
        mr.sim.reject("not_found");
        return error(StatusCode::NOT_FOUND, json!({"error": "not_found"}));
    };
    Json(lifecycle::licence_document(&no, &l)).into_response()
}

async fn apply_food_permit(State(mr): State<Arc<MarketRegulation>>, body: Bytes) -> Answer {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return invalid(&mr, "请求体不是JSON");
    };
    let Some(request_id) = text(&body, "/requestId") else {
        return invalid(&mr, "缺少requestId");
    };
    let named = match read_materials(&body) {
        Ok(named) => named,
        Err(m) => return invalid(&mr, &m),
    };
    // Checked, its files found, then its licences verified at the gateway: a licence named
    // must be the applicant's own, held by the enterprise applying.
    let verify = async {
        let id_number = check_food_permit(&body).map_err(|m| invalid(&mr, &m))?;
        let uscc = text(&body, "/uscc").unwrap_or_default();
        let materials = checked_materials(&mr, request_id, &named, &[uscc]).await?;
        Ok((id_number, materials))
    };
    let create = |(id_number, materials)| {
        let mut reg = mr.registry();
        let no = mr.sim.next_number("SPJY");
        let permit = FoodPermit {
            decided_at: Instant::now() + mr.ticket_delay,
            withdrawn: false,
            permit_no: new_permit_no(),
        };
        reg.food_permits.insert(no.clone(), permit);
        drop(reg);
        record(&mr, request_id, materials);
        tracing::info!(
            application_no = no,
            request_id,
            legal_representative_id = ids::mask(id_number),
            "food permit application accepted"
        );
        Ok(Answer::json(
            StatusCode::ACCEPTED,
            &json!({"applicationNo": no, "status": "ACCEPTED"}),
        ))
    };
    mr.sim.submit_verified(request_id, verify, create).await
}

/// Every field of a food permit application; the legal representative's ID number when good.
fn check_food_permit(body: &Value) -> Result<&str, String> {
    let field = |p: &str| text(body, p).ok_or_else(|| format!("缺少{}", &p[1..]));
    let uscc = field("/uscc")?;
    field("/name")?;
    field("/address")?;
    field("/legalRepresentative/name")?;
    let id_number = field("/legalRepresentative/idNumber")?;
    if !ids::uscc_valid(uscc) {
        return Err("统一社会信用代码校验失败".into());
    }
    if !ids::resident_id_valid(id_number) {
        return Err("法定代表人身份证号码校验失败".into());
    }
    let items = body
        .get("businessItems")
        .and_then(Value::as_array)
        .ok_or("businessItems须为经营项目数组")?;
    if items.is_empty() {
        return Err("businessItems不能为空".into());
    }
    if !items
        .iter()
        .all(|i| i.as_str().is_some_and(|s| !s.trim().is_empty()))
    {
        return Err("businessItems须为非空文本".into());
    }
    match body.get("premisesArea").and_then(Value::as_f64) {
        Some(a) if a > 0.0 => Ok(id_number),
        _ => Err("premisesArea须为正数（平方米）".into()),
    }
}

/// 食品经营许可证编号: `JY`, main-body type 1, region 350102 (福州鼓楼), a 6-digit sequence and
/// a check digit (digit sum mod 10): `JY1` and 13 digits.
fn new_permit_no() -> String {
    let body = format!("1350102{:06}", rand::random_range(0..1_000_000u32));
    let check = body.bytes().map(|b| u32::from(b - b'0')).sum::<u32>() % 10;
    format!("JY{body}{check}")
}

async fn food_permit(State(mr): State<Arc<MarketRegulation>>, Path(no): Path<String>) -> Response {
    let found = mr.registry().food_permits.get(&no).cloned();
    let Some(p) = found else {
        mr.sim.reject("not_found");
        return error(StatusCode::NOT_FOUND, json!({"error": "not_found"}));
    };
    if p.withdrawn {
        Json(json!({"applicationNo": no, "status": "WITHDRAWN"}))
    } else if Instant::now() >= p.decided_at {
        Json(json!({"applicationNo": no, "status": "APPROVED", "permitNo": p.permit_no}))
    } else {
        Json(json!({"applicationNo": no, "status": "ACCEPTED"}))
    }
    .into_response()
}

// ---- materials: uploads in chunks, and the materials an application names ----

fn refused(mr: &MarketRegulation, refusal: files::Refused) -> Response {
    mr.sim.reject(refusal.error);
    (refusal.status, Json(refusal.body())).into_response()
}

/// `POST /v2/files`: open an upload (201), or answer where this application's file stands
/// (200).
async fn open_file(State(mr): State<Arc<MarketRegulation>>, body: Bytes) -> Response {
    let declared = serde_json::from_slice::<Value>(&body)
        .map_err(|_| "请求体不是JSON".to_string())
        .and_then(|body| files::Declared::read(&body));
    let declared = match declared {
        Ok(d) => d,
        Err(m) => return invalid(&mr, &m).into_response(),
    };
    let (new, answer) = mr
        .registry()
        .files
        .open(declared, || mr.sim.next_number("WJ"));
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (status, Json(answer)).into_response()
}

/// `PUT /v2/files/{id}/chunks/{n}`: one chunk, with `X-Chunk-SM3`.
async fn put_chunk(
    State(mr): State<Arc<MarketRegulation>>,
    Path((id, n)): Path<(String, u64)>,
    headers: HeaderMap,
    mut bytes: Bytes,
) -> Response {
    if mr.sim.faults().corrupt_materials && !bytes.is_empty() {
        let mut damaged = bytes.to_vec();
        damaged[0] ^= 1;
        bytes = Bytes::from(damaged);
    }
    // Hashed outside the lock: other requests do not wait on it.
    let actual = sdk::sign::sm3_hex(&bytes);
    let claimed = headers.get("x-chunk-sm3").and_then(|v| v.to_str().ok());
    let taken = mr.registry().files.chunk(&id, n, claimed, &actual, bytes);
    match taken {
        Ok(answer) => Json(answer).into_response(),
        Err(refusal) => refused(&mr, refusal),
    }
}

/// `POST /v2/files/{id}/complete` `{"sm3", "size"}`: reassemble and verify.
async fn complete_file(
    State(mr): State<Arc<MarketRegulation>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let claimed = serde_json::from_slice::<Value>(&body).ok().and_then(|b| {
        let sm3 = b.get("sm3")?.as_str()?.to_owned();
        Some((sm3, b.get("size")?.as_u64()?))
    });
    let Some((sm3, size)) = claimed else {
        return invalid(&mr, "须有sm3与size").into_response();
    };
    let chunks = mr.registry().files.to_reassemble(&id);
    let chunks = match chunks {
        Ok(Ok(chunks)) => chunks,
        Ok(Err(done)) => return Json(done).into_response(),
        Err(refusal) => return refused(&mr, refusal),
    };
    // Reassembled and hashed outside the lock.
    let whole = files::digest(&chunks);
    drop(chunks);
    let completed = mr.registry().files.complete(&id, whole, (&sm3, size));
    match completed {
        Ok(answer) => {
            tracing::info!(file_id = id, size, "file reassembled and verified");
            Json(answer).into_response()
        }
        Err(refusal) => refused(&mr, refusal),
    }
}

/// How an application provides one material.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Provided {
    /// A complete upload.
    File(String),
    /// A licence, to verify with the gateway.
    Licence(sharing::Claimed),
    /// 容缺受理: later.
    Promised,
}

/// The codes of the materials an application promised for later (容缺).
fn promised_codes(materials: &[ReceivedMaterial]) -> Vec<String> {
    materials
        .iter()
        .filter(|m| m.kind == "promised")
        .map(|m| m.code.clone())
        .collect()
}

/// One material an application names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Named {
    code: String,
    name: String,
    provided: Provided,
}

/// An application's `materials`: `[{"code", "name", "fileId"}`, or `"licence": {"id", "kind",
/// "number"}`, or `"promised": {"due"}`]`; none when absent.
fn read_materials(body: &Value) -> Result<Vec<Named>, String> {
    let Some(list) = body.get("materials") else {
        return Ok(Vec::new());
    };
    let list = list.as_array().ok_or("materials须为数组")?;
    let mut named: Vec<Named> = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let field = |p: &str| text(m, p).ok_or_else(|| format!("materials[{i}]缺少{}", &p[1..]));
        let (code, name) = (field("/code")?, field("/name")?);
        if named.iter().any(|n| n.code == code) {
            return Err(format!("材料{code}重复"));
        }
        let provided = match (m.get("fileId"), m.get("licence"), m.get("promised")) {
            (Some(_), None, None) => Provided::File(field("/fileId")?.to_owned()),
            (None, Some(_), None) => Provided::Licence(sharing::Claimed {
                id: field("/licence/id")?.to_owned(),
                kind: field("/licence/kind")?.to_owned(),
                number: field("/licence/number")?.to_owned(),
            }),
            (None, None, Some(_)) => Provided::Promised,
            _ => {
                return Err(format!("材料{name}须有且只有fileId、licence、promised之一"));
            }
        };
        named.push(Named {
            code: code.to_owned(),
            name: name.to_owned(),
            provided,
        });
    }
    Ok(named)
}

/// Verify each licence an application names with the gateway, held by one of `holders` when
/// the application names any: what was verified, or the department's refusal (409
/// `licence_invalid`, or 503 `licence_service_unavailable` when the gateway cannot be asked).
async fn verify_licences(
    mr: &MarketRegulation,
    named: &[Named],
    holders: &[&str],
) -> Result<Vec<ReceivedMaterial>, Answer> {
    let mut verified = Vec::new();
    for material in named {
        let Provided::Licence(claimed) = &material.provided else {
            continue;
        };
        match mr.licences.verify(claimed, holders).await {
            Ok(()) => verified.push(ReceivedMaterial {
                code: material.code.clone(),
                kind: "licence".into(),
                licence_id: Some(claimed.id.clone()),
                verified_by: Some("gateway".into()),
                ..ReceivedMaterial::default()
            }),
            Err(sharing::Failure::Refused(why)) => {
                mr.sim.reject("licence_invalid");
                return Err(Answer::json(
                    StatusCode::CONFLICT,
                    &json!({"error": "licence_invalid", "message": why}),
                ));
            }
            Err(sharing::Failure::Unavailable(why)) => {
                mr.sim.reject("licence_service_unavailable");
                return Err(Answer::json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &json!({"error": "licence_service_unavailable", "message": why}),
                ));
            }
        }
    }
    Ok(verified)
}

/// The materials an application names, all checked before it is taken: each file a complete
/// upload of this application under its code (as the department reassembled it), each licence
/// verified at the gateway as held by one of `holders` (asked last: an application refused for
/// its files costs the gateway no read), each promise as promised.
async fn checked_materials(
    mr: &MarketRegulation,
    request_id: &str,
    named: &[Named],
    holders: &[&str],
) -> Result<Vec<ReceivedMaterial>, Answer> {
    let mut taken = {
        let reg = mr.registry();
        files_and_promises(mr, &reg.files, request_id, named)?
    };
    taken.extend(verify_licences(mr, named, holders).await?);
    Ok(taken)
}

/// The files and promises an application names, each file a complete upload of this
/// application under its code, else 400 `file_invalid`.
fn files_and_promises(
    mr: &MarketRegulation,
    uploads: &files::Files,
    request_id: &str,
    named: &[Named],
) -> Result<Vec<ReceivedMaterial>, Answer> {
    let mut taken = Vec::new();
    for material in named {
        taken.push(match &material.provided {
            Provided::File(id) => {
                let file = uploads
                    .completed(id)
                    .filter(|f| f.request_id == request_id && f.code == material.code)
                    .ok_or_else(|| {
                        mr.sim.reject("file_invalid");
                        Answer::json(
                            StatusCode::BAD_REQUEST,
                            &json!({"error": "file_invalid", "message": format!(
                                "材料{}的文件{id}未上传完成或不属于本申请", material.name)}),
                        )
                    })?;
                ReceivedMaterial {
                    code: material.code.clone(),
                    kind: "file".into(),
                    sm3: Some(file.sm3),
                    size: Some(file.size),
                    ..ReceivedMaterial::default()
                }
            }
            Provided::Licence(_) => continue,
            Provided::Promised => ReceivedMaterial {
                code: material.code.clone(),
                kind: "promised".into(),
                ..ReceivedMaterial::default()
            },
        });
    }
    Ok(taken)
}

fn record(mr: &MarketRegulation, request_id: &str, materials: Vec<ReceivedMaterial>) {
    for mut material in materials {
        material.request_id = request_id.to_owned();
        mr.sim.record_material(material);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applications_name_files_licences_and_promises() {
        let body = json!({"materials": [
            {"code": "a", "name": "公司章程", "fileId": "WJ1"},
            {"code": "b", "name": "营业执照", "licence": {"id": "L1", "kind": "business_licence", "number": "N1"}},
            {"code": "c", "name": "住所使用证明", "promised": {"due": null}},
        ]});
        let named = read_materials(&body).unwrap();
        assert_eq!(named[0].provided, Provided::File("WJ1".into()));
        assert!(matches!(&named[1].provided, Provided::Licence(l) if l.number == "N1"));
        assert_eq!(named[2].provided, Provided::Promised);
        assert_eq!(read_materials(&json!({})).unwrap(), vec![]);
        for bad in [
            json!({"materials": {}}),
            json!({"materials": [{"code": "a", "name": "甲"}]}),
            json!({"materials": [{"code": "a", "name": "甲", "fileId": "F", "promised": {}}]}),
            json!({"materials": [{"code": "a", "name": "甲", "licence": {"id": "L"}}]}),
            json!({"materials": [{"code": "a", "name": "甲", "fileId": "F"}, {"code": "a", "name": "甲", "fileId": "G"}]}),
        ] {
            assert!(read_materials(&bad).is_err(), "{bad}");
        }
    }

    fn application() -> Value {
        json!({"requestId": "r1", "uscc": "91350100M000100Y43", "name": "福州测试科技有限公司",
            "address": "福州市鼓楼区五四路1号",
            "legalRepresentative": {"name": "张三", "idNumber": "11010519491231002X"},
            "businessItems": ["热食类食品制售"], "premisesArea": 120.5})
    }

    #[test]
    fn food_permit_applications_are_checked_field_by_field() {
        assert_eq!(check_food_permit(&application()), Ok("11010519491231002X"));
        let with = |pointer: &str, v: Value| {
            let mut a = application();
            *a.pointer_mut(pointer).unwrap() = v;
            check_food_permit(&a).unwrap_err()
        };
        assert_eq!(
            with("/uscc", json!("91350100M0001TGQXM")),
            "统一社会信用代码校验失败"
        );
        assert_eq!(with("/businessItems", json!([])), "businessItems不能为空");
        assert!(with("/businessItems", json!([""])).contains("businessItems"));
        assert!(with("/premisesArea", json!(0)).contains("premisesArea"));
        assert!(with("/premisesArea", json!("120")).contains("premisesArea"));
        assert!(
            with("/legalRepresentative/idNumber", json!("110105194912310021")).contains("身份证")
        );
        assert_eq!(with("/name", json!(" ")), "缺少name");
    }

    #[test]
    fn permit_numbers_are_jy1_and_13_digits() {
        for _ in 0..20 {
            let no = new_permit_no();
            assert!(no.starts_with("JY1"), "{no}");
            assert_eq!(no.len(), 16, "{no}");
            assert!(no[2..].bytes().all(|b| b.is_ascii_digit()), "{no}");
        }
    }
}
