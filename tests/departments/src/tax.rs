//! 税务: JSON over HTTP, every request signed with HMAC-SHA256 or HMAC-SM3 over a canonical
//! string, with a timestamp window and a nonce replay cache (PROTOCOLS.md, "Tax"). Materials
//! arrive first, one signed `multipart/form-data` upload per file ([`files`]); applications
//! list the file ids the department issued, the licences it need not ask for (免提交) and the
//! materials promised for later (容缺).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::common::{self, Answer, Profile, ReceivedMaterial, Sim};
use crate::ids;
use crate::sharing::{self, Claimed, NamedLicence, Verifier};

mod files;
mod lifecycle;

const APP_KEY: &str = "gw-demo";
const APP_SECRET: &[u8] = b"tax-demo-secret";
const CLOCK_SKEW_SECS: i64 = 300;
const NONCE_TTL: Duration = Duration::from_secs(600);
const MAX_BODY: usize = 1 << 20;

/// Seeded taxpayers: credit code or ID number → (name, arrears in yuan).
const TAXPAYERS: &[(&str, &str, &str)] = &[
    ("91350100M000100Y43", "福州测试科技有限公司", "0.00"),
    ("91110108551385082Q", "北京欠税商贸有限公司", "12800.00"),
    ("11010519491231002X", "张三", "0.00"),
];

struct Registration {
    nsrsbh: String,
    nsrmc: String,
    decided_at: Instant,
    djrq: String,
    /// Refused at decision time (法定代表人身份证件号码 fails GB 11643): zt 03.
    refused: bool,
    /// 生产经营地址, as the application or the last supplement gave it.
    scjydz: String,
    /// What the department asks for at decision time (退回补正, zt 04); none: it registers.
    asks: Vec<lifecycle::Ask>,
    /// 补正期限 of the last return.
    bzqx: String,
    /// 撤回 (zt 05): never decided after.
    withdrawn: bool,
    /// Materials promised at application (容缺, `rqcl`) and not brought yet: a supplement of
    /// only these is taken while the registration is 受理中 (补交容缺材料).
    promised: Vec<String>,
    /// Ended at a status query while returned, with the `lapse_returned` switch: 不予受理,
    /// 逾期未补正.
    lapsed: bool,
}

/// A 契税申报, decided (已办结) `ticket_delay` after receipt.
struct DeedTax {
    decided_at: Instant,
    /// 撤回 before the decision (zt 05): never decided after.
    withdrawn: bool,
    /// 完税凭证号, shown once decided.
    wspzh: String,
    /// 应纳税额 in yuan, two decimals.
    ynse: String,
}

/// Nonces seen in the last [`NONCE_TTL`]; the queue gives expiry order so pruning is cheap
/// under the benchmarks' request rates.
#[derive(Default)]
struct Nonces {
    seen: HashSet<String>,
    order: VecDeque<(Instant, String)>,
}

impl Nonces {
    /// False when the nonce was already used.
    fn insert(&mut self, nonce: &str) -> bool {
        let now = Instant::now();
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < NONCE_TTL {
                break;
            }
            let (_, old) = self.order.pop_front().expect("front exists");
            self.seen.remove(&old);
        }
        if !self.seen.insert(nonce.to_owned()) {
            return false;
        }
        self.order.push_back((now, nonce.to_owned()));
        true
    }
}

struct Tax {
    sim: Arc<Sim>,
    ticket_delay: Duration,
    nonces: Mutex<Nonces>,
    registrations: Mutex<HashMap<String, Registration>>,
    /// 契税申报 by 受理号; `slzt` answers for these too.
    deed_taxes: Mutex<HashMap<String, DeedTax>>,
    /// Uploaded material files, by file id.
    files: Mutex<files::Files>,
    /// Where the licences applications name are verified.
    licences: Verifier,
}

pub(crate) fn router(sim: Arc<Sim>, ticket_delay: Duration, licences: Verifier) -> Router {
    let state = Arc::new(Tax {
        sim: sim.clone(),
        ticket_delay,
        nonces: Mutex::default(),
        registrations: Mutex::default(),
        deed_taxes: Mutex::default(),
        files: Mutex::default(),
        licences,
    });
    let routes = Router::new()
        .route(files::WJSC_PATH, post(wjsc))
        .route("/api/v1/swdj", post(swdj))
        .route("/api/v1/qssb", post(qssb))
        .route("/api/v1/slzt", get(slzt))
        .route("/api/v1/qscx", post(qscx))
        .route(lifecycle::BZSQ_PATH, post(lifecycle::bzsq))
        .route(lifecycle::CXSQ_PATH, post(lifecycle::cxsq))
        .layer(axum::middleware::from_fn_with_state(state.clone(), verify))
        .with_state(state);
    let profile = Profile {
        operation: |req| {
            let path = req.uri().path();
            path.strip_prefix("/api/v1/").unwrap_or(path).to_owned()
        },
        content_type: "application/json; charset=UTF-8",
    };
    common::finish(routes, sim, profile)
}

