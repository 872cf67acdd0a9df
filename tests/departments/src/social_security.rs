//! 人力资源和社会保障 (社保): 单位参保登记, the enterprise's social-insurance registration, over
//! fixed-length GB18030 messages (定长报文) signed with SM2 (PROTOCOLS.md, "Social security").
//!
//! - `POST /sbxt/jy` (one route for every transaction), body: one message, GB18030. A message
//!   is a 32-byte header — 交易码 `jym` (4, text), 报文总长度 `bwcd` (8 digits, the whole
//!   message's length in bytes, header included), 流水号 `lsh` (20 digits) — then the body
//!   fields of its transaction, back to back. Text is right-padded with spaces, numbers
//!   left-padded with zeros, widths counted in GB18030 bytes (a Chinese character is 2).
//! - `X-SB-Sign`: base64 of the SM2-with-SM3 signature (distinguishing id `1234567812345678`,
//!   DER) over the message's bytes, by the gateway's key; the department's answers carry the
//!   same header, signed by the department's key. Both key pairs are generated at start; the
//!   gateway's private key and the department's public key are written as PEM files into the
//!   certificate folder ([`GATEWAY_KEY_FILE`], [`DEPARTMENT_PUBLIC_KEY_FILE`]).
//! - `SB01` 参保登记: `tyshxydm` 18, `dwmc` 100, `fddbr` 40, `dz` 120, `zgrs` 6 (number),
//!   `cbrq` 8 (number, `YYYYMMDD`). `SB02` 登记状态: `dwbh` 20.
//! - Every answer (HTTP 200 when the message was read, 400 / 401 when it was not) has the body
//!   `fhm` 4 (返回码), `fhxx` 80 (返回信息), `dwbh` 20 (单位社保编号), `zt` 2 (`01` 受理中,
//!   `02` 已登记, `03` 不予登记), `cwzd` 20 (the field a business error is about).
//! - Message faults, answered 400 (401 for the signature): `9001` 报文长度不符 (the declared
//!   length is not the message's, or the body is not its transaction's), `9002` 字段填充不符
//!   (a number that is not zero-padded digits, text that is not GB18030 or starts with a
//!   space), `9003` 签名验证失败 (no signature, not base64, not valid), `9004` 未知交易码.
//! - Business errors, inside HTTP 200 with `zt` `03`: `1001` 统一社会信用代码校验位错误,
//!   `1002` 职工人数为0的单位不予参保登记 (`cwzd` names the field), `2001` 单位社保编号不存在.
//! - The serial number is idempotent: a repeated `lsh` gets the first answer back.
//! - A registration is `01` 受理中 when taken and `02` 已登记 from `ticket_delay` on.
//! - [`SocialSecurity::tamper_answers`]: answers are changed after signing (a man in the
//!   middle), so an adapter that checks the signature refuses them.

use crate::Department;
use crate::common::{self, Profile, Sim};
use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use sm2::dsa::signature::{Signer as _, Verifier as _};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The gateway's SM2 private key (PKCS#8 PEM), in the certificate folder: the host signs
/// requests with it (`[departments.social-security.keys.gateway]`).
pub const GATEWAY_KEY_FILE: &str = "social-security-gateway-key.pem";
/// The department's SM2 public key (SPKI PEM), in the certificate folder: answers are checked
/// with it (`[departments.social-security.keys.department]`).
pub const DEPARTMENT_PUBLIC_KEY_FILE: &str = "social-security-department.pem";

/// The header: 交易码 4, 报文总长度 8, 流水号 20.
const HEADER: usize = 32;
/// The SM2 distinguishing id (GM/T 0009's default), as the gateway's.
const DISTID: &str = "1234567812345678";

/// Width of each field of a transaction's request body, in order; `true` for numbers.
const SB01: &[(&str, usize, bool)] = &[
    ("tyshxydm", 18, false),
    ("dwmc", 100, false),
    ("fddbr", 40, false),
    ("dz", 120, false),
    ("zgrs", 6, true),
    ("cbrq", 8, true),
];
const SB02: &[(&str, usize, bool)] = &[("dwbh", 20, false)];
/// The answer's body.
const ANSWER: &[(&str, usize, bool)] = &[
    ("fhm", 4, false),
    ("fhxx", 80, false),
    ("dwbh", 20, false),
    ("zt", 2, false),
    ("cwzd", 20, false),
];

