//! 公安: small UTF-8 XML documents over HTTPS with a client certificate (PROTOCOLS.md, "Public
//! security"). The TLS side lives in [`crate::tls`]; by the time a request gets here the
//! caller has proved it holds a certificate from the simulator's CA.
//!
//! A filing's materials come inside its document (`<cllb>`): each file base64 in `<nr>` with
//! the SM3 the department checks against the decoded bytes, each 免提交 licence by its GB/T
//! 36904 identifier. The request is read as it arrives ([`stream`]): files are decoded and
//! hashed on the fly, never held.
//!
//! A filing whose 印章印模 is too small to read is returned (补正), and can be supplemented,
//! withdrawn and queried ([`lifecycle`]).
//!
//! # Layout
//! - this file: the routes, the documents, the checks.
//! - [`lifecycle`]: returns, 补正 (`kzbz`), 撤回 (`kzch`), the filing query (`kzcx`).
//! - [`stream`]: the request read through, `<nr>` contents decoded and hashed as they come.

mod lifecycle;
mod stream;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;

use crate::common::{self, Answer, Profile, ReceivedMaterial, Sim};
use crate::ids;
use crate::sharing::{self, Claimed, NamedLicence, Verifier};
use crate::xml::{self, Element, esc};
use stream::Decoded;

const CONTENT_TYPE: &str = "application/xml; charset=UTF-8";

/// Seeded residents: ID number → name.
const RESIDENTS: &[(&str, &str)] = &[
    ("11010519491231002X", "张三"),
    ("34052419800101001X", "李四"),
    ("360426199101010071", "王五"),
];

/// The department's state: its simulator, and where the licences filings name are verified.
struct PublicSecurity {
    sim: Arc<Sim>,
    licences: Verifier,
    /// Filings by 备案编号: returned ones wait for their supplement ([`lifecycle`]).
    filings: std::sync::Mutex<std::collections::HashMap<String, lifecycle::Filing>>,
}

pub(crate) fn router(sim: Arc<Sim>, licences: Verifier) -> Router {
    let state = Arc::new(PublicSecurity {
        sim: sim.clone(),
        licences,
        filings: std::sync::Mutex::default(),
    });
    let routes = Router::new()
        .route("/gaxt/sfhc", post(sfhc))
        .route("/gaxt/kzba", post(kzba))
        .route(lifecycle::KZBZ_PATH, post(lifecycle::kzbz))
        .route(lifecycle::KZCH_PATH, post(lifecycle::kzch))
        .route(lifecycle::KZCX_PATH, post(lifecycle::kzcx))
        .with_state(state);
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

fn check_content_type(headers: &HeaderMap) -> Result<(), String> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !(ct.starts_with("application/xml") || ct.starts_with("text/xml")) {
        return Err("Content-Type须为application/xml".into());
    }
    Ok(())
}

/// Parses `<request>…</request>` after checking the media type and the encoding.
fn parse_request(headers: &HeaderMap, body: &[u8]) -> Result<Element, String> {
    check_content_type(headers)?;
    let text = std::str::from_utf8(body).map_err(|_| "请求须为UTF-8编码".to_owned())?;
    parse_document(text)
}

