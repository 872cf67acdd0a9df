//! Materials in the sdk, natively against the harness: bodies of bytes and material slices (a
//! multipart form, an MTOM/XOP package with a GBK envelope, base64 inside XML, chunks), reads in
//! slices, what the host refuses, and the defaults of `supplement` and `withdraw`.

use sdk::http::{Body, Multipart, Part, Request, Slice};
use sdk::materials::{self, READ_MAX, Reader};
use sdk::testing::{Exchange, Harness};
use sdk::{Adapter, AdapterError, LicenceRef};
use std::io::Read as _;

/// 3 MiB and a bit: more than one read, not a multiple of anything.
fn pdf() -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend((0..3 * 1024 * 1024 + 17).map(|i| (i * 7 % 251) as u8));
    bytes.extend_from_slice(b"\n%%EOF\n");
    bytes
}

fn harness() -> Harness {
    Harness::new().material("articles", "公司章程", "application/pdf", pdf())
}

#[test]
fn a_form_streams_the_file_and_signs_the_whole_body() {
    let file = pdf();
    let expected = [
        b"--b\r\nContent-Disposition: form-data; name=\"code\"\r\n\r\narticles\r\n".to_vec(),
        b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n".to_vec(),
        file.clone(),
        b"\r\n--b--\r\n".to_vec(),
    ]
    .concat();
    let harness = harness().expect(
        Exchange::post("/wjsc")
            .header("Content-Type", "multipart/form-data; boundary=\"b\"")
            .streams("articles")
            .body(expected.clone())
            .body_sm3(sdk::sign::sm3_hex(&expected))
            .respond(200, r#"{"wjid":"F1"}"#),
    );
    let material = &harness.materials()[0];
    let form = Multipart::form_data()
        .boundary("b")
        .field("code", "articles")
        .file(
            "file",
            "a.pdf",
            "application/pdf",
            material.slice().unwrap(),
        );
    let request = Request::post("/wjsc").multipart(form);
    // A signature over the body, read through in slices: the same as over the bytes sent.
    assert_eq!(
        request.content().sm3_hex().unwrap(),
        sdk::sign::sm3_hex(&expected)
    );
    assert_eq!(request.content().wire_len(), Some(expected.len() as u64));
    assert_eq!(request.send().unwrap().status, 200);
    // No read larger than the host answers.
    assert!(harness.reads().iter().all(|r| r.max <= READ_MAX));
    harness.finish();
}

#[test]
fn an_mtom_package_has_a_gbk_envelope_and_binary_attachments() {
    let envelope_text = format!(
        "<?xml version=\"1.0\" encoding=\"GBK\"?><Envelope><Body><zm>{}</zm></Body></Envelope>",
        sdk::http::xop_include("articles@gateway")
    );
    let envelope =
        sdk::xml::encode_gbk(&envelope_text.replace("<zm>", "<zm 名称=\"公司章程\">")).unwrap();
    let harness = harness().expect(
        Exchange::post("/soap")
            .streams("articles")
            .check(|sent| {
                let ct = sent.header("Content-Type").unwrap();
                for p in [
                    "multipart/related",
                    "type=\"application/xop+xml\"",
                    "start=\"<root.message@gateway>\"",
                    "start-info=\"text/xml\"",
                ] {
                    if !ct.contains(p) {
                        return Err(format!("content type {ct} lacks {p}"));
                    }
                }
                let body = &sent.body;
                let root = b"Content-Type: application/xop+xml; charset=GBK; type=\"text/xml\"";
                let attachment = b"Content-ID: <articles@gateway>\r\n\r\n%PDF-1.7";
                let gbk = sdk::xml::encode_gbk("公司章程").unwrap();
                let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
                if has(root)
                    && has(attachment)
                    && has(&gbk)
                    && has(b"href=\"cid:articles@gateway\"")
                {
                    Ok(())
                } else {
                    Err("the package lacks its root or its attachment".into())
                }
            })
            .respond(200, "<ok/>"),
    );
    let material = &harness.materials()[0];
    let package = Multipart::xop(&envelope, "GBK", "text/xml").attachment(
        "articles@gateway",
        "application/pdf",
        material.slice().unwrap(),
    );
    Request::post("/soap").multipart(package).send().unwrap();
    harness.finish();
}

#[test]
fn base64_inside_xml_and_chunks() {
    use base64::Engine as _;
    let file = pdf();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&file);
    let chunk = 1024 * 1024;
    let mut harness = harness().expect(
        Exchange::post("/xml")
            .streams("articles")
            .body(format!("<wj><nr>{encoded}</nr></wj>")),
    );
    for (n, piece) in file.chunks(chunk).enumerate() {
        harness = harness.expect(
            Exchange::new("PUT", format!("/chunks/{n}"))
                .header("X-Chunk-SM3", sdk::sign::sm3_hex(piece))
                .body(piece.to_vec()),
        );
    }
    let body = Body::splice(
        "<wj><nr>@@</nr></wj>",
        "@@",
        Slice::whole("articles").base64(),
    )
    .unwrap();
    assert_eq!(body.parts().len(), 3);
    // A whole material's length is the host's to know.
    assert_eq!(body.wire_len(), None);
    Request::post("/xml").parts(body).send().unwrap();

    let size = harness.materials()[0].file().unwrap().size;
    let chunks = materials::chunks(size, chunk as u64);
    assert_eq!(chunks.len(), 4);
    for c in chunks {
        Request::put(format!("/chunks/{}", c.index))
            .header("X-Chunk-SM3", c.sm3_hex("articles").unwrap())
            .parts(Body::from(c.slice("articles")))
            .send()
            .unwrap();
    }
    // A marker that is not there is the adapter's mistake, said so.
    assert!(matches!(
        Body::splice("<wj/>", "@@", Slice::whole("articles")),
        Err(AdapterError::Internal(_))
    ));
    harness.finish();
}