/// The simulated social-security bureau.
#[derive(Clone, Debug)]
pub struct SocialSecurity {
    /// Its address, faults and counters (operations `SB01`, `SB02`, `unknown`).
    pub department: Department,
    state: Arc<State_>,
}

impl SocialSecurity {
    /// Change every answer after it is signed (one byte of `fhxx`), or stop doing so.
    pub fn tamper_answers(&self, on: bool) {
        self.state.tamper.store(on, Ordering::SeqCst);
    }

    /// The registrations taken: credit code → 单位社保编号.
    pub fn registrations(&self) -> Vec<(String, String)> {
        let regs = self
            .state
            .registrations
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<_> = regs
            .values()
            .map(|r| (r.credit_code.clone(), r.number.clone()))
            .collect();
        out.sort();
        out
    }

    /// The department's public key file (SPKI PEM).
    pub fn department_public_key(&self) -> &Path {
        &self.state.files.1
    }

    /// The gateway's private key file (PKCS#8 PEM).
    pub fn gateway_key(&self) -> &Path {
        &self.state.files.0
    }
}

#[derive(Debug)]
struct Registration {
    credit_code: String,
    number: String,
    taken: Instant,
}

struct State_ {
    sim: Arc<Sim>,
    ticket_delay: Duration,
    /// Signs answers.
    department: sm2::dsa::SigningKey,
    /// Checks requests.
    gateway: sm2::dsa::VerifyingKey,
    /// By 单位社保编号.
    registrations: Mutex<HashMap<String, Registration>>,
    tamper: AtomicBool,
    /// The first answer to each serial number (流水号) that registered.
    answers: Mutex<HashMap<String, Signed>>,
    /// (gateway key file, department public key file).
    files: (std::path::PathBuf, std::path::PathBuf),
}

impl std::fmt::Debug for State_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State_").finish_non_exhaustive()
    }
}

fn random_key() -> sm2::SecretKey {
    loop {
        // 32 random bytes are a valid scalar but for a vanishing few (zero, or ≥ n).
        if let Ok(key) = sm2::SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
            return key;
        }
    }
}

/// Starts the bureau; its keys are made now and written into `key_dir`.
pub(crate) async fn start(
    port: u16,
    ticket_delay: Duration,
    key_dir: &Path,
) -> anyhow::Result<SocialSecurity> {
    use sm2::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
    let department = random_key();
    let gateway = random_key();
    std::fs::create_dir_all(key_dir).with_context(|| format!("creating {}", key_dir.display()))?;
    let gateway_file = key_dir.join(GATEWAY_KEY_FILE);
    let department_file = key_dir.join(DEPARTMENT_PUBLIC_KEY_FILE);
    crate::tls::write(
        key_dir,
        GATEWAY_KEY_FILE,
        &gateway
            .to_pkcs8_pem(LineEnding::LF)
            .context("encoding the gateway's SM2 key")?,
        true,
    )?;
    crate::tls::write(
        key_dir,
        DEPARTMENT_PUBLIC_KEY_FILE,
        &department
            .public_key()
            .to_public_key_pem(LineEnding::LF)
            .context("encoding the department's SM2 public key")?,
        false,
    )?;
    let sim = Sim::new("social-security");
    let state = Arc::new(State_ {
        sim: sim.clone(),
        ticket_delay,
        department: sm2::dsa::SigningKey::new(DISTID, &department)?,
        gateway: sm2::dsa::VerifyingKey::new(DISTID, gateway.public_key())?,
        registrations: Mutex::default(),
        tamper: AtomicBool::new(false),
        answers: Mutex::default(),
        files: (gateway_file, department_file),
    });
    let routes = Router::new()
        .route("/sbxt/jy", post(transaction))
        .with_state(state.clone());
    let profile = Profile {
        operation: |req| match req.uri().path() {
            // The transaction code is in the body; the fault layer counts the route.
            "/sbxt/jy" => "transaction".into(),
            other => other.to_string(),
        },
        content_type: "application/octet-stream",
    };
    let router = common::finish(routes, sim.clone(), profile);
    let department = crate::serve_plain(sim, port, router).await?;
    Ok(SocialSecurity { department, state })
}

