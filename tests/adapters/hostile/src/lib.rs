//! A deliberately hostile adapter for the gateway's isolation tests (department id `hostile`).
//!
//! Two of its matters fail on delivery in the two ways a timeout can be blamed, the third
//! streams its materials to its department and reports its own memory (see [`MATTERS`]).
//! Each lookup misbehaves in one way the host must contain:
//! - `hostile.echo`: returns the query unchanged (the gateway still serves after the others);
//! - `hostile.trap`: panics, which traps the instance;
//! - `hostile.loop`: spins forever (fuel/epoch interruption must stop it);
//! - `hostile.memory`: allocates 1 MiB chunks forever, touching each (memory limits must stop it);
//! - `hostile.escape`: tries to reach other hosts and paths through `department-http`;
//! - `hostile.state`: counts calls in a static (must read 1 if every call gets a fresh instance);
//! - `hostile.slow-host`: calls `/slow` on its department (host-call timeouts must end it);
//! - `hostile.echo-error`: fails with a message that repeats the query whole, as department
//!   systems' error texts do ("无此人: 张三 110…"), so the gateway must mask what it passes on
//!   and logs: a protocol error, or a field problem when the query says `"invalid": true`.
//! - `hostile.reject-pii`: a rejection whose *code* carries the query's `id_number`, `phone`
//!   and `name`; with `"invalid": true`, a field problem whose *field path* and code do.
//! - `hostile.secret`: reads the department's setting named by the query's `key` and echoes it
//!   everywhere it can: a log line, then its answer (`"as": "result"`), a rejection's code and
//!   message (`"rejected"`) or a protocol error (default).
//! - `hostile.log-forge`: logs the query's `lines`, each meant to look like a gateway log line.
//! - `hostile.panic`: panics with the query's `message` (the trap's text carries it).
//! - `hostile.chatty`: makes `calls` department calls of `GET /delay/<ms><query>`, each of which
//!   the test department answers after `ms`: its own work is microseconds, its waiting is not.
//! - `hostile.sleep`: sleeps `ms` on the WASI clock (its own doing), then answers, or, with
//!   `"claim": "timeout"`, claims the department timed out.
//! - `hostile.big`: answers a JSON object about `bytes` long.
//! - `hostile.methods`: tries `CONNECT` and `TRACE` (and a lower-case `get`).
//! - `hostile.keys`: tries every way to read the bytes of the host-held key named by the
//!   query's `key` (contract 0.3 `crypto`): `config.get` of its name, `keys.<name>` and the
//!   query's `path` (where its file is), `crypto` with every algorithm whatever the key's kind,
//!   `department-http` to `file://<path>` and climbing to the path; logs every answer, and
//!   answers them all, with the MAC of `message` under the key when it is an hmac key.

use sdk::http::{HttpError, Request};
use sdk::{
    AdapterError, CallbackRequest, Description, FieldError, LookupInfo, Receipt, StatusReport,
    Submission,
};
use serde_json::{Value, json};
use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};

/// The lookups, in the order `describe` lists them.
pub const LOOKUPS: [&str; 19] = [
    "hostile.echo",
    "hostile.trap",
    "hostile.loop",
    "hostile.memory",
    "hostile.escape",
    "hostile.state",
    "hostile.slow-host",
    "hostile.echo-error",
    "hostile.reject-pii",
    "hostile.secret",
    "hostile.log-forge",
    "hostile.panic",
    "hostile.chatty",
    "hostile.sleep",
    "hostile.big",
    "hostile.methods",
    "hostile.busy",
    "hostile.bomb",
    "hostile.keys",
];

/// Matters: `hostile.sleepy` sleeps past the call's time limit (the adapter's fault),
/// `hostile.stuck` calls a department that never answers and reports the department's timeout
/// (the department's fault); `hostile.upload` sends every file material of its submission to
/// its department (see [`upload`]) and answers how large its linear memory grew meanwhile.
pub const MATTERS: [&str; 3] = ["hostile.sleepy", "hostile.stuck", "hostile.upload"];