#[test]
fn reads_come_in_slices_and_only_of_the_calls_files() {
    let file = pdf();
    let harness = harness()
        .licence(
            "licence",
            "营业执照",
            LicenceRef {
                id: "L1".into(),
                kind: "business_licence".into(),
                number: "91350100M000100Y43".into(),
            },
        )
        .promised("plan", "平面图", Some("2027-01-31"));
    assert_eq!(harness.materials().len(), 3);
    assert_eq!(materials::read("articles", 0, 9).unwrap(), b"%PDF-1.7\n");
    // At most 1 MiB at once, whatever is asked; nothing past the end.
    assert_eq!(
        materials::read("articles", 0, u32::MAX).unwrap().len(),
        READ_MAX as usize
    );
    assert!(
        materials::read("articles", file.len() as u64, 10)
            .unwrap()
            .is_empty()
    );
    let slices: Vec<Vec<u8>> = Reader::new("articles").map(Result::unwrap).collect();
    assert_eq!(slices.len(), 4);
    assert_eq!(slices.concat(), file);
    let mut tail = Vec::new();
    Reader::range("articles", 3, Some(5))
        .read_to_end(&mut tail)
        .unwrap();
    assert_eq!(tail, &file[3..8]);
    assert_eq!(
        materials::sm3_hex("articles", 0, None).unwrap(),
        sdk::sign::sm3_hex(&file)
    );
    // Not a file, or not the call's: refused as the host refuses.
    for code in ["licence", "plan", "elsewhere"] {
        assert!(matches!(
            materials::read(code, 0, 1),
            Err(materials::ReadError::Unknown(_))
        ));
    }
    harness.finish();
}

#[test]
fn the_host_refuses_slices_it_cannot_serve() {
    let harness = harness();
    for slice in [
        Slice::whole("elsewhere"),
        Slice::new("articles", 0, 1 << 30),
    ] {
        let sent = Request::post("/x").parts(Body::from(slice)).send();
        assert!(
            matches!(sent, Err(sdk::http::HttpError::Forbidden(_))),
            "{sent:?}"
        );
    }
    let problems = harness.problems();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].contains("no material `elsewhere`"),
        "{problems:?}"
    );
    assert!(matches!(&harness.sent()[0].parts[0], Part::Material(s) if s.code == "elsewhere"));
    drop(std::panic::catch_unwind(std::panic::AssertUnwindSafe(
        || harness.finish(),
    )));
}

#[test]
fn a_failing_store_is_unavailable() {
    let harness = harness().failing_reads("the store is down");
    let err: AdapterError = materials::read("articles", 0, 1).unwrap_err().into();
    assert!(matches!(err, AdapterError::Unavailable(_)), "{err:?}");
    harness.finish();
}

struct Old;

impl Adapter for Old {
    fn describe() -> sdk::Description {
        unimplemented!()
    }
    fn validate(_: String, _: String) -> Vec<sdk::FieldError> {
        Vec::new()
    }
    fn submit(_: sdk::Submission) -> Result<sdk::Receipt, AdapterError> {
        Ok(sdk::Receipt::accepted("R1"))
    }
    fn status(_: String, r: String) -> Result<sdk::StatusReport, AdapterError> {
        Ok(sdk::StatusReport::new(r, sdk::StepState::Processing))
    }
    fn lookup(_: String, q: String) -> Result<String, AdapterError> {
        Ok(q)
    }
    fn on_callback(_: sdk::CallbackRequest) -> Result<sdk::StatusReport, AdapterError> {
        Err(AdapterError::InvalidInput(Vec::new()))
    }
}

#[test]
fn supplement_and_withdraw_default_to_a_clear_error() {
    let supplement = Old::supplement(sdk::Supplement {
        case_id: "c".into(),
        matter: "m".into(),
        reference: "R1".into(),
        idempotency_key: "k".into(),
        payload: "{}".into(),
        materials: Vec::new(),
    });
    assert!(
        matches!(&supplement, Err(AdapterError::Internal(m)) if m.contains("`supplement`")),
        "{supplement:?}"
    );
    let withdraw = Old::withdraw(sdk::Withdrawal {
        case_id: "c".into(),
        matter: "m".into(),
        reference: None,
        idempotency_key: "k".into(),
        reason: "r".into(),
    });
    assert!(
        matches!(&withdraw, Err(AdapterError::Internal(m)) if m.contains("`withdraw`")),
        "{withdraw:?}"
    );
}
