//! 短信平台: a simulated SMS provider, the gateway's notification channel, with the API of a
//! commercial one (PROTOCOLS.md, "SMS provider"):
//!
//! - `POST /sms/v1/messages`, JSON `{phone_numbers, sign_name, template_code, template_param,
//!   out_id, status_callback}`, authenticated by `X-Sms-Key`, `X-Sms-Timestamp` (Unix seconds,
//!   within 5 minutes) and `X-Sms-Signature` = hex HMAC-SHA256(secret, `<timestamp>\n<body>`).
//! - Checks, each answered HTTP 200 `{code, message}` as such providers do: the sender
//!   signature must be the registered one (`isv.SMS_SIGNATURE_ILLEGAL`), the template
//!   registered (`isv.SMS_TEMPLATE_ILLEGAL`) and given exactly its variables
//!   (`isv.TEMPLATE_PARAMS_ILLEGAL`), the number a mainland mobile one
//!   (`isv.MOBILE_NUMBER_ILLEGAL`); at most `rate_limit` messages per number per
//!   `rate_window` (`isv.BUSINESS_LIMIT_CONTROL`). Bad credentials: HTTP 401.
//! - `out_id` is idempotent: a repeat is answered with the first message's `biz_id` and not
//!   sent again.
//! - A delivery receipt for each message sent, `POST <status_callback>` with `{biz_id, out_id,
//!   phone_number, success, err_code, report_time}` and `X-Sms-Signature` = hex
//!   HMAC-SHA256(callback secret, body), retried while the receiver does not answer 2xx (a few
//!   seconds). A number marked undeliverable gets `success: false`, `UNDELIV`.
//! - Replies (上行短信): when a test asks ([`SmsProvider::reply`]), the applicant's answer to
//!   the latest message sent to a number, `POST` to that message's `status_callback` (where
//!   real providers send replies: the callback configured for the sender) with `{sequence_id,
//!   phone_number, content, sign_name, send_time}`, signed like a receipt. "TD" / "退订" is
//!   how an applicant unsubscribes.
//!
//! Messages are recorded in order ([`SmsProvider::messages`]) with their number in clear:
//! tests compare them with what the gateway shows (masked).

use crate::Department;
use crate::common::{self, Answer, Profile, Sim};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The demo credentials (the gateway's `[departments.sms.settings]` access key and its keys `access-secret` and `callback-secret`).
pub const ACCESS_KEY: &str = "gw-demo";
/// The demo access secret.
pub const ACCESS_SECRET: &str = "sms-demo-secret";
/// The demo secret receipts are signed with.
pub const CALLBACK_SECRET: &str = "sms-callback-secret";
/// The sender signature registered.
pub const SIGN_NAME: &str = "【某某政务服务】";

/// The registered templates: code and variables (the demo config's `[notifications.templates]`).
pub const TEMPLATES: &[(&str, &[&str])] = &[
    ("SMS_100001", &["case", "service"]),
    ("SMS_100002", &["case", "matter", "reason", "due"]),
    ("SMS_100003", &["case", "matter", "licence"]),
    ("SMS_100004", &["case", "matter", "reason"]),
    ("SMS_100005", &["case", "matter"]),
    ("SMS_100006", &["case", "matter", "department", "deadline"]),
    (
        "SMS_100007",
        &["case", "matter", "department", "deadline", "days"],
    ),
    ("SMS_100008", &["case", "matter", "department", "days"]),
];

/// One message the provider sent.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SmsMessage {
    /// The provider's id.
    pub biz_id: String,
    /// The sender's id of it.
    pub out_id: String,
    /// The number, in clear.
    pub phone: String,
    /// The signature it went with.
    pub sign_name: String,
    /// Template code.
    pub template: String,
    /// The variables.
    pub params: BTreeMap<String, String>,
}

#[derive(Debug)]
struct State_ {
    sim: Arc<Sim>,
    messages: Mutex<Vec<SmsMessage>>,
    by_out_id: Mutex<HashMap<String, String>>,
    sent_at: Mutex<HashMap<String, Vec<Instant>>>,
    limit: Mutex<(usize, Duration)>,
    undeliverable: Mutex<HashSet<String>>,
    receipts: Mutex<Vec<(String, bool)>>,
    /// Per number, the callback of the latest message sent to it: where its replies go.
    reply_to: Mutex<HashMap<String, String>>,
    client: reqwest::Client,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The running provider.
#[derive(Debug, Clone)]
pub struct SmsProvider {
    /// Its address, faults and counters (operation `send`).
    pub department: Department,
    state: Arc<State_>,
}

impl SmsProvider {
    /// Every message sent, in order, each once (repeats of an out-id are not messages).
    pub fn messages(&self) -> Vec<SmsMessage> {
        lock(&self.state.messages).clone()
    }

