//! The real-estate adapter's exports against a scripted registry (`sdk::testing`): SOAP 1.1
//! envelopes in GBK each way, the SOAPAction per operation, faults as errors; a transfer's
//! materials as an MTOM/XOP package whose files the host streams.

use real_estate_adapter::RealEstate;
use real_estate_adapter::protocol::{PROPERTY, TRANSFER};
use sdk::testing::{Exchange, Harness};
use sdk::xml::Node;
use sdk::{Adapter, AdapterError, LicenceRef, StepState, Submission};
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

fn transfer(materials: Vec<sdk::Material>) -> Submission {
    Submission {
        case_id: "case-1".into(),
        matter: TRANSFER.into(),
        idempotency_key: "case-1:transfer".into(),
        payload: json!({
            "unit_number": UNIT,
            "certificate_number": CERTIFICATE,
            "seller": {"name": "张三", "id_number": "11010519491231002X"},
            "buyer": {"name": "李四", "id_number": "34052419800101001X"},
            "price": 1500000,
        })
        .to_string(),
        callback_url: String::new(),
        materials,
    }
}

/// The parts of a multipart body with this boundary: each part's header block and content.
fn mime_parts<'a>(body: &'a [u8], boundary: &str) -> Vec<(String, &'a [u8])> {
    let delimiter = format!("\r\n--{boundary}");
    let mut with_crlf = b"\r\n".to_vec();
    with_crlf.extend_from_slice(body);
    let starts: Vec<usize> = with_crlf
        .windows(delimiter.len())
        .enumerate()
        .filter(|(_, w)| *w == delimiter.as_bytes())
        .map(|(i, _)| i)
        .collect();
    starts
        .windows(2)
        .map(|pair| {
            // Offsets in `with_crlf` are 2 past those in `body`; a part opens with CRLF.
            let part = &body[pair[0] + delimiter.len()..pair[1] - 2];
            let split = part.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
            (
                String::from_utf8_lossy(&part[..split]).into_owned(),
                &part[split + 4..],
            )
        })
        .collect()
}

fn pdf(len: usize, seed: u8) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend((0..len).map(|i| ((i * 7 + seed as usize) % 251) as u8));
    bytes.extend_from_slice(b"\n%%EOF\n");
    bytes
}

const LICENCE_ID: &str =
    "1.2.156.3005.2.11350100003501038C002.11350100003501038C.20260000000000000001.001.X";

#[test]
fn a_transfer_with_materials_is_an_mtom_package_with_a_gbk_envelope() {
    let contract = pdf(1 << 20, 1);
    let harness = Harness::new()
        .material("sale-contract", "房屋买卖合同", "application/pdf", contract.clone())
        .licence(
            "deed-tax-receipt",
            "契税完税证明",
            LicenceRef {
                id: LICENCE_ID.into(),
                kind: "deed_tax_receipt".into(),
                number: "3512026061500000007".into(),
            },
        )
        .promised("marriage-status", "婚姻状况证明", None)
        .expect(
            Exchange::post("/services/BdcService")
                .header("SOAPAction", "\"urn:bdc:submitTransfer\"")
                .streams("sale-contract")
                .respond(
                    200,
                    gbk_envelope(
                        "<bdc:submitTransferResponse><slbh>SL-0002</slbh><zt>受理</zt></bdc:submitTransferResponse>",
                    ),
                ),
        );
    let receipt = RealEstate::submit(transfer(harness.materials())).unwrap();
    assert_eq!(receipt.reference, "SL-0002");
    let sent = &harness.sent()[0];
    let content_type = sent.header("Content-Type").unwrap();
    assert!(
        content_type.starts_with(
            "multipart/related; type=\"application/xop+xml\"; start=\"<root.message@gateway>\"; start-info=\"text/xml\"; boundary="
        ),
        "{content_type}"
    );
    let boundary = content_type
        .rsplit_once("boundary=\"")
        .unwrap()
        .1
        .trim_end_matches('"');
    let parts = mime_parts(&sent.body, boundary);
    assert_eq!(parts.len(), 2, "the envelope and one file");
    // The root part: the envelope, GBK, as the registry reads it.
    let (head, envelope) = &parts[0];
    assert!(
        head.contains("Content-Type: application/xop+xml; charset=GBK; type=\"text/xml\""),
        "{head}"
    );
    assert!(
        head.contains("Content-ID: <root.message@gateway>"),
        "{head}"
    );
    assert_eq!(
        sdk::xml::declared_encoding(envelope).as_deref(),
        Some("GBK")
    );
    let root = Node::parse(&sdk::xml::decode(envelope).unwrap()).unwrap();
    let op = sdk::xml::soap_body(&root).unwrap().unwrap();
    let fj = op.child("fjlb").unwrap().child("fj").unwrap();
    assert_eq!(fj.text_of("clbm"), Some("sale-contract"));
    assert_eq!(fj.text_of("clmc"), Some("房屋买卖合同"));
    assert_eq!(fj.text_of("wjlx"), Some("application/pdf"));
    assert_eq!(
        fj.text_of("wjdx"),
        Some(contract.len().to_string().as_str())
    );
    assert_eq!(
        fj.text_of("wjsm3"),
        Some(sdk::sign::sm3_hex(&contract).as_str())
    );
    assert_eq!(fj.child("nr").unwrap().children[0].name, "Include");
    let zz = op.child("dzzz").unwrap().child("zz").unwrap();
    assert_eq!(
        (zz.text_of("clbm"), zz.text_of("zzbs"), zz.text_of("zzbh")),
        (
            Some("deed-tax-receipt"),
            Some(LICENCE_ID),
            Some("3512026061500000007")
        )
    );
    assert_eq!(
        op.child("rqcl")
            .unwrap()
            .child("cl")
            .unwrap()
            .text_of("clbm"),
        Some("marriage-status")
    );
    // The attachment: exactly the stored bytes, raw, under the Content-ID the include names.
    let (head, file) = &parts[1];
    assert!(head.contains("Content-Type: application/pdf"), "{head}");
    assert!(head.contains("Content-Transfer-Encoding: binary"), "{head}");
    assert!(
        head.contains("Content-ID: <sale-contract@bdc.gateway>"),
        "{head}"
    );
    assert!(
        String::from_utf8_lossy(envelope).contains("href=\"cid:sale-contract@bdc.gateway\""),
        "the include names the part"
    );
    assert_eq!(*file, contract.as_slice());
    // The adapter read nothing of the file: the host streamed it.
    assert!(harness.reads().is_empty(), "{:?}", harness.reads());
    harness.finish();
}

