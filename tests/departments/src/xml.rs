//! A tiny element tree over quick-xml, enough for the two XML departments to find an element
//! by namespace and local name and read its children's text. The departments' messages are a
//! few flat elements, so a tree is simpler than a streaming state machine per operation.

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

#[derive(Debug, Default)]
pub(crate) struct Element {
    /// Namespace URI, `None` when unqualified.
    pub namespace: Option<String>,
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
    /// Attributes by local name (namespace declarations left out), values unescaped.
    pub attributes: Vec<(String, String)>,
}

impl Element {
    pub fn child(&self, namespace: Option<&str>, name: &str) -> Option<&Element> {
        self.children
            .iter()
            .find(|c| c.name == name && c.namespace.as_deref() == namespace)
    }

    /// Trimmed text of the first unqualified child `name`; `None` when absent or blank, which
    /// the departments treat alike (a required field is missing).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.child(None, name)
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
    }

    /// An attribute's value, by local name.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a whole document into its root element. Errors are short phrases for fault messages.
pub(crate) fn parse(xml: &str) -> Result<Element, String> {
    let mut reader = NsReader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| format!("XML格式错误：{e}"))?;
        let namespace = match ns {
            ResolveResult::Bound(n) => Some(String::from_utf8_lossy(n.as_ref()).into_owned()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(p) => {
                return Err(format!(
                    "未声明的命名空间前缀：{}",
                    String::from_utf8_lossy(&p)
                ));
            }
        };
        let open = |e: &quick_xml::events::BytesStart| -> Result<Element, String> {
            let mut attributes = Vec::new();
            for a in e.attributes() {
                let a = a.map_err(|e| format!("XML属性格式错误：{e}"))?;
                let key = a.key;
                if key.as_ref() == b"xmlns" || key.prefix().is_some_and(|p| p.as_ref() == b"xmlns")
                {
                    continue;
                }
                let value = a
                    .unescape_value()
                    .map_err(|e| format!("XML属性格式错误：{e}"))?;
                attributes.push((
                    String::from_utf8_lossy(key.local_name().as_ref()).into_owned(),
                    value.into_owned(),
                ));
            }
            Ok(Element {
                namespace: namespace.clone(),
                name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                attributes,
                ..Element::default()
            })
        };
        let closed = match event {
            Event::Start(e) => {
                stack.push(open(&e)?);
                None
            }
            Event::Empty(e) => Some(open(&e)?),
            Event::End(_) => stack.pop(),
            Event::Text(t) => {
                let text = t.decode().map_err(|e| e.to_string())?;
                push_text(&mut stack, &text)?;
                None
            }
            Event::CData(t) => {
                let text = t.decode().map_err(|e| e.to_string())?;
                push_text(&mut stack, &text)?;
                None
            }
            Event::GeneralRef(r) => {
                let ch = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(ch) => ch,
                    None => match r.decode().map_err(|e| e.to_string())?.as_ref() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => return Err(format!("未定义的实体：{other}")),
                    },
                };
                push_text(&mut stack, ch.encode_utf8(&mut [0; 4]))?;
                None
            }
            Event::DocType(_) => return Err("不接受DOCTYPE".into()),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => None,
            Event::Eof => break,
        };
        if let Some(el) = closed {
            match stack.last_mut() {
                Some(parent) => parent.children.push(el),
                None if root.is_none() => root = Some(el),
                None => return Err("存在多个根元素".into()),
            }
        }
    }
    match (root, stack.is_empty()) {
        (Some(root), true) => Ok(root),
        _ => Err("XML不完整".into()),
    }
}

/// Text outside the root may only be whitespace.
fn push_text(stack: &mut [Element], text: &str) -> Result<(), String> {
    match stack.last_mut() {
        Some(el) => el.text.push_str(text),
        None if text.trim().is_empty() => {}
        None => return Err("根元素之外存在文本".into()),
    }
    Ok(())
}

/// Escapes text for an element's content.
pub(crate) fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_with_entities() {
        let root =
            parse(r#"<?xml version="1.0"?><a:r xmlns:a="urn:x"><k>x &amp; &#x4E09;</k><e/></a:r>"#)
                .unwrap();
        assert_eq!(root.namespace.as_deref(), Some("urn:x"));
        assert_eq!(root.field("k"), Some("x & 三"));
        assert_eq!(root.field("e"), None);
        let include = parse(
            r#"<nr><xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:a%40b&amp;c"/></nr>"#,
        )
        .unwrap();
        let include = &include.children[0];
        assert_eq!(
            include.namespace.as_deref(),
            Some("http://www.w3.org/2004/08/xop/include")
        );
        assert_eq!(
            include.attributes,
            vec![("href".into(), "cid:a%40b&c".into())]
        );
        assert_eq!(include.attribute("href"), Some("cid:a%40b&c"));
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<a/><b/>").is_err());
        assert!(parse("<a>").is_err());
    }
}