/// One answer: what it says, before it is framed and signed.
struct Outcome {
    status: StatusCode,
    code: &'static str,
    message: String,
    number: String,
    state: &'static str,
    field: &'static str,
}

impl Outcome {
    fn fault(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Outcome {
            status,
            code,
            message: message.into(),
            number: String::new(),
            state: "",
            field: "",
        }
    }
}

async fn transaction(
    State(state): State<Arc<State_>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let code = body.get(..4).unwrap_or_default();
    let code = String::from_utf8_lossy(code).into_owned();
    let serial = body
        .get(12..HEADER)
        .filter(|s| s.iter().all(u8::is_ascii_digit))
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .unwrap_or_else(|| "0".repeat(20));
    state
        .sim
        .count_received(if matches!(code.as_str(), "SB01" | "SB02") {
            &code
        } else {
            "unknown"
        });
    if let Some(refusal) = check_signature(&state, &headers, &body) {
        state.sim.reject("signature");
        return out(&state, finish(&state, &code, &serial, refusal));
    }
    let fields = match read(&body, &code) {
        Ok(fields) => fields,
        Err(refusal) => {
            state.sim.reject(refusal.code);
            return out(&state, finish(&state, &code, &serial, refusal));
        }
    };
    if code == "SB02" {
        let outcome = status_of(&state, &fields["dwbh"]);
        return out(&state, finish(&state, &code, &serial, outcome));
    }
    let mut answers = state.answers.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(first) = answers.get(&serial) {
        return out(&state, first.clone());
    }
    let outcome = register(&state, &fields);
    let ok = outcome.code == "0000";
    let answer = finish(&state, &code, &serial, outcome);
    // A business refusal is not kept: a corrected application may reuse the serial.
    if ok {
        answers.insert(serial, answer.clone());
    }
    out(&state, answer)
}

fn check_signature(state: &State_, headers: &HeaderMap, body: &[u8]) -> Option<Outcome> {
    let refused = |why: &str| {
        Some(Outcome::fault(
            StatusCode::UNAUTHORIZED,
            "9003",
            format!("签名验证失败：{why}"),
        ))
    };
    let Some(sign) = headers.get("x-sb-sign").and_then(|v| v.to_str().ok()) else {
        return refused("缺少签名");
    };
    let Ok(der) = base64::engine::general_purpose::STANDARD.decode(sign) else {
        return refused("签名不是Base64");
    };
    let Some(signature) = from_der(&der) else {
        return refused("签名不是DER编码");
    };
    if state.gateway.verify(body, &signature).is_err() {
        return refused("签名与报文不符");
    }
    None
}

