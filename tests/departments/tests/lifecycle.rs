//! 补正 and 撤回 at the simulated departments, driven with a raw client written from
//! PROTOCOLS.md ("Supplements and withdrawals"): a return says what it asks, a supplement is
//! taken once per request id (a repeat gets the first answer and is counted as a repeat) and
//! decided again, a withdrawn matter is never decided after.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use departments::{Departments, Options};
use encoding_rs::GBK;
use rustls::RootCertStore;
use serde_json::{Value, json};

fn plain_client() -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
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

/// A signed tax request (HMAC-SHA256 over METHOD\nPATH\nTS\nNONCE\nBODY): the answer.
async fn tax(deps: &Departments, method: &str, path: &str, body: &str) -> Value {
    let ts = time::OffsetDateTime::now_utc().unix_timestamp();
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let canonical = format!("{method}\n{path}\n{ts}\n{nonce}\n{body}");
    let signature = sdk::sign::hmac_sha256_hex(b"tax-demo-secret", canonical.as_bytes());
    let url = format!("{}{path}", deps.tax.base_url);
    let request = match method {
        "GET" => plain_client().get(url),
        _ => plain_client()
            .post(url)
            .header("Content-Type", "application/json")
            .body(body.to_owned()),
    };
    request
        .header("X-App-Key", "gw-demo")
        .header("X-Timestamp", ts.to_string())
        .header("X-Nonce", nonce)
        .header("X-Sign-Method", "HMAC-SHA256")
        .header("X-Signature", signature)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or(Value::Null)
}

/// A 税务登记 at `address`, decided: its 受理号 and its status once decided.
async fn registered(deps: &Departments, qqid: &str, address: &str) -> (String, Value) {
    let body = json!({
        "qqid": qqid, "nsrsbh": "91350100M000100Y43", "nsrmc": "福州测试科技有限公司",
        "fddbrxm": "张三", "fddbrsfzjhm": "11010519491231002X", "scjydz": address,
        "jyfw": "软件开发",
    });
    let answer = tax(deps, "POST", "/api/v1/swdj", &body.to_string()).await;
    let slh = answer["data"]["slh"].as_str().expect("slh").to_owned();
    let status = decided(deps, &slh).await;
    (slh, status)
}

async fn decided(deps: &Departments, slh: &str) -> Value {
    let path = format!("/api/v1/slzt?slh={slh}");
    eventually(
        || async { tax(deps, "GET", &path, "").await },
        |v| v["data"]["zt"] != "01",
    )
    .await
}

#[tokio::test]
async fn tax_returns_takes_a_supplement_once_and_decides_again() -> Result<()> {
    let deps = start().await?;
    let (slh, status) = registered(&deps, "q-1", "福州市鼓楼区五四路").await;
    assert_eq!(status["data"]["zt"], "04", "{status}");
    let bzxx = &status["data"]["bzxx"];
    assert_eq!(bzxx["bzzd"][0]["zdmc"], "scjydz", "{status}");
    assert_eq!(bzxx["bzcl"][0]["clbm"], "premises-proof", "{status}");
    assert!(bzxx["bzqx"].as_str().is_some_and(|d| d.len() == 10));

    // A field it does not take in a supplement: refused, nothing taken.
    let bad = json!({"qqid": "s-0", "slh": slh, "bzzd": {"nsrsbh": "91350100M000100Y43"}});
    let refused = tax(&deps, "POST", "/api/v1/bzsq", &bad.to_string()).await;
    assert_eq!(refused["code"], "1001", "{refused}");

    // The address corrected, no proof: taken, decided again, returned for the proof only.
    let supplement =
        json!({"qqid": "s-1", "slh": slh, "bzzd": {"scjydz": "福州市鼓楼区五四路1号"}}).to_string();
    let first = tax(&deps, "POST", "/api/v1/bzsq", &supplement).await;
    assert_eq!(first["data"]["zt"], "01", "{first}");
    let again = tax(&deps, "POST", "/api/v1/bzsq", &supplement).await;
    assert_eq!(first, again, "a repeated qqid gets the first answer");
    let taken = deps.tax.supplements(&slh);
    assert_eq!((taken.len(), taken[0].repeats), (1, 1), "{taken:?}");
    let status = decided(&deps, &slh).await;
    assert_eq!(status["data"]["zt"], "04", "{status}");
    assert_eq!(status["data"]["bzxx"]["bzzd"], json!([]), "{status}");
    assert_eq!(status["data"]["bzxx"]["bzcl"][0]["clbm"], "premises-proof");

    // A withdrawal now: 05 for good, a repeat answered alike, a supplement after refused.
    let withdrawal = json!({"qqid": "w-1", "slh": slh, "cxyy": "暂不办理"}).to_string();
    let withdrawn = tax(&deps, "POST", "/api/v1/cxsq", &withdrawal).await;
    assert_eq!(withdrawn["data"]["zt"], "05", "{withdrawn}");
    assert_eq!(
        tax(&deps, "POST", "/api/v1/cxsq", &withdrawal).await,
        withdrawn
    );
    assert_eq!(deps.tax.withdrawals(&slh).len(), 1);
    let late = json!({"qqid": "s-2", "slh": slh, "bzzd": {"scjydz": "五四路2号"}}).to_string();
    let refused = tax(&deps, "POST", "/api/v1/bzsq", &late).await;
    assert_eq!(refused["code"], "2008", "{refused}");
    assert_eq!(deps.tax.supplements(&slh).len(), 1, "nothing taken after");
    let path = format!("/api/v1/slzt?slh={slh}");
    assert_eq!(tax(&deps, "GET", &path, "").await["data"]["zt"], "05");

    // A decided registration: its withdrawal answers the decision.
    let (done, status) = registered(&deps, "q-2", "福州市鼓楼区五四路3号").await;
    assert_eq!(status["data"]["zt"], "02", "{status}");
    let withdrawal = json!({"qqid": "w-2", "slh": done, "cxyy": "暂不办理"}).to_string();
    let answer = tax(&deps, "POST", "/api/v1/cxsq", &withdrawal).await;
    assert_eq!(answer["data"]["zt"], "02", "{answer}");
    Ok(())
}