fn parse_document(text: &str) -> Result<Element, String> {
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

async fn sfhc(State(ps): State<Arc<PublicSecurity>>, headers: HeaderMap, body: Bytes) -> Answer {
    let sim = &ps.sim;
    let req = match parse_request(&headers, &body) {
        Ok(r) => r,
        Err(e) => return invalid(sim, &e),
    };
    let [_, xm, gmsfhm] = match fields(&req, ["requestId", "xm", "gmsfhm"]) {
        Ok(f) => f,
        Err(e) => return invalid(sim, &e),
    };
    if !ids::resident_id_valid(gmsfhm) {
        return invalid(sim, "公民身份号码校验失败");
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

async fn kzba(State(ps): State<Arc<PublicSecurity>>, headers: HeaderMap, body: Body) -> Answer {
    let sim = &ps.sim;
    if let Err(e) = check_content_type(&headers) {
        return invalid(sim, &e);
    }
    // Read through before anything else: the files are decoded and hashed as they arrive.
    let split = match stream::split(body, sim.faults().corrupt_materials).await {
        Ok(split) => split,
        Err(e) => return invalid(sim, &e),
    };
    let req = match parse_document(&split.skeleton) {
        Ok(r) => r,
        Err(e) => return invalid(sim, &e),
    };
    let Some(request_id) = req.field("requestId") else {
        return invalid(sim, "缺少requestId");
    };
    // Everything checked here first; the licences named are then verified at the gateway as
    // the enterprise's own. A repeated requestId gets its first answer without either.
    let verify = async {
        let (mut materials, licences) =
            materials(&req, &split.files).map_err(|refusal| match refusal {
                Refusal::Invalid(detail) => invalid(sim, &detail),
                Refusal::Digest(message) => error(sim, "30", &message, "material_digest"),
                Refusal::Base64(message) => error(sim, "31", &message, "material_base64"),
            })?;
        let tyshxydm = check_filing(sim, &req)?;
        let verified = ps
            .licences
            .verify_all(request_id, &licences, |_| vec![tyshxydm])
            .await
            .map_err(|not| licence_refusal(sim, not))?;
        materials.extend(verified);
        Ok(materials)
    };
    let create = |materials: Vec<ReceivedMaterial>| {
        let babh = sim.next_number("GA");
        let filing = lifecycle::Filing::new(req.field("tyshxydm").unwrap_or_default(), &materials);
        let state = filing.state_xml();
        ps.filings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(babh.clone(), filing);
        for mut material in materials {
            material.request_id = request_id.to_owned();
            sim.record_material(material);
        }
        let tyshxydm = req.field("tyshxydm").unwrap_or_default();
        tracing::info!(babh, tyshxydm, request_id, "seal filing accepted");
        Ok(answer(&format!(
            "<code>00</code><message>成功</message><babh>{babh}</babh>{state}"
        )))
    };
    sim.submit_verified(request_id, verify, create).await
}

/// A filing's own fields, checked: its credit code when good (`10` a field missing or an ID
/// failing GB 11643, `20` a credit code failing GB 32100).
fn check_filing<'r>(sim: &Sim, req: &'r Element) -> Result<&'r str, Answer> {
    let [tyshxydm, _, _, fddbrsfzh, yzlx] =
        fields(req, ["tyshxydm", "qymc", "fddbr", "fddbrsfzh", "yzlx"])
            .map_err(|e| invalid(sim, &e))?;
    if !ids::uscc_valid(tyshxydm) {
        return Err(error(sim, "20", "统一社会信用代码校验失败", "invalid_uscc"));
    }
    if !ids::resident_id_valid(fddbrsfzh) {
        return Err(invalid(sim, "法定代表人身份证号校验失败"));
    }
    // Seal kinds are a comma list; offices write both ASCII and full-width commas.
    if yzlx.split([',', '，']).any(|k| k.trim().is_empty()) {
        return Err(invalid(sim, "印章类型不能为空"));
    }
    Ok(tyshxydm)
}

/// A licence not verified, in the department's answer: `21` 电子证照核验未通过 (HTTP 200, a
/// refusal on the merits), or HTTP 503 with `90` when the licence-sharing service cannot be
/// asked (worth trying again).
fn licence_refusal(sim: &Sim, not: sharing::NotVerified) -> Answer {
    match not.failure {
        sharing::Failure::Refused(why) => error(sim, "21", &why, "licence_invalid"),
        sharing::Failure::Unavailable(why) => {
            let mut refusal = error(
                sim,
                "90",
                &format!("电子证照共享服务不可用：{why}"),
                "licence_service_unavailable",
            );
            refusal.status = StatusCode::SERVICE_UNAVAILABLE;
            refusal
        }
    }
}

/// Why a filing's materials are refused.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// `10`: a material's fields are missing or malformed.
    Invalid(String),
    /// `30`: a file's decoded bytes do not have the SM3 or size the request states.
    Digest(String),
    /// `31`: a file's content is not base64.
    Base64(String),
}

