//! 不动产登记: SOAP 1.1 in GBK on one endpoint, dispatched on the operation element
//! (PROTOCOLS.md, "Real estate"). Anything not GBK is refused, as the real systems do. A
//! transfer with materials comes as an MTOM/XOP package ([`mtom`]): the GBK envelope and each
//! file a MIME part its `xop:Include` names, read as it streams in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use encoding_rs::GBK;

use crate::common::{self, Answer, Profile, ReceivedMaterial, Sim};
use crate::ids;
use crate::multipart;
use crate::sharing::{self, Claimed, NamedLicence, Verifier};
use crate::xml::{self, Element, esc};

mod lifecycle;
mod mtom;

const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const BDC_NS: &str = "http://bdc.gov.cn/ws";
const CONTENT_TYPE: &str = "text/xml; charset=GBK";
/// The largest plain (not MTOM) envelope read.
const MAX_ENVELOPE: usize = 2 << 20;

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
    /// When it was taken, or supplemented last: its 受理, 审核 and decision run from here.
    received_at: Instant,
    /// What a return asks at decision time (退回补正): none, it is registered (登簿).
    asks: Vec<lifecycle::Ask>,
    /// 补正期限 of the last return.
    bzqx: String,
    /// 撤回 before the decision: never decided after.
    withdrawn: bool,
    /// The parties' ID numbers (seller's, buyer's) and the declared price, as last given.
    zrfzjh: String,
    srfzjh: String,
    jyjg: String,
    /// The sale contract on file and the price it states.
    contract: lifecycle::Contract,
    /// The flat's assessed value (yuan), what the price is checked against.
    assessed: f64,
    new_certificate: String,
}

struct RealEstate {
    sim: Arc<Sim>,
    ticket_delay: Duration,
    transfers: Mutex<HashMap<String, Transfer>>,
    /// Where the licences transfers name are verified.
    licences: Verifier,
}

