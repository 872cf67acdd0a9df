//! Department XML: GBK/GB18030 bodies, SOAP 1.1 envelopes and faults, and a small tree reader.
//!
//! Department web services often declare `encoding="GBK"`; a body in any other encoding is
//! refused or turns into mojibake. [`encode_gbk`] refuses characters GBK cannot carry instead of
//! substituting them, and [`decode`] honours the encoding the document declares.

use quick_xml::events::Event;
use std::fmt;

/// An XML body that cannot be built or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError(pub String);

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "XML: {}", self.0)
    }
}

impl std::error::Error for XmlError {}

/// SOAP 1.1 envelope namespace.
pub const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// Escape text for element content and attribute values.
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// Encode text as GBK, refusing characters GBK has no code for.
pub fn encode_gbk(text: &str) -> Result<Vec<u8>, XmlError> {
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
    if unmappable {
        return Err(XmlError("text has characters GBK cannot encode".into()));
    }
    Ok(bytes.into_owned())
}

/// Decode GBK (read as its superset GB18030, which every GBK body is), refusing invalid bytes.
pub fn decode_gbk(bytes: &[u8]) -> Result<String, XmlError> {
    let (text, _, malformed) = encoding_rs::GB18030.decode(bytes);
    if malformed {
        return Err(XmlError("body is not valid GBK".into()));
    }
    Ok(text.into_owned())
}

/// The encoding named in the XML declaration, if any (`GBK`, `UTF-8` ...).
pub fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(200)];
    let head = std::str::from_utf8(head).ok().or_else(|| {
        // The declaration is ASCII even in a GBK document; cut before the first non-ASCII byte.
        let end = head
            .iter()
            .position(|b| !b.is_ascii())
            .unwrap_or(head.len());
        std::str::from_utf8(&head[..end]).ok()
    })?;
    let decl = head.strip_prefix("<?xml")?.split("?>").next()?;
    let after = decl.split("encoding=").nth(1)?;
    // Only a quote opens the value; any other first character (multi-byte ones included,
    // which the slice below would split) means there is no readable declaration.
    let quote = after.chars().next().filter(|c| matches!(c, '"' | '\''))?;
    after[1..].split(quote).next().map(str::to_string)
}

/// Decode a document in the encoding it declares (UTF-8 when it declares none).
pub fn decode(bytes: &[u8]) -> Result<String, XmlError> {
    match declared_encoding(bytes) {
        Some(enc) => {
            let encoding = encoding_rs::Encoding::for_label(enc.as_bytes())
                .ok_or_else(|| XmlError(format!("unknown declared encoding {enc}")))?;
            let (text, _, malformed) = encoding.decode(bytes);
            if malformed {
                return Err(XmlError(format!("body is not valid {enc}")));
            }
            Ok(text.into_owned())
        }
        None => String::from_utf8(bytes.to_vec())
            .map_err(|_| XmlError("body is not valid UTF-8".into())),
    }
}

/// `<name>escaped text</name>` for each pair, concatenated.
pub fn elements(children: &[(&str, &str)]) -> String {
    children
        .iter()
        .map(|(name, text)| format!("<{name}>{}</{name}>", escape(text)))
        .collect()
}

/// A SOAP 1.1 request envelope around `<prefix:operation xmlns:prefix=ns>children</…>`,
/// with an XML declaration naming `encoding`.
pub fn soap_envelope(
    encoding: &str,
    prefix: &str,
    ns: &str,
    operation: &str,
    children: &[(&str, &str)],
) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"{encoding}\"?>\
         <soap:Envelope xmlns:soap=\"{SOAP_ENV}\" xmlns:{prefix}=\"{ns}\"><soap:Body>\
         <{prefix}:{operation}>{}</{prefix}:{operation}></soap:Body></soap:Envelope>",
        elements(children)
    )
}

/// How deep elements may nest. Department answers are a few levels deep; the tree is read,
/// searched and dropped recursively, so a deeper document (which a hostile or broken service can
/// send within the size limit) would overflow the stack instead of being refused.
pub const MAX_DEPTH: usize = 64;

/// One element of a parsed document: local name (prefix dropped), text, children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    /// Local name without namespace prefix.
    pub name: String,
    /// Concatenated text directly inside this element, trimmed.
    pub text: String,
    /// Child elements in document order.
    pub children: Vec<Node>,
}