fn soap(operation: &str, children: &str) -> Vec<u8> {
    let xml = format!(
        r#"<?xml version="1.0" encoding="GBK"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:bdc="http://bdc.gov.cn/ws"><soap:Body><bdc:{operation}>{children}</bdc:{operation}></soap:Body></soap:Envelope>"#
    );
    GBK.encode(&xml).0.into_owned()
}

async fn registry(deps: &Departments, operation: &str, children: &str) -> String {
    let answer = plain_client()
        .post(format!("{}/services/BdcService", deps.real_estate.base_url))
        .header("Content-Type", "text/xml; charset=GBK")
        .header("SOAPAction", format!("\"urn:bdc:{operation}\""))
        .body(soap(operation, children))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    GBK.decode(&answer).0.into_owned()
}

fn between<'t>(text: &'t str, open: &str, close: &str) -> &'t str {
    text.split(open)
        .nth(1)
        .and_then(|s| s.split(close).next())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_registry_returns_a_low_price_and_withdraws_once() -> Result<()> {
    let deps = start().await?;
    let transfer = |ywh: &str, price: &str| {
        format!(
            "<ywh>{ywh}</ywh><bdcdyh>351001012010GB01859F00040015</bdcdyh><bdcqzh>闽(2019)平潭不动产权第0011364号</bdcqzh><zrfxm>张三</zrfxm><zrfzjh>11010519491231002X</zrfzjh><srfxm>李四</srfxm><srfzjh>34052419800101001X</srfzjh><jyjg>{price}</jyjg>"
        )
    };
    let answer = registry(&deps, "submitTransfer", &transfer("YW-1", "500000.00")).await;
    let slbh = between(&answer, "<slbh>", "</slbh>").to_owned();
    let query = format!("<slbh>{slbh}</slbh>");
    let status = eventually(
        || async { Value::String(registry(&deps, "queryStatus", &query).await) },
        |v| v.as_str().unwrap().contains("<zt>退回</zt>"),
    )
    .await;
    let status = status.as_str().unwrap();
    assert!(status.contains("<zdmc>jyjg</zdmc>"), "{status}");
    assert!(status.contains("895600.00"), "{status}");

    // The price corrected: taken once (a repeat gets the first answer), registered.
    let supplement = format!(
        "<ywh>S-1</ywh><slbh>{slbh}</slbh><bzzd><zd><zdmc>jyjg</zdmc><zdz>1200000.00</zdz></zd></bzzd>"
    );
    let first = registry(&deps, "submitSupplement", &supplement).await;
    assert!(first.contains("<zt>受理</zt>"), "{first}");
    assert_eq!(
        registry(&deps, "submitSupplement", &supplement).await,
        first
    );
    let taken = deps.real_estate.supplements(&slbh);
    assert_eq!((taken.len(), taken[0].repeats), (1, 1), "{taken:?}");
    let status = eventually(
        || async { Value::String(registry(&deps, "queryStatus", &query).await) },
        |v| v.as_str().unwrap().contains("<zt>登簿</zt>"),
    )
    .await;
    assert!(status.as_str().unwrap().contains("<xbdcqzh>"), "{status}");
    // Registered: a withdrawal answers the decision, a supplement is refused (E202).
    let withdrawal = format!("<ywh>W-1</ywh><slbh>{slbh}</slbh><chyy>不再交易</chyy>");
    let answer = registry(&deps, "withdrawApplication", &withdrawal).await;
    assert!(answer.contains("<zt>登簿</zt>"), "{answer}");
    let late = supplement.replace("S-1", "S-2");
    let refused = registry(&deps, "submitSupplement", &late).await;
    assert!(refused.contains("E202"), "{refused}");

    // Another transfer withdrawn before its decision: 已撤回, for good.
    let answer = registry(&deps, "submitTransfer", &transfer("YW-2", "1200000.00")).await;
    let slbh = between(&answer, "<slbh>", "</slbh>").to_owned();
    let withdrawal = format!("<ywh>W-2</ywh><slbh>{slbh}</slbh><chyy>不再交易</chyy>");
    let answer = registry(&deps, "withdrawApplication", &withdrawal).await;
    assert!(answer.contains("<zt>已撤回</zt>"), "{answer}");
    assert_eq!(
        registry(&deps, "withdrawApplication", &withdrawal).await,
        answer
    );
    let told = deps.real_estate.withdrawals(&slbh);
    assert_eq!((told.len(), told[0].repeats), (1, 1), "{told:?}");
    // Past the time it would have been decided (50 ms): an absence has no event to wait on.
    tokio::time::sleep(Duration::from_millis(120)).await;
    let query = format!("<slbh>{slbh}</slbh>");
    let status = registry(&deps, "queryStatus", &query).await;
    assert!(
        status.contains("<zt>已撤回</zt>"),
        "never decided after: {status}"
    );
    Ok(())
}