/// A request's fields by name, text with its padding removed.
fn read(body: &[u8], code: &str) -> Result<HashMap<&'static str, String>, Outcome> {
    let layout = match code {
        "SB01" => SB01,
        "SB02" => SB02,
        _ => {
            return Err(Outcome::fault(
                StatusCode::BAD_REQUEST,
                "9004",
                format!("未知交易码「{}」", code.trim()),
            ));
        }
    };
    let bad_length = |why: String| Outcome::fault(StatusCode::BAD_REQUEST, "9001", why);
    let declared = body
        .get(4..12)
        .filter(|d| d.iter().all(u8::is_ascii_digit))
        .and_then(|d| std::str::from_utf8(d).ok()?.parse::<usize>().ok());
    if declared != Some(body.len()) {
        return Err(bad_length(format!(
            "报文长度不符：声明{}字节，实际{}字节",
            declared.map_or("无效".into(), |d| d.to_string()),
            body.len()
        )));
    }
    let expected = HEADER + layout.iter().map(|f| f.1).sum::<usize>();
    if body.len() != expected {
        return Err(bad_length(format!(
            "报文长度不符：交易{code}应为{expected}字节，实际{}字节",
            body.len()
        )));
    }
    let padding = |name: &str| {
        Outcome::fault(
            StatusCode::BAD_REQUEST,
            "9002",
            format!("字段填充不符：{name}"),
        )
    };
    let mut at = HEADER;
    let mut fields = HashMap::new();
    for &(name, width, number) in layout {
        let raw = &body[at..at + width];
        at += width;
        let value = if number {
            if !raw.iter().all(u8::is_ascii_digit) {
                return Err(padding(name));
            }
            String::from_utf8_lossy(raw).into_owned()
        } else {
            let (text, _, malformed) = encoding_rs::GB18030.decode(raw);
            if malformed || text.starts_with(' ') && text.trim() != "" {
                return Err(padding(name));
            }
            text.trim_end_matches(' ').to_string()
        };
        fields.insert(name, value);
    }
    Ok(fields)
}

fn register(state: &State_, fields: &HashMap<&'static str, String>) -> Outcome {
    let refused = |code, message: &str, field| Outcome {
        status: StatusCode::OK,
        code,
        message: message.into(),
        number: String::new(),
        state: "03",
        field,
    };
    if !crate::ids::uscc_valid(&fields["tyshxydm"]) {
        return refused("1001", "统一社会信用代码校验位错误", "tyshxydm");
    }
    if fields["zgrs"].parse::<u64>().unwrap_or(0) == 0 {
        return refused("1002", "职工人数为0的单位不予参保登记", "zgrs");
    }
    let number = state.sim.next_number("SB");
    state
        .registrations
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            number.clone(),
            Registration {
                credit_code: fields["tyshxydm"].clone(),
                number: number.clone(),
                taken: Instant::now(),
            },
        );
    Outcome {
        status: StatusCode::OK,
        code: "0000",
        message: "受理成功".into(),
        number,
        state: "01",
        field: "",
    }
}

fn status_of(state: &State_, number: &str) -> Outcome {
    let regs = state
        .registrations
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    match regs.get(number) {
        None => Outcome {
            status: StatusCode::OK,
            code: "2001",
            message: "单位社保编号不存在".into(),
            number: number.into(),
            state: "",
            field: "dwbh",
        },
        Some(r) => {
            let done = r.taken.elapsed() >= state.ticket_delay;
            Outcome {
                status: StatusCode::OK,
                code: "0000",
                message: if done {
                    "参保登记完成"
                } else {
                    "受理中"
                }
                .into(),
                number: r.number.clone(),
                state: if done { "02" } else { "01" },
                field: "",
            }
        }
    }
}

/// Frame, sign (and, when asked, tamper with) an answer.
fn finish(state: &State_, code: &str, serial: &str, outcome: Outcome) -> Signed {
    let code = if matches!(code, "SB01" | "SB02") {
        code
    } else {
        "SB00"
    };
    let values = [
        outcome.code.to_string(),
        outcome.message,
        outcome.number,
        outcome.state.to_string(),
        outcome.field.to_string(),
    ];
    let mut body = Vec::new();
    for (&(_, width, _), value) in ANSWER.iter().zip(values) {
        body.extend(pad(&value, width));
    }
    let total = HEADER + body.len();
    let mut message = format!("{code}{total:08}{serial:0>20}").into_bytes();
    message.extend(body);
    let signature: sm2::dsa::Signature = state.department.sign(&message);
    let sign = base64::engine::general_purpose::STANDARD.encode(to_der(&signature));
    Signed {
        status: outcome.status,
        body: Bytes::from(message),
        sign,
    }
}

/// What goes out: the answer as signed, or, with [`SocialSecurity::tamper_answers`], changed
/// after signing (the stored first answer stays as signed).
fn out(state: &State_, answer: Signed) -> Response {
    let mut answer = answer;
    if state.tamper.load(Ordering::SeqCst) {
        // 返回信息's first byte: still a well-formed message, no longer the one signed.
        let mut body = answer.body.to_vec();
        let at = HEADER + 4;
        body[at] = if body[at] == b'X' { b'Y' } else { b'X' };
        answer.body = Bytes::from(body);
    }
    answer.into_response()
}

