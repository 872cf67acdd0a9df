//! 全国好差评系统: the national service-evaluation system provinces report evaluations to, as
//! the gateway's `national-evaluation` adapter reaches it.
//!
//! Its protocol, strict like the real one:
//! - `POST /evaluation/api/v2/report`, a JSON body in UTF-8;
//! - headers `X-App-Key` (the gateway's app key, [`APP_KEY`]), `X-Timestamp` (Unix ms, within
//!   five minutes of now), `X-Nonce` (8-64 characters), and `X-Sign`: lowercase hex
//!   HMAC-SM3 with the app secret ([`APP_SECRET`]) over
//!   `POST\n<path>\n<timestamp>\n<nonce>\n<lowercase hex SM3 of the body>`;
//! - the body: `evaluateId` (the provincial system's own id for the evaluation: the
//!   idempotency key), `projNo` (办件编号), `serviceCode`, `serviceVersion`,
//!   `serviceDepartmentCode`, `evaluateChannel` (`1` 窗口即时评, `2` 扫码评, `3` 网上评,
//!   `4` 评价卡), `satisfaction` (`1`-`5` as GB/T 39046), `evaluateTime` (`YYYYMMDDhhmmss`,
//!   Beijing time), `anonymous` (`0`/`1`), and for a named one `applicantCardNumber` masked
//!   (an anonymous one must send none);
//! - every answer is HTTP 200 with `{"code", "msg", "data"}`: `200` with `data.reportNo`;
//!   `E1001` bad signature, `E1002` stale timestamp, `E1003` unknown app key; `E2001` a
//!   missing field, `E2002` channel, `E2003` satisfaction, `E2004` time, `E2005` an identity
//!   number not masked or one on an anonymous evaluation, `E2006` not JSON.
//! - A repeated `evaluateId` answers the first `reportNo` and stores nothing: a report is
//!   stored once ([`National::reports`]).
//!
//! [`National::fail_next`] makes the next N reports answer HTTP 503 before they are read (a
//! system having a bad day), [`National::set_down`] every one.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// The gateway's app key at the national system (demo value).
pub const APP_KEY: &str = "gw-demo";
/// Its app secret (demo value, published here: a real one is the province's secret).
pub const APP_SECRET: &str = "national-demo-secret";
/// Where reports go.
pub const REPORT_PATH: &str = "/evaluation/api/v2/report";

#[derive(Debug, Default)]
struct Reports {
    /// reportNo by evaluateId.
    numbers: HashMap<String, String>,
    /// The reports stored, in order.
    stored: Vec<Value>,
}

#[derive(Debug, Default)]
struct Sim {
    reports: Mutex<Reports>,
    fail_next: AtomicUsize,
    down: AtomicBool,
    received: AtomicUsize,
    refused: Mutex<Vec<String>>,
    seq: AtomicU64,
}

/// The running national system.
#[derive(Debug, Clone)]
pub struct National {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    sim: Arc<Sim>,
}

impl National {
    /// Answer the next `n` reports with HTTP 503.
    pub fn fail_next(&self, n: usize) {
        self.sim.fail_next.store(n, Ordering::SeqCst);
    }

    /// Answer every report with HTTP 503 (true) or serve again (false).
    pub fn set_down(&self, down: bool) {
        self.sim.down.store(down, Ordering::SeqCst);
    }

    /// The reports stored, each once, in the order first received.
    pub fn reports(&self) -> Vec<Value> {
        lock(&self.sim.reports).stored.clone()
    }

    /// Every request received (failed, refused and repeated ones too).
    pub fn received(&self) -> usize {
        self.sim.received.load(Ordering::SeqCst)
    }

    /// The codes of the refusals answered, in order.
    pub fn refused(&self) -> Vec<String> {
        lock(&self.sim.refused).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Start the national system on 127.0.0.1:`port` (0: a free one).
pub async fn start(port: u16) -> anyhow::Result<National> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let sim = Arc::new(Sim {
        seq: AtomicU64::new(rand::random_range(0..1_000_000)),
        ..Sim::default()
    });
    let router = Router::new()
        .route(REPORT_PATH, post(report))
        .with_state(sim.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "national evaluation system stopped");
        }
    });
    Ok(National {
        base_url: format!("http://{addr}"),
        sim,
    })
}

fn answer(code: &str, msg: &str, data: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json; charset=UTF-8")],
        json!({"code": code, "msg": msg, "data": data}).to_string(),
    )
        .into_response()
}

fn refuse(sim: &Sim, code: &str, msg: &str) -> Response {
    lock(&sim.refused).push(code.to_string());
    answer(code, msg, Value::Null)
}

/// Whether an identity number is masked (some characters starred).
fn masked(number: &str) -> bool {
    number.contains('*')
}

