//! Tax's and real estate's materials over real HTTP, as an adapter would send them and as a
//! broken or hostile sender might: what each department takes, what it refuses and how, and
//! that it records each material of an application once (PROTOCOLS.md, "Materials").

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use departments::{Departments, Options};
use encoding_rs::GBK;
use reqwest::StatusCode;
use rustls::RootCertStore;
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(RootCertStore::empty())
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .build()
        .unwrap()
}

async fn start() -> Result<Departments> {
    departments::start(Options {
        ticket_delay: Duration::from_millis(50),
        ..Options::default()
    })
    .await
}

// ---------------------------------------------------------------- tax

const SECRET: &[u8] = b"tax-demo-secret";
const BOUNDARY: &str = "gw-test-boundary";

/// A 文件上传 form: `qqid`, `clbm`, `clmc`, `wjsm3` and the file.
fn form(qqid: &str, code: &str, media_type: &str, file: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in [
        ("qqid", qqid.to_string()),
        ("clbm", code.to_string()),
        ("clmc", "经营场所证明".to_string()),
        ("wjsm3", sdk::sign::sm3_hex(file)),
    ] {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{code}\"\r\nContent-Type: {media_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// How a test signs an upload: the secret, and the digest it declares (the body's own unless
/// given).
#[derive(Default)]
struct Signing {
    secret: Option<&'static [u8]>,
    declared_sm3: Option<String>,
}

/// POST a signed request: the signed string ends with `signed` (the body, or an upload's
/// body SM3).
async fn tax_post(
    deps: &Departments,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
    upload: Option<Signing>,
) -> (StatusCode, Value) {
    let timestamp = sdk::sign::unix_seconds();
    let nonce = sdk::sign::nonce();
    let mut request = client()
        .post(format!("{}{path}", deps.tax.base_url))
        .header("Content-Type", content_type);
    let (secret, signed) = match &upload {
        Some(signing) => {
            let sm3 = signing
                .declared_sm3
                .clone()
                .unwrap_or_else(|| sdk::sign::sm3_hex(&body));
            request = request.header("X-Content-SM3", &sm3);
            (signing.secret.unwrap_or(SECRET), sm3.into_bytes())
        }
        None => (SECRET, body.clone()),
    };
    let mut canonical = format!("POST\n{path}\n{timestamp}\n{nonce}\n").into_bytes();
    canonical.extend_from_slice(&signed);
    let response = request
        .header("X-App-Key", "gw-demo")
        .header("X-Timestamp", timestamp.to_string())
        .header("X-Nonce", nonce)
        .header("X-Sign-Method", "HMAC-SM3")
        .header("X-Signature", sdk::sign::hmac_sm3_hex(secret, &canonical))
        .body(body)
        .send()
        .await
        .unwrap();
    (
        response.status(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn upload(deps: &Departments, body: Vec<u8>, signing: Signing) -> (StatusCode, Value) {
    tax_post(
        deps,
        "/api/v1/wjsc",
        &format!("multipart/form-data; boundary=\"{BOUNDARY}\""),
        body,
        Some(signing),
    )
    .await
}

fn pdf(len: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend((0..len).map(|i| (i * 13 % 251) as u8));
    bytes.extend_from_slice(b"\n%%EOF\n");
    bytes
}

fn registration(qqid: &str, files: Value) -> Vec<u8> {
    json!({
        "qqid": qqid, "nsrsbh": "91350100M000100Y43", "nsrmc": "福州测试科技有限公司",
        "fddbrxm": "张三", "fddbrsfzjhm": "11010519491231002X",
        "scjydz": "福州市鼓楼区五四路1号", "jyfw": "软件开发", "fjlb": files
    })
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn tax_takes_a_signed_upload_once_and_refuses_what_is_not_right() -> Result<()> {
    let deps = start().await?;
    let file = pdf(300_000);

    // Taken, and the same file for the same application again is the same file.
    let (status, first) = upload(
        &deps,
        form("app-1", "premises-proof", "application/pdf", &file),
        Signing::default(),
    )
    .await;
    assert_eq!(
        (status, &first["code"]),
        (StatusCode::OK, &json!("0000")),
        "{first}"
    );
    assert_eq!(first["data"]["wjdx"], file.len());
    assert_eq!(first["data"]["wjsm3"], sdk::sign::sm3_hex(&file));
    let wjid = first["data"]["wjid"].as_str().unwrap().to_string();
    let (_, again) = upload(
        &deps,
        form("app-1", "premises-proof", "application/pdf", &file),
        Signing::default(),
    )
    .await;
    assert_eq!(
        again["data"]["wjid"],
        wjid.as_str(),
        "a repeat after a crash"
    );
    let (_, other) = upload(
        &deps,
        form("app-2", "premises-proof", "application/pdf", &file),
        Signing::default(),
    )
    .await;
    assert_ne!(
        other["data"]["wjid"],
        wjid.as_str(),
        "another application's copy"
    );

    // Refused, each with its code.
    let refusals = [
        (
            form("app-1", "premises-proof", "application/pdf", &file),
            Signing {
                secret: Some(b"not-the-secret"),
                ..Signing::default()
            },
            StatusCode::UNAUTHORIZED,
            "4011",
        ),
        (
            form("app-1", "premises-proof", "application/pdf", &file),
            Signing {
                declared_sm3: Some(sdk::sign::sm3_hex(b"another body")),
                ..Signing::default()
            },
            StatusCode::UNAUTHORIZED,
            "4014",
        ),
        (
            form("app-1", "premises-proof", "application/pdf", b""),
            Signing::default(),
            StatusCode::OK,
            "3001",
        ),
        (
            form(
                "app-1",
                "premises-proof",
                "image/png",
                b"\x89PNG\r\n\x1a\nrest",
            ),
            Signing::default(),
            StatusCode::OK,
            "3004",
        ),
        (
            form("app-1", "premises-proof", "application/pdf", &pdf(20 << 20)),
            Signing::default(),
            StatusCode::OK,
            "3002",
        ),
    ];
    for (body, signing, status, code) in refusals {
        let (got, answer) = upload(&deps, body, signing).await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{answer}"
        );
    }
    // A form whose declared file SM3 is not its file's.
    let mut lying = form("app-1", "premises-proof", "application/pdf", &file);
    let declared = sdk::sign::sm3_hex(&file);
    let at = lying
        .windows(64)
        .position(|w| w == declared.as_bytes())
        .unwrap();
    lying[at..at + 64].copy_from_slice("0".repeat(64).as_bytes());
    let (_, answer) = upload(&deps, lying, Signing::default()).await;
    assert_eq!(answer["code"], "3003", "{answer}");

    // The application lists only files it was issued.
    let json = "application/json";
    for files in [
        json!([{"clbm": "premises-proof", "clmc": "经营场所证明", "wjid": "WJ000"}]),
        json!([{"clbm": "premises-proof", "clmc": "经营场所证明", "wjid": other["data"]["wjid"]}]),
    ] {
        let (_, answer) = tax_post(
            &deps,
            "/api/v1/swdj",
            json,
            registration("app-1", files),
            None,
        )
        .await;
        assert_eq!(answer["code"], "3005", "{answer}");
    }
    assert_eq!(deps.tax.applications(), 0);
    let files = json!([{"clbm": "premises-proof", "clmc": "经营场所证明", "wjid": wjid}]);
    let (_, taken) = tax_post(
        &deps,
        "/api/v1/swdj",
        json,
        registration("app-1", files.clone()),
        None,
    )
    .await;
    assert_eq!(taken["code"], "0000", "{taken}");
    let (_, repeated) = tax_post(
        &deps,
        "/api/v1/swdj",
        json,
        registration("app-1", files),
        None,
    )
    .await;
    assert_eq!(repeated["data"]["slh"], taken["data"]["slh"]);

    // Recorded once, as the department received it.
    let recorded: Vec<(String, String, Option<String>, Option<u64>)> = deps
        .tax
        .stats()
        .materials
        .into_iter()
        .map(|m| (m.request_id, m.code, m.sm3, m.size))
        .collect();
    assert_eq!(
        recorded,
        vec![(
            "app-1".into(),
            "premises-proof".into(),
            Some(sdk::sign::sm3_hex(&file)),
            Some(file.len() as u64)
        )]
    );
    let rejected = deps.tax.stats().rejected;
    for reason in [
        "bad_signature",
        "body_digest_mismatch",
        "empty_file",
        "file_type",
        "file_too_large",
        "file_digest_mismatch",
        "unknown_file",
    ] {
        assert!(rejected.contains_key(reason), "{reason}: {rejected:?}");
    }
    Ok(())
}

// ---------------------------------------------------------------- real estate

const PACKAGE: &str = "MIME-boundary-test";
const XOP_NS: &str = "http://www.w3.org/2004/08/xop/include";

fn transfer_envelope(ywh: &str, attachments: &str) -> Vec<u8> {
    let xml = format!(
        r#"<?xml version="1.0" encoding="GBK"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:bdc="http://bdc.gov.cn/ws"><soap:Body><bdc:submitTransfer><ywh>{ywh}</ywh><bdcdyh>351001012010GB01859F00040015</bdcdyh><bdcqzh>闽(2019)平潭不动产权第0011364号</bdcqzh><zrfxm>张三</zrfxm><zrfzjh>11010519491231002X</zrfzjh><srfxm>李四</srfxm><srfzjh>34052419800101001X</srfzjh><jyjg>1200000.00</jyjg>{attachments}</bdc:submitTransfer></soap:Body></soap:Envelope>"#
    );
    GBK.encode(&xml).0.into_owned()
}

/// A `<fjlb>` of one attachment entry.
fn fj(code: &str, media_type: &str, file: &[u8], cid: &str) -> String {
    format!(
        r#"<fjlb><fj><clbm>{code}</clbm><clmc>房屋买卖合同</clmc><wjlx>{media_type}</wjlx><wjdx>{}</wjdx><wjsm3>{}</wjsm3><nr><xop:Include xmlns:xop="{XOP_NS}" href="cid:{cid}"/></nr></fj></fjlb>"#,
        file.len(),
        sdk::sign::sm3_hex(file)
    )
}

/// An MTOM package: the envelope (in `charset`) as the root part, then each (Content-ID,
/// type, bytes) as a binary part.
fn package(envelope: &[u8], charset: &str, parts: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut body = format!(
        "--{PACKAGE}\r\nContent-Type: application/xop+xml; charset={charset}; type=\"text/xml\"\r\nContent-Transfer-Encoding: 8bit\r\nContent-ID: <root@test>\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(envelope);
    for (id, media_type, bytes) in parts {
        body.extend_from_slice(
            format!("\r\n--{PACKAGE}\r\nContent-Type: {media_type}\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <{id}>\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(bytes);
    }
    body.extend_from_slice(format!("\r\n--{PACKAGE}--\r\n").as_bytes());
    body
}

/// POST a package; the status and the answer decoded from GBK.
async fn submit_package(deps: &Departments, body: Vec<u8>) -> (StatusCode, String) {
    let response = client()
        .post(format!("{}/services/BdcService", deps.real_estate.base_url))
        .header(
            "Content-Type",
            format!("multipart/related; type=\"application/xop+xml\"; start=\"<root@test>\"; start-info=\"text/xml\"; boundary=\"{PACKAGE}\""),
        )
        .header("SOAPAction", "\"urn:bdc:submitTransfer\"")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.bytes().await.unwrap();
    assert!(bytes.starts_with(br#"<?xml version="1.0" encoding="GBK"?>"#));
    let (text, _, bad) = GBK.decode(&bytes);
    assert!(!bad, "the answer is GBK");
    (status, text.into_owned())
}

#[tokio::test]
async fn real_estate_resolves_each_include_and_faults_in_gbk() -> Result<()> {
    let deps = start().await?;
    let contract = pdf(200_000);
    let cid = "sale-contract@bdc.gateway";

    // Faults name the material; nothing is filed.
    let cases: [(Vec<u8>, &str); 4] = [
        (
            package(
                &transfer_envelope(
                    "t-1",
                    &fj("sale-contract", "application/pdf", &contract, "absent@x"),
                ),
                "GBK",
                &[(cid, "application/pdf", &contract)],
            ),
            "E106",
        ),
        (
            package(
                &transfer_envelope(
                    "t-1",
                    &fj("sale-contract", "application/pdf", &contract, cid),
                ),
                "GBK",
                &[(cid, "image/png", &contract)],
            ),
            "E107",
        ),
        (
            package(
                &transfer_envelope(
                    "t-1",
                    &fj("sale-contract", "application/pdf", &contract, cid),
                ),
                "GBK",
                &[(cid, "application/pdf", &contract[..1000])],
            ),
            "E108",
        ),
        (
            package(
                &transfer_envelope(
                    "t-1",
                    &fj("sale-contract", "application/pdf", &contract, cid),
                ),
                "UTF-8",
                &[(cid, "application/pdf", &contract)],
            ),
            "E100",
        ),
    ];
    for (body, code) in cases {
        let (status, answer) = submit_package(&deps, body).await;
        assert_eq!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{code}: {answer}"
        );
        assert!(
            answer.contains(&format!("<bdc:errorCode>{code}</bdc:errorCode>")),
            "{code}: {answer}"
        );
        if code != "E100" {
            assert!(
                answer.contains("<bdc:clbm>sale-contract</bdc:clbm>"),
                "{answer}"
            );
        }
    }
    assert_eq!(deps.real_estate.applications(), 0);

    // Taken: the include resolved, the attachment recorded once as received.
    let good = || {
        package(
            &transfer_envelope(
                "t-1",
                &fj("sale-contract", "application/pdf", &contract, cid),
            ),
            "GBK",
            &[(cid, "application/pdf", &contract)],
        )
    };
    let (status, answer) = submit_package(&deps, good()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer.contains("<zt>受理</zt>"), "{answer}");
    let (_, again) = submit_package(&deps, good()).await;
    assert_eq!(again, answer, "the same ywh: the first answer");
    let recorded: Vec<(String, String, Option<String>, Option<u64>)> = deps
        .real_estate
        .stats()
        .materials
        .into_iter()
        .map(|m| (m.request_id, m.code, m.sm3, m.size))
        .collect();
    assert_eq!(
        recorded,
        vec![(
            "t-1".into(),
            "sale-contract".into(),
            Some(sdk::sign::sm3_hex(&contract)),
            Some(contract.len() as u64)
        )]
    );
    Ok(())
}
