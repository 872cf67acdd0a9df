//! 社保's fixed-length SM2-signed protocol, driven with a raw client written from PROTOCOLS.md
//! ("Social security"): a registration taken and decided, its serial idempotent, and each of
//! the department's own refusals — wrong length, wrong padding, a bad signature, an unknown
//! transaction code, a business error inside a 200 answer — with answers always signed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use departments::social_security::{sign_message, verify_message};
use departments::{Departments, Options};
use encoding_rs::GB18030;

fn plain_client() -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
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

/// `value` in GB18030, right-padded with spaces to `width` bytes.
fn text(value: &str, width: usize) -> Vec<u8> {
    let (bytes, _, _) = GB18030.encode(value);
    let mut out = bytes.into_owned();
    assert!(out.len() <= width, "{value} wider than {width}");
    out.resize(width, b' ');
    out
}

fn message(code: &str, serial: u64, body: &[u8]) -> Vec<u8> {
    let mut out = format!("{code}{:08}{serial:020}", 32 + body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

fn register_body(credit_code: &str, employees: &str) -> Vec<u8> {
    let mut body = text(credit_code, 18);
    body.extend(text("福州演示科技有限公司", 100));
    body.extend(text("李四", 40));
    body.extend(text("福州市鼓楼区五四路2号", 120));
    body.extend(employees.as_bytes());
    body.extend(b"20260105");
    body
}

struct Answer {
    status: u16,
    body: Vec<u8>,
    signed: bool,
}

impl Answer {
    fn field(&self, at: usize, width: usize) -> String {
        let (text, _, _) = GB18030.decode(&self.body[at..at + width]);
        text.trim_end().to_string()
    }
    fn code(&self) -> String {
        self.field(32, 4)
    }
    fn message(&self) -> String {
        self.field(36, 80)
    }
    fn number(&self) -> String {
        self.field(116, 20)
    }
    fn state(&self) -> String {
        self.field(136, 2)
    }
    fn wrong_field(&self) -> String {
        self.field(138, 20)
    }
}

async fn send(deps: &Departments, msg: &[u8], sign: Option<String>) -> Result<Answer> {
    let ss = &deps.social_security;
    let mut request = plain_client()
        .post(format!("{}/sbxt/jy", ss.department.base_url))
        .body(msg.to_vec());
    if let Some(sign) = sign {
        request = request.header("X-SB-Sign", sign);
    }
    let answer = request.send().await?;
    let status = answer.status().as_u16();
    let sign = answer
        .headers()
        .get("x-sb-sign")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = answer.bytes().await?.to_vec();
    let public = std::fs::read_to_string(ss.department_public_key())?;
    Ok(Answer {
        status,
        signed: verify_message(&public, &body, &sign),
        body,
    })
}

async fn signed(deps: &Departments, msg: &[u8]) -> Result<Answer> {
    let key = std::fs::read_to_string(deps.social_security.gateway_key())?;
    send(deps, msg, Some(sign_message(&key, msg)?)).await
}

#[tokio::test]
async fn a_registration_is_taken_signed_then_decided_and_its_serial_is_idempotent() -> Result<()> {
    let deps = start().await?;
    let msg = message("SB01", 1, &register_body("91350100M000100Y43", "000012"));
    assert_eq!(msg.len(), 324);
    let taken = signed(&deps, &msg).await?;
    assert_eq!((taken.status, taken.code().as_str()), (200, "0000"));
    assert!(taken.signed, "the department signs its answers");
    assert_eq!(taken.body.len(), 32 + 126);
    assert_eq!(
        &taken.body[..32],
        &msg[..4]
            .iter()
            .chain(b"00000158")
            .chain(&msg[12..32])
            .copied()
            .collect::<Vec<_>>()[..]
    );
    assert_eq!(taken.state(), "01");
    let number = taken.number();
    assert!(number.starts_with("SB"), "{number}");

    let again = signed(&deps, &msg).await?;
    assert_eq!(
        again.number(),
        number,
        "a repeated serial gets the first answer"
    );
    assert_eq!(deps.social_security.registrations().len(), 1);

    tokio::time::sleep(Duration::from_millis(60)).await;
    let status = signed(&deps, &message("SB02", 2, &text(&number, 20))).await?;
    assert_eq!(
        (status.code().as_str(), status.state().as_str()),
        ("0000", "02")
    );
    assert_eq!(status.message(), "参保登记完成");
    assert!(status.signed);
    Ok(())
}

#[tokio::test]
async fn message_faults_are_refused_with_the_departments_own_codes() -> Result<()> {
    let deps = start().await?;
    let good = register_body("91350100M000100Y43", "000012");

    // The declared length is not the message's.
    let mut wrong_length = message("SB01", 3, &good);
    wrong_length[4..12].copy_from_slice(b"00000300");
    let a = signed(&deps, &wrong_length).await?;
    assert_eq!((a.status, a.code().as_str()), (400, "9001"));
    assert!(a.signed, "refusals are signed too");

    // A body one byte short for its transaction.
    let a = signed(&deps, &message("SB01", 4, &good[..good.len() - 1])).await?;
    assert_eq!((a.status, a.code().as_str()), (400, "9001"));

    // A number padded with spaces, not zeros.
    let a = signed(
        &deps,
        &message("SB01", 5, &register_body("91350100M000100Y43", "    12")),
    )
    .await?;
    assert_eq!((a.status, a.code().as_str()), (400, "9002"));
    assert!(a.message().contains("zgrs"), "{}", a.message());

    // No signature, a signature by another key, a message changed after signing.
    let msg = message("SB01", 6, &good);
    let a = send(&deps, &msg, None).await?;
    assert_eq!((a.status, a.code().as_str()), (401, "9003"));
    let other = sm2::SecretKey::from_slice(&[7u8; 32])?;
    use sm2::pkcs8::EncodePrivateKey as _;
    let other_pem = other.to_pkcs8_pem(sm2::pkcs8::LineEnding::LF)?;
    let a = send(&deps, &msg, Some(sign_message(&other_pem, &msg)?)).await?;
    assert_eq!((a.status, a.code().as_str()), (401, "9003"));
    let key = std::fs::read_to_string(deps.social_security.gateway_key())?;
    let sign = sign_message(&key, &msg)?;
    let mut changed = msg.clone();
    changed[40] ^= 1;
    let a = send(&deps, &changed, Some(sign)).await?;
    assert_eq!((a.status, a.code().as_str()), (401, "9003"));

    // An unknown transaction code.
    let a = signed(&deps, &message("SB99", 7, &good)).await?;
    assert_eq!((a.status, a.code().as_str()), (400, "9004"));

    assert!(deps.social_security.registrations().is_empty());
    Ok(())
}

#[tokio::test]
async fn business_errors_come_inside_200_answers_naming_the_field() -> Result<()> {
    let deps = start().await?;
    let a = signed(
        &deps,
        &message("SB01", 8, &register_body("91350100M000100Y44", "000012")),
    )
    .await?;
    assert_eq!(
        (a.status, a.code().as_str(), a.wrong_field().as_str()),
        (200, "1001", "tyshxydm")
    );
    assert_eq!(a.state(), "03");
    let a = signed(
        &deps,
        &message("SB01", 9, &register_body("91350100M000100Y43", "000000")),
    )
    .await?;
    assert_eq!(
        (a.status, a.code().as_str(), a.wrong_field().as_str()),
        (200, "1002", "zgrs")
    );
    assert_eq!(a.message(), "职工人数为0的单位不予参保登记");
    // The refused serial is not kept: corrected, it registers.
    let a = signed(
        &deps,
        &message("SB01", 9, &register_body("91350100M000100Y43", "000003")),
    )
    .await?;
    assert_eq!(a.code(), "0000");
    let a = signed(&deps, &message("SB02", 10, &text("SB000", 20))).await?;
    assert_eq!((a.status, a.code().as_str()), (200, "2001"));
    Ok(())
}

#[tokio::test]
async fn tampered_answers_no_longer_verify() -> Result<()> {
    let deps = start().await?;
    deps.social_security.tamper_answers(true);
    let a = signed(
        &deps,
        &message("SB01", 11, &register_body("91350100M000100Y43", "000012")),
    )
    .await?;
    assert_eq!(a.status, 200);
    assert!(
        !a.signed,
        "an answer changed after signing fails the department's signature"
    );
    deps.social_security.tamper_answers(false);
    let a = signed(
        &deps,
        &message("SB01", 11, &register_body("91350100M000100Y43", "000012")),
    )
    .await?;
    assert!(a.signed);
    Ok(())
}