#[test]
fn the_same_bytes_for_two_materials_go_once() {
    let scan = pdf(5000, 2);
    let harness = Harness::new()
        .material(
            "buyer-id",
            "受让方身份证明",
            "application/pdf",
            scan.clone(),
        )
        .material(
            "seller-id",
            "转让方身份证明",
            "application/pdf",
            scan.clone(),
        )
        .expect(Exchange::post("/services/BdcService").respond(
            200,
            gbk_envelope(
                "<bdc:submitTransferResponse><slbh>SL-3</slbh></bdc:submitTransferResponse>",
            ),
        ));
    RealEstate::submit(transfer(harness.materials())).unwrap();
    let sent = &harness.sent()[0];
    let text = String::from_utf8_lossy(&sent.body);
    assert_eq!(
        text.matches("href=\"cid:buyer-id@bdc.gateway\"").count(),
        2,
        "{text}"
    );
    assert_eq!(
        text.matches("Content-ID: <buyer-id@bdc.gateway>").count(),
        1
    );
    assert!(!text.contains("seller-id@bdc.gateway"));
    harness.finish();
}

/// A SOAP client fault in GBK with the registry's code and the material it is about.
fn material_fault(code: &str, reason: &str, clbm: &str) -> Vec<u8> {
    gbk_envelope(&format!(
        "<soap:Fault><faultcode>soap:Client</faultcode><faultstring>{reason}</faultstring><detail><bdc:errorCode>{code}</bdc:errorCode><bdc:clbm>{clbm}</bdc:clbm></detail></soap:Fault>"
    ))
}

#[test]
fn materials_the_registry_refuses_become_the_right_error_kinds() {
    let refused = |code: &str, reason: &str| {
        Exchange::post("/services/BdcService")
            .respond(500, material_fault(code, reason, "sale-contract"))
    };
    let harness = Harness::new()
        .material(
            "sale-contract",
            "房屋买卖合同",
            "application/pdf",
            pdf(100, 3),
        )
        .expect(refused("E107", "附件类型错误：image/png"))
        .expect(refused("E109", "附件为空"))
        .expect(refused("E108", "附件大小或SM3摘要与声明不一致"))
        .expect(refused("E106", "附件缺失：cid:x"));
    let submit = || RealEstate::submit(transfer(harness.materials())).unwrap_err();
    for kind in ["format", "empty"] {
        match submit() {
            AdapterError::InvalidInput(p) => {
                assert_eq!(
                    (p[0].field.as_str(), p[0].code.as_str()),
                    ("materials.sale-contract", kind)
                );
                assert!(p[0].message.contains("不动产登记部门拒收"), "{:?}", p[0]);
            }
            other => panic!("{kind}: {other:?}"),
        }
    }
    assert!(matches!(submit(), AdapterError::Unavailable(m) if m.contains("E108")));
    assert!(matches!(submit(), AdapterError::Internal(m) if m.contains("E106")));
    harness.finish();
}