pub(crate) fn router(sim: Arc<Sim>, ticket_delay: Duration, licences: Verifier) -> Router {
    let state = Arc::new(RealEstate {
        sim: sim.clone(),
        ticket_delay,
        transfers: Mutex::default(),
        licences,
    });
    let routes = Router::new()
        .route("/services/BdcService", post(service))
        .with_state(state);
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

/// A SOAP fault, always HTTP 500. Nearly every fault the simulator raises is the caller's
/// (`soap:Client`); the one of its own (`soap:Server`) is the licence-sharing service it
/// depends on being unreachable.
#[derive(Debug)]
struct Fault {
    reason: String,
    code: &'static str,
    /// The material a fault is about (`<bdc:clbm>` in the detail), when it is about one.
    material: Option<String>,
    /// `soap:Server`: the registry's side failed, not the request.
    server: bool,
}

fn client_fault(code: &'static str, reason: impl Into<String>) -> Fault {
    Fault {
        reason: reason.into(),
        code,
        material: None,
        server: false,
    }
}

/// Wraps a body fragment in the envelope and encodes it as GBK. Characters GBK cannot hold
/// become numeric character references, which is still valid XML.
fn envelope(status: StatusCode, inner: &str) -> Answer {
    let xml = format!(
        r#"<?xml version="1.0" encoding="GBK"?><soap:Envelope xmlns:soap="{SOAP_NS}" xmlns:bdc="{BDC_NS}"><soap:Body>{inner}</soap:Body></soap:Envelope>"#
    );
    let (bytes, _, _) = GBK.encode(&xml);
    Answer {
        status,
        content_type: CONTENT_TYPE,
        body: Bytes::from(bytes.into_owned()),
    }
}

impl RealEstate {
    fn fault(&self, f: Fault) -> Answer {
        self.sim.reject(f.code);
        let material = f.material.as_deref().map_or(String::new(), |m| {
            format!("<bdc:clbm>{}</bdc:clbm>", esc(m))
        });
        let faultcode = if f.server {
            "soap:Server"
        } else {
            "soap:Client"
        };
        envelope(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!(
                "<soap:Fault><faultcode>{faultcode}</faultcode><faultstring>{}</faultstring><detail><bdc:errorCode>{}</bdc:errorCode>{material}</detail></soap:Fault>",
                esc(&f.reason),
                f.code
            ),
        )
    }

    /// Read an MTOM package as it arrives: its envelope and attachments, or the fault.
    async fn read_package(
        &self,
        content_type: &str,
        mut body: Body,
    ) -> Result<mtom::Package, Fault> {
        let corrupt = self.sim.faults().corrupt_materials;
        let mut reader = mtom::PackageReader::new(content_type, corrupt)?;
        // However much arrives, stop reading well past what the registry takes.
        let cap = mtom::MAX_ATTACHMENT * 8;
        let mut read = 0u64;
        let mut stall = self.sim.upload_stall();
        while let Some(piece) = multipart::next_piece(&mut body).await {
            let piece = piece.map_err(|e| {
                tracing::info!(error = %e, "package broke off");
                client_fault("E110", "MTOM报文格式错误：请求体不完整")
            })?;
            read += piece.len() as u64;
            reader.feed(&piece);
            stall.passed(&self.sim, read).await;
            if read > cap {
                break;
            }
        }
        reader.finish()
    }
}

async fn service(State(re): State<Arc<RealEstate>>, headers: HeaderMap, body: Body) -> Answer {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let is_package = multipart::parse_header_value(content_type).0 == "multipart/related";
    let (xml, package) = if is_package {
        let package = match re.read_package(content_type, body).await {
            Ok(package) => package,
            Err(f) => return re.fault(f),
        };
        (
            decode_gbk_body(package.charset.as_deref(), &package.envelope),
            Some(package),
        )
    } else {
        match axum::body::to_bytes(body, MAX_ENVELOPE).await {
            Ok(bytes) => (decode_gbk(&headers, &bytes), None),
            Err(_) => return re.fault(client_fault("E102", "请求报文过大")),
        }
    };
    let Some(xml) = xml else {
        return re.fault(client_fault("E100", "编码错误：请使用GBK编码"));
    };
    let params = match parse_call(&xml) {
        Ok(op) => op,
        Err(msg) => return re.fault(client_fault("E102", format!("请求报文格式错误：{msg}"))),
    };
    if soap_action(&headers) != Some(params.name.as_str()) {
        return re.fault(client_fault("E103", "SOAPAction与请求操作不一致"));
    }
    let result = match params.name.as_str() {
        "queryByCertificate" => query_by_certificate(&params),
        "queryByUnit" => query_by_unit(&params),
        "submitTransfer" => return re.submit_transfer(&params, package.as_ref()).await,
        "queryStatus" => re.query_status(&params),
        "submitSupplement" => return re.submit_supplement(&params, package.as_ref()).await,
        "withdrawApplication" => return re.withdraw(&params),
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
    let charset = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| {
            ct.split(';')
                .filter_map(|p| p.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
                .map(|(_, v)| v.trim().trim_matches('"'))
        });
    decode_gbk_body(charset, body)
}

/// [`decode_gbk`] with the charset its container declared (a header, an MTOM root part).
fn decode_gbk_body(charset: Option<&str>, body: &[u8]) -> Option<String> {
    if charset.is_some_and(|c| !c.eq_ignore_ascii_case("GBK")) {
        return None;
    }
    let decl_end = body.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&body[..decl_end]).ok()?;
    if !decl.starts_with("<?xml ") || !declared_encoding(decl)?.eq_ignore_ascii_case("GBK") {
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

/// Envelope → Body → the single operation element in the `bdc` namespace, whose unqualified
/// children are the parameters.
fn parse_call(xml: &str) -> Result<Element, String> {
    let root = xml::parse(xml)?;
    if root.name != "Envelope" || root.namespace.as_deref() != Some(SOAP_NS) {
        return Err("根元素须为soap:Envelope".into());
    }
    let body = root
        .children
        .into_iter()
        .find(|c| c.name == "Body" && c.namespace.as_deref() == Some(SOAP_NS))
        .ok_or("缺少soap:Body")?;
    let mut ops = body.children.into_iter();
    let op = ops.next().ok_or("soap:Body为空")?;
    if ops.next().is_some() {
        return Err("soap:Body只能包含一个操作".into());
    }
    if op.namespace.as_deref() != Some(BDC_NS) {
        return Err(format!("操作元素须在{BDC_NS}命名空间"));
    }
    Ok(op)
}

/// The entries of list `list` of a call (`<fjlb><fj>…</fj></fjlb>`): each child `item`.
fn items<'a>(params: &'a Element, list: &str, item: &str) -> Vec<&'a Element> {
    params
        .child(None, list)
        .map(|l| l.children.iter().filter(|c| c.name == item).collect())
        .unwrap_or_default()
}

/// The materials a transfer carries, each as the registry records it: attachments (`fjlb`,
/// each `fj` an `xop:Include` of a part of the package, resolved and checked by
/// [`mtom::Package::resolve`]; without a package no part can be found) and materials promised
/// for later (`rqcl`: `cl` with `clbm`, `cnrq`); and the licences it need not ask for (`dzzz`:
/// `zz` with `clbm`, `zzbs` the GB/T 36904 identifier, `zzlx`, `zzbh`; a failing check
/// character is fault `E112`), still to verify at the gateway.
fn materials_of(
    ywh: &str,
    params: &Element,
    package: Option<&mtom::Package>,
) -> Result<(Vec<ReceivedMaterial>, Vec<NamedLicence>), Fault> {
    let material = |code: &str, kind: &str| ReceivedMaterial {
        request_id: ywh.to_owned(),
        code: code.to_owned(),
        kind: kind.to_owned(),
        ..ReceivedMaterial::default()
    };
    let empty = mtom::Package::default();
    let package = package.unwrap_or(&empty);
    let mut found = Vec::new();
    for fj in items(params, "fjlb", "fj") {
        let resolved = package.resolve(fj)?;
        found.push(ReceivedMaterial {
            sm3: Some(resolved.sm3),
            size: Some(resolved.size),
            ..material(&resolved.clbm, "file")
        });
    }
    let mut licences = Vec::new();
    for zz in items(params, "dzzz", "zz") {
        let clbm = required(zz, "clbm")?;
        let zzbs = required(zz, "zzbs")?;
        if sdk::ids::licence_id(zzbs).is_err() {
            return Err(Fault {
                material: Some(clbm.to_owned()),
                ..client_fault("E112", format!("电子证照标识校验失败：{zzbs}"))
            });
        }
        licences.push(NamedLicence {
            code: clbm.to_owned(),
            claimed: Claimed {
                id: zzbs.to_owned(),
                kind: required(zz, "zzlx")?.to_owned(),
                number: required(zz, "zzbh")?.to_owned(),
            },
        });
    }
    for cl in items(params, "rqcl", "cl") {
        found.push(material(required(cl, "clbm")?, "promised"));
    }
    Ok((found, licences))
}

/// Who may hold a licence a transfer names: the registered owner, the seller, holds the
/// property certificate; the buyer the deed tax receipt (the tax paid on this purchase); any
/// other kind either party.
fn holders_of<'p>(claimed: &Claimed, seller: &'p str, buyer: &'p str) -> Vec<&'p str> {
    match claimed.kind.as_str() {
        "property_certificate" => vec![seller],
        "deed_tax_receipt" => vec![buyer],
        _ => vec![seller, buyer],
    }
}

/// A licence not verified, as the registry's fault naming its material: `E113`
/// 电子证照核验未通过 (`soap:Client`, a refusal on the merits), or `E500` (`soap:Server`) when
/// the licence-sharing service cannot be asked.
fn licence_fault(not: sharing::NotVerified) -> Fault {
    let (code, reason, server) = match not.failure {
        sharing::Failure::Refused(why) => ("E113", why, false),
        sharing::Failure::Unavailable(why) => {
            ("E500", format!("电子证照共享服务不可用：{why}"), true)
        }
    };
    Fault {
        reason,
        code,
        material: Some(not.code),
        server,
    }
}

fn required<'a>(params: &'a Element, name: &str) -> Result<&'a str, Fault> {
    params
        .field(name)
        .ok_or_else(|| client_fault("E102", format!("参数错误：缺少{name}")))
}

