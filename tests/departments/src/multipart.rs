//! MIME multipart bodies (RFC 2046) read as they arrive: `multipart/form-data` uploads at tax,
//! MTOM/XOP packages (`multipart/related`) at real estate. A 20 MB material is hashed and
//! counted part by part while the bytes stream past, so a department holds no more than a
//! delimiter's length of a file at a time.
//!
//! [`Parser::feed`] takes the body in whatever pieces the connection gives and reports each
//! part's headers, its content in slices, and its end; [`Parser::finish`] says whether the body
//! ended where a multipart body must (after its closing delimiter). [`parse_header_value`] reads
//! a header's value and its parameters (`boundary`, `type`, `start`, `name`, `filename` …).

/// What the parser found, in body order.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event<'a> {
    /// A part begins: its headers, names lowercased, values trimmed.
    Headers(Vec<(String, String)>),
    /// Some of the current part's content.
    Data(&'a [u8]),
    /// The current part ended.
    PartEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first delimiter (a preamble is ignored).
    Preamble,
    /// Right after a delimiter: `--` closes the body, CRLF opens a part.
    AfterDelimiter,
    Headers,
    Body,
    /// After the closing delimiter: ignored.
    Epilogue,
}

/// The longest header block a part may have.
const MAX_HEADERS: usize = 16 * 1024;

/// An incremental multipart reader for one body.
#[derive(Debug)]
pub(crate) struct Parser {
    /// `CRLF--boundary`: what ends a part's content.
    delimiter: Vec<u8>,
    /// Bytes received and not yet reported (at most a delimiter's length of content, plus
    /// one piece).
    buf: Vec<u8>,
    state: State,
}

impl Parser {
    /// A parser for a body with this boundary (as the `boundary` parameter gives it).
    pub(crate) fn new(boundary: &str) -> Result<Parser, String> {
        // RFC 2046: 1 to 70 characters.
        if boundary.is_empty() || boundary.len() > 70 {
            return Err(format!("boundary的长度须为1到70个字符：{boundary:?}"));
        }
        Ok(Parser {
            delimiter: [b"\r\n--".as_slice(), boundary.as_bytes()].concat(),
            // The first delimiter may open the body without a line break before it.
            buf: b"\r\n".to_vec(),
            state: State::Preamble,
        })
    }