#[derive(Clone, Copy)]
enum AuthError {
    BadSignature,
    Stale,
    Replayed,
}

impl AuthError {
    fn parts(self) -> (&'static str, &'static str, &'static str) {
        match self {
            AuthError::BadSignature => ("4011", "签名错误", "bad_signature"),
            AuthError::Stale => ("4012", "时间戳过期", "stale_timestamp"),
            AuthError::Replayed => ("4013", "nonce重复", "replayed_nonce"),
        }
    }
}

/// Checks the signature headers before any handler sees the request. The body is read here
/// because it is part of the signed string, then handed on unchanged; an upload's is not: it
/// is signed over its SM3 (`X-Content-SM3`), which the upload checks as the body streams in.
async fn verify(State(tax): State<Arc<Tax>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    if parts.uri.path() == files::WJSC_PATH {
        let digest = parts
            .headers
            .get("X-Content-SM3")
            .and_then(|v| v.to_str().ok())
            .filter(|d| d.len() == 64 && d.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        let checked = match digest {
            Some(digest) => tax.check(&parts, digest.as_bytes()),
            None => Err(AuthError::BadSignature),
        };
        if let Err(e) = checked {
            return tax.refuse(e);
        }
        return next.run(Request::from_parts(parts, body)).await;
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    if let Err(e) = tax.check(&parts, &bytes) {
        return tax.refuse(e);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

impl Tax {
    fn refuse(&self, e: AuthError) -> Response {
        let (code, msg, reason) = e.parts();
        self.sim.reject(reason);
        Answer::json(StatusCode::UNAUTHORIZED, &json!({"code": code, "msg": msg})).into_response()
    }

    /// `signed` is what the canonical string ends with: the raw body, or for an upload the
    /// hex SM3 of its body.
    fn check(&self, parts: &Parts, signed: &[u8]) -> Result<(), AuthError> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let (Some(key), Some(ts), Some(nonce), Some(method), Some(sig)) = (
            header("X-App-Key"),
            header("X-Timestamp"),
            header("X-Nonce"),
            header("X-Sign-Method"),
            header("X-Signature"),
        ) else {
            return Err(AuthError::BadSignature);
        };
        if key != APP_KEY {
            return Err(AuthError::BadSignature);
        }
        let ts_secs: i64 = ts.parse().map_err(|_| AuthError::Stale)?;
        if (common::beijing_now().unix_timestamp() - ts_secs).abs() > CLOCK_SKEW_SECS {
            return Err(AuthError::Stale);
        }
        let nonce_ok =
            (16..=64).contains(&nonce.len()) && nonce.bytes().all(|b| b.is_ascii_alphanumeric());
        // The spec asks for lowercase hex; a department comparing strings would refuse upper case.
        let sig_ok = sig.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !nonce_ok || !sig_ok {
            return Err(AuthError::BadSignature);
        }
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut canonical = format!("{}\n{path}\n{ts}\n{nonce}\n", parts.method).into_bytes();
        canonical.extend_from_slice(signed);
        // Compared in constant time (`verify_slice`), as a department must.
        let good = match method {
            "HMAC-SHA256" => sdk::sign::verify_hmac_sha256_hex(APP_SECRET, &canonical, sig),
            "HMAC-SM3" => sdk::sign::verify_hmac_sm3_hex(APP_SECRET, &canonical, sig),
            _ => false,
        };
        if !good {
            return Err(AuthError::BadSignature);
        }
        // Only a correctly signed request uses up its nonce, so forged requests cannot burn
        // the gateway's nonces.
        if !self
            .nonces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(nonce)
        {
            return Err(AuthError::Replayed);
        }
        Ok(())
    }

    fn fail(&self, code: &str, msg: &str, reason: &str) -> Answer {
        self.sim.reject(reason);
        Answer::json(
            StatusCode::OK,
            &json!({"code": code, "msg": msg, "data": null}),
        )
    }
}

fn ok(data: Value) -> Answer {
    Answer::json(
        StatusCode::OK,
        &json!({"code": "0000", "msg": "成功", "data": data}),
    )
}

fn text<'a>(body: &'a Value, field: &str) -> Option<&'a str> {
    body.get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

async fn wjsc(State(tax): State<Arc<Tax>>, headers: HeaderMap, body: Body) -> Answer {
    files::upload(&tax.sim, &tax.files, files::MAX_FILE_BYTES, &headers, body).await
}

/// The entries of an application's list `field` (absent: none); each must be an object.
fn entries<'a>(body: &'a Value, field: &str) -> Result<Vec<&'a Value>, String> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) if items.iter().all(Value::is_object) => {
            Ok(items.iter().collect())
        }
        Some(_) => Err(format!("参数错误：{field}须为对象数组")),
    }
}