/// Bytes of this instance's linear memory now (its high-water mark: wasm memory never shrinks).
fn memory_bytes() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::memory_size(0) as u64 * 65536
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

/// `hostile.upload`: each file material of the submission to the department, as the payload's
/// `mode` says, with the sdk's body builders (the host streams the bytes):
/// - `multipart` (default): `POST /upload`, a `multipart/form-data` form (boundary
///   `hostile-boundary`) with the code and the file, and `X-Body-SM3`: the SM3 of the whole
///   body, read through in slices as a signature over the body would be;
/// - `base64`: `POST /upload-xml`, a GBK XML document with the file in base64;
/// - `chunks`: `PUT /upload/{code}/{n}` per chunk of `chunk` bytes (default 4 MiB), each with
///   `X-Chunk-SM3`;
/// - `unknown`: a slice of a material the call does not carry (the host must refuse it).
///
/// Answers `{"memory_bytes", "sent", "statuses"}`.
pub fn upload(submission: &Submission) -> Result<Receipt, AdapterError> {
    use sdk::http::{Body, Multipart, Slice};
    let q: Value = serde_json::from_str(&submission.payload).unwrap_or(Value::Null);
    let mut statuses = Vec::new();
    if text(&q, "mode") == "unknown" {
        let sent = Request::post("/upload")
            .parts(Body::new().material(Slice::whole("not-in-this-call")))
            .send();
        statuses.push(outcome("/upload", &sent.map(|r| r.status)));
    }
    for material in &submission.materials {
        let (Some(file), Some(slice)) = (material.file(), material.slice()) else {
            continue;
        };
        let code = material.code.as_str();
        match text(&q, "mode") {
            "unknown" => {}
            "base64" => {
                let xml = format!(
                    "<?xml version=\"1.0\" encoding=\"GBK\"?><wj><dm>{code}</dm><mc>{}</mc><nr>@@NR@@</nr></wj>",
                    sdk::xml::escape(&material.name)
                );
                let body = Body::splice(sdk::xml::encode_gbk(&xml)?, "@@NR@@", slice.base64())?;
                let answer = Request::post("/upload-xml")
                    .header("Content-Type", "text/xml; charset=GBK")
                    .parts(body)
                    .send()?;
                statuses.push(json!(answer.status));
            }
            "chunks" => {
                let size = q["chunk"].as_u64().unwrap_or(4 << 20);
                for chunk in sdk::materials::chunks(file.size, size) {
                    let answer = Request::put(format!("/upload/{code}/{}", chunk.index))
                        .header("X-Chunk-SM3", chunk.sm3_hex(code)?)
                        .parts(Body::from(chunk.slice(code)))
                        .send()?;
                    statuses.push(json!(answer.status));
                }
            }
            _ => {
                let form = Multipart::form_data()
                    .boundary("hostile-boundary")
                    .field("code", code)
                    .file("file", "material.bin", &file.media_type, slice);
                let (content_type, body) = form.finish();
                let sm3 = body.sm3_hex()?;
                let answer = Request::post("/upload")
                    .header("Content-Type", content_type)
                    .header("X-Body-SM3", sm3)
                    .parts(body)
                    .send()?;
                statuses.push(json!(answer.status));
            }
        }
    }
    let mut receipt = Receipt::accepted("UPLOAD-1");
    receipt.outputs = json!({
        "memory_bytes": memory_bytes(),
        "sent": statuses.len(),
        "statuses": statuses,
    })
    .to_string();
    Ok(receipt)
}