/// Full-width and ASCII parentheses both occur in certificate numbers; they name the same one.
fn normalise_certificate(s: &str) -> String {
    s.trim().replace('（', "(").replace('）', ")")
}

fn not_found() -> Fault {
    client_fault("E104", "未查询到不动产登记信息")
}

fn record_xml(r: &Record) -> String {
    format!(
        "<bdc:queryResponse><record><bdcdyh>{}</bdcdyh><bdcqzh>{}</bdcqzh><qlr>{}</qlr><qlrzjh>{}</qlrzjh><zl>{}</zl><mj>{}</mj><yt>{}</yt><djsj>{}</djsj></record></bdc:queryResponse>",
        r.bdcdyh,
        esc(r.bdcqzh),
        esc(r.qlr),
        r.qlrzjh,
        esc(r.zl),
        r.mj,
        esc(r.yt),
        r.djsj
    )
}

fn query_by_certificate(params: &Element) -> Result<String, Fault> {
    let wanted = normalise_certificate(required(params, "bdcqzh")?);
    let record = REGISTER
        .iter()
        .find(|r| normalise_certificate(r.bdcqzh) == wanted)
        .ok_or_else(not_found)?;
    Ok(record_xml(record))
}

fn unit(params: &Element) -> Result<&Record, Fault> {
    let bdcdyh = required(params, "bdcdyh")?;
    if !ids::unit_number_valid(bdcdyh) {
        return Err(client_fault("E101", "不动产单元号格式错误"));
    }
    REGISTER
        .iter()
        .find(|r| r.bdcdyh == bdcdyh)
        .ok_or_else(not_found)
}