impl Tax {
    /// The materials an application lists, all checked before it is taken: the files it holds
    /// for this application (`fjlb`: `clbm`, `wjid`; another file id is `3005`), the licences
    /// it need not ask for (`dzzz`: `clbm`, `zzbs` the GB/T 36904 identifier, `zzlx`, `zzbh`),
    /// each identifier's check character checked (`3006`), then each verified at the gateway
    /// as held by one of `holders` ([`Tax::verify_licences`]), and those promised for later
    /// (`rqcl`: `clbm`, `cnrq`). Each as the department records it.
    async fn materials(
        &self,
        qqid: &str,
        body: &Value,
        holders: &[&str],
    ) -> Result<Vec<ReceivedMaterial>, Answer> {
        let invalid = |msg: String| self.fail("1001", &msg, "invalid_request");
        let material = |code: &str, kind: &str| ReceivedMaterial {
            request_id: qqid.to_owned(),
            code: code.to_owned(),
            kind: kind.to_owned(),
            ..ReceivedMaterial::default()
        };
        let mut found = Vec::new();
        {
            let held = self.files.lock().unwrap_or_else(|e| e.into_inner());
            for entry in entries(body, "fjlb").map_err(invalid)? {
                let (Some(clbm), Some(wjid)) = (text(entry, "clbm"), text(entry, "wjid")) else {
                    return Err(invalid("参数错误：fjlb的每一项须有clbm与wjid".into()));
                };
                let Some(file) = held.of_application(qqid, wjid) else {
                    return Err(self.fail(
                        "3005",
                        &format!("文件标识不存在：{wjid}"),
                        "unknown_file",
                    ));
                };
                found.push(ReceivedMaterial {
                    sm3: Some(file.sm3.clone()),
                    size: Some(file.size),
                    ..material(clbm, "file")
                });
            }
        }
        let mut named = Vec::new();
        for entry in entries(body, "dzzz").map_err(invalid)? {
            let (Some(clbm), Some(zzbs), Some(zzlx), Some(zzbh)) = (
                text(entry, "clbm"),
                text(entry, "zzbs"),
                text(entry, "zzlx"),
                text(entry, "zzbh"),
            ) else {
                return Err(invalid(
                    "参数错误：dzzz的每一项须有clbm、zzbs、zzlx与zzbh".into(),
                ));
            };
            if sdk::ids::licence_id(zzbs).is_err() {
                return Err(self.fail(
                    "3006",
                    &format!("电子证照标识校验失败：{zzbs}"),
                    "invalid_licence",
                ));
            }
            named.push(NamedLicence {
                code: clbm.to_owned(),
                claimed: Claimed {
                    id: zzbs.to_owned(),
                    kind: zzlx.to_owned(),
                    number: zzbh.to_owned(),
                },
            });
        }
        let mut promised = Vec::new();
        for entry in entries(body, "rqcl").map_err(invalid)? {
            let Some(clbm) = text(entry, "clbm") else {
                return Err(invalid("参数错误：rqcl的每一项须有clbm".into()));
            };
            promised.push(material(clbm, "promised"));
        }
        // Asked last: a list the department refuses anyway costs the gateway no read.
        found.extend(self.verify_licences(qqid, &named, holders).await?);
        found.extend(promised);
        Ok(found)
    }