    /// Send requests received (faulted, refused and repeated ones included).
    pub fn send_requests(&self) -> usize {
        self.department.received("send")
    }

    /// At most `max` messages per number per `window` (default 10 per second).
    pub fn set_rate_limit(&self, max: usize, window: Duration) {
        *lock(&self.state.limit) = (max, window);
    }

    /// Messages to `phone` are reported undeliverable.
    pub fn undeliverable(&self, phone: &str) {
        lock(&self.state.undeliverable).insert(phone.to_string());
    }

    /// Receipts the gateway took (answered 2xx): biz id and whether delivered.
    pub fn receipts_taken(&self) -> Vec<(String, bool)> {
        lock(&self.state.receipts).clone()
    }

    /// The applicant with `phone` replies `content` (e.g. "TD", "退订") to the latest message
    /// sent to the number: forwarded once to that message's callback, signed like a receipt.
    /// The receiver's HTTP status, once it answered; an error when no message went to the
    /// number (there is nothing to reply to) or the receiver cannot be reached.
    pub async fn reply(&self, phone: &str, content: &str) -> anyhow::Result<u16> {
        let url = lock(&self.state.reply_to)
            .get(phone)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no message was sent to the number"))?;
        let body = json!({
            "sequence_id": self.state.sim.next_number("MO"),
            "phone_number": phone,
            "content": content,
            "sign_name": SIGN_NAME,
            "send_time": common::beijing_date(common::beijing_now()),
        })
        .to_string();
        let signature = sdk::sign::hmac_sha256_hex(CALLBACK_SECRET.as_bytes(), body.as_bytes());
        let answer = self
            .state
            .client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-sms-signature", signature)
            .body(body)
            .send()
            .await?;
        Ok(answer.status().as_u16())
    }

    /// Same as `POST /_sim/faults`.
    pub fn set_faults(&self, faults: crate::Faults) {
        self.department.set_faults(faults);
    }
}

/// Start the provider on `port` (0: a free one).
pub(crate) async fn start(port: u16) -> anyhow::Result<SmsProvider> {
    let sim = Sim::new("sms");
    let state = Arc::new(State_ {
        sim: sim.clone(),
        messages: Mutex::default(),
        by_out_id: Mutex::default(),
        sent_at: Mutex::default(),
        limit: Mutex::new((10, Duration::from_secs(1))),
        undeliverable: Mutex::default(),
        receipts: Mutex::default(),
        reply_to: Mutex::default(),
        client: crate::tls::callback_client()?,
    });
    let routes = Router::new()
        .route("/sms/v1/messages", post(send))
        .with_state(state.clone());
    let profile = Profile {
        operation: |req| match req.uri().path() {
            "/sms/v1/messages" => "send".into(),
            other => other.to_string(),
        },
        content_type: "application/json",
    };
    let router = common::finish(routes, sim.clone(), profile);
    let department = crate::serve_plain(sim, port, router).await?;
    Ok(SmsProvider { department, state })
}

fn answer(code: &str, message: &str) -> Answer {
    Answer::json(StatusCode::OK, &json!({"code": code, "message": message}))
}

fn is_mobile(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 11
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1])
        && b.iter().all(u8::is_ascii_digit)
}