/// A framed answer and its signature header.
#[derive(Clone, Debug)]
struct Signed {
    status: StatusCode,
    body: Bytes,
    sign: String,
}

impl IntoResponse for Signed {
    fn into_response(self) -> Response {
        (
            self.status,
            [
                ("content-type", "application/octet-stream".to_string()),
                ("x-sb-sign", self.sign),
            ],
            self.body,
        )
            .into_response()
    }
}

/// `value` in GB18030, right-padded with spaces to `width` bytes (cut at a character boundary
/// when too long: answers are the department's own text).
fn pad(value: &str, width: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(width);
    let mut buf = [0; 4];
    for c in value.chars() {
        let (bytes, _, _) = encoding_rs::GB18030.encode(c.encode_utf8(&mut buf));
        if out.len() + bytes.len() > width {
            break;
        }
        out.extend_from_slice(&bytes);
    }
    out.resize(width, b' ');
    out
}

/// An SM2 signature as DER `SEQUENCE { INTEGER r, INTEGER s }` (GM/T 0009).
fn to_der(signature: &sm2::dsa::Signature) -> Vec<u8> {
    use der::Encode as _;
    let bytes = signature.to_bytes();
    let (r, s) = bytes.split_at(32);
    let seq = DerSignature {
        r: der::asn1::UintRef::new(r).expect("32 bytes are an integer"),
        s: der::asn1::UintRef::new(s).expect("32 bytes are an integer"),
    };
    seq.to_der().expect("two integers encode")
}

fn from_der(der_bytes: &[u8]) -> Option<sm2::dsa::Signature> {
    use der::Decode as _;
    let seq = DerSignature::from_der(der_bytes).ok()?;
    let mut bytes = [0u8; 64];
    let (r, s) = (seq.r.as_bytes(), seq.s.as_bytes());
    if r.len() > 32 || s.len() > 32 {
        return None;
    }
    bytes[32 - r.len()..32].copy_from_slice(r);
    bytes[64 - s.len()..].copy_from_slice(s);
    sm2::dsa::Signature::from_slice(&bytes).ok()
}

#[derive(der::Sequence)]
struct DerSignature<'a> {
    r: der::asn1::UintRef<'a>,
    s: der::asn1::UintRef<'a>,
}

/// `X-SB-Sign` for `message` by the SM2 private key in PEM `key_pem` (PKCS#8): what the gateway
/// sends. For tests that speak the protocol themselves.
pub fn sign_message(key_pem: &str, message: &[u8]) -> anyhow::Result<String> {
    use sm2::pkcs8::DecodePrivateKey as _;
    let secret = sm2::SecretKey::from_pkcs8_pem(key_pem.trim()).context("an SM2 PKCS#8 key")?;
    let signing = sm2::dsa::SigningKey::new(DISTID, &secret)?;
    let signature: sm2::dsa::Signature = signing.sign(message);
    Ok(base64::engine::general_purpose::STANDARD.encode(to_der(&signature)))
}

/// Whether `sign` (an `X-SB-Sign` value) is a valid signature of `message` under the SM2 public
/// key in PEM `public_pem` (SPKI): what the gateway's adapter checks.
pub fn verify_message(public_pem: &str, message: &[u8], sign: &str) -> bool {
    use sm2::pkcs8::DecodePublicKey as _;
    let Ok(public) = sm2::PublicKey::from_public_key_pem(public_pem.trim()) else {
        return false;
    };
    let Ok(verifying) = sm2::dsa::VerifyingKey::new(DISTID, public) else {
        return false;
    };
    base64::engine::general_purpose::STANDARD
        .decode(sign)
        .ok()
        .and_then(|der| from_der(&der))
        .is_some_and(|s| verifying.verify(message, &s).is_ok())
}
