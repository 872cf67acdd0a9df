//! The real-estate adapter's exports against a scripted registry (`sdk::testing`): SOAP 1.1
//! envelopes in GBK each way, the SOAPAction per operation, faults as errors.

use real_estate_adapter::RealEstate;
use real_estate_adapter::protocol::{PROPERTY, TRANSFER};
use sdk::testing::{Exchange, Harness};
use sdk::xml::Node;
use sdk::{Adapter, AdapterError, StepState, Submission};
use serde_json::{Value, json};

const CERTIFICATE: &str = "闽(2019)平潭不动产权第0011364号";
const UNIT: &str = "351001012010GB01859F00040015";

/// A registry answer: a SOAP envelope declaring GBK, encoded in GBK.
fn gbk_envelope(inner: &str) -> Vec<u8> {
    let xml = format!(
        r#"<?xml version="1.0" encoding="GBK"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:bdc="http://bdc.gov.cn/ws"><soap:Body>{inner}</soap:Body></soap:Envelope>"#
    );
    sdk::xml::encode_gbk(&xml).unwrap()
}

/// One call to the service, with the headers every call carries.
fn soap_call(operation: &str) -> Exchange {
    Exchange::post("/services/BdcService")
        .header("Content-Type", "text/xml; charset=GBK")
        .header("SOAPAction", format!("\"urn:bdc:{operation}\""))
        // Declared GBK and encoded so: `body_xml` decodes by the declaration, so Chinese text
        // sent in UTF-8 would read back as mojibake and fail the field comparisons.
        .check(
            |sent| match sdk::xml::declared_encoding(&sent.body).as_deref() {
                Some("GBK") => Ok(()),
                other => Err(format!("the envelope declares {other:?}, not GBK")),
            },
        )
}

/// The operation element inside the request's SOAP body, and its children as (name, text).
fn operation(root: &Node) -> (String, Vec<(String, String)>) {
    let op = sdk::xml::soap_body(root).unwrap().unwrap();
    let fields = op
        .children
        .iter()
        .map(|c| (c.name.clone(), c.text.clone()))
        .collect();
    (op.name.clone(), fields)
}

#[test]
fn property_lookup_round_trips_gbk_soap() {
    let harness = Harness::new().expect(
        soap_call("queryByCertificate")
            .body_xml(|root| {
                assert_eq!(
                    operation(root),
                    (
                        "queryByCertificate".into(),
                        vec![("bdcqzh".into(), CERTIFICATE.into())]
                    )
                );
            })
            .respond(
                200,
                gbk_envelope(&format!(
                    "<bdc:queryResponse><record><bdcdyh>{UNIT}</bdcdyh><bdcqzh>{CERTIFICATE}</bdcqzh>\
                     <qlr>张三</qlr><qlrzjh>11010519491231002X</qlrzjh><zl>平潭县潭城镇西航路18号1幢401室</zl>\
                     <mj>89.56</mj><yt>住宅</yt><djsj>2019-06-18</djsj></record></bdc:queryResponse>"
                )),
            )
            .response_header("Content-Type", "text/xml; charset=GBK"),
    );
    let answer = RealEstate::lookup(
        PROPERTY.into(),
        json!({"certificate_number": CERTIFICATE}).to_string(),
    )
    .unwrap();
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        answer["owner"],
        json!({"name": "张三", "id_number": "11010519491231002X"})
    );
    assert_eq!(answer["location"], "平潭县潭城镇西航路18号1幢401室");
    assert_eq!(answer["area"], 89.56);
    harness.finish();
}

#[test]
fn faults_become_errors() {
    let fault = |code: &str, reason: &str, error_code: &str| {
        gbk_envelope(&format!(
            "<soap:Fault><faultcode>{code}</faultcode><faultstring>{reason}</faultstring>\
             <detail><bdc:errorCode>{error_code}</bdc:errorCode></detail></soap:Fault>"
        ))
    };
    let harness = Harness::new()
        .expect(
            soap_call("queryByUnit")
                .respond(500, fault("soap:Client", "未查询到不动产登记信息", "E104")),
        )
        .expect(soap_call("queryByUnit").respond(500, fault("soap:Server", "数据库忙", "E900")))
        .expect(soap_call("queryByUnit").respond(502, "<html>bad gateway</html>"));
    let query = || json!({"unit_number": UNIT}).to_string();
    let not_found = RealEstate::lookup(PROPERTY.into(), query()).unwrap_err();
    assert!(matches!(not_found, AdapterError::Rejected(r) if r.code == "not_found"));
    let server = RealEstate::lookup(PROPERTY.into(), query()).unwrap_err();
    assert!(matches!(server, AdapterError::Unavailable(_)));
    let not_soap = RealEstate::lookup(PROPERTY.into(), query()).unwrap_err();
    assert!(matches!(not_soap, AdapterError::Unavailable(_)));
    harness.finish();
}

#[test]
fn transfer_is_submitted_then_polled() {
    let harness = Harness::new()
        .expect(
            soap_call("submitTransfer")
                .body_xml(|root| {
                    let (name, fields) = operation(root);
                    assert_eq!(name, "submitTransfer");
                    assert!(fields.contains(&("ywh".into(), "key-1".into())));
                    assert!(fields.contains(&("srfxm".into(), "李四".into())));
                    assert!(fields.contains(&("jyjg".into(), "1500000.00".into())));
                })
                .respond(
                    200,
                    gbk_envelope(
                        "<bdc:submitTransferResponse><slbh>SL-0001</slbh><zt>受理</zt></bdc:submitTransferResponse>",
                    ),
                ),
        )
        .expect(
            soap_call("queryStatus")
                .body_xml(|root| {
                    assert_eq!(operation(root).1, vec![("slbh".into(), "SL-0001".into())]);
                })
                .respond(
                    200,
                    gbk_envelope(
                        "<bdc:queryStatusResponse><zt>登簿</zt><xbdcqzh>闽(2025)平潭不动产权第0000001号</xbdcqzh></bdc:queryStatusResponse>",
                    ),
                ),
        );
    let receipt = RealEstate::submit(Submission {
        case_id: "case-1".into(),
        matter: TRANSFER.into(),
        idempotency_key: "key-1".into(),
        payload: json!({
            "unit_number": UNIT,
            "certificate_number": CERTIFICATE,
            "seller": {"name": "张三", "id_number": "11010519491231002X"},
            "buyer": {"name": "李四", "id_number": "34052419800101001X"},
            "price": 1500000,
        })
        .to_string(),
        callback_url: String::new(),
        materials: Vec::new(),
    })
    .unwrap();
    assert_eq!(
        (receipt.reference.as_str(), receipt.state),
        ("SL-0001", StepState::Accepted)
    );
    let report = RealEstate::status(TRANSFER.into(), receipt.reference).unwrap();
    assert_eq!(report.state, StepState::Approved);
    assert_eq!(
        serde_json::from_str::<Value>(&report.outputs).unwrap(),
        json!({"certificate_number": "闽(2025)平潭不动产权第0000001号"})
    );
    harness.finish();
}
