//! 公安: small UTF-8 XML documents over HTTPS with a client certificate (PROTOCOLS.md, "Public
//! security"). The TLS side lives in [`crate::tls`]; by the time a request gets here the
//! caller has proved it holds a certificate from the simulator's CA.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;

use crate::common::{self, Answer, Profile, Sim};
use crate::ids;
use crate::xml::{self, Element, esc};

const CONTENT_TYPE: &str = "application/xml; charset=UTF-8";

/// Seeded residents: ID number → name.
const RESIDENTS: &[(&str, &str)] = &[
    ("11010519491231002X", "张三"),
    ("34052419800101001X", "李四"),
    ("360426199101010071", "王五"),
];

pub(crate) fn router(sim: Arc<Sim>) -> Router {
    let routes = Router::new()
        .route("/gaxt/sfhc", post(sfhc))
        .route("/gaxt/kzba", post(kzba))
        .with_state(sim.clone());
    let profile = Profile {
        operation: |req| {
            let path = req.uri().path();
            path.strip_prefix("/gaxt/").unwrap_or(path).to_owned()
        },
        content_type: CONTENT_TYPE,
    };
    common::finish(routes, sim, profile)
}

fn answer(inner: &str) -> Answer {
    let xml = format!(r#"<?xml version="1.0" encoding="UTF-8"?><response>{inner}</response>"#);
    Answer {
        status: StatusCode::OK,
        content_type: CONTENT_TYPE,
        body: Bytes::from(xml),
    }
}

/// Errors are HTTP 200 with a non-`00` code, as the real system answers.
fn error(sim: &Sim, code: &str, message: &str, reason: &str) -> Answer {
    sim.reject(reason);
    answer(&format!(
        "<code>{code}</code><message>{}</message>",
        esc(message)
    ))
}

fn invalid(sim: &Sim, detail: &str) -> Answer {
    error(sim, "10", &format!("参数错误：{detail}"), "invalid_request")
}

/// Parses `<request>…</request>` after checking the media type and the encoding.
fn parse_request(headers: &HeaderMap, body: &[u8]) -> Result<Element, String> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !(ct.starts_with("application/xml") || ct.starts_with("text/xml")) {
        return Err("Content-Type须为application/xml".into());
    }
    let text = std::str::from_utf8(body).map_err(|_| "请求须为UTF-8编码".to_owned())?;
    let root = xml::parse(text)?;
    if root.name != "request" || root.namespace.is_some() {
        return Err("根元素须为request".into());
    }
    Ok(root)
}

fn fields<'a, const N: usize>(req: &'a Element, names: [&str; N]) -> Result<[&'a str; N], String> {
    let mut out = [""; N];
    for (slot, name) in out.iter_mut().zip(names) {
        *slot = req.field(name).ok_or_else(|| format!("缺少{name}"))?;
    }
    Ok(out)
}

async fn sfhc(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Answer {
    let req = match parse_request(&headers, &body) {
        Ok(r) => r,
        Err(e) => return invalid(&sim, &e),
    };
    let [_, xm, gmsfhm] = match fields(&req, ["requestId", "xm", "gmsfhm"]) {
        Ok(f) => f,
        Err(e) => return invalid(&sim, &e),
    };
    if !ids::resident_id_valid(gmsfhm) {
        return invalid(&sim, "公民身份号码校验失败");
    }
    let id = gmsfhm.to_ascii_uppercase();
    let result = match RESIDENTS.iter().find(|(n, _)| *n == id) {
        Some((_, name)) if *name == xm => "1",
        Some(_) => "2",
        None => "3",
    };
    tracing::info!(gmsfhm = ids::mask(&id), result, "identity check");
    answer(&format!(
        "<code>00</code><message>成功</message><result>{result}</result>"
    ))
}

async fn kzba(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Answer {
    let req = match parse_request(&headers, &body) {
        Ok(r) => r,
        Err(e) => return invalid(&sim, &e),
    };
    let Some(request_id) = req.field("requestId") else {
        return invalid(&sim, "缺少requestId");
    };
    sim.submit(request_id, || {
        let [tyshxydm, _, _, fddbrsfzh, yzlx] =
            fields(&req, ["tyshxydm", "qymc", "fddbr", "fddbrsfzh", "yzlx"])
                .map_err(|e| invalid(&sim, &e))?;
        if !ids::uscc_valid(tyshxydm) {
            return Err(error(
                &sim,
                "20",
                "统一社会信用代码校验失败",
                "invalid_uscc",
            ));
        }
        if !ids::resident_id_valid(fddbrsfzh) {
            return Err(invalid(&sim, "法定代表人身份证号校验失败"));
        }
        // Seal kinds are a comma list; offices write both ASCII and full-width commas.
        if yzlx.split([',', '，']).any(|k| k.trim().is_empty()) {
            return Err(invalid(&sim, "印章类型不能为空"));
        }
        let babh = sim.next_number("GA");
        tracing::info!(babh, tyshxydm, request_id, "seal filing accepted");
        Ok(answer(&format!(
            "<code>00</code><message>成功</message><babh>{babh}</babh>"
        )))
    })
}