/// Paths that must never leave the department: absolute URLs, scheme-relative URLs, climbing out
/// of the base in every encoding of a dot segment and a slash, and userinfo tricks.
pub const ESCAPE_PATHS: [&str; 19] = [
    "http://127.0.0.1:9/x",
    "//127.0.0.1:9/x",
    "https://example.com/",
    "/../../etc",
    "@127.0.0.1/x",
    "/%2e%2e/x",
    "/..%2f",
    "/..%2fx",
    "/%2E%2E%2F",
    "/%2E%2E%2Fx",
    "/.%2e/x",
    "/%252e%252e/x",
    "/%252E%252E%252Fx",
    "/a%2fb",
    "/..%5cx",
    "/%c0%ae%c0%ae/x",
    "/..;/x",
    "/．．/x",
    "/a%0d%0aHost:%20evil",
];

/// Calls counted in this instance's memory.
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The hostile adapter.
pub struct Hostile;

/// How one send attempt ended, as `{"path", "outcome", "detail"}`.
pub fn outcome(path: &str, result: &Result<u16, HttpError>) -> Value {
    let (outcome, detail) = match result {
        Ok(status) => ("sent", json!(format!("HTTP {status}"))),
        Err(HttpError::Forbidden(why)) => ("forbidden", json!(why)),
        Err(HttpError::Unavailable(why)) => ("unavailable", json!(why)),
        Err(HttpError::Timeout) => ("timeout", Value::Null),
        Err(HttpError::TooLarge) => ("too-large", Value::Null),
    };
    json!({ "path": path, "outcome": outcome, "detail": detail })
}

fn attempt(path: &str) -> Value {
    let result = Request::get(path).send().map(|r| r.status);
    outcome(path, &result)
}

/// Every way to get at a host-held key's bytes, each answer kept (and logged).
fn pry_keys(query: &str) -> String {
    use sdk::crypto::{self, Mac, SignatureAlgorithm as Alg};
    let q: Value = serde_json::from_str(query).unwrap_or(Value::Null);
    let (key, path) = (text(&q, "key"), text(&q, "path"));
    let message = text(&q, "message").as_bytes();
    let shown = |r: Result<Vec<u8>, crypto::CryptoError>| match r {
        Ok(bytes) => json!({ "ok": sdk::sign::base64_encode(&bytes) }),
        Err(e) => json!({ "error": format!("{e:?}") }),
    };
    let mut answers = json!({
        "config": [
            sdk::config::get(key),
            sdk::config::get(&format!("keys.{key}")),
            sdk::config::get(&format!("keys.{key}.value")),
            sdk::config::get(path),
        ],
        "sign_sm2": shown(crypto::sign(key, Alg::Sm2Sm3, message)),
        "sign_ed25519": shown(crypto::sign(key, Alg::Ed25519, message)),
        "verify_sm2": format!("{:?}", crypto::verify(key, Alg::Sm2Sm3, message, &[0x30, 0])),
        "verify_ed25519": format!("{:?}", crypto::verify(key, Alg::Ed25519, message, &[0; 64])),
        "hmac_sha256": shown(crypto::mac(key, Mac::HmacSha256, message)),
        "hmac_sm3": shown(crypto::mac(key, Mac::HmacSm3, message)),
        "sm4_encrypt": shown(crypto::sm4_encrypt(key, &[0; 16], message)),
        "sm4_decrypt": shown(crypto::sm4_decrypt(key, &[0; 16], &[0; 32])),
        "sm4_bad_iv": shown(crypto::sm4_encrypt(key, &[0; 3], message)),
        // The key's file, as a URL and climbing out of the department's base (the host
        // refuses both before sending).
        "http": [
            attempt(&format!("file://{path}")),
            attempt(&format!("/../../..{path}")),
        ],
    });
    answers["mac_hex"] = json!(crypto::mac_hex(key, Mac::HmacSha256, message).ok());
    sdk::log::warn(&format!("what the host gave for key {key}: {answers}"));
    answers.to_string()
}

/// A string field of the query, or `""`.
fn text<'a>(query: &'a Value, key: &str) -> &'a str {
    query[key].as_str().unwrap_or_default()
}

