//! Drives each simulated department with a raw client, written from PROTOCOLS.md, so that a
//! simulator drifting from the spec fails here before it confuses an adapter test.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use axum::http::HeaderMap;
use departments::{Departments, Faults, Options, ids};
use encoding_rs::GBK;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// reqwest is built without a bundled crypto provider, so even a plain-HTTP client gets a
/// preconfigured ring config.
fn plain_client() -> reqwest::Client {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .build()
        .unwrap()
}

/// A client trusting the simulator's CA, presenting its client certificate when `identity`.
fn tls_client(deps: &Departments, identity: bool) -> Result<reqwest::Client> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(deps.cert_dir.join("ca.pem"))?)?;
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = if identity {
        let chain = CertificateDer::pem_file_iter(deps.cert_dir.join("client.pem"))?
            .collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_file(deps.cert_dir.join("client-key.pem"))?;
        builder.with_client_auth_cert(chain, key)?
    } else {
        builder.with_no_client_auth()
    };
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(config)
        // Pin localhost to the listener, so the test does not depend on how the host resolves it.
        .resolve("localhost", deps.public_security.addr)
        .build()?)
}

async fn start() -> Result<Departments> {
    departments::start(Options {
        ticket_delay: Duration::from_millis(50),
        ..Options::default()
    })
    .await
}

/// Polls until `done` holds: the departments decide on a timer, with no event to wait on.
async fn eventually<F, Fut>(mut probe: F, done: impl Fn(&Value) -> bool) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = probe().await;
        if done(&v) || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------- tax

#[derive(Clone, Copy)]
enum SignMethod {
    Sha256,
    Sm3,
}

struct TaxCall<'a> {
    secret: &'a [u8],
    method: SignMethod,
    timestamp: i64,
    nonce: String,
    /// Declare this `X-Sign-Method` instead of the one used.
    declare: Option<&'static str>,
}

impl Default for TaxCall<'_> {
    fn default() -> Self {
        TaxCall {
            secret: b"tax-demo-secret",
            method: SignMethod::Sha256,
            timestamp: time::OffsetDateTime::now_utc().unix_timestamp(),
            nonce: uuid::Uuid::new_v4().simple().to_string(),
            declare: None,
        }
    }
}