    /// Read the next piece of the body, reporting what it completes to `sink` (whose error
    /// stops the reading and is returned).
    pub(crate) fn feed(
        &mut self,
        piece: &[u8],
        sink: &mut dyn FnMut(Event<'_>) -> Result<(), String>,
    ) -> Result<(), String> {
        if self.state == State::Epilogue {
            return Ok(());
        }
        self.buf.extend_from_slice(piece);
        loop {
            match self.state {
                State::Preamble => match find(&self.buf, &self.delimiter) {
                    Some(at) => {
                        self.buf.drain(..at + self.delimiter.len());
                        self.state = State::AfterDelimiter;
                    }
                    None => {
                        // Keep only what could still begin a delimiter.
                        let keep = self.delimiter.len() - 1;
                        let drop = self.buf.len().saturating_sub(keep);
                        self.buf.drain(..drop);
                        return Ok(());
                    }
                },
                State::AfterDelimiter => {
                    // Transport padding (spaces, tabs) may follow a delimiter.
                    let padding = self
                        .buf
                        .iter()
                        .take_while(|b| **b == b' ' || **b == b'\t')
                        .count();
                    let rest = &self.buf[padding..];
                    if rest.len() < 2 {
                        return Ok(());
                    }
                    if rest.starts_with(b"--") {
                        self.state = State::Epilogue;
                        self.buf.clear();
                        return Ok(());
                    }
                    if !rest.starts_with(b"\r\n") {
                        return Err("multipart分隔符之后须为换行或结束标记".into());
                    }
                    self.buf.drain(..padding + 2);
                    self.state = State::Headers;
                }
                State::Headers => {
                    let end = if self.buf.starts_with(b"\r\n") {
                        Some((0, 2))
                    } else {
                        find(&self.buf, b"\r\n\r\n").map(|at| (at, at + 4))
                    };
                    let Some((at, next)) = end else {
                        if self.buf.len() > MAX_HEADERS {
                            return Err("multipart部分的头部过长".into());
                        }
                        return Ok(());
                    };
                    if at > MAX_HEADERS {
                        return Err("multipart部分的头部过长".into());
                    }
                    let headers = parse_headers(&self.buf[..at])?;
                    self.buf.drain(..next);
                    self.state = State::Body;
                    sink(Event::Headers(headers))?;
                }
                State::Body => match find(&self.buf, &self.delimiter) {
                    Some(at) => {
                        if at > 0 {
                            sink(Event::Data(&self.buf[..at]))?;
                        }
                        sink(Event::PartEnd)?;
                        self.buf.drain(..at + self.delimiter.len());
                        self.state = State::AfterDelimiter;
                    }
                    None => {
                        let keep = self.delimiter.len() - 1;
                        let safe = self.buf.len().saturating_sub(keep);
                        if safe > 0 {
                            sink(Event::Data(&self.buf[..safe]))?;
                            self.buf.drain(..safe);
                        }
                        return Ok(());
                    }
                },
                State::Epilogue => return Ok(()),
            }
        }
    }

    /// The body has ended: an error unless it ended after its closing delimiter.
    pub(crate) fn finish(&self) -> Result<(), String> {
        match self.state {
            State::Epilogue => Ok(()),
            State::Preamble => Err("multipart报文中没有分隔符".into()),
            _ => Err("multipart报文不完整：缺少结束分隔符".into()),
        }
    }
}

/// Where `needle` first occurs in `haystack`. Scans for its first byte and compares from
/// there: fast enough unoptimised (the tests' builds) for bodies of tens of MB.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, _) = needle.split_first()?;
    let mut from = 0;
    while let Some(offset) = haystack[from..].iter().position(|b| *b == first) {
        let at = from + offset;
        if haystack[at..].starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// `Name: value` lines (CRLF separated; a line starting with a space or tab continues the one
/// before): names lowercased, values trimmed. Header values must be UTF-8 (ASCII in practice).
fn parse_headers(block: &[u8]) -> Result<Vec<(String, String)>, String> {
    let text = std::str::from_utf8(block).map_err(|_| "multipart部分的头部不是有效文本")?;
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = headers.last_mut() else {
                return Err("multipart部分的头部格式错误".into());
            };
            value.push(' ');
            value.push_str(line.trim());
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("multipart部分的头部格式错误：{line}"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(headers)
}

/// Read the next piece of a request body; `None` at its end.
pub(crate) async fn next_piece(
    body: &mut axum::body::Body,
) -> Option<Result<axum::body::Bytes, String>> {
    use hyper::body::Body as _;
    loop {
        let frame =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut *body).poll_frame(cx)).await?;
        match frame {
            Ok(frame) => match frame.into_data() {
                Ok(data) => return Some(Ok(data)),
                // Trailers: nothing of the content.
                Err(_) => continue,
            },
            Err(e) => return Some(Err(e.to_string())),
        }
    }
}

/// A header among `headers` (names lowercased), by name.
pub(crate) fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A header value with parameters (`multipart/related; type="application/xop+xml";
/// boundary=…`, `form-data; name="file"; filename="a.pdf"`): the value before the first `;`,
/// lowercased, and each parameter (name lowercased; a quoted value unquoted, `\` escapes
/// undone).
pub(crate) fn parse_header_value(value: &str) -> (String, Vec<(String, String)>) {
    let (main, mut rest) = match value.find(';') {
        Some(at) => (&value[..at], &value[at + 1..]),
        None => (value, ""),
    };
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        if rest.is_empty() {
            break;
        }
        let Some(eq) = rest.find('=') else { break };
        let name = rest[..eq].trim().to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value = if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            rest = &quoted[end.min(quoted.len())..];
            value
        } else {
            let end = rest.find(';').unwrap_or(rest.len());
            let value = rest[..end].trim().to_string();
            rest = &rest[end..];
            value
        };
        params.push((name, value));
    }
    (main.trim().to_ascii_lowercase(), params)
}