/// The most one file may be, decoded.
const MAX_FILE: u64 = 50 << 20;

/// The filing's materials (`<cllb>`), each checked: a file against what was decoded from its
/// `<nr>`, a licence by its identifier's check character (its verification at the gateway is
/// still to come: the licences are apart). None when the filing has no list.
fn materials(
    req: &Element,
    files: &[Decoded],
) -> Result<(Vec<ReceivedMaterial>, Vec<NamedLicence>), Refusal> {
    let Some(list) = req.child(None, "cllb") else {
        return Ok((Vec::new(), Vec::new()));
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut licences = Vec::new();
    for cl in &list.children {
        if cl.name != "cl" || cl.namespace.is_some() {
            return Err(Refusal::Invalid(format!("材料列表中有未知元素{}", cl.name)));
        }
        let field = |name: &str| {
            cl.field(name)
                .ok_or_else(|| Refusal::Invalid(format!("材料缺少{name}")))
        };
        let (code, name) = (field("clbm")?, field("clmc")?);
        if !seen.insert(code) {
            return Err(Refusal::Invalid(format!("材料{code}重复")));
        }
        let mut material = ReceivedMaterial {
            code: code.to_owned(),
            ..ReceivedMaterial::default()
        };
        if cl.child(None, "nr").is_some() {
            let index = field("nr")?;
            let decoded = index
                .parse::<usize>()
                .ok()
                .and_then(|i| files.get(i))
                .ok_or_else(|| Refusal::Invalid(format!("{name}的nr不可读")))?;
            let stated_size: u64 = field("wjdx")?
                .parse()
                .map_err(|_| Refusal::Invalid(format!("{name}的wjdx须为字节数")))?;
            let stated_sm3 = field("sm3")?.to_ascii_lowercase();
            field("wjlx")?;
            if stated_size > MAX_FILE {
                return Err(Refusal::Invalid(format!("{name}超过{}MB", MAX_FILE >> 20)));
            }
            match decoded {
                Decoded::Invalid(why) => {
                    return Err(Refusal::Base64(format!("材料内容编码错误：{name}{why}")));
                }
                Decoded::Bytes { sm3, size } if *sm3 != stated_sm3 || *size != stated_size => {
                    return Err(Refusal::Digest(format!(
                        "材料校验失败：{name}的SM3摘要或大小与内容不符"
                    )));
                }
                Decoded::Bytes { sm3, size } => {
                    material.kind = "file".into();
                    material.sm3 = Some(sm3.clone());
                    material.size = Some(*size);
                }
            }
        } else if let Some(id) = cl.field("dzzzbs") {
            let (kind, number) = (field("zzlx")?, field("zzbh")?);
            if sdk::ids::licence_id(id).is_err() {
                return Err(Refusal::Invalid(format!("{name}的电子证照标识校验失败")));
            }
            licences.push(NamedLicence {
                code: code.to_owned(),
                claimed: Claimed {
                    id: id.to_owned(),
                    kind: kind.to_owned(),
                    number: number.to_owned(),
                },
            });
            continue;
        } else if cl.field("rqsl") == Some("1") {
            material.kind = "promised".into();
        } else {
            return Err(Refusal::Invalid(format!(
                "{name}须有nr（文件）、dzzzbs（电子证照）或rqsl（容缺）"
            )));
        }
        out.push(material);
    }
    Ok((out, licences))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LICENCE: &str =
        "1.2.156.3005.2.11350100003501011L001.11350100003501011L.2025A1B2C3D4E5F60718.001.";

    fn licence_id() -> String {
        let body: String = LICENCE
            .trim_start_matches("1.2.156.3005.2.")
            .trim_end_matches('.')
            .replace('.', "");
        format!("{LICENCE}{}", sdk::ids::licence_check_char(&body).unwrap())
    }

    fn checked(
        cllb: &str,
        files: &[Decoded],
    ) -> Result<(Vec<ReceivedMaterial>, Vec<NamedLicence>), Refusal> {
        let doc = format!("<request><requestId>r</requestId><cllb>{cllb}</cllb></request>");
        materials(&parse_document(&doc).unwrap(), files)
    }

    fn pdf() -> Decoded {
        Decoded::Bytes {
            sm3: sdk::sign::sm3_hex(b"%PDF"),
            size: 4,
        }
    }

    fn file_cl(size: u64, sm3: &str) -> String {
        format!(
            "<cl><clbm>seal-impression</clbm><clmc>印章印模</clmc><wjlx>image/png</wjlx>\
             <wjdx>{size}</wjdx><sm3>{sm3}</sm3><nr>0</nr></cl>"
        )
    }

    #[test]
    fn files_licences_and_promises_are_read_and_checked() {
        let cllb = format!(
            "{}<cl><clbm>business-licence</clbm><clmc>营业执照</clmc><dzzzbs>{}</dzzzbs>\
             <zzlx>business_licence</zzlx><zzbh>350100000000001</zzbh></cl>\
             <cl><clbm>premises-proof</clbm><clmc>住所使用证明</clmc><rqsl>1</rqsl></cl>",
            file_cl(4, &sdk::sign::sm3_hex(b"%PDF").to_uppercase()),
            licence_id()
        );
        let (got, licences) = checked(&cllb, &[pdf()]).unwrap();
        let kinds: Vec<(&str, &str)> = got
            .iter()
            .map(|m| (m.code.as_str(), m.kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [("seal-impression", "file"), ("premises-proof", "promised")]
        );
        assert_eq!(got[0].size, Some(4));
        // The licence is to verify at the gateway, as named.
        assert_eq!(
            licences,
            [NamedLicence {
                code: "business-licence".into(),
                claimed: Claimed {
                    id: licence_id(),
                    kind: "business_licence".into(),
                    number: "350100000000001".into(),
                },
            }]
        );
    }

    #[test]
    fn a_digest_or_size_that_differs_and_bad_base64_have_their_own_codes() {
        let good = sdk::sign::sm3_hex(b"%PDF");
        assert!(matches!(
            checked(&file_cl(4, &"0".repeat(64)), &[pdf()]),
            Err(Refusal::Digest(m)) if m.contains("印章印模")
        ));
        assert!(matches!(
            checked(&file_cl(5, &good), &[pdf()]),
            Err(Refusal::Digest(_))
        ));
        assert!(matches!(
            checked(&file_cl(4, &good), &[Decoded::Invalid("含有非Base64字符".into())]),
            Err(Refusal::Base64(m)) if m.contains("非Base64")
        ));
        // Fields missing, an unknown index, a licence whose check character fails.
        let no_sm3 = file_cl(4, &good).replace(&format!("<sm3>{good}</sm3>"), "");
        assert!(
            matches!(checked(&no_sm3, &[pdf()]), Err(Refusal::Invalid(m)) if m.contains("sm3"))
        );
        assert!(matches!(
            checked(&file_cl(4, &good), &[]),
            Err(Refusal::Invalid(_))
        ));
        let mut wrong = licence_id();
        let last = wrong.pop().unwrap();
        wrong.push(if last == 'A' { 'B' } else { 'A' });
        let bad_licence = format!(
            "<cl><clbm>b</clbm><clmc>营业执照</clmc><dzzzbs>{wrong}</dzzzbs><zzlx>x</zzlx><zzbh>1</zzbh></cl>"
        );
        assert!(
            matches!(checked(&bad_licence, &[]), Err(Refusal::Invalid(m)) if m.contains("电子证照"))
        );
        let twice = format!("{0}{0}", file_cl(4, &good));
        assert!(
            matches!(checked(&twice, &[pdf()]), Err(Refusal::Invalid(m)) if m.contains("重复"))
        );
        assert!(matches!(
            checked("<cl><clbm>x</clbm><clmc>某材料</clmc></cl>", &[]),
            Err(Refusal::Invalid(_))
        ));
    }
}