/// Sleep on the WASI clock: the adapter's own waiting, no department involved.
fn sleep_ms(ms: u64) {
    std::thread::sleep(std::time::Duration::from_millis(ms));
}

/// Until the department's `GET /gate` answers 200 (asked every 20 ms): how a test holds an
/// instance for exactly as long as it needs, whatever the machine's load. With the query's
/// `tag`, it asks `GET /gate?tag=<tag>`: the department then knows this call got there.
fn wait_for_gate(q: &Value) {
    let path = match q["tag"].as_str() {
        Some(tag) => format!("/gate?tag={tag}"),
        None => "/gate".to_string(),
    };
    while !Request::get(&path).send().is_ok_and(|r| r.status == 200) {
        sleep_ms(20);
    }
}

fn unknown(what: &str, name: &str) -> AdapterError {
    AdapterError::InvalidInput(vec![FieldError::new(
        "",
        what,
        format!("hostile adapter has no {name}"),
    )])
}

/// Never returns: a counter the optimiser must keep.
fn spin() -> ! {
    let mut counter: u64 = 0;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Never returns: 1 MiB chunks, each page written, all kept alive.
fn hog() -> ! {
    const CHUNK: usize = 1 << 20;
    let mut kept: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; CHUNK];
        for i in (0..CHUNK).step_by(4096) {
            chunk[i] = (i as u8).wrapping_add(1);
        }
        kept.push(black_box(chunk));
        black_box(&kept);
    }
}

impl sdk::Adapter for Hostile {
    fn describe() -> Description {
        Description {
            department: "hostile".into(),
            contract_version: sdk::CONTRACT_VERSION.into(),
            adapter_version: "1.0.0".into(),
            matters: MATTERS
                .iter()
                .map(|code| sdk::MatterInfo {
                    code: (*code).into(),
                    name: format!("deliberately failing matter {code}"),
                    input_schema: r#"{"type":"object"}"#.into(),
                })
                .collect(),
            lookups: LOOKUPS
                .iter()
                .map(|name| LookupInfo {
                    name: (*name).into(),
                    description: format!("deliberately misbehaving lookup {name}"),
                    input_schema: r#"{"type":"object"}"#.into(),
                })
                .collect(),
        }
    }

    fn validate(matter: String, _payload: String) -> Vec<FieldError> {
        if MATTERS.contains(&matter.as_str()) {
            return Vec::new();
        }
        vec![FieldError::new(
            "",
            "unknown_matter",
            format!("hostile adapter has no matter {matter}"),
        )]
    }

    fn submit(submission: Submission) -> Result<Receipt, AdapterError> {
        match submission.matter.as_str() {
            "hostile.sleepy" => {
                // Far past any call time limit the tests configure.
                sleep_ms(60_000);
                Err(AdapterError::Internal("woke up".into()))
            }
            "hostile.stuck" => match Request::post("/slow").send() {
                Err(HttpError::Timeout) => Err(AdapterError::Timeout(
                    "the department did not answer".into(),
                )),
                other => Err(AdapterError::Internal(format!(
                    "unexpected: {:?}",
                    other.map(|r| r.status)
                ))),
            },
            "hostile.upload" => upload(&submission),
            other => Err(unknown("unknown_matter", other)),
        }
    }

    fn status(matter: String, _reference: String) -> Result<StatusReport, AdapterError> {
        Err(unknown("unknown_matter", &matter))
    }

