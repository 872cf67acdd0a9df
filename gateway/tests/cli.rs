//! The `gateway` binary as an operator runs it: where its flags may stand, and what an error
//! prints. The admin API is a one-shot HTTP server on a free port answering what a running
//! gateway answers to `GET /admin/v1/adapters`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};

fn gateway(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gateway"));
    command
        .args(args)
        .env_remove("GATEWAY_ADMIN_URL")
        .env_remove("GATEWAY_ADMIN_TOKEN")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the gateway binary runs")
}

/// Answers one request with `body` and hands back the request line it read.
fn admin_answering(body: &'static str) -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buffer).unwrap();
            assert!(n > 0, "the request ended before its headers did");
            request.extend_from_slice(&buffer[..n]);
        }
        write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        String::from_utf8_lossy(&request)
            .lines()
            .next()
            .unwrap()
            .to_string()
    });
    (url, server)
}

const ADAPTERS: &str = r#"{"departments":[{"department":"tax","active":"ab12cd34ef56ab12cd34ef56","candidate":null,"percent":null,"versions":[]}]}"#;

#[test]
fn json_is_taken_before_and_after_the_subcommand() {
    for args in [
        ["plugin", "--json", "list", "--admin", "", "--token", "t"],
        ["plugin", "list", "--json", "--admin", "", "--token", "t"],
    ] {
        let (url, server) = admin_answering(ADAPTERS);
        let args: Vec<&str> = args
            .iter()
            .map(|a| if a.is_empty() { url.as_str() } else { a })
            .collect();
        let out = gateway(&args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert_eq!(server.join().unwrap(), "GET /admin/v1/adapters HTTP/1.1");
        let printed: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {stderr}"));
        assert_eq!(printed["departments"][0]["department"], "tax", "{args:?}");
    }
}

#[test]
fn an_error_is_one_line_even_with_rust_backtrace_set() {
    // Nothing listens on the port a bound-then-dropped listener had.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let admin = format!("http://127.0.0.1:{port}");
    let args = ["plugin", "list", "--admin", &admin, "--token", "t"];
    let out = gateway(&args, &[("RUST_BACKTRACE", "1")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: reaching the admin API at {admin}: ")),
        "{stderr}"
    );
    assert!(!stderr.contains("backtrace"), "{stderr}");

    // --verbose: the chain on its own lines and the backtrace RUST_BACKTRACE asked for.
    let mut verbose = args.to_vec();
    verbose.push("--verbose");
    let out = gateway(&verbose, &[("RUST_BACKTRACE", "1")]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert!(stderr.contains("Caused by:"), "{stderr}");
    assert!(stderr.contains("Stack backtrace:"), "{stderr}");

    // A config that is not there, from `gateway check`: one line too.
    let out = gateway(
        &["check", "--config", "/nonexistent/gateway.toml"],
        &[("RUST_BACKTRACE", "full")],
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/nonexistent/gateway.toml"), "{stderr}");
}
