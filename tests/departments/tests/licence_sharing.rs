//! Every department verifies the 免提交 licences an application names at the gateway's
//! licence-sharing endpoint, with its own token, before it takes the application; a licence the
//! gateway never issued, or not the applicant's, is refused in the department's own protocol,
//! and a gateway that cannot be asked is the department being unavailable (PROTOCOLS.md).
//!
//! The gateway here is a stand-in over real HTTP that answers licences from a table and notes
//! who read what, so each department's side is tested alone; the real endpoint is tested with
//! the gateway (`tests/tests/e2e/licence_sharing.rs`, `materials_to_*.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get};
use departments::{Departments, GatewayLink, LicenceSharingTokens, Options};
use encoding_rs::GBK;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};

const ENTERPRISE: &str = "91350100M000100Y43";
const SELLER: &str = "11010519491231002X";
const BUYER: &str = "34052419800101001X";

/// A GB/T 36904 identifier with this serial (20 characters of 0-9 A-Z), its check character
/// right.
fn licence_id(serial: &str) -> String {
    let (kind, authority, version) = ("11350100003501011L001", "11350100003501011L", "001");
    let check =
        sdk::ids::licence_check_char(&format!("{kind}{authority}{serial}{version}")).unwrap();
    let id = format!("1.2.156.3005.2.{kind}.{authority}.{serial}.{version}.{check}");
    assert!(sdk::ids::licence_id(&id).is_ok(), "{id}");
    id
}

// ---------------------------------------------------------------- the gateway's stand-in

/// The licences it holds (by id) and every read: (department the token names, licence id).
#[derive(Default)]
struct Sharing {
    licences: HashMap<String, Value>,
    reads: Mutex<Vec<(String, String)>>,
}

async fn licence(
    State(sharing): State<Arc<Sharing>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let tokens = LicenceSharingTokens::default();
    let department = match headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        Some(t) if t == tokens.tax => "tax",
        Some(t) if t == tokens.real_estate => "real-estate",
        Some(t) if t == tokens.public_security => "public-security",
        Some(t) if t == tokens.market_regulation => "market-regulation",
        _ => return StatusCode::UNAUTHORIZED.into_response(),
    };
    sharing
        .reads
        .lock()
        .unwrap()
        .push((department.to_string(), id.clone()));
    match sharing.licences.get(&id) {
        Some(licence) => Json(licence.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": "not_found"}})),
        )
            .into_response(),
    }
}

/// The stand-in on a free port, holding `licences` ((id, kind, number, holder)); its URL.
async fn gateway(licences: &[(&str, &str, &str, &str)]) -> (String, Arc<Sharing>) {
    let sharing = Arc::new(Sharing {
        licences: licences
            .iter()
            .map(|(id, kind, number, holder)| {
                (
                    id.to_string(),
                    json!({"id": id, "kind": kind, "number": number, "holder_id": holder}),
                )
            })
            .collect(),
        ..Sharing::default()
    });
    let router = Router::new()
        .route("/licence-sharing/v1/licences/{id}", get(licence))
        .with_state(sharing.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, sharing)
}

fn reads(sharing: &Sharing) -> Vec<(String, String)> {
    sharing.reads.lock().unwrap().clone()
}

async fn start(gateway_url: &str) -> Result<Departments> {
    departments::start(Options {
        ticket_delay: Duration::from_millis(50),
        gateway: GatewayLink::new(Some(gateway_url.into()), LicenceSharingTokens::default()),
        ..Options::default()
    })
    .await
}

/// (code, licence id, how verified) of each licence a department took.
fn verified(deps: &departments::Department) -> Vec<(String, Option<String>, Option<String>)> {
    deps.stats()
        .materials
        .into_iter()
        .filter(|m| m.kind == "licence")
        .map(|m| (m.code, m.licence_id, m.verified_by))
        .collect()
}

fn by_gateway(code: &str, id: &str) -> (String, Option<String>, Option<String>) {
    (code.into(), Some(id.into()), Some("gateway".into()))
}