    /// Verify each licence named at the gateway, held by one of `holders`: the materials as
    /// verified, or the refusal — `3007` 电子证照核验未通过 (a licence the gateway never issued,
    /// not the one named, or not the applicant's), HTTP 503 `5001` when the gateway cannot be
    /// asked (worth trying again).
    async fn verify_licences(
        &self,
        qqid: &str,
        named: &[NamedLicence],
        holders: &[&str],
    ) -> Result<Vec<ReceivedMaterial>, Answer> {
        self.licences
            .verify_all(qqid, named, |_| holders.to_vec())
            .await
            .map_err(|not| match not.failure {
                sharing::Failure::Refused(why) => self.fail("3007", &why, "licence_invalid"),
                sharing::Failure::Unavailable(why) => {
                    self.sim.reject("licence_service_unavailable");
                    Answer::json(
                        StatusCode::SERVICE_UNAVAILABLE,
                        &json!({"code": "5001", "msg": format!("电子证照共享服务不可用：{why}"), "data": null}),
                    )
                }
            })
    }

    /// Record the materials of an application just taken (once: a repeat gets the first answer).
    fn keep_materials(&self, materials: Vec<ReceivedMaterial>) {
        for material in materials {
            self.sim.record_material(material);
        }
    }

    /// A 税务登记's fields, checked (`1001` one missing, `2001` a credit code failing GB 32100).
    fn check_registration(&self, body: &Value) -> Result<(), Answer> {
        const REQUIRED: [&str; 6] = [
            "nsrsbh",
            "nsrmc",
            "fddbrxm",
            "fddbrsfzjhm",
            "scjydz",
            "jyfw",
        ];
        if let Some(missing) = REQUIRED.iter().find(|f| text(body, f).is_none()) {
            return Err(self.fail(
                "1001",
                &format!("参数错误：缺少{missing}"),
                "invalid_request",
            ));
        }
        if !ids::uscc_valid(text(body, "nsrsbh").unwrap_or_default()) {
            return Err(self.fail("2001", "纳税人识别号格式错误", "invalid_nsrsbh"));
        }
        Ok(())
    }
}

async fn swdj(State(tax): State<Arc<Tax>>, body: Bytes) -> Answer {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return tax.fail("1001", "参数错误：请求体不是JSON", "invalid_request");
    };
    let Some(qqid) = text(&body, "qqid") else {
        return tax.fail("1001", "参数错误：缺少qqid", "invalid_request");
    };
    // Checked, its licences verified at the gateway as the enterprise's own, before anything
    // is taken; a repeated qqid gets its first answer without either.
    let verify = async {
        tax.check_registration(&body)?;
        let nsrsbh = text(&body, "nsrsbh").unwrap_or_default();
        tax.materials(qqid, &body, &[nsrsbh]).await
    };
    let create = |materials: Vec<ReceivedMaterial>| {
        let field = |f| text(&body, f).unwrap_or_default();
        let nsrsbh = field("nsrsbh");
        let slh = tax.sim.next_number("SW");
        let decided = time::Duration::try_from(tax.ticket_delay).unwrap_or_default();
        let refused = !ids::resident_id_valid(field("fddbrsfzjhm"));
        let asks = lifecycle::asks(field("scjydz"));
        let promised = promised_codes(&materials);
        tracing::info!(
            slh,
            nsrsbh,
            qqid,
            fddbrsfzjhm = ids::mask(field("fddbrsfzjhm")),
            refused,
            returned = !asks.is_empty(),
            "tax registration accepted"
        );
        tax.registrations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                slh.clone(),
                Registration {
                    nsrsbh: nsrsbh.to_owned(),
                    nsrmc: field("nsrmc").to_owned(),
                    decided_at: Instant::now() + tax.ticket_delay,
                    djrq: common::beijing_date(common::beijing_now() + decided),
                    refused,
                    scjydz: field("scjydz").to_owned(),
                    asks,
                    bzqx: lifecycle::due_date(),
                    withdrawn: false,
                    promised,
                    lapsed: false,
                },
            );
        tax.keep_materials(materials);
        Ok(ok(json!({"slh": slh})))
    };
    tax.sim.submit_verified(qqid, verify, create).await
}