async fn report(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    sim.received.fetch_add(1, Ordering::SeqCst);
    if sim.down.load(Ordering::SeqCst)
        || sim
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    if header("x-app-key") != APP_KEY {
        return refuse(&sim, "E1003", "应用标识无效");
    }
    let (timestamp, nonce) = (header("x-timestamp"), header("x-nonce"));
    let fresh = timestamp.parse::<i64>().is_ok_and(|t| {
        let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
        (now - t).abs() <= 300_000
    });
    if !fresh {
        return refuse(&sim, "E1002", "时间戳无效或已过期");
    }
    let signed = format!(
        "POST\n{REPORT_PATH}\n{timestamp}\n{nonce}\n{}",
        sdk::sign::sm3_hex(&body)
    );
    if !(8..=64).contains(&nonce.len())
        || !sdk::sign::verify_hmac_sm3_hex(
            APP_SECRET.as_bytes(),
            signed.as_bytes(),
            &header("x-sign"),
        )
    {
        return refuse(&sim, "E1001", "签名校验失败");
    }
    let Ok(report) = serde_json::from_slice::<Value>(&body) else {
        return refuse(&sim, "E2006", "报文不是JSON");
    };
    let text = |field: &str| {
        report
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    for field in [
        "evaluateId",
        "projNo",
        "serviceCode",
        "serviceVersion",
        "serviceDepartmentCode",
        "evaluateChannel",
        "satisfaction",
        "evaluateTime",
        "anonymous",
    ] {
        if text(field).is_empty() {
            return refuse(&sim, "E2001", &format!("缺少必填字段 {field}"));
        }
    }
    if !matches!(text("evaluateChannel"), "1" | "2" | "3" | "4") {
        return refuse(&sim, "E2002", "评价渠道代码无效");
    }
    if !matches!(text("satisfaction"), "1" | "2" | "3" | "4" | "5") {
        return refuse(&sim, "E2003", "满意度代码无效");
    }
    let time = text("evaluateTime");
    if time.len() != 14
        || !time.bytes().all(|b| b.is_ascii_digit())
        || time::PrimitiveDateTime::parse(
            time,
            time::macros::format_description!("[year][month][day][hour][minute][second]"),
        )
        .is_err()
    {
        return refuse(&sim, "E2004", "评价时间格式应为 yyyyMMddHHmmss");
    }
    let card = report.get("applicantCardNumber").and_then(Value::as_str);
    match (text("anonymous"), card) {
        ("1", Some(_)) => return refuse(&sim, "E2005", "匿名评价不得上传证件号码"),
        (_, Some(card)) if !masked(card) => {
            return refuse(&sim, "E2005", "证件号码须脱敏后上传");
        }
        ("0" | "1", _) => {}
        _ => return refuse(&sim, "E2001", "anonymous 应为 0 或 1"),
    }
    let id = text("evaluateId").to_string();
    let mut reports = lock(&sim.reports);
    let number = match reports.numbers.get(&id) {
        Some(first) => first.clone(),
        None => {
            let n = sim.seq.fetch_add(1, Ordering::Relaxed) % 100_000_000;
            let number = format!("HCP{n:08}");
            reports.numbers.insert(id, number.clone());
            reports.stored.push(report);
            number
        }
    };
    answer("200", "success", json!({"reportNo": number}))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report signed as the adapter signs it (or with another secret).
    async fn send(national: &National, report: &Value, secret: &str) -> (u16, Value) {
        let body = report.to_string();
        let timestamp = (time::OffsetDateTime::now_utc().unix_timestamp() * 1000).to_string();
        let nonce = "n0nce-12345";
        let signed = format!(
            "POST\n{REPORT_PATH}\n{timestamp}\n{nonce}\n{}",
            sdk::sign::sm3_hex(body.as_bytes())
        );
        // reqwest without a built-in provider, as everywhere here.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let answer = reqwest::Client::new()
            .post(format!("{}{REPORT_PATH}", national.base_url))
            .header("x-app-key", APP_KEY)
            .header("x-timestamp", timestamp)
            .header("x-nonce", nonce)
            .header(
                "x-sign",
                sdk::sign::hmac_sm3_hex(secret.as_bytes(), signed.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    fn report() -> Value {
        json!({
            "evaluateId": "e-1", "projNo": "c-1", "serviceCode": "tax.registration",
            "serviceVersion": "1", "serviceDepartmentCode": "tax", "evaluateChannel": "3",
            "satisfaction": "2", "evaluateTime": "20261203211648", "anonymous": "0",
            "applicantCardNumber": "1101**********002X"
        })
    }

    #[tokio::test]
    async fn reports_are_stored_once_and_anything_else_is_refused_with_its_code() {
        let national = start(0).await.unwrap();
        let (status, first) = send(&national, &report(), APP_SECRET).await;
        assert_eq!(
            (status, first["code"].as_str()),
            (200, Some("200")),
            "{first}"
        );
        let (_, again) = send(&national, &report(), APP_SECRET).await;
        assert_eq!(again["data"]["reportNo"], first["data"]["reportNo"]);
        assert_eq!(national.reports().len(), 1, "a repeat is stored once");

        let (_, forged) = send(&national, &report(), "another-secret").await;
        assert_eq!(forged["code"], "E1001");
        let mut unmasked = report();
        unmasked["evaluateId"] = json!("e-2");
        unmasked["applicantCardNumber"] = json!("11010519491231002X");
        assert_eq!(
            send(&national, &unmasked, APP_SECRET).await.1["code"],
            "E2005"
        );
        let mut channel = report();
        channel["evaluateChannel"] = json!("online");
        assert_eq!(
            send(&national, &channel, APP_SECRET).await.1["code"],
            "E2002"
        );
        let mut time = report();
        time["evaluateTime"] = json!("2026-12-03T21:16:48+08:00");
        assert_eq!(send(&national, &time, APP_SECRET).await.1["code"], "E2004");
        assert_eq!(national.reports().len(), 1, "nothing refused is stored");

        national.fail_next(2);
        assert_eq!(send(&national, &report(), APP_SECRET).await.0, 503);
        assert_eq!(send(&national, &report(), APP_SECRET).await.0, 503);
        assert_eq!(send(&national, &report(), APP_SECRET).await.0, 200);
    }
}