fn plain_client() -> reqwest::Client {
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

// ---------------------------------------------------------------- tax

/// A signed `POST /api/v1/swdj` for the seeded enterprise naming `licence` (id, kind, number).
async fn tax_registration(deps: &Departments, qqid: &str, licence: (&str, &str)) -> (u16, Value) {
    let body = json!({
        "qqid": qqid, "nsrsbh": ENTERPRISE, "nsrmc": "福州测试科技有限公司",
        "fddbrxm": "张三", "fddbrsfzjhm": SELLER, "scjydz": "福州市鼓楼区五四路1号",
        "jyfw": "软件开发",
        "dzzz": [{"clbm": "business-licence", "clmc": "营业执照", "zzbs": licence.0,
            "zzlx": "business_licence", "zzbh": licence.1}],
    })
    .to_string();
    let (path, timestamp, nonce) = (
        "/api/v1/swdj",
        sdk::sign::unix_seconds(),
        sdk::sign::nonce(),
    );
    let canonical = format!("POST\n{path}\n{timestamp}\n{nonce}\n{body}");
    let response = plain_client()
        .post(format!("{}{path}", deps.tax.base_url))
        .header("Content-Type", "application/json")
        .header("X-App-Key", "gw-demo")
        .header("X-Timestamp", timestamp.to_string())
        .header("X-Nonce", nonce)
        .header("X-Sign-Method", "HMAC-SHA256")
        .header(
            "X-Signature",
            sdk::sign::hmac_sha256_hex(b"tax-demo-secret", canonical.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn tax_verifies_the_enterprises_licence_at_the_gateway_with_its_own_token() -> Result<()> {
    let issued = licence_id("2025A1B2C3D4E5F60718");
    let someone_elses = licence_id("2025B1B2C3D4E5F60718");
    let (url, sharing) = gateway(&[
        (&issued, "business_licence", "N1", ENTERPRISE),
        (
            &someone_elses,
            "business_licence",
            "N2",
            "91110108551385082Q",
        ),
    ])
    .await;
    let deps = start(&url).await?;

    let (status, answer) = tax_registration(&deps, "q1", (&issued, "N1")).await;
    assert_eq!((status, &answer["code"]), (200, &json!("0000")), "{answer}");
    // A repeat gets its first answer without asking again.
    let (_, again) = tax_registration(&deps, "q1", (&issued, "N1")).await;
    assert_eq!(again, answer);
    assert_eq!(reads(&sharing), [("tax".to_string(), issued.clone())]);
    assert_eq!(
        verified(&deps.tax),
        [by_gateway("business-licence", &issued)]
    );

    // Never issued (its check character right), another enterprise's, or another number: 3007.
    let unissued = licence_id("2099000000000000000A");
    for (qqid, licence, why) in [
        ("q2", (unissued.as_str(), "N1"), "无此证照"),
        ("q3", (someone_elses.as_str(), "N2"), "持有人"),
        ("q4", (issued.as_str(), "N9"), "编号"),
    ] {
        let (status, answer) = tax_registration(&deps, qqid, licence).await;
        assert_eq!((status, &answer["code"]), (200, &json!("3007")), "{answer}");
        assert!(answer["msg"].as_str().unwrap().contains(why), "{answer}");
    }
    assert_eq!(deps.tax.stats().rejected["licence_invalid"], 3);
    assert_eq!(
        deps.tax.applications(),
        1,
        "nothing taken for a refused licence"
    );

    // The gateway cannot be asked: HTTP 503, its own code, worth trying again.
    deps.gateway.set_url("http://127.0.0.1:9");
    let (status, answer) = tax_registration(&deps, "q5", (&issued, "N1")).await;
    assert_eq!((status, &answer["code"]), (503, &json!("5001")), "{answer}");
    Ok(())
}

// ---------------------------------------------------------------- real estate

/// A `submitTransfer` of the seeded flat from 张三 to 李四 naming `licence` (id, kind,
/// number): the status and the GBK answer decoded.
async fn transfer(deps: &Departments, ywh: &str, licence: (&str, &str, &str)) -> (u16, String) {
    let xml = format!(
        r#"<?xml version="1.0" encoding="GBK"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:bdc="http://bdc.gov.cn/ws"><soap:Body><bdc:submitTransfer><ywh>{ywh}</ywh><bdcdyh>351001012010GB01859F00040015</bdcdyh><bdcqzh>闽(2019)平潭不动产权第0011364号</bdcqzh><zrfxm>张三</zrfxm><zrfzjh>{SELLER}</zrfzjh><srfxm>李四</srfxm><srfzjh>{BUYER}</srfzjh><jyjg>1200000.00</jyjg><dzzz><zz><clbm>deed-tax-receipt</clbm><clmc>契税完税凭证</clmc><zzbs>{}</zzbs><zzlx>{}</zzlx><zzbh>{}</zzbh></zz></dzzz></bdc:submitTransfer></soap:Body></soap:Envelope>"#,
        licence.0, licence.1, licence.2
    );
    let response = plain_client()
        .post(format!("{}/services/BdcService", deps.real_estate.base_url))
        .header("Content-Type", "text/xml; charset=GBK")
        .header("SOAPAction", "\"urn:bdc:submitTransfer\"")
        .body(GBK.encode(&xml).0.into_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    let (text, _, bad) = GBK.decode(&bytes);
    assert!(!bad, "the answer is GBK");
    (status, text.into_owned())
}

#[tokio::test]
async fn real_estate_verifies_the_buyers_receipt_and_faults_in_gbk_otherwise() -> Result<()> {
    let receipt = licence_id("2025C1B2C3D4E5F60718");
    let sellers = licence_id("2025D1B2C3D4E5F60718");
    let (url, sharing) = gateway(&[
        (&receipt, "deed_tax_receipt", "351001", BUYER),
        (&sellers, "deed_tax_receipt", "351002", SELLER),
    ])
    .await;
    let deps = start(&url).await?;

    let (status, answer) = transfer(&deps, "y1", (&receipt, "deed_tax_receipt", "351001")).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("<slbh>BDC"), "{answer}");
    assert_eq!(
        reads(&sharing),
        [("real-estate".to_string(), receipt.clone())]
    );
    assert_eq!(
        verified(&deps.real_estate),
        [by_gateway("deed-tax-receipt", &receipt)]
    );

    // A receipt the gateway never issued, or the seller's (the receipt is the buyer's): a
    // client fault E113 naming the material.
    for (ywh, licence, why) in [
        ("y2", licence_id("2099000000000000000B"), "无此证照"),
        ("y3", sellers.clone(), "持有人"),
    ] {
        let number = if ywh == "y3" { "351002" } else { "351001" };
        let (status, answer) = transfer(&deps, ywh, (&licence, "deed_tax_receipt", number)).await;
        assert_eq!(status, 500, "{answer}");
        for part in [
            "<faultcode>soap:Client</faultcode>",
            "<bdc:errorCode>E113</bdc:errorCode>",
            "<bdc:clbm>deed-tax-receipt</bdc:clbm>",
            why,
        ] {
            assert!(answer.contains(part), "{part} in {answer}");
        }
    }
    assert_eq!(deps.real_estate.applications(), 1);

    // The gateway cannot be asked: the registry's own failure, soap:Server.
    deps.gateway.set_url("http://127.0.0.1:9");
    let (status, answer) = transfer(&deps, "y4", (&receipt, "deed_tax_receipt", "351001")).await;
    assert_eq!(status, 500);
    assert!(
        answer.contains("<faultcode>soap:Server</faultcode>") && answer.contains("E500"),
        "{answer}"
    );
    Ok(())
}

// ---------------------------------------------------------------- public security

/// A client with the simulator's client certificate.
fn mutual_tls_client(deps: &Departments) -> Result<reqwest::Client> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(deps.cert_dir.join("ca.pem"))?)?;
    let chain = CertificateDer::pem_file_iter(deps.cert_dir.join("client.pem"))?
        .collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(deps.cert_dir.join("client-key.pem"))?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)?;
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .resolve("localhost", deps.public_security.addr)
        .build()?)
}

