//! 不动产登记: SOAP 1.1 in GBK on one endpoint, dispatched on the operation element
//! (PROTOCOLS.md, "Real estate"). Anything not GBK is refused, as the real systems do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use encoding_rs::GBK;

use crate::common::{self, Answer, Profile, Sim};
use crate::ids;
use crate::xml::{self, Element, esc};

const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const BDC_NS: &str = "http://bdc.gov.cn/ws";
const CONTENT_TYPE: &str = "text/xml; charset=GBK";

struct Record {
    bdcdyh: &'static str,
    bdcqzh: &'static str,
    qlr: &'static str,
    qlrzjh: &'static str,
    zl: &'static str,
    mj: &'static str,
    yt: &'static str,
    djsj: &'static str,
}

/// The register is static: a transfer does not change the seeded owner, so every test and
/// every demo run can transfer the same flat again.
const REGISTER: &[Record] = &[Record {
    bdcdyh: "351001012010GB01859F00040015",
    bdcqzh: "闽(2019)平潭不动产权第0011364号",
    qlr: "张三",
    qlrzjh: "11010519491231002X",
    zl: "平潭县潭城镇西航路18号1幢401室",
    mj: "89.56",
    yt: "住宅",
    djsj: "2019-06-18",
}];

struct Transfer {
    received_at: Instant,
    /// 退回 at decision time (受让方证件号 fails GB 11643), else 登簿.
    returned: bool,
    new_certificate: String,
}

struct RealEstate {
    sim: Arc<Sim>,
    ticket_delay: Duration,
    transfers: Mutex<HashMap<String, Transfer>>,
}

pub(crate) fn router(sim: Arc<Sim>, ticket_delay: Duration) -> Router {
    let state = Arc::new(RealEstate { sim: sim.clone(), ticket_delay, transfers: Mutex::default() });
    let routes = Router::new().route("/services/BdcService", post(service)).with_state(state);
    let profile = Profile {
        operation: |req| soap_action(req.headers()).unwrap_or("unknown").to_owned(),
        content_type: CONTENT_TYPE,
    };
    common::finish(routes, sim, profile)
}

/// `SOAPAction: "urn:bdc:<operation>"` → `<operation>`.
fn soap_action(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get("SOAPAction")?.to_str().ok()?.trim();
    v.trim_matches('"').strip_prefix("urn:bdc:")
}

/// A SOAP fault, always HTTP 500.
struct Fault {
    server: bool,
    reason: String,
    code: &'static str,
}

fn client_fault(code: &'static str, reason: impl Into<String>) -> Fault {
    Fault { server: false, reason: reason.into(), code }
}

/// Wraps a body fragment in the envelope and encodes it as GBK. Characters GBK cannot hold
/// become numeric character references, which is still valid XML.
fn envelope(status: StatusCode, inner: &str) -> Answer {
    let xml = format!(
        r#"<?xml version="1.0" encoding="GBK"?><soap:Envelope xmlns:soap="{SOAP_NS}" xmlns:bdc="{BDC_NS}"><soap:Body>{inner}</soap:Body></soap:Envelope>"#
    );
    let (bytes, _, _) = GBK.encode(&xml);
    Answer { status, content_type: CONTENT_TYPE, body: Bytes::from(bytes.into_owned()) }
}

impl RealEstate {
    fn fault(&self, f: Fault) -> Answer {
        self.sim.reject(f.code);
        let faultcode = if f.server { "soap:Server" } else { "soap:Client" };
        envelope(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!(
                "<soap:Fault><faultcode>{faultcode}</faultcode><faultstring>{}</faultstring><detail><bdc:errorCode>{}</bdc:errorCode></detail></soap:Fault>",
                esc(&f.reason),
                f.code
            ),
        )
    }
}

async fn service(State(re): State<Arc<RealEstate>>, headers: HeaderMap, body: Bytes) -> Answer {
    let Some(xml) = decode_gbk(&headers, &body) else {
        return re.fault(client_fault("E100", "编码错误：请使用GBK编码"));
    };
    let (operation, params) = match parse_call(&xml) {
        Ok(call) => call,
        Err(msg) => return re.fault(client_fault("E102", format!("请求报文格式错误：{msg}"))),
    };
    if soap_action(&headers) != Some(operation.name.as_str()) {
        return re.fault(client_fault("E103", "SOAPAction与请求操作不一致"));
    }
    let result = match operation.name.as_str() {
        "queryByCertificate" => query_by_certificate(&params),
        "queryByUnit" => query_by_unit(&params),
        "submitTransfer" => return re.submit_transfer(&params),
        "queryStatus" => re.query_status(&params),
        other => Err(client_fault("E103", format!("不支持的操作：{other}"))),
    };
    match result {
        Ok(inner) => envelope(StatusCode::OK, &inner),
        Err(f) => re.fault(f),
    }
}

/// The body must declare GBK, be GBK, and not be UTF-8 in disguise. A header charset other
/// than GBK is refused as well, since it contradicts the body.
fn decode_gbk(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        let charset = ct
            .split(';')
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
            .map(|(_, v)| v.trim().trim_matches('"'));
        if charset.is_some_and(|c| !c.eq_ignore_ascii_case("GBK")) {
            return None;
        }
    }
    let decl_end = body.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&body[..decl_end]).ok()?;
    if !decl.starts_with("<?xml ") || declared_encoding(decl)?.to_ascii_uppercase() != "GBK" {
        return None;
    }
    // GBK Chinese text is almost never valid UTF-8, while UTF-8 Chinese text often decodes as
    // GBK mojibake: so non-ASCII bytes that form valid UTF-8 mean the caller sent UTF-8.
    if !body.is_ascii() && std::str::from_utf8(body).is_ok() {
        return None;
    }
    GBK.decode_without_bom_handling_and_without_replacement(body)
        .map(|s| s.into_owned())
}

fn declared_encoding(decl: &str) -> Option<&str> {
    let rest = &decl[decl.find("encoding")? + "encoding".len()..];
    let rest = rest.trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &rest[1..];
    Some(&rest[..rest.find(quote)?])
}

/// Envelope → Body → the single operation element in the `bdc` namespace.
fn parse_call(xml: &str) -> Result<(Element, ()), String> {
    let root = xml::parse(xml)?;
    if root.name != "Envelope" || root.namespace.as_deref() != Some(SOAP_NS) {
        return Err("根元素须为soap:Envelope".into());
    }
    let body = root.child(Some(SOAP_NS), "Body").ok_or("缺少soap:Body")?;
    let mut ops = body.children.into_iter_ref();
    let op = ops.next().ok_or("soap:Body为空")?;
    if op.namespace.as_deref() != Some(BDC_NS) {
        return Err("操作元素须在http://bdc.gov.cn/ws命名空间".into());
    }
    Ok((op, ()))
}