    fn lookup(name: String, query: String) -> Result<String, AdapterError> {
        match name.as_str() {
            "hostile.echo" => Ok(query),
            "hostile.trap" => panic!("deliberate trap"),
            "hostile.loop" => spin(),
            "hostile.memory" => hog(),
            "hostile.escape" => {
                let attempts: Vec<Value> = ESCAPE_PATHS.iter().map(|p| attempt(p)).collect();
                Ok(json!({ "attempts": attempts }).to_string())
            }
            "hostile.state" => {
                let count = COUNTER.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(json!({ "count": count }).to_string())
            }
            "hostile.slow-host" => {
                // The single attempt, both flat and in the `attempts` list `escape` uses.
                let mut answer = attempt("/slow");
                answer["attempts"] = json!([answer.clone()]);
                Ok(answer.to_string())
            }
            "hostile.echo-error" if query.contains(r#""invalid":true"#) => {
                Err(AdapterError::InvalidInput(vec![FieldError::new(
                    "name",
                    "not_found",
                    format!("无此人: {query}"),
                )]))
            }
            "hostile.echo-error" => {
                Err(AdapterError::Protocol(format!("部门答复: 无此人 {query}")))
            }
            "hostile.keys" => Ok(pry_keys(&query)),
            other => misbehave(other, &query),
        }
    }

    fn on_callback(_request: CallbackRequest) -> Result<StatusReport, AdapterError> {
        Err(AdapterError::InvalidInput(vec![FieldError::new(
            "",
            "no_callbacks",
            "hostile department does not call back",
        )]))
    }
}

/// The lookups added for the hostile-adapter issue: leaks, forged log lines, limits.
fn misbehave(name: &str, query: &str) -> Result<String, AdapterError> {
    let q: Value = serde_json::from_str(query).unwrap_or(Value::Null);
    let person = format!(
        "{} {} {}",
        text(&q, "id_number"),
        text(&q, "phone"),
        text(&q, "name")
    );
    match name {
        "hostile.reject-pii" if q["invalid"] == json!(true) => {
            Err(AdapterError::InvalidInput(vec![FieldError::new(
                format!("applicant.{person}"),
                format!("bad-{person}"),
                "not accepted",
            )]))
        }
        "hostile.reject-pii" => Err(AdapterError::Rejected(sdk::Rejection {
            code: format!("拒绝 {person}"),
            message: "refused".into(),
        })),
        "hostile.secret" => {
            let secret = sdk::config::get(text(&q, "key")).unwrap_or_default();
            sdk::log::warn(&format!("the secret is {secret}"));
            match text(&q, "as") {
                "result" => Ok(json!({ "echo": secret }).to_string()),
                "rejected" => Err(AdapterError::Rejected(sdk::Rejection {
                    code: format!("E-{secret}"),
                    message: format!("refused with {secret}"),
                })),
                "invalid" => Err(AdapterError::InvalidInput(vec![FieldError::new(
                    format!("field.{secret}"),
                    "bad",
                    format!("bad {secret}"),
                )])),
                _ => Err(AdapterError::Protocol(format!("answer held {secret}"))),
            }
        }
        "hostile.log-forge" => {
            for line in q["lines"].as_array().into_iter().flatten() {
                sdk::log::info(line.as_str().unwrap_or_default());
            }
            Ok("{}".into())
        }
        "hostile.panic" => panic!("{}", text(&q, "message")),
        "hostile.chatty" => {
            let calls = q["calls"].as_u64().unwrap_or(1);
            let ms = q["ms"].as_u64().unwrap_or(10);
            // An optional query string, as an adapter writes one (personal data in it, say).
            let path = format!("/delay/{ms}{}", text(&q, "query"));
            let mut answered = 0;
            for _ in 0..calls {
                if Request::get(path.as_str()).send().is_ok() {
                    answered += 1;
                }
            }
            Ok(json!({ "calls": calls, "answered": answered }).to_string())
        }
        "hostile.sleep" => {
            sleep_ms(q["ms"].as_u64().unwrap_or(0));
            if text(&q, "claim") == "timeout" {
                return Err(AdapterError::Timeout(
                    "the department did not answer".into(),
                ));
            }
            Ok(json!({ "slept": true }).to_string())
        }
        "hostile.big" => {
            let bytes = q["bytes"].as_u64().unwrap_or(0) as usize;
            let mut answer = String::with_capacity(bytes + 16);
            answer.push_str("{\"data\":\"");
            answer.extend(std::iter::repeat_n('x', bytes));
            answer.push_str("\"}");
            Ok(black_box(answer))
        }
        "hostile.methods" => {
            let attempts: Vec<Value> = ["CONNECT", "TRACE", "get"]
                .iter()
                .map(|m| {
                    let result = Request::new(m, "/x").send().map(|r| r.status);
                    outcome(m, &result)
                })
                .collect();
            Ok(json!({ "attempts": attempts }).to_string())
        }
        // Holds its instance for `ms` of sleep, then, with `until_open`, until the department's
        // gate opens: fills a department's bound on instances.
        "hostile.busy" => {
            sleep_ms(q["ms"].as_u64().unwrap_or(1000));
            if q["until_open"].as_bool() == Some(true) {
                wait_for_gate(&q);
            }
            Ok("{}".into())
        }
        // Grows to `mib` MiB of touched memory and holds it for `ms`, then, with `until_open`,
        // until the department's gate opens: fills the memory budget.
        "hostile.bomb" => {
            let chunks = q["mib"].as_u64().unwrap_or(8) as usize;
            let mut kept: Vec<Vec<u8>> = Vec::with_capacity(chunks);
            for _ in 0..chunks {
                let mut chunk = vec![0u8; 1 << 20];
                for i in (0..chunk.len()).step_by(4096) {
                    chunk[i] = 1;
                }
                kept.push(black_box(chunk));
            }
            sleep_ms(q["ms"].as_u64().unwrap_or(0));
            if q["until_open"].as_bool() == Some(true) {
                wait_for_gate(&q);
            }
            black_box(&kept);
            Ok("{}".into())
        }
        other => Err(unknown("unknown_lookup", other)),
    }
}