impl Node {
    /// Parse a document (already decoded to text) into its root element.
    pub fn parse(xml: &str) -> Result<Node, XmlError> {
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut stack: Vec<Node> = vec![Node::default()];
        loop {
            match reader.read_event().map_err(|e| XmlError(e.to_string()))? {
                Event::Start(_) if stack.len() > MAX_DEPTH => {
                    return Err(XmlError(format!(
                        "document nests deeper than {MAX_DEPTH} elements"
                    )));
                }
                Event::Start(e) => stack.push(Node {
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ..Node::default()
                }),
                Event::Empty(e) => {
                    let node = Node {
                        name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                        ..Node::default()
                    };
                    stack
                        .last_mut()
                        .expect("stack holds the document")
                        .children
                        .push(node);
                }
                Event::Text(t) => {
                    let text = t.decode().map_err(|e| XmlError(e.to_string()))?;
                    let text =
                        quick_xml::escape::unescape(&text).map_err(|e| XmlError(e.to_string()))?;
                    stack
                        .last_mut()
                        .expect("stack holds the document")
                        .text
                        .push_str(&text);
                }
                Event::CData(t) => {
                    let text = String::from_utf8_lossy(&t);
                    stack
                        .last_mut()
                        .expect("stack holds the document")
                        .text
                        .push_str(&text);
                }
                Event::GeneralRef(r) => {
                    let name = String::from_utf8_lossy(&r).into_owned();
                    let reference = format!("&{name};");
                    let text = quick_xml::escape::unescape(&reference)
                        .map_err(|e| XmlError(e.to_string()))?;
                    stack
                        .last_mut()
                        .expect("stack holds the document")
                        .text
                        .push_str(&text);
                }
                Event::End(_) => {
                    let mut node = stack.pop().expect("an end tag closes an open element");
                    node.text = node.text.trim().to_string();
                    let parent = stack
                        .last_mut()
                        .ok_or_else(|| XmlError("unbalanced end tag".into()))?;
                    parent.children.push(node);
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if stack.len() != 1 {
            return Err(XmlError("document ends inside an element".into()));
        }
        stack
            .pop()
            .and_then(|doc| doc.children.into_iter().next())
            .ok_or_else(|| XmlError("document has no root element".into()))
    }

    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The first element with this local name anywhere below (depth-first), or self.
    pub fn find(&self, name: &str) -> Option<&Node> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }

    /// Text of the first descendant with this local name.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.find(name).map(|n| n.text.as_str())
    }

    /// Text of a required descendant; missing is an error naming it.
    pub fn require(&self, name: &str) -> Result<&str, XmlError> {
        self.text_of(name)
            .ok_or_else(|| XmlError(format!("answer has no <{name}> element")))
    }
}

/// A SOAP 1.1 fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoapFault {
    /// `soap:Client` or `soap:Server` (prefix kept as sent).
    pub code: String,
    /// Human-readable reason.
    pub reason: String,
    /// Texts of the elements inside `<detail>`, by local name.
    pub detail: Vec<(String, String)>,
}

impl SoapFault {
    /// True when the fault blames the request (the client), not the service.
    pub fn is_client(&self) -> bool {
        self.code.ends_with("Client")
    }

    /// A detail value by local name.
    pub fn detail(&self, name: &str) -> Option<&str> {
        self.detail
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Read a SOAP envelope: the single element inside `<Body>`, or the fault it carries.
pub fn soap_body(document: &Node) -> Result<Result<Node, SoapFault>, XmlError> {
    let body = document
        .find("Body")
        .ok_or_else(|| XmlError("not a SOAP envelope: no Body".into()))?;
    let inner = body
        .children
        .first()
        .ok_or_else(|| XmlError("empty SOAP Body".into()))?;
    if inner.name == "Fault" {
        let detail = inner
            .child("detail")
            .map(|d| {
                d.children
                    .iter()
                    .map(|c| (c.name.clone(), c.text.clone()))
                    .collect()
            })
            .unwrap_or_default();
        return Ok(Err(SoapFault {
            code: inner.text_of("faultcode").unwrap_or_default().to_string(),
            reason: inner.text_of("faultstring").unwrap_or_default().to_string(),
            detail,
        }));
    }
    Ok(Ok(inner.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbk_round_trip_and_declared_encoding() {
        let doc = soap_envelope(
            "GBK",
            "bdc",
            "http://bdc.gov.cn/ws",
            "queryByCertificate",
            &[("bdcqzh", "闽(2019)平潭不动产权第0011364号")],
        );
        let bytes = encode_gbk(&doc).unwrap();
        assert_ne!(
            bytes,
            doc.as_bytes(),
            "GBK bytes differ from UTF-8 for Chinese text"
        );
        assert_eq!(declared_encoding(&bytes).as_deref(), Some("GBK"));
        let text = decode(&bytes).unwrap();
        let root = Node::parse(&text).unwrap();
        let op = soap_body(&root).unwrap().unwrap();
        assert_eq!(op.name, "queryByCertificate");
        assert_eq!(
            op.text_of("bdcqzh"),
            Some("闽(2019)平潭不动产权第0011364号")
        );
    }

    #[test]
    fn gbk_refuses_what_it_cannot_carry() {
        assert!(encode_gbk("emoji 😀").is_err());
        assert!(decode_gbk(&[0x81]).is_err());
    }

    #[test]
    fn faults_are_read_with_their_detail() {
        let xml = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault>
            <faultcode>soap:Client</faultcode><faultstring>转让方与登记权利人不一致</faultstring>
            <detail><bdc:errorCode xmlns:bdc="http://bdc.gov.cn/ws">E201</bdc:errorCode></detail>
            </soap:Fault></soap:Body></soap:Envelope>"#;
        let fault = soap_body(&Node::parse(xml).unwrap()).unwrap().unwrap_err();
        assert!(fault.is_client());
        assert_eq!(fault.detail("errorCode"), Some("E201"));
        assert_eq!(fault.reason, "转让方与登记权利人不一致");
    }

    #[test]
    fn hostile_documents_are_refused_not_a_crash() {
        // Found by the property tests (tests/fuzz.rs).
        assert_eq!(
            declared_encoding("<?xml encoding=中GBK中?><a/>".as_bytes()),
            None
        );
        let deep = format!("{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000));
        assert!(Node::parse(&deep).is_err());
        let shallow = format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert!(Node::parse(&shallow).is_ok());
    }

    #[test]
    fn text_is_unescaped_and_escaped() {
        let root = Node::parse("<a><b>x &amp; y</b><c/></a>").unwrap();
        assert_eq!(root.text_of("b"), Some("x & y"));
        assert_eq!(root.text_of("c"), Some(""));
        assert_eq!(elements(&[("b", "x<y")]), "<b>x&lt;y</b>");
        assert!(Node::parse("<a><b></a>").is_err());
    }
}