/// A parameter among `params`, by name.
pub(crate) fn param<'p>(params: &'p [(String, String)], name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A Content-ID without its angle brackets (`<a@b>` → `a@b`).
pub(crate) fn bare_content_id(id: &str) -> &str {
    let id = id.trim();
    id.strip_prefix('<')
        .and_then(|i| i.strip_suffix('>'))
        .unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A part as read: its headers and its content.
    type Read = (Vec<(String, String)>, Vec<u8>);

    /// The parts of `body` read in pieces of `step` bytes: each part's headers and content.
    fn parts(boundary: &str, body: &[u8], step: usize) -> Result<Vec<Read>, String> {
        let mut parser = Parser::new(boundary)?;
        let mut found: Vec<Read> = Vec::new();
        let mut ended = 0;
        for piece in body.chunks(step.max(1)) {
            parser.feed(piece, &mut |event| {
                match event {
                    Event::Headers(h) => found.push((h, Vec::new())),
                    Event::Data(d) => found.last_mut().unwrap().1.extend_from_slice(d),
                    Event::PartEnd => ended += 1,
                }
                Ok(())
            })?;
        }
        parser.finish()?;
        assert_eq!(ended, found.len());
        Ok(found)
    }

    const FORM: &[u8] = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"qqid\"\r\n\r\ncase-1:tax\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7\r\n--XyQ\r\n--Xy\r\n%%EOF\r\n--XyZ--\r\nepilogue";

    #[test]
    fn reads_every_part_whatever_the_pieces() {
        for step in [1, 2, 3, 7, 16, 64, FORM.len()] {
            let found = parts("XyZ", FORM, step).unwrap();
            assert_eq!(found.len(), 2, "pieces of {step}");
            assert_eq!(
                header(&found[0].0, "content-disposition"),
                Some("form-data; name=\"qqid\"")
            );
            assert_eq!(found[0].1, b"case-1:tax");
            assert_eq!(header(&found[1].0, "Content-Type"), Some("application/pdf"));
            // A line that starts like the delimiter but is not one stays content.
            assert_eq!(found[1].1, b"%PDF-1.7\r\n--XyQ\r\n--Xy\r\n%%EOF");
        }
    }

    #[test]
    fn a_body_without_its_closing_delimiter_is_refused() {
        let cut = &FORM[..FORM.len() - 20];
        assert!(parts("XyZ", cut, 5).unwrap_err().contains("不完整"));
        assert!(
            parts("XyZ", b"no delimiter at all", 4)
                .unwrap_err()
                .contains("没有分隔符")
        );
        assert!(parts("XyZ", b"--XyZ\r\nBroken header line\r\n\r\nx\r\n--XyZ--", 4).is_err());
        assert!(parts("XyZ", b"--XyZ!!", 4).is_err());
        assert!(Parser::new("").is_err());
    }

    #[test]
    fn the_first_delimiter_may_open_the_body_and_parts_may_have_no_headers() {
        let body = b"--b\r\n\r\nraw\r\n--b--";
        let found = parts("b", body, 1).unwrap();
        assert_eq!(found, vec![(vec![], b"raw".to_vec())]);
    }

    #[test]
    fn the_sink_stops_the_reading() {
        let mut parser = Parser::new("XyZ").unwrap();
        let refused = parser.feed(FORM, &mut |event| match event {
            Event::Data(d) if d.starts_with(b"%PDF") => Err("no PDFs here".into()),
            _ => Ok(()),
        });
        assert_eq!(refused, Err("no PDFs here".into()));
    }

    #[test]
    fn header_values_and_their_parameters() {
        let (value, params) = parse_header_value(
            "Multipart/Related; type=\"application/xop+xml\"; start=\"<root@x>\";start-info=\"text/xml\"; boundary=----abc",
        );
        assert_eq!(value, "multipart/related");
        assert_eq!(param(&params, "type"), Some("application/xop+xml"));
        assert_eq!(param(&params, "start"), Some("<root@x>"));
        assert_eq!(param(&params, "start-info"), Some("text/xml"));
        assert_eq!(param(&params, "boundary"), Some("----abc"));
        let (value, params) =
            parse_header_value(r#"form-data; name="file"; filename="a \"b\".pdf""#);
        assert_eq!(value, "form-data");
        assert_eq!(param(&params, "filename"), Some("a \"b\".pdf"));
        assert_eq!(parse_header_value("text/xml").0, "text/xml");
        assert_eq!(bare_content_id(" <a@b> "), "a@b");
        assert_eq!(bare_content_id("a@b"), "a@b");
    }
}