fn query_by_unit(params: &Element) -> Result<String, Fault> {
    Ok(record_xml(unit(params)?))
}

impl RealEstate {
    /// Checked, its files resolved, its licences verified at the gateway, then taken; a
    /// repeated `ywh` gets its first answer without any of it.
    async fn submit_transfer(&self, params: &Element, package: Option<&mtom::Package>) -> Answer {
        let ywh = match required(params, "ywh") {
            Ok(ywh) => ywh,
            Err(f) => return self.fault(f),
        };
        let verify = async {
            self.check_transfer(params).map_err(|f| self.fault(f))?;
            let (mut materials, licences) =
                materials_of(ywh, params, package).map_err(|f| self.fault(f))?;
            let seller = params.field("zrfzjh").unwrap_or_default();
            let buyer = params.field("srfzjh").unwrap_or_default();
            let verified = self
                .licences
                .verify_all(ywh, &licences, |claimed| holders_of(claimed, seller, buyer))
                .await
                .map_err(|not| self.fault(licence_fault(not)))?;
            materials.extend(verified);
            Ok(materials)
        };
        let create = |materials: Vec<ReceivedMaterial>| {
            let slbh = self.sim.next_number("BDC");
            let year = common::beijing_now().year();
            let field = |name| params.field(name).unwrap_or_default().to_owned();
            let assessed = unit(params)
                .ok()
                .and_then(|r| r.mj.parse::<f64>().ok())
                .map_or(0.0, |mj| mj * lifecycle::ASSESSED_YUAN_PER_M2);
            let files: Vec<&str> = materials
                .iter()
                .filter(|m| m.kind == "file")
                .map(|m| m.code.as_str())
                .collect();
            let contract = lifecycle::Contract::None.after(&files, &field("jyjg"));
            let asks = lifecycle::asks(&field("srfzjh"), &field("jyjg"), &contract, assessed);
            let returned = !asks.is_empty();
            let serial = slbh.len().saturating_sub(7);
            let transfer = Transfer {
                received_at: Instant::now(),
                asks,
                bzqx: lifecycle::due_date(),
                withdrawn: false,
                zrfzjh: field("zrfzjh"),
                srfzjh: field("srfzjh"),
                jyjg: field("jyjg"),
                contract,
                assessed,
                new_certificate: format!("闽({year})平潭不动产权第{}号", &slbh[serial..]),
            };
            tracing::info!(slbh, ywh, returned, "transfer registration accepted");
            self.transfers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(slbh.clone(), transfer);
            for material in materials {
                self.sim.record_material(material);
            }
            Ok(envelope(
                StatusCode::OK,
                &format!(
                    "<bdc:submitTransferResponse><slbh>{slbh}</slbh><zt>受理</zt></bdc:submitTransferResponse>"
                ),
            ))
        };
        self.sim.submit_verified(ywh, verify, create).await
    }

    fn check_transfer(&self, params: &Element) -> Result<(), Fault> {
        for f in ["bdcqzh", "zrfxm", "zrfzjh", "srfxm", "srfzjh", "jyjg"] {
            required(params, f)?;
        }
        let record = unit(params)?;
        if normalise_certificate(required(params, "bdcqzh")?)
            != normalise_certificate(record.bdcqzh)
        {
            return Err(not_found());
        }
        let seller_id = required(params, "zrfzjh")?;
        if required(params, "zrfxm")? != record.qlr
            || !seller_id.eq_ignore_ascii_case(record.qlrzjh)
        {
            tracing::info!(
                zrfzjh = ids::mask(seller_id),
                "seller is not the registered owner"
            );
            return Err(client_fault("E201", "转让方与登记权利人不一致"));
        }
        let price_ok = required(params, "jyjg")?
            .parse::<f64>()
            .is_ok_and(|p| p.is_finite() && p > 0.0);
        if !price_ok {
            return Err(client_fault("E102", "参数错误：jyjg须为正数金额"));
        }
        Ok(())
    }

    fn query_status(&self, params: &Element) -> Result<String, Fault> {
        let slbh = required(params, "slbh")?;
        let transfers = self.transfers.lock().unwrap_or_else(|e| e.into_inner());
        let t = transfers
            .get(slbh)
            .ok_or_else(|| client_fault("E105", "受理编号不存在"))?;
        Ok(format!(
            "<bdc:queryStatusResponse><slbh>{}</slbh>{}</bdc:queryStatusResponse>",
            esc(slbh),
            self.state_xml(t)
        ))
    }
}