async fn send(State(state): State<Arc<State_>>, headers: HeaderMap, body: Bytes) -> Answer {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let timestamp: u64 = header("x-sms-timestamp").parse().unwrap_or(0);
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    let mut signed = format!("{timestamp}\n").into_bytes();
    signed.extend_from_slice(&body);
    if header("x-sms-key") != ACCESS_KEY
        || now.abs_diff(timestamp) > 300
        || !sdk::sign::verify_hmac_sha256_hex(
            ACCESS_SECRET.as_bytes(),
            &signed,
            &header("x-sms-signature"),
        )
    {
        state.sim.reject("signature");
        return Answer::json(
            StatusCode::UNAUTHORIZED,
            &json!({"code": "SignatureDoesNotMatch", "message": "签名校验失败"}),
        );
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return answer("isv.INVALID_PARAMETERS", "请求体不是JSON");
    };
    let text = |key: &str| request[key].as_str().unwrap_or_default().to_string();
    let (phone, sign_name, template, out_id) = (
        text("phone_numbers"),
        text("sign_name"),
        text("template_code"),
        text("out_id"),
    );
    if out_id.is_empty() {
        return answer("isv.INVALID_PARAMETERS", "缺少 out_id");
    }
    // A repeated out-id is the same message: its first answer, nothing sent again.
    if let Some(biz_id) = lock(&state.by_out_id).get(&out_id) {
        return Answer::json(
            StatusCode::OK,
            &json!({"code": "OK", "message": "OK", "biz_id": biz_id}),
        );
    }
    if sign_name != SIGN_NAME {
        state.sim.reject("sign_name");
        return answer("isv.SMS_SIGNATURE_ILLEGAL", "短信签名不合法");
    }
    let Some((_, variables)) = TEMPLATES.iter().find(|(code, _)| *code == template) else {
        state.sim.reject("template");
        return answer("isv.SMS_TEMPLATE_ILLEGAL", "短信模板不存在");
    };
    let params: BTreeMap<String, String> = request["template_param"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let expected: Vec<&str> = variables.to_vec();
    let given: Vec<&str> = params.keys().map(String::as_str).collect();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort_unstable();
    if given != expected_sorted {
        state.sim.reject("template_param");
        return answer("isv.TEMPLATE_PARAMS_ILLEGAL", "模板变量不匹配");
    }
    if !is_mobile(&phone) {
        state.sim.reject("phone");
        return answer("isv.MOBILE_NUMBER_ILLEGAL", "手机号码格式错误");
    }
    {
        let (max, window) = *lock(&state.limit);
        let mut sent_at = lock(&state.sent_at);
        let times = sent_at.entry(phone.clone()).or_default();
        times.retain(|t| t.elapsed() < window);
        if times.len() >= max {
            state.sim.reject("rate_limit");
            return answer("isv.BUSINESS_LIMIT_CONTROL", "触发号码流控");
        }
        times.push(Instant::now());
    }
    let biz_id = {
        let mut by_out_id = lock(&state.by_out_id);
        if let Some(biz_id) = by_out_id.get(&out_id) {
            biz_id.clone()
        } else {
            let biz_id = state.sim.next_number("SMS");
            by_out_id.insert(out_id.clone(), biz_id.clone());
            lock(&state.messages).push(SmsMessage {
                biz_id: biz_id.clone(),
                out_id: out_id.clone(),
                phone: phone.clone(),
                sign_name,
                template,
                params,
            });
            let callback = text("status_callback");
            if !callback.is_empty() {
                lock(&state.reply_to).insert(phone.clone(), callback.clone());
                let delivered = !lock(&state.undeliverable).contains(&phone);
                tokio::spawn(report(
                    state.clone(),
                    callback,
                    json!({
                        "biz_id": biz_id, "out_id": out_id, "phone_number": phone,
                        "success": delivered,
                        "err_code": if delivered { "DELIVERED" } else { "UNDELIV" },
                        "report_time": common::beijing_date(common::beijing_now()),
                    }),
                ));
            }
            biz_id
        }
    };
    Answer::json(
        StatusCode::OK,
        &json!({"code": "OK", "message": "OK", "biz_id": biz_id}),
    )
}

/// Deliver a receipt, retried while the receiver does not take it (about 6 s).
async fn report(state: Arc<State_>, url: String, receipt: Value) {
    let body = receipt.to_string();
    let signature = sdk::sign::hmac_sha256_hex(CALLBACK_SECRET.as_bytes(), body.as_bytes());
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..20 {
        let sent = state
            .client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-sms-signature", &signature)
            .body(body.clone())
            .send()
            .await;
        if sent.as_ref().is_ok_and(|r| r.status().is_success()) {
            lock(&state.receipts).push((
                receipt["biz_id"].as_str().unwrap_or_default().to_string(),
                receipt["success"].as_bool().unwrap_or(false),
            ));
            return;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tracing::warn!(%url, "the delivery receipt was not taken");
}