async fn slzt(State(tax): State<Arc<Tax>>, Query(q): Query<HashMap<String, String>>) -> Answer {
    let Some(slh) = q.get("slh") else {
        return tax.fail("2004", "受理号不存在", "unknown_slh");
    };
    if let Some(data) = deed_tax_status(&tax, slh) {
        return ok(data);
    }
    let lapse = tax.sim.faults().lapse_returned;
    let mut regs = tax.registrations.lock().unwrap_or_else(|e| e.into_inner());
    let Some(reg) = regs.get_mut(slh) else {
        drop(regs);
        return tax.fail("2004", "受理号不存在", "unknown_slh");
    };
    if lapse && reg.zt() == lifecycle::Zt::Returned {
        lifecycle::lapse(reg);
        tracing::info!(slh, "returned registration ended: 逾期未补正");
    }
    let zt = reg.zt();
    let ztmc = if reg.lapsed {
        lifecycle::LAPSED
    } else {
        zt.name()
    };
    let mut data = json!({"slh": slh, "zt": zt.code(), "ztmc": ztmc, "swdjxx": null});
    match zt {
        lifecycle::Zt::Done => {
            data["swdjxx"] = json!({"nsrsbh": reg.nsrsbh, "djrq": reg.djrq});
        }
        lifecycle::Zt::Returned => data["bzxx"] = lifecycle::bzxx(&reg.asks, &reg.bzqx),
        _ => {}
    }
    ok(data)
}

/// The codes of the materials an application promised for later (容缺, `rqcl`).
fn promised_codes(materials: &[ReceivedMaterial]) -> Vec<String> {
    materials
        .iter()
        .filter(|m| m.kind == "promised")
        .map(|m| m.code.clone())
        .collect()
}

/// The 受理状态 of a 契税申报, if `slh` is one: `qsxx` in place of `swdjxx`.
fn deed_tax_status(tax: &Tax, slh: &str) -> Option<Value> {
    let deeds = tax.deed_taxes.lock().unwrap_or_else(|e| e.into_inner());
    let deed = deeds.get(slh)?;
    Some(if deed.withdrawn {
        let zt = lifecycle::Zt::Withdrawn;
        json!({"slh": slh, "zt": zt.code(), "ztmc": zt.name(), "qsxx": null})
    } else if Instant::now() >= deed.decided_at {
        json!({"slh": slh, "zt": "02", "ztmc": "已办结",
            "qsxx": {"wspzh": deed.wspzh, "ynse": deed.ynse}})
    } else {
        json!({"slh": slh, "zt": "01", "ztmc": "受理中", "qsxx": null})
    })
}

/// An amount as the department writes it, `^\d+\.\d{2}$`, in hundredths; `None` otherwise.
fn hundredths(text: &str) -> Option<u64> {
    let (whole, fraction) = text.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.len() != 2 || !digits(fraction) || whole.len() > 12 {
        return None;
    }
    Some(whole.parse::<u64>().ok()? * 100 + fraction.parse::<u64>().ok()?)
}

/// 应纳税额 in fen for a price in fen: 1% for an area of at most 90 m² (in hundredths of m²),
/// 1.5% above, rounded half up to the fen.
fn deed_tax_due(price_fen: u64, area_hundredths: u64) -> u64 {
    if area_hundredths <= 9_000 {
        (price_fen + 50) / 100
    } else {
        (price_fen * 15 + 500) / 1_000
    }
}

fn yuan(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

async fn qssb(State(tax): State<Arc<Tax>>, body: Bytes) -> Answer {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return tax.fail("1001", "参数错误：请求体不是JSON", "invalid_request");
    };
    let Some(qqid) = text(&body, "qqid") else {
        return tax.fail("1001", "参数错误：缺少qqid", "invalid_request");
    };
    // Checked, its licences verified at the gateway as a party's to the sale, before anything
    // is taken; a repeated qqid gets its first answer without either.
    let verify = async {
        let amounts = tax.check_deed_tax(&body)?;
        let parties = [
            text(&body, "nsrsfzjhm").unwrap_or_default(),
            text(&body, "zrfsfzjhm").unwrap_or_default(),
        ];
        Ok((amounts, tax.materials(qqid, &body, &parties).await?))
    };
    let create = |((price, area), materials)| {
        let buyer = text(&body, "nsrsfzjhm").unwrap_or_default();
        let slh = tax.sim.next_number("QS");
        let ynse = yuan(deed_tax_due(price, area));
        // 完税凭证号: tax authority region (351, 福建) and a running number.
        let wspzh = tax.sim.next_number("351");
        tracing::info!(
            slh,
            qqid,
            nsrsfzjhm = ids::mask(buyer),
            ynse,
            "deed tax return accepted"
        );
        tax.deed_taxes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                slh.clone(),
                DeedTax {
                    decided_at: Instant::now() + tax.ticket_delay,
                    withdrawn: false,
                    wspzh,
                    ynse,
                },
            );
        tax.keep_materials(materials);
        Ok(ok(json!({"slh": slh})))
    };
    tax.sim.submit_verified(qqid, verify, create).await
}

