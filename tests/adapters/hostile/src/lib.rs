//! A deliberately hostile adapter for the gateway's isolation tests (department id `hostile`).
//!
//! It serves no matters. Each lookup misbehaves in one way the host must contain:
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

use sdk::http::{HttpError, Request};
use sdk::{
    AdapterError, CallbackRequest, Description, FieldError, LookupInfo, Receipt, StatusReport,
    Submission,
};
use serde_json::{Value, json};
use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};

/// The lookups, in the order `describe` lists them.
pub const LOOKUPS: [&str; 8] = [
    "hostile.echo",
    "hostile.trap",
    "hostile.loop",
    "hostile.memory",
    "hostile.escape",
    "hostile.state",
    "hostile.slow-host",
    "hostile.echo-error",
];

/// Paths that must never leave the department: absolute URLs, scheme-relative URLs, climbing out
/// of the base, and userinfo tricks.
pub const ESCAPE_PATHS: [&str; 5] = [
    "http://127.0.0.1:9/x",
    "//127.0.0.1:9/x",
    "https://example.com/",
    "/../../etc",
    "@127.0.0.1/x",
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
            matters: Vec::new(),
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
        vec![FieldError::new(
            "",
            "unknown_matter",
            format!("hostile adapter has no matter {matter}"),
        )]
    }

    fn submit(submission: Submission) -> Result<Receipt, AdapterError> {
        Err(unknown("unknown_matter", &submission.matter))
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
            other => Err(unknown("unknown_lookup", other)),
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
    fn describe_lists_every_lookup_and_no_matter() {
        use sdk::Adapter;
        let d = Hostile::describe();
        assert_eq!(d.department, "hostile");
        assert!(d.matters.is_empty());
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
