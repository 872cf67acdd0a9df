//! Property tests (fuzz targets) for reading the real-estate department's SOAP answers in GBK:
//! any status and any bytes, near-valid envelopes and faults (elements dropped, text put in,
//! bytes cut short or changed, UTF-8 under a GBK declaration), and every reader answers with a
//! value or an error of the kind its doc promises, never a panic. 256 cases per property, or
//! `PROPTEST_CASES`: `PROPTEST_CASES=100000 cargo test -p real-estate-adapter --test fuzz`.

use proptest::prelude::*;
use real_estate_adapter::protocol::{
    Call, fault_error, read_answer, read_property, read_status, read_transfer,
};
use sdk::AdapterError;
use sdk::testing::fuzz::{self, Declared};
use sdk::xml::{Node, SoapFault};

/// The department's codes and words, among the generated texts.
const WORDS: &[&str] = &[
    "受理",
    "审核",
    "登簿",
    "退回",
    "soap:Client",
    "soap:Server",
    "E100",
    "E101",
    "E103",
    "E104",
    "E201",
    "",
    "89.56",
];

fn envelope(inner: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="GBK"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:bdc="http://bdc.gov.cn/ws"><soap:Body>{inner}</soap:Body></soap:Envelope>"#
    )
}

/// Answers the department really gives, to start mutations from.
fn valid_answers() -> Vec<String> {
    [
        "<bdc:queryResponse><record><bdcdyh>351001012010GB01859F00040015</bdcdyh><bdcqzh>闽(2019)平潭不动产权第0011364号</bdcqzh>\
         <qlr>张三</qlr><qlrzjh>11010519491231002X</qlrzjh><zl>平潭县潭城镇西航路18号1幢401室</zl><mj>89.56</mj>\
         <yt>住宅</yt><djsj>2019-06-18</djsj></record></bdc:queryResponse>",
        "<bdc:submitTransferResponse><slbh>BDC2025010100000001</slbh><zt>受理</zt></bdc:submitTransferResponse>",
        "<bdc:queryStatusResponse><slbh>BDC1</slbh><zt>登簿</zt><xbdcqzh>闽(2025)平潭不动产权第0000001号</xbdcqzh></bdc:queryStatusResponse>",
        "<bdc:queryStatusResponse><slbh>BDC1</slbh><zt>审核</zt></bdc:queryStatusResponse>",
        "<soap:Fault><faultcode>soap:Client</faultcode><faultstring>转让方与登记权利人不一致</faultstring>\
         <detail><bdc:errorCode>E201</bdc:errorCode></detail></soap:Fault>",
        "<soap:Fault><faultcode>soap:Client</faultcode><faultstring>未查询到不动产登记信息</faultstring>\
         <detail><bdc:errorCode>E104</bdc:errorCode></detail></soap:Fault>",
        "<soap:Fault><faultcode>soap:Server</faultcode><faultstring>系统繁忙</faultstring></soap:Fault>",
    ]
    .iter()
    .map(|inner| envelope(inner))
    .collect()
}

/// The statuses the readers treat apart.
const STATUSES: &[u16] = &[201, 400, 404, 500, 503];

fn body() -> impl Strategy<Value = Vec<u8>> {
    fuzz::xml_body(valid_answers(), Declared::Gbk, WORDS)
}

/// The fault a body carries, if it is a readable SOAP fault.
fn fault_in(body: &[u8]) -> Option<SoapFault> {
    let root = Node::parse(&sdk::xml::decode(body).ok()?).ok()?;
    sdk::xml::soap_body(&root).ok()?.err()
}

/// The kinds of error an answer may become (see `read_answer` and `fault_error`): a readable
/// fault decides (`soap:Server` is `Unavailable`, E100/E103 `Internal`, E101 one `InvalidInput`,
/// another code `Rejected` with it, no code `Protocol`); without one, 5xx is `Unavailable` and
/// anything unreadable `Protocol`. Never a timeout.
fn check_kind(status: u16, body: &[u8], error: &AdapterError) -> Result<(), TestCaseError> {
    let fault = fault_in(body);
    let ok = match (error, &fault) {
        (AdapterError::Timeout(_), _) => false,
        (AdapterError::Unavailable(_), Some(f)) => !f.is_client(),
        (AdapterError::Unavailable(_), None) => status >= 500,
        (_, None) if status >= 500 => false,
        (AdapterError::Protocol(_), _) => true,
        (_, None) => false,
        (AdapterError::Internal(_), Some(f)) => {
            matches!(f.detail("errorCode"), Some("E100" | "E103"))
        }
        (AdapterError::InvalidInput(problems), Some(f)) => {
            problems.len() == 1 && f.detail("errorCode") == Some("E101")
        }
        (AdapterError::Rejected(r), Some(f)) => {
            f.is_client() && !r.code.is_empty() && f.detail("errorCode").is_some()
        }
    };
    prop_assert!(
        ok,
        "HTTP {} {:?}: {:?}",
        status,
        String::from_utf8_lossy(body),
        error
    );
    Ok(())
}

proptest! {
    #[test]
    fn every_reader_answers_any_answer(status in fuzz::status(STATUSES), body in body()) {
        for call in [Call::Lookup, Call::Submit, Call::Status] {
            if let Err(e) = read_answer(status, &body, "queryResponse", call) {
                check_kind(status, &body, &e)?;
            }
        }
        match read_transfer(status, &body) {
            Ok(receipt) => prop_assert!(!receipt.reference.is_empty()),
            Err(e) => check_kind(status, &body, &e)?,
        }
        match read_status("BDC1", status, &body) {
            Ok(report) => prop_assert!(serde_json::from_str::<serde_json::Value>(&report.outputs).is_ok()),
            Err(e) => check_kind(status, &body, &e)?,
        }
        match read_property(status, &body) {
            Ok(answer) => prop_assert!(answer["unit_number"].is_string() && answer["area"].is_number()),
            Err(e) => check_kind(status, &body, &e)?,
        }
    }

    #[test]
    fn any_fault_is_an_error_of_its_kind(
        code in fuzz::text(WORDS), reason in fuzz::text(WORDS), detail in proptest::option::of(fuzz::text(WORDS)),
    ) {
        let fault = SoapFault {
            code,
            reason,
            detail: detail.into_iter().map(|d| ("errorCode".to_string(), d)).collect(),
        };
        for call in [Call::Lookup, Call::Submit, Call::Status] {
            let error = fault_error(&fault, call);
            prop_assert!(!matches!(error, AdapterError::Timeout(_)));
            if let AdapterError::Rejected(r) = &error {
                prop_assert!(!r.code.is_empty(), "{:?} from {:?}", error, fault);
            }
        }
    }

    #[test]
    fn unreadable_bodies_are_protocol_errors(body in fuzz::bytes()) {
        let readable = sdk::xml::decode(&body).and_then(|t| Node::parse(&t));
        prop_assume!(readable.is_err());
        prop_assert!(matches!(read_transfer(200, &body), Err(AdapterError::Protocol(_))));
        prop_assert!(matches!(read_property(200, &body), Err(AdapterError::Protocol(_))));
        prop_assert!(matches!(read_status("BDC1", 200, &body), Err(AdapterError::Protocol(_))));
    }
}