impl Tax {
    /// A 契税申报's fields, checked: its price and area in hundredths. `1001` a field missing or
    /// an amount not a positive two-decimal string, `2003` an ID failing GB 11643, `2006` the
    /// same party on both sides, `2005` a unit number of the wrong form.
    fn check_deed_tax(&self, body: &Value) -> Result<(u64, u64), Answer> {
        const REQUIRED: [&str; 8] = [
            "nsrxm",
            "nsrsfzjhm",
            "zrfxm",
            "zrfsfzjhm",
            "bdcdyh",
            "bdcqzh",
            "jyjg",
            "mj",
        ];
        if let Some(missing) = REQUIRED.iter().find(|f| text(body, f).is_none()) {
            return Err(self.fail(
                "1001",
                &format!("参数错误：缺少{missing}"),
                "invalid_request",
            ));
        }
        let field = |f| text(body, f).unwrap_or_default();
        let (buyer, seller) = (field("nsrsfzjhm"), field("zrfsfzjhm"));
        if !ids::resident_id_valid(buyer) || !ids::resident_id_valid(seller) {
            return Err(self.fail("2003", "身份证件号码校验失败", "invalid_id_number"));
        }
        if buyer.eq_ignore_ascii_case(seller) {
            return Err(self.fail("2006", "承受方与转让方不能为同一人", "same_party"));
        }
        if !ids::unit_number_valid(field("bdcdyh")) {
            return Err(self.fail("2005", "不动产单元号格式错误", "invalid_bdcdyh"));
        }
        // Amounts are strings with exactly two decimals, and positive.
        match (
            hundredths(field("jyjg")).filter(|v| *v > 0),
            hundredths(field("mj")).filter(|v| *v > 0),
        ) {
            (Some(price), Some(area)) => Ok((price, area)),
            _ => Err(self.fail(
                "1001",
                "参数错误：jyjg与mj须为大于0且保留两位小数的数字字符串",
                "invalid_request",
            )),
        }
    }
}

async fn qscx(State(tax): State<Arc<Tax>>, body: Bytes) -> Answer {
    let body = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let Some(nsrsbh) = text(&body, "nsrsbh").map(str::to_ascii_uppercase) else {
        return tax.fail("1001", "参数错误：缺少nsrsbh", "invalid_request");
    };
    let seeded = TAXPAYERS
        .iter()
        .find(|(id, _, _)| *id == nsrsbh)
        .map(|(_, name, arrears)| (name.to_string(), arrears.to_string()));
    // A taxpayer registered here, once the registration is decided, is a clear taxpayer too.
    let registered = || {
        let regs = tax.registrations.lock().unwrap_or_else(|e| e.into_inner());
        regs.values()
            .find(|r| r.nsrsbh == nsrsbh && r.zt() == lifecycle::Zt::Done)
            .map(|r| (r.nsrmc.clone(), "0.00".to_owned()))
    };
    match seeded.or_else(registered) {
        Some((nsrmc, qjje)) => {
            let qszt = if qjje == "0.00" { "Y" } else { "N" };
            ok(json!({"nsrsbh": nsrsbh, "nsrmc": nsrmc, "qszt": qszt, "qjje": qjje}))
        }
        None => tax.fail("2002", "纳税人不存在", "unknown_taxpayer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_have_exactly_two_decimals() {
        assert_eq!(hundredths("1200000.00"), Some(120_000_000));
        assert_eq!(hundredths("89.56"), Some(8_956));
        assert_eq!(hundredths("0.00"), Some(0));
        for bad in [
            "1200000",
            "1200000.0",
            "1.234",
            "-1.00",
            "1e3.00",
            ".50",
            "",
            "１.00",
        ] {
            assert_eq!(hundredths(bad), None, "{bad}");
        }
    }

    #[test]
    fn deed_tax_is_one_percent_up_to_90_square_metres() {
        assert_eq!(yuan(deed_tax_due(120_000_000, 8_956)), "12000.00");
        assert_eq!(yuan(deed_tax_due(120_000_000, 9_000)), "12000.00");
        assert_eq!(yuan(deed_tax_due(120_000_000, 9_001)), "18000.00");
        // Rounded half up to the fen.
        assert_eq!(yuan(deed_tax_due(12_345, 5_000)), "1.23");
        assert_eq!(yuan(deed_tax_due(12_350, 5_000)), "1.24");
        assert_eq!(yuan(deed_tax_due(12_345, 12_000)), "1.85");
    }
}