sdk::export_adapter!(Hostile);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_named_as_the_isolation_tests_expect() {
        let name =
            |r: Result<u16, HttpError>| outcome("/p", &r)["outcome"].as_str().unwrap().to_string();
        assert_eq!(name(Ok(200)), "sent");
        assert_eq!(name(Err(HttpError::Forbidden("no".into()))), "forbidden");
        assert_eq!(
            name(Err(HttpError::Unavailable("down".into()))),
            "unavailable"
        );
        assert_eq!(name(Err(HttpError::Timeout)), "timeout");
        assert_eq!(name(Err(HttpError::TooLarge)), "too-large");
        let v = outcome("/x", &Err(HttpError::Forbidden("absolute URL".into())));
        assert_eq!(
            v,
            json!({"path": "/x", "outcome": "forbidden", "detail": "absolute URL"})
        );
    }

    #[test]
    fn describe_lists_every_lookup_and_matter() {
        use sdk::Adapter;
        let d = Hostile::describe();
        assert_eq!(d.department, "hostile");
        let matters: Vec<&str> = d.matters.iter().map(|m| m.code.as_str()).collect();
        assert_eq!(matters, MATTERS);
        let names: Vec<&str> = d.lookups.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, LOOKUPS);
        assert!(
            d.lookups
                .iter()
                .all(|l| l.input_schema == r#"{"type":"object"}"#)
        );
    }

    #[test]
    fn harmless_lookups_answer() {
        use sdk::Adapter;
        assert_eq!(
            Hostile::lookup("hostile.echo".into(), r#"{"a":1}"#.into()).unwrap(),
            r#"{"a":1}"#
        );
        let count = |s: String| {
            serde_json::from_str::<Value>(&s).unwrap()["count"]
                .as_u64()
                .unwrap()
        };
        let first = count(Hostile::lookup("hostile.state".into(), "{}".into()).unwrap());
        let second = count(Hostile::lookup("hostile.state".into(), "{}".into()).unwrap());
        assert_eq!(
            second,
            first + 1,
            "one instance counts up; the host must give fresh ones"
        );
        assert!(matches!(
            Hostile::lookup("hostile.nope".into(), "{}".into()),
            Err(AdapterError::InvalidInput(_))
        ));
    }
}