fn hmac_hex<M: Mac + hmac::digest::KeyInit>(secret: &[u8], data: &[u8]) -> String {
    let mut mac = <M as Mac>::new_from_slice(secret).unwrap();
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

impl TaxCall<'_> {
    /// Sends a request signed per the spec: canonical = METHOD\nPATH_AND_QUERY\nTS\nNONCE\nBODY.
    async fn send(
        &self,
        deps: &Departments,
        http: &str,
        path: &str,
        body: &str,
    ) -> (StatusCode, Value) {
        let canonical = format!("{http}\n{path}\n{}\n{}\n{body}", self.timestamp, self.nonce);
        let (name, sig) = match self.method {
            SignMethod::Sha256 => (
                "HMAC-SHA256",
                hmac_hex::<Hmac<sha2::Sha256>>(self.secret, canonical.as_bytes()),
            ),
            SignMethod::Sm3 => (
                "HMAC-SM3",
                hmac_hex::<Hmac<sm3::Sm3>>(self.secret, canonical.as_bytes()),
            ),
        };
        let url = format!("{}{path}", deps.tax.base_url);
        let req = match http {
            "GET" => plain_client().get(url),
            _ => plain_client()
                .post(url)
                .header("Content-Type", "application/json")
                .body(body.to_owned()),
        };
        let resp = req
            .header("X-App-Key", "gw-demo")
            .header("X-Timestamp", self.timestamp.to_string())
            .header("X-Nonce", &self.nonce)
            .header("X-Sign-Method", self.declare.unwrap_or(name))
            .header("X-Signature", sig)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn tax_accepts_hmac_sha256_and_hmac_sm3() -> Result<()> {
    let deps = start().await?;
    let (status, v) = TaxCall::default()
        .send(
            &deps,
            "POST",
            "/api/v1/qscx",
            r#"{"nsrsbh":"91110108551385082Q"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["code"], "0000", "{v}");
    assert_eq!(v["data"]["qszt"], "N");
    assert_eq!(v["data"]["qjje"], "12800.00");

    let sm3 = TaxCall {
        method: SignMethod::Sm3,
        ..TaxCall::default()
    };
    let (status, v) = sm3
        .send(
            &deps,
            "POST",
            "/api/v1/qscx",
            r#"{"nsrsbh":"11010519491231002X"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["code"], "0000", "{v}");
    assert_eq!(v["data"]["nsrmc"], "张三");
    assert_eq!(v["data"]["qszt"], "Y");
    Ok(())
}

#[tokio::test]
async fn tax_refuses_a_bad_signature() -> Result<()> {
    let deps = start().await?;
    let wrong = TaxCall {
        secret: b"not-the-secret",
        ..TaxCall::default()
    };
    let (status, v) = wrong
        .send(
            &deps,
            "POST",
            "/api/v1/qscx",
            r#"{"nsrsbh":"91350100M000100Y43"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(v, json!({"code": "4011", "msg": "签名错误"}));
    // A correct HMAC-SHA256 signature declared as HMAC-SM3 does not verify.
    let (status, v) = TaxCall {
        declare: Some("HMAC-SM3"),
        ..TaxCall::default()
    }
    .send(&deps, "GET", "/api/v1/slzt?slh=SW1", "")
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("4011"))
    );
    // Control: the same request, honestly declared, passes the signature check.
    let (status, v) = TaxCall::default()
        .send(&deps, "GET", "/api/v1/slzt?slh=SW1", "")
        .await;
    assert_eq!((status, v["code"].as_str()), (StatusCode::OK, Some("2004")));
    assert_eq!(deps.tax.stats().rejected.get("bad_signature"), Some(&2));
    Ok(())
}

#[tokio::test]
async fn tax_refuses_a_stale_timestamp() -> Result<()> {
    let deps = start().await?;
    let stale = TaxCall {
        timestamp: time::OffsetDateTime::now_utc().unix_timestamp() - 301,
        ..TaxCall::default()
    };
    let (status, v) = stale
        .send(
            &deps,
            "POST",
            "/api/v1/qscx",
            r#"{"nsrsbh":"91350100M000100Y43"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(v["code"], "4012");
    assert_eq!(v["msg"], "时间戳过期");
    Ok(())
}

#[tokio::test]
async fn tax_refuses_a_replayed_nonce() -> Result<()> {
    let deps = start().await?;
    let call = TaxCall::default();
    let body = r#"{"nsrsbh":"91350100M000100Y43"}"#;
    let (first, v) = call.send(&deps, "POST", "/api/v1/qscx", body).await;
    assert_eq!((first, v["code"].as_str()), (StatusCode::OK, Some("0000")));
    let (again, v) = call.send(&deps, "POST", "/api/v1/qscx", body).await;
    assert_eq!(again, StatusCode::UNAUTHORIZED);
    assert_eq!(v["code"], "4013");
    Ok(())
}

#[tokio::test]
async fn tax_registration_is_idempotent_and_decided_after_the_delay() -> Result<()> {
    let deps = start().await?;
    let body = json!({
        "qqid": "req-tax-1", "nsrsbh": "91350100M000100Y43", "nsrmc": "福州测试科技有限公司",
        "fddbrxm": "张三", "fddbrsfzjhm": "11010519491231002X", "scjydz": "福州市鼓楼区五四路1号",
        "jyfw": "软件开发",
    })
    .to_string();
    let (_, first) = TaxCall::default()
        .send(&deps, "POST", "/api/v1/swdj", &body)
        .await;
    let (_, second) = TaxCall::default()
        .send(&deps, "POST", "/api/v1/swdj", &body)
        .await;
    let slh = first["data"]["slh"].as_str().expect("slh").to_owned();
    assert!(
        slh.starts_with("SW") && slh[2..].bytes().all(|b| b.is_ascii_digit()),
        "{slh}"
    );
    assert_eq!(first, second, "a repeated qqid gets the first answer");
    assert_eq!(deps.tax.applications(), 1);
    assert_eq!(deps.tax.received("swdj"), 2);
    assert_eq!(deps.tax.received_ids(), ["req-tax-1"]);
    assert_eq!(deps.tax.submitted_ids(), ["req-tax-1", "req-tax-1"]);

    let path = format!("/api/v1/slzt?slh={slh}");
    let status = eventually(
        || async { TaxCall::default().send(&deps, "GET", &path, "").await.1 },
        |v| v["data"]["zt"] == "02",
    )
    .await;
    assert_eq!(
        status["data"]["swdjxx"]["nsrsbh"], "91350100M000100Y43",
        "{status}"
    );

    let bad = body
        .replace("91350100M000100Y43", "91350100M000100Y44")
        .replace("req-tax-1", "req-tax-2");
    let (_, v) = TaxCall::default()
        .send(&deps, "POST", "/api/v1/swdj", &bad)
        .await;
    assert_eq!(v["code"], "2001");
    assert_eq!(deps.tax.applications(), 1);
    Ok(())
}

#[tokio::test]
async fn tax_deed_tax_is_idempotent_and_decided_with_the_tax_due() -> Result<()> {
    let deps = start().await?;
    let deed = |qqid: &str, jyjg: &str, mj: &str| {
        json!({
            "qqid": qqid, "nsrxm": "李四", "nsrsfzjhm": "34052419800101001X",
            "zrfxm": "张三", "zrfsfzjhm": "11010519491231002X",
            "bdcdyh": "351001012010GB01859F00040015", "bdcqzh": "闽(2019)平潭不动产权第0011364号",
            "jyjg": jyjg, "mj": mj,
        })
        .to_string()
    };
    // Signed with HMAC-SM3 this time: the method is the caller's choice on every operation.
    let sm3 = || TaxCall {
        method: SignMethod::Sm3,
        ..TaxCall::default()
    };
    let body = deed("req-qs-1", "1200000.00", "89.56");
    let (status, first) = sm3().send(&deps, "POST", "/api/v1/qssb", &body).await;
    assert_eq!(
        (status, first["code"].as_str()),
        (StatusCode::OK, Some("0000")),
        "{first}"
    );
    let (_, second) = TaxCall::default()
        .send(&deps, "POST", "/api/v1/qssb", &body)
        .await;
    let slh = first["data"]["slh"].as_str().expect("slh").to_owned();
    assert!(
        slh.starts_with("QS") && slh[2..].bytes().all(|b| b.is_ascii_digit()),
        "{slh}"
    );
    assert_eq!(first, second, "a repeated qqid gets the first answer");
    assert_eq!(deps.tax.applications(), 1);
    assert_eq!(deps.tax.received("qssb"), 2);

    // Decided after the delay: 已办结, with 1% of the price for ≤ 90 m².
    let path = format!("/api/v1/slzt?slh={slh}");
    let done = eventually(
        || async { TaxCall::default().send(&deps, "GET", &path, "").await.1 },
        |v| v["data"]["zt"] == "02",
    )
    .await;
    assert_eq!(done["data"]["ztmc"], "已办结", "{done}");
    assert_eq!(done["data"]["qsxx"]["ynse"], "12000.00", "{done}");
    let wspzh = done["data"]["qsxx"]["wspzh"].as_str().expect("wspzh");
    assert!(
        !wspzh.is_empty() && wspzh.bytes().all(|b| b.is_ascii_digit()),
        "{wspzh}"
    );

    // Above 90 m² the rate is 1.5%.
    let (_, big) = TaxCall::default()
        .send(
            &deps,
            "POST",
            "/api/v1/qssb",
            &deed("req-qs-2", "1234567.89", "120.00"),
        )
        .await;
    let path = format!(
        "/api/v1/slzt?slh={}",
        big["data"]["slh"].as_str().expect("slh")
    );
    let done = eventually(
        || async { TaxCall::default().send(&deps, "GET", &path, "").await.1 },
        |v| v["data"]["zt"] == "02",
    )
    .await;
    assert_eq!(done["data"]["qsxx"]["ynse"], "18518.52", "{done}");

    // Strict: amounts are strings with two decimals, IDs pass GB 11643, buyer is not seller.
    let refusals = [
        (deed("req-qs-3", "1200000", "89.56"), "1001"),
        (
            body.replace("req-qs-1", "req-qs-4")
                .replace(r#""jyjg":"1200000.00""#, r#""jyjg":1200000.00"#),
            "1001",
        ),
        (
            deed("req-qs-5", "1.00", "1.00").replace("34052419800101001X", "340524198001010011"),
            "2003",
        ),
        (
            deed("req-qs-6", "1.00", "1.00").replace("34052419800101001X", "11010519491231002X"),
            "2006",
        ),
        (
            deed("req-qs-7", "1.00", "1.00").replace(
                "351001012010GB01859F00040015",
                "351001012010GI01859F00040015",
            ),
            "2005",
        ),
        (deed("req-qs-8", "0.00", "1.00"), "1001"),
    ];
    for (body, code) in refusals {
        let (status, v) = TaxCall::default()
            .send(&deps, "POST", "/api/v1/qssb", &body)
            .await;
        assert_eq!(
            (status, v["code"].as_str()),
            (StatusCode::OK, Some(code)),
            "{body}: {v}"
        );
    }
    assert_eq!(deps.tax.applications(), 2, "refusals are not applications");
    // Unsigned: refused before the department reads it.
    let unsigned = plain_client()
        .post(format!("{}/api/v1/qssb", deps.tax.base_url))
        .body(deed("req-qs-9", "1.00", "1.00"))
        .send()
        .await?;
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(deps.tax.applications(), 2);
    Ok(())
}

// ---------------------------------------------------------------- real estate

fn soap(operation: &str, children: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="GBK"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:bdc="http://bdc.gov.cn/ws"><soap:Body><bdc:{operation}>{children}</bdc:{operation}></soap:Body></soap:Envelope>"#
    )
}

async fn soap_call(
    deps: &Departments,
    operation: &str,
    body: Vec<u8>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let resp = plain_client()
        .post(format!("{}/services/BdcService", deps.real_estate.base_url))
        .header("Content-Type", "text/xml; charset=GBK")
        .header("SOAPAction", format!("\"urn:bdc:{operation}\""))
        .body(body)
        .send()
        .await
        .unwrap();
    (
        resp.status(),
        resp.headers().clone(),
        resp.bytes().await.unwrap().to_vec(),
    )
}

fn gbk(s: &str) -> Vec<u8> {
    GBK.encode(s).0.into_owned()
}

#[tokio::test]
async fn real_estate_refuses_a_utf8_body() -> Result<()> {
    let deps = start().await?;
    let xml = soap(
        "queryByCertificate",
        "<bdcqzh>闽(2019)平潭不动产权第0011364号</bdcqzh>",
    );
    // Declared GBK but sent as UTF-8 bytes, and honestly declared UTF-8: both are refused.
    for body in [
        xml.clone().into_bytes(),
        xml.replace(r#"encoding="GBK""#, r#"encoding="UTF-8""#)
            .into_bytes(),
    ] {
        let (status, _, answer) = soap_call(&deps, "queryByCertificate", body).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let text = GBK.decode(&answer).0;
        assert!(
            text.contains("<faultcode>soap:Client</faultcode>"),
            "{text}"
        );
        assert!(text.contains("编码错误：请使用GBK编码"), "{text}");
    }
    assert_eq!(deps.real_estate.stats().rejected.get("E100"), Some(&2));
    Ok(())
}

#[tokio::test]
async fn real_estate_answers_a_gbk_query_for_the_seeded_certificate() -> Result<()> {
    let deps = start().await?;
    // Full-width parentheses name the same certificate as the seeded ASCII ones.
    let xml = soap(
        "queryByCertificate",
        "<bdcqzh>闽（2019）平潭不动产权第0011364号</bdcqzh>",
    );
    let (status, headers, answer) = soap_call(&deps, "queryByCertificate", gbk(&xml)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/xml; charset=GBK");
    assert!(
        std::str::from_utf8(&answer).is_err(),
        "the answer is GBK, not UTF-8"
    );
    let text = GBK
        .decode_without_bom_handling_and_without_replacement(&answer)
        .expect("valid GBK");
    assert!(text.starts_with(r#"<?xml version="1.0" encoding="GBK"?>"#));
    for part in [
        "<bdc:queryResponse><record>",
        "<bdcdyh>351001012010GB01859F00040015</bdcdyh>",
        "<qlr>张三</qlr>",
        "<qlrzjh>11010519491231002X</qlrzjh>",
        "<zl>平潭县潭城镇西航路18号1幢401室</zl>",
        "<mj>89.56</mj>",
        "<yt>住宅</yt>",
    ] {
        assert!(text.contains(part), "{part} missing in {text}");
    }

    let (status, _, answer) = soap_call(
        &deps,
        "queryByUnit",
        gbk(&soap("queryByUnit", "<bdcdyh>351001012010GB0185</bdcdyh>")),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        GBK.decode(&answer)
            .0
            .contains("<bdc:errorCode>E101</bdc:errorCode>")
    );
    Ok(())
}

#[tokio::test]
async fn real_estate_transfer_checks_the_seller_and_is_registered_after_the_delay() -> Result<()> {
    let deps = start().await?;
    let transfer = |ywh: &str, seller: &str| {
        soap(
            "submitTransfer",
            &format!(
                "<ywh>{ywh}</ywh><bdcdyh>351001012010GB01859F00040015</bdcdyh><bdcqzh>闽(2019)平潭不动产权第0011364号</bdcqzh><zrfxm>{seller}</zrfxm><zrfzjh>11010519491231002X</zrfzjh><srfxm>李四</srfxm><srfzjh>34052419800101001X</srfzjh><jyjg>1200000</jyjg>"
            ),
        )
    };
    let (status, _, answer) =
        soap_call(&deps, "submitTransfer", gbk(&transfer("YW-1", "李四"))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        GBK.decode(&answer)
            .0
            .contains("<bdc:errorCode>E201</bdc:errorCode>")
    );

    let (status, _, answer) =
        soap_call(&deps, "submitTransfer", gbk(&transfer("YW-2", "张三"))).await;
    assert_eq!(status, StatusCode::OK);
    let text = GBK.decode(&answer).0.into_owned();
    let slbh = text
        .split("<slbh>")
        .nth(1)
        .and_then(|s| s.split("</slbh>").next())
        .expect("slbh");
    assert!(slbh.starts_with("BDC"), "{text}");
    assert_eq!(
        deps.real_estate.applications(),
        1,
        "a refused transfer is not an application"
    );

    let status_query = gbk(&soap("queryStatus", &format!("<slbh>{slbh}</slbh>")));
    let done = eventually(
        || async {
            let answer = soap_call(&deps, "queryStatus", status_query.clone())
                .await
                .2;
            Value::String(GBK.decode(&answer).0.into_owned())
        },
        |v| v.as_str().unwrap().contains("<zt>登簿</zt>"),
    )
    .await;
    assert!(done.as_str().unwrap().contains("<xbdcqzh>闽("), "{done}");
    Ok(())
}

// ---------------------------------------------------------------- public security

async fn ps_call(
    client: &reqwest::Client,
    deps: &Departments,
    path: &str,
    xml: &str,
) -> reqwest::Result<String> {
    client
        .post(format!("{}{path}", deps.public_security.base_url))
        .header("Content-Type", "application/xml; charset=UTF-8")
        .body(xml.to_owned())
        .send()
        .await?
        .text()
        .await
}

#[tokio::test]
async fn public_security_refuses_a_client_without_a_certificate() -> Result<()> {
    let deps = start().await?;
    let xml = "<request><requestId>r1</requestId><xm>张三</xm><gmsfhm>11010519491231002X</gmsfhm></request>";
    let refused = ps_call(&tls_client(&deps, false)?, &deps, "/gaxt/sfhc", xml).await;
    assert!(
        refused.is_err(),
        "answered without a client certificate: {refused:?}"
    );
    assert_eq!(
        deps.public_security.received("sfhc"),
        0,
        "nothing reached the application"
    );
    // Control: the same request with the client certificate is answered.
    let answered = ps_call(&tls_client(&deps, true)?, &deps, "/gaxt/sfhc", xml).await?;
    assert!(answered.contains("<result>1</result>"), "{answered}");
    Ok(())
}

#[tokio::test]
async fn public_security_answers_a_client_with_a_certificate() -> Result<()> {
    let deps = start().await?;
    let client = tls_client(&deps, true)?;
    let check = |name: &str, id: &str| {
        format!(
            "<request><requestId>r-{id}</requestId><xm>{name}</xm><gmsfhm>{id}</gmsfhm></request>"
        )
    };
    let a = ps_call(
        &client,
        &deps,
        "/gaxt/sfhc",
        &check("张三", "11010519491231002X"),
    )
    .await?;
    assert!(
        a.contains("<code>00</code>") && a.contains("<result>1</result>"),
        "{a}"
    );
    let a = ps_call(
        &client,
        &deps,
        "/gaxt/sfhc",
        &check("张四", "34052419800101001X"),
    )
    .await?;
    assert!(a.contains("<result>2</result>"), "{a}");
    let a = ps_call(
        &client,
        &deps,
        "/gaxt/sfhc",
        &check("赵六", "110105194912310021"),
    )
    .await?;
    assert!(a.contains("<code>10</code>"), "bad check digit: {a}");

    let filing = |id: &str, uscc: &str| {
        format!(
            "<request><requestId>{id}</requestId><tyshxydm>{uscc}</tyshxydm><qymc>福州测试科技有限公司</qymc><fddbr>张三</fddbr><fddbrsfzh>11010519491231002X</fddbrsfzh><yzlx>法定名称章,财务专用章</yzlx></request>"
        )
    };
    let a = ps_call(
        &client,
        &deps,
        "/gaxt/kzba",
        &filing("k1", "91350100M0001TGQXM"),
    )
    .await?;
    assert!(a.contains("<code>20</code>"), "{a}");
    let first = ps_call(
        &client,
        &deps,
        "/gaxt/kzba",
        &filing("k2", "91350100M000100Y43"),
    )
    .await?;
    assert!(first.contains("<babh>GA"), "{first}");
    let again = ps_call(
        &client,
        &deps,
        "/gaxt/kzba",
        &filing("k2", "91350100M000100Y43"),
    )
    .await?;
    assert_eq!(first, again, "a repeated requestId gets the first 备案编号");
    assert_eq!(deps.public_security.applications(), 1);
    Ok(())
}

// ---------------------------------------------------------------- market regulation

async fn mr_token(deps: &Departments, secret: &str) -> (StatusCode, Value) {
    let resp = plain_client()
        .post(format!("{}/oauth/token", deps.market_regulation.base_url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "gw-demo"),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

async fn bearer(deps: &Departments) -> String {
    let (status, v) = mr_token(deps, "mr-demo-secret").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["token_type"], "Bearer");
    v["access_token"].as_str().unwrap().to_owned()
}

async fn seeded_enterprise(deps: &Departments, token: &str) -> (StatusCode, Value) {
    let resp = plain_client()
        .get(format!(
            "{}/api/enterprises/91350100M000100Y43",
            deps.market_regulation.base_url
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

#[tokio::test]
async fn market_regulation_refuses_an_expired_token() -> Result<()> {
    let ttl = Duration::from_millis(300);
    let deps = departments::start(Options {
        token_ttl: ttl,
        ..Options::default()
    })
    .await?;
    let (status, v) = mr_token(&deps, "wrong").await;
    assert_eq!(
        (status, v),
        (StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"}))
    );

    let token = bearer(&deps).await;
    let (status, v) = seeded_enterprise(&deps, &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["name"], "福州测试科技有限公司");
    assert_eq!(v["status"], "存续");
    // Expiry is a matter of time passing; there is no event to wait on.
    tokio::time::sleep(ttl * 2).await;
    let (status, v) = seeded_enterprise(&deps, &token).await;
    assert_eq!(
        (status, v),
        (StatusCode::UNAUTHORIZED, json!({"error": "invalid_token"}))
    );
    let (status, _) = seeded_enterprise(&deps, "never-issued").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    Ok(())
}

#[tokio::test]
async fn market_regulation_delivers_a_signed_callback() -> Result<()> {
    let deps = start().await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(HeaderMap, String)>(4);
    let receiver = axum::Router::new().route(
        "/callbacks/mr",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                tx.send((headers, body)).await.unwrap();
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let callback_url = format!("http://{}/callbacks/mr", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let token = bearer(&deps).await;
    let application = json!({
        "requestId": "req-mr-1", "name": "福州新开餐饮有限公司", "address": "福州市台江区工业路2号",
        "legalRepresentative": {"name": "李四", "idNumber": "34052419800101001X"},
        "registeredCapital": 500000, "businessScope": "餐饮服务", "callbackUrl": callback_url,
    });
    let apply = || {
        plain_client()
            .post(format!("{}/api/licences", deps.market_regulation.base_url))
            .bearer_auth(&token)
            .json(&application)
            .send()
    };
    let resp = apply().await?;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let accepted: Value = resp.json().await?;
    assert_eq!(accepted["status"], "ACCEPTED");
    let no = accepted["applicationNo"].as_str().unwrap().to_owned();
    assert!(no.starts_with("SCJG"), "{no}");
    // Same requestId again: the first answer, no second application, no second name conflict.
    let again: Value = apply().await?.json().await?;
    assert_eq!(again, accepted);
    assert_eq!(deps.market_regulation.applications(), 1);

    let (headers, body) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await?
        .expect("callback");
    let signature = headers["x-signature"].to_str()?;
    assert!(
        sdk::sign::verify_hmac_sha256_hex(b"mr-callback-secret", body.as_bytes(), signature),
        "{signature}"
    );
    let cb: Value = serde_json::from_str(&body)?;
    assert_eq!(cb["applicationNo"], no.as_str());
    assert_eq!(cb["requestId"], "req-mr-1");
    assert_eq!(cb["status"], "APPROVED");
    let uscc = cb["uscc"].as_str().unwrap();
    assert!(
        uscc.starts_with("91350100") && ids::uscc_valid(uscc),
        "{uscc}"
    );
    assert_eq!(
        ids::org_code_check(&uscc[8..16]),
        uscc[16..17].chars().next()
    );

    let polled: Value = plain_client()
        .get(format!(
            "{}/api/licences/{no}",
            deps.market_regulation.base_url
        ))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(polled["status"], "APPROVED");
    assert_eq!(polled["uscc"], uscc);

    let other = json!({"requestId": "req-mr-2", "name": "福州新开餐饮有限公司", "address": "x",
        "legalRepresentative": {"name": "王五", "idNumber": "360426199101010071"},
        "registeredCapital": 1, "businessScope": "x", "callbackUrl": callback_url});
    let resp = plain_client()
        .post(format!("{}/api/licences", deps.market_regulation.base_url))
        .bearer_auth(&token)
        .json(&other)
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    assert_eq!(resp.json::<Value>().await?["error"], "name_taken");
    Ok(())
}

async fn apply_food_permit(deps: &Departments, token: &str, body: &Value) -> (StatusCode, Value) {
    let resp = plain_client()
        .post(format!(
            "{}/api/food-permits",
            deps.market_regulation.base_url
        ))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn market_regulation_food_permit_is_approved_with_a_permit_number() -> Result<()> {
    let deps = start().await?;
    let token = bearer(&deps).await;
    let application = json!({
        "requestId": "req-sp-1", "uscc": "91350100M000100Y43", "name": "福州测试科技有限公司",
        "address": "福州市鼓楼区五四路1号",
        "legalRepresentative": {"name": "张三", "idNumber": "11010519491231002X"},
        "businessItems": ["热食类食品制售", "冷食类食品制售"], "premisesArea": 120.5,
    });
    let (status, accepted) = apply_food_permit(&deps, &token, &application).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["status"], "ACCEPTED");
    let no = accepted["applicationNo"].as_str().unwrap().to_owned();
    assert!(
        no.starts_with("SPJY") && no[4..].bytes().all(|b| b.is_ascii_digit()),
        "{no}"
    );
    let (_, again) = apply_food_permit(&deps, &token, &application).await;
    assert_eq!(
        again, accepted,
        "a repeated requestId gets the first answer"
    );
    assert_eq!(deps.market_regulation.applications(), 1);
    assert_eq!(deps.market_regulation.received("food_permit"), 2);

    let url = format!("{}/api/food-permits/{no}", deps.market_regulation.base_url);
    let poll = || async {
        plain_client()
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let approved = eventually(poll, |v| v["status"] == "APPROVED").await;
    assert_eq!(approved["applicationNo"], no.as_str(), "{approved}");
    let permit = approved["permitNo"].as_str().expect("permitNo");
    assert!(
        permit.starts_with("JY1")
            && permit.len() == 16
            && permit[2..].bytes().all(|b| b.is_ascii_digit()),
        "{permit}"
    );
    assert!(deps.market_regulation.received("food_permit_status") >= 1);

    // Unknown application, and the token is required as everywhere under /api.
    let unknown = plain_client()
        .get(format!(
            "{}/api/food-permits/SPJY0",
            deps.market_regulation.base_url
        ))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let (status, _) = apply_food_permit(&deps, "never-issued", &application).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    Ok(())
}

#[tokio::test]
async fn market_regulation_food_permit_refuses_a_bad_credit_code_and_no_items() -> Result<()> {
    let deps = start().await?;
    let token = bearer(&deps).await;
    let application = |request_id: &str, uscc: &str, items: Value| {
        json!({
            "requestId": request_id, "uscc": uscc, "name": "福州测试科技有限公司",
            "address": "福州市鼓楼区五四路1号",
            "legalRepresentative": {"name": "张三", "idNumber": "11010519491231002X"},
            "businessItems": items, "premisesArea": 60,
        })
    };
    // A pilot code failing GB 32100 is not accepted here.
    let (status, v) = apply_food_permit(
        &deps,
        &token,
        &application("req-sp-2", "91350100M0001TGQXM", json!(["热食类食品制售"])),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        v,
        json!({"error": "invalid", "message": "统一社会信用代码校验失败"})
    );
    let (status, v) = apply_food_permit(
        &deps,
        &token,
        &application("req-sp-3", "91350100M000100Y43", json!([])),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"], "invalid");
    assert_eq!(deps.market_regulation.applications(), 0);
    assert_eq!(
        deps.market_regulation.stats().rejected.get("invalid"),
        Some(&2)
    );
    // A refusal is not stored: the corrected request under the same id is accepted.
    let (status, _) = apply_food_permit(
        &deps,
        &token,
        &application("req-sp-2", "91350100M000100Y43", json!(["预包装食品销售"])),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(deps.market_regulation.applications(), 1);
    Ok(())
}

// ---------------------------------------------------------------- harness

#[tokio::test]
async fn fault_switches_take_effect_and_are_counted() -> Result<()> {
    let deps = start().await?;
    let qscx = || async {
        TaxCall::default()
            .send(
                &deps,
                "POST",
                "/api/v1/qscx",
                r#"{"nsrsbh":"91350100M000100Y43"}"#,
            )
            .await
    };

    // Over HTTP, as an external harness would.
    let set = plain_client()
        .post(format!("{}/_sim/faults", deps.tax.base_url))
        .json(&json!({"down": true}))
        .send()
        .await?;
    assert!(set.status().is_success());
    assert_eq!(qscx().await.0, StatusCode::SERVICE_UNAVAILABLE);

    deps.tax.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let resp = TaxCall::default()
        .send(&deps, "GET", "/api/v1/slzt?slh=x", "")
        .await;
    assert_eq!(resp, (StatusCode::INTERNAL_SERVER_ERROR, Value::Null));

    deps.tax.set_faults(Faults {
        garbage: true,
        ..Faults::default()
    });
    let raw = plain_client()
        .post(format!("{}/api/v1/qscx", deps.tax.base_url))
        .send()
        .await?;
    assert_eq!(raw.status(), StatusCode::OK);
    let bytes = raw.bytes().await?;
    assert!(
        serde_json::from_slice::<Value>(&bytes).is_err(),
        "garbage parsed as JSON"
    );

    deps.tax.set_faults(Faults::default());
    assert_eq!(qscx().await.0, StatusCode::OK);

    let stats: Value = plain_client()
        .get(format!("{}/_sim/stats", deps.tax.base_url))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(stats["received"]["qscx"], 3, "{stats}");
    assert_eq!(stats["received"]["slzt"], 1, "{stats}");
    assert_eq!(stats["applications"], 0);

    // Garbage from an XML department is not XML either.
    deps.public_security.set_faults(Faults {
        garbage: true,
        ..Faults::default()
    });
    let body = tls_client(&deps, true)?
        .post(format!("{}/gaxt/sfhc", deps.public_security.base_url))
        .send()
        .await?
        .bytes()
        .await?;
    assert!(
        !body.windows(10).any(|w| w == b"<response>"),
        "garbage looks like an answer"
    );
    assert!(
        std::str::from_utf8(&body).is_err(),
        "the protocol is UTF-8 XML; garbage is not even UTF-8"
    );
    Ok(())
}

#[tokio::test]
async fn latency_delays_the_answer() -> Result<()> {
    let deps = start().await?;
    deps.real_estate.set_faults(Faults {
        latency_ms: 300,
        ..Faults::default()
    });
    let started = Instant::now();
    let xml = soap(
        "queryByUnit",
        "<bdcdyh>351001012010GB01859F00040015</bdcdyh>",
    );
    let (status, _, _) = soap_call(&deps, "queryByUnit", gbk(&xml)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
    Ok(())
}