/// A 刻章备案 of the seeded enterprise naming its business licence `id`: the status and answer.
async fn seal_filing(deps: &Departments, request_id: &str, id: &str) -> Result<(u16, String)> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><request><requestId>{request_id}</requestId>\
         <tyshxydm>{ENTERPRISE}</tyshxydm><qymc>福州测试科技有限公司</qymc><fddbr>张三</fddbr>\
         <fddbrsfzh>{SELLER}</fddbrsfzh><yzlx>法定名称章</yzlx><cllb><cl><clbm>business-licence</clbm>\
         <clmc>营业执照</clmc><dzzzbs>{id}</dzzzbs><zzlx>business_licence</zzlx><zzbh>N1</zzbh></cl>\
         </cllb></request>"
    );
    let response = mutual_tls_client(deps)?
        .post(format!("{}/gaxt/kzba", deps.public_security.base_url))
        .header("Content-Type", "application/xml; charset=UTF-8")
        .body(xml)
        .send()
        .await?;
    Ok((response.status().as_u16(), response.text().await?))
}

#[tokio::test]
async fn public_security_verifies_the_enterprises_licence_and_answers_its_code_otherwise()
-> Result<()> {
    let issued = licence_id("2025E1B2C3D4E5F60718");
    let (url, sharing) = gateway(&[(&issued, "business_licence", "N1", ENTERPRISE)]).await;
    let deps = start(&url).await?;

    let (status, answer) = seal_filing(&deps, "k1", &issued).await?;
    assert_eq!(status, 200);
    assert!(answer.contains("<babh>GA"), "{answer}");
    assert_eq!(
        reads(&sharing),
        [("public-security".to_string(), issued.clone())]
    );
    assert_eq!(
        verified(&deps.public_security),
        [by_gateway("business-licence", &issued)]
    );

    // Never issued: 21, on the merits.
    let (status, answer) = seal_filing(&deps, "k2", &licence_id("2099000000000000000C")).await?;
    assert_eq!(status, 200);
    assert!(
        answer.contains("<code>21</code>") && answer.contains("无此证照"),
        "{answer}"
    );
    assert_eq!(deps.public_security.applications(), 1);

    // The gateway cannot be asked: HTTP 503.
    deps.gateway.set_url("http://127.0.0.1:9");
    let (status, answer) = seal_filing(&deps, "k3", &issued).await?;
    assert_eq!(status, 503, "{answer}");
    assert!(answer.contains("<code>90</code>"), "{answer}");
    Ok(())
}

// ---------------------------------------------------------------- the demo config

/// The demo gateway (`config/gateway.toml`) keeps, for each department, the SHA-256 of the demo
/// token its simulator presents by default: the demo's reads are accepted and audited under
/// the right department.
#[test]
fn the_demo_config_keeps_each_departments_demo_token_digest() {
    use sha2::Digest;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/gateway.toml");
    let config = std::fs::read_to_string(path).unwrap();
    let tokens = LicenceSharingTokens::default();
    for (id, token) in [
        ("tax", &tokens.tax),
        ("real-estate", &tokens.real_estate),
        ("public-security", &tokens.public_security),
        ("market-regulation", &tokens.market_regulation),
    ] {
        // The department's own table: from its header to the next one.
        let table = config
            .split_once(&format!("[departments.{id}]\n"))
            .map(|(_, rest)| rest.split("\n[").next().unwrap())
            .unwrap_or_else(|| panic!("no [departments.{id}]"));
        let digest = hex::encode(sha2::Sha256::digest(token.as_bytes()));
        assert!(
            table.contains(&format!("licence_sharing_key_sha256 = \"{digest}\"")),
            "{id}: {table}"
        );
    }
}