#[tokio::test]
async fn tax_ends_a_returned_registration_when_its_supplement_lapses() -> Result<()> {
    let deps = start().await?;
    let (slh, status) = registered(&deps, "q-lapse", "福州市鼓楼区五四路").await;
    assert_eq!(status["data"]["zt"], "04", "{status}");
    // Without the switch it stays returned; with it, the next query ends it for good.
    let path = format!("/api/v1/slzt?slh={slh}");
    assert_eq!(tax(&deps, "GET", &path, "").await["data"]["zt"], "04");
    deps.tax.set_faults(departments::Faults {
        lapse_returned: true,
        ..Default::default()
    });
    let ended = tax(&deps, "GET", &path, "").await;
    assert_eq!(
        (&ended["data"]["zt"], &ended["data"]["ztmc"]),
        (&json!("03"), &json!("逾期未补正")),
        "{ended}"
    );
    deps.tax.set_faults(departments::Faults::default());
    assert_eq!(tax(&deps, "GET", &path, "").await["data"]["zt"], "03");
    let late = json!({"qqid": "s-late", "slh": slh, "bzzd": {"scjydz": "五四路2号"}});
    let refused = tax(&deps, "POST", "/api/v1/bzsq", &late.to_string()).await;
    assert_eq!(refused["code"], "2008", "{refused}");
    Ok(())
}

#[tokio::test]
async fn tax_in_hand_takes_only_promised_materials_as_a_supplement() -> Result<()> {
    let deps = departments::start(Options {
        ticket_delay: Duration::from_secs(30),
        ..Options::default()
    })
    .await?;
    let body = json!({
        "qqid": "q-promise", "nsrsbh": "91350100M000100Y43", "nsrmc": "福州测试科技有限公司",
        "fddbrxm": "张三", "fddbrsfzjhm": "11010519491231002X", "scjydz": "福州市鼓楼区五四路1号",
        "jyfw": "软件开发", "rqcl": [{"clbm": "premises-proof", "clmc": "经营场所证明", "cnrq": "2026-12-31"}],
    });
    let answer = tax(&deps, "POST", "/api/v1/swdj", &body.to_string()).await;
    let slh = answer["data"]["slh"].as_str().expect("slh").to_owned();
    // 受理中: a correction, an empty supplement, a material it was not promised: 2008.
    for (qqid, extra) in [
        ("s-field", json!({"bzzd": {"scjydz": "五四路2号"}})),
        ("s-empty", json!({})),
        (
            "s-other",
            json!({"fjlb": [{"clbm": "business-licence", "wjid": "F1"}]}),
        ),
    ] {
        let mut supplement = json!({"qqid": qqid, "slh": slh});
        supplement
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let refused = tax(&deps, "POST", "/api/v1/bzsq", &supplement.to_string()).await;
        assert_eq!(refused["code"], "2008", "{qqid}: {refused}");
    }
    // The promised one passes that check (its file, never uploaded here, is then 3005).
    let promised = json!({"qqid": "s-promised", "slh": slh,
        "fjlb": [{"clbm": "premises-proof", "wjid": "F1"}]});
    let answer = tax(&deps, "POST", "/api/v1/bzsq", &promised.to_string()).await;
    assert_eq!(answer["code"], "3005", "{answer}");
    assert!(deps.tax.supplements(&slh).is_empty());
    let path = format!("/api/v1/slzt?slh={slh}");
    assert_eq!(tax(&deps, "GET", &path, "").await["data"]["zt"], "01");
    Ok(())
}
