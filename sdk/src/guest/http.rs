//! HTTP to the adapter's own department, through the host.
//!
//! Paths are relative to the department's base URL; the host adds the base, the TLS identity,
//! the timeout and the size limit, and refuses anything aimed elsewhere.
//!
//! A body is bytes, or a [`Body`] of parts: bytes the adapter writes around [`Slice`]s of the
//! call's materials, which the host streams from its store into the request as it goes out
//! (raw, or base64), setting `content-length` itself. So a 50 MB file never enters the
//! adapter: it writes the envelope — a multipart form ([`Multipart::form_data`]), an MTOM
//! package ([`Multipart::xop`]), an XML document with a file's base64 inside
//! ([`Body::splice`]), one chunk of a chunked upload ([`crate::materials::chunks`]) — and names
//! the slices.
//!
//! ```no_run
//! use sdk::http::{Multipart, Request};
//! # fn f(material: &sdk::Material) -> Result<(), sdk::AdapterError> {
//! let file = material.file().expect("an uploaded file");
//! let form = Multipart::form_data()
//!     .field("wjlx", "公司章程")
//!     .file("file", "articles.pdf", &file.media_type, material.slice().expect("a file"));
//! let answer = Request::post("/api/v1/wjsc").multipart(form).send()?;
//! # let _ = answer; Ok(()) }
//! ```

// Natively (unit tests) the import is a stub that cannot run: the test harness answers instead.
#[cfg(not(target_arch = "wasm32"))]
use super::testing::double::department_http as imp;
#[cfg(target_arch = "wasm32")]
use super::wit::gov::adapter::department_http as imp;
pub use super::wit::gov::adapter::department_http::{Encoding, HttpError};
use crate::AdapterError;
use serde::{Serialize, de::DeserializeOwned};

/// A stretch of a material of the call in progress, for the host to stream into a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    /// Material code, as in the submission.
    pub code: String,
    /// First byte.
    pub offset: u64,
    /// How many bytes; none: to the end of the file.
    pub length: Option<u64>,
    /// How the host writes them.
    pub encoding: Encoding,
}

impl Slice {
    /// `length` bytes of material `code` from `offset`, raw.
    pub fn new(code: &str, offset: u64, length: u64) -> Self {
        Slice {
            code: code.to_string(),
            offset,
            length: Some(length),
            encoding: Encoding::Raw,
        }
    }

    /// All of material `code`, raw (its length is the host's to know).
    pub fn whole(code: &str) -> Self {
        Slice {
            code: code.to_string(),
            offset: 0,
            length: None,
            encoding: Encoding::Raw,
        }
    }

    /// Written as base64 (RFC 4648, no line breaks), e.g. inside an XML element.
    pub fn base64(mut self) -> Self {
        self.encoding = Encoding::Base64;
        self
    }

    /// Bytes it puts on the wire, when its length is known.
    pub fn wire_len(&self) -> Option<u64> {
        let length = self.length?;
        Some(match self.encoding {
            Encoding::Raw => length,
            Encoding::Base64 => length.div_ceil(3) * 4,
        })
    }
}

/// One part of a [`Body`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Bytes the adapter wrote.
    Bytes(Vec<u8>),
    /// A material slice the host streams.
    Material(Slice),
}

/// A request body: bytes and material slices, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body {
    parts: Vec<Part>,
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Body::new().bytes(bytes)
    }
}

impl From<&[u8]> for Body {
    fn from(bytes: &[u8]) -> Self {
        Body::new().bytes(bytes)
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Body::from(text.into_bytes())
    }
}

impl From<&str> for Body {
    fn from(text: &str) -> Self {
        Body::from(text.as_bytes())
    }
}

impl From<Slice> for Body {
    fn from(slice: Slice) -> Self {
        Body::new().material(slice)
    }
}

impl Body {
    /// An empty body.
    pub fn new() -> Self {
        Body::default()
    }

    /// Bytes after what is there.
    pub fn bytes(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.push_bytes(bytes);
        self
    }

    /// UTF-8 text after what is there (encode GBK yourself: [`crate::xml::encode_gbk`]).
    pub fn text(self, text: &str) -> Self {
        self.bytes(text.as_bytes())
    }

    /// A material slice after what is there.
    pub fn material(mut self, slice: Slice) -> Self {
        self.parts.push(Part::Material(slice));
        self
    }

    /// Another body after what is there.
    pub fn append(mut self, other: Body) -> Self {
        for part in other.parts {
            match part {
                Part::Bytes(b) => self.push_bytes(b),
                Part::Material(s) => self.parts.push(Part::Material(s)),
            }
        }
        self
    }

    /// Bytes after what is there (in place).
    pub fn push_bytes(&mut self, bytes: impl AsRef<[u8]>) {
        let bytes = bytes.as_ref();
        if bytes.is_empty() {
            return;
        }
        match self.parts.last_mut() {
            Some(Part::Bytes(last)) => last.extend_from_slice(bytes),
            _ => self.parts.push(Part::Bytes(bytes.to_vec())),
        }
    }

    /// `bytes` with the first `marker` in them replaced by `slice`: build a document (XML, JSON)
    /// in whatever encoding with a marker where a file's content goes, then splice the file in.
    /// An error when the marker is not there.
    ///
    /// ```
    /// use sdk::http::{Body, Slice};
    /// let xml = "<wj><nr>@@FILE@@</nr></wj>";
    /// let body = Body::splice(xml, "@@FILE@@", Slice::whole("id-card").base64()).unwrap();
    /// assert_eq!(body.parts().len(), 3);
    /// ```
    pub fn splice(
        bytes: impl AsRef<[u8]>,
        marker: &str,
        slice: Slice,
    ) -> Result<Body, AdapterError> {
        let bytes = bytes.as_ref();
        let marker = marker.as_bytes();
        let at = (!marker.is_empty())
            .then(|| bytes.windows(marker.len()).position(|w| w == marker))
            .flatten()
            .ok_or_else(|| {
                AdapterError::Internal(format!(
                    "the marker {:?} is not in the body to splice a material into",
                    String::from_utf8_lossy(marker)
                ))
            })?;
        Ok(Body::new()
            .bytes(&bytes[..at])
            .material(slice)
            .bytes(&bytes[at + marker.len()..]))
    }

    /// The parts, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Whether any part is a material slice.
    pub fn has_materials(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Material(_)))
    }

    /// The bytes of a body without material slices; `None` when it has some (the adapter does
    /// not hold those: digest them with [`Body::sm3_hex`]).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self.parts.as_slice() {
            [] => Some(&[]),
            [Part::Bytes(bytes)] => Some(bytes),
            _ => None,
        }
    }

    /// Bytes on the wire (the `content-length` the host will send), when every slice's length
    /// is known.
    pub fn wire_len(&self) -> Option<u64> {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Bytes(b) => Some(b.len() as u64),
                Part::Material(s) => s.wire_len(),
            })
            .sum()
    }

    /// Feed every byte the department will receive to `f`, in order, the materials read
    /// through in slices (and base64-encoded as the host writes them): for a digest or a
    /// signature over a body the adapter never holds whole.
    pub fn for_each_chunk(&self, mut f: impl FnMut(&[u8])) -> Result<(), AdapterError> {
        use base64::Engine as _;
        for part in &self.parts {
            match part {
                Part::Bytes(bytes) => f(bytes),
                Part::Material(slice) => {
                    // A multiple of 3 under the host's bound: each slice's base64 has no
                    // padding, so the slices' encodings concatenate into the whole's.
                    const STEP: u32 = 3 * 256 * 1024;
                    let reader =
                        crate::materials::Reader::range(&slice.code, slice.offset, slice.length)
                            .slice_size(STEP);
                    for bytes in reader {
                        let bytes = bytes?;
                        match slice.encoding {
                            Encoding::Raw => f(&bytes),
                            Encoding::Base64 => f(base64::engine::general_purpose::STANDARD
                                .encode(&bytes)
                                .as_bytes()),
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Hex SM3 of the body the department will receive (materials read through).
    pub fn sm3_hex(&self) -> Result<String, AdapterError> {
        use sm3::Digest as _;
        let mut hash = sm3::Sm3::new();
        self.for_each_chunk(|b| hash.update(b))?;
        Ok(hex::encode(hash.finalize()))
    }

    /// Hex SHA-256 of the body the department will receive (materials read through).
    pub fn sha256_hex(&self) -> Result<String, AdapterError> {
        use sha2::Digest as _;
        let mut hash = sha2::Sha256::new();
        self.for_each_chunk(|b| hash.update(b))?;
        Ok(hex::encode(hash.finalize()))
    }

    fn into_wire(self) -> Vec<imp::BodyPart> {
        self.parts
            .into_iter()
            .map(|p| match p {
                Part::Bytes(b) => imp::BodyPart::Bytes(b),
                Part::Material(s) => imp::BodyPart::Material(imp::MaterialSlice {
                    code: s.code,
                    offset: s.offset,
                    length: s.length,
                    encoding: s.encoding,
                }),
            })
            .collect()
    }
}

/// A MIME multipart body (RFC 2046): `multipart/form-data` uploads, `multipart/related` MTOM/XOP
/// packages. Each part's content is a [`Body`], so a file part is a material slice the host
/// streams.
#[derive(Debug, Clone)]
pub struct Multipart {
    subtype: String,
    /// Parameters of the outer content type besides the boundary.
    params: Vec<(String, String)>,
    boundary: String,
    body: Body,
}

/// The root part's Content-ID of an MTOM package ([`Multipart::xop`]).
pub const XOP_ROOT_ID: &str = "root.message@gateway";

impl Multipart {
    /// A multipart body of `subtype` (`form-data`, `related`, `mixed` …) with a random boundary.
    pub fn new(subtype: &str) -> Self {
        Multipart {
            subtype: subtype.to_string(),
            params: Vec::new(),
            boundary: format!("----gateway-{}", crate::sign::nonce()),
            body: Body::new(),
        }
    }

    /// `multipart/form-data` (RFC 7578).
    pub fn form_data() -> Self {
        Self::new("form-data")
    }

    /// An MTOM/XOP package (`multipart/related; type="application/xop+xml"`) whose root part is
    /// the SOAP envelope, already encoded in `charset` (e.g. `GBK`: [`crate::xml::encode_gbk`]);
    /// `soap_type` is the envelope's own type (`text/xml` for SOAP 1.1). Attach each material
    /// with [`Multipart::attachment`], referenced from the envelope by [`xop_include`].
    pub fn xop(envelope: impl AsRef<[u8]>, charset: &str, soap_type: &str) -> Self {
        let mut package = Self::new("related");
        package.params = vec![
            ("type".into(), "application/xop+xml".into()),
            ("start".into(), format!("<{XOP_ROOT_ID}>")),
            ("start-info".into(), soap_type.into()),
        ];
        package.part(
            &[
                (
                    "Content-Type",
                    &format!("application/xop+xml; charset={charset}; type=\"{soap_type}\""),
                ),
                ("Content-Transfer-Encoding", "8bit"),
                ("Content-ID", &format!("<{XOP_ROOT_ID}>")),
            ],
            Body::from(envelope.as_ref()),
        )
    }

    /// Use this boundary instead of a random one (for tests that compare whole bodies). It
    /// must not occur in any part.
    pub fn boundary(mut self, boundary: &str) -> Self {
        self.boundary = boundary.to_string();
        self
    }

    /// A parameter of the outer content type (`type`, `start` …).
    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// A part with these headers and this content.
    pub fn part(mut self, headers: &[(&str, &str)], content: impl Into<Body>) -> Self {
        let mut head = format!("--{}\r\n", self.boundary);
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.body.push_bytes(head);
        self.body = std::mem::take(&mut self.body).append(content.into());
        self.body.push_bytes("\r\n");
        self
    }

    /// A text field of a form.
    pub fn field(self, name: &str, value: &str) -> Self {
        let disposition = format!("form-data; name=\"{}\"", quote(name));
        self.part(&[("Content-Disposition", &disposition)], Body::from(value))
    }

    /// A file field of a form: the material slice, streamed by the host.
    pub fn file(self, name: &str, filename: &str, media_type: &str, slice: Slice) -> Self {
        let disposition = format!(
            "form-data; name=\"{}\"; filename=\"{}\"",
            quote(name),
            quote(filename)
        );
        self.part(
            &[
                ("Content-Disposition", &disposition),
                ("Content-Type", media_type),
            ],
            slice,
        )
    }

    /// An attachment of an MTOM package: a binary MIME part with this Content-ID (without the
    /// angle brackets), the material slice streamed by the host.
    pub fn attachment(self, content_id: &str, media_type: &str, slice: Slice) -> Self {
        self.part(
            &[
                ("Content-Type", media_type),
                ("Content-Transfer-Encoding", "binary"),
                ("Content-ID", &format!("<{content_id}>")),
            ],
            slice,
        )
    }

    /// The outer `Content-Type` header's value.
    pub fn content_type(&self) -> String {
        let mut value = format!("multipart/{}", self.subtype);
        for (name, v) in &self.params {
            value.push_str(&format!("; {name}=\"{}\"", quote(v)));
        }
        value.push_str(&format!("; boundary=\"{}\"", self.boundary));
        value
    }

    /// The content type and the whole body, closing delimiter included.
    pub fn finish(self) -> (String, Body) {
        let content_type = self.content_type();
        let body = self.body.bytes(format!("--{}--\r\n", self.boundary));
        (content_type, body)
    }
}

/// The XOP reference to an MTOM attachment, for the envelope (XOP 1.0).
pub fn xop_include(content_id: &str) -> String {
    format!(
        "<xop:Include xmlns:xop=\"http://www.w3.org/2004/08/xop/include\" href=\"cid:{}\"/>",
        crate::xml::escape(content_id)
    )
}

/// A quoted-string's content: quotes and backslashes escaped, line breaks dropped.
fn quote(value: &str) -> String {
    value
        .chars()
        .filter(|c| *c != '\r' && *c != '\n')
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

/// A request to the department, built step by step.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Body,
}

impl Request {
    /// A request with any method.
    pub fn new(method: &str, path: impl Into<String>) -> Self {
        Request {
            method: method.to_string(),
            path: path.into(),
            headers: Vec::new(),
            body: Body::new(),
        }
    }

    /// A GET request.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new("GET", path)
    }

    /// A POST request.
    pub fn post(path: impl Into<String>) -> Self {
        Self::new("POST", path)
    }

    /// A PUT request.
    pub fn put(path: impl Into<String>) -> Self {
        Self::new("PUT", path)
    }

    /// Add a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Set a raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Body::from(body.into());
        self
    }

    /// Set a body of parts (bytes and material slices the host streams).
    pub fn parts(mut self, body: Body) -> Self {
        self.body = body;
        self
    }

    /// Set a multipart body and its `Content-Type`.
    pub fn multipart(self, multipart: Multipart) -> Self {
        let (content_type, body) = multipart.finish();
        self.header("Content-Type", content_type).parts(body)
    }

    /// Set a JSON body and its content type.
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Self {
        let body = serde_json::to_vec(value).expect("serialising to JSON in memory cannot fail");
        self.header("Content-Type", "application/json").body(body)
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path and query.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The body so far (for signing).
    ///
    /// # Panics
    /// When the body has material slices, whose bytes the adapter does not hold: sign those
    /// over [`Request::content`]'s [`Body::sm3_hex`] (or [`Body::for_each_chunk`]).
    pub fn body_bytes(&self) -> &[u8] {
        self.body.as_bytes().expect(
            "the body has material slices: digest it with Body::sm3_hex or Body::for_each_chunk",
        )
    }

    /// The body so far, in parts.
    pub fn content(&self) -> &Body {
        &self.body
    }

    /// Send it to the department.
    pub fn send(self) -> Result<Response, HttpError> {
        let response = imp::send(&imp::Request {
            method: self.method,
            path: self.path,
            headers: self.headers,
            body: self.body.into_wire(),
        })?;
        Ok(Response {
            status: response.status,
            headers: response.headers,
            body: response.body,
        })
    }
}

/// The department's answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Response headers, names lowercased by the host.
    pub headers: Vec<(String, String)>,
    /// Raw body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON of type `T`; a body that does not parse is a protocol error.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, crate::AdapterError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            crate::protocol_error(format!(
                "department answered HTTP {} with unreadable JSON: {e}",
                self.status
            ))
        })
    }

    /// The body as UTF-8 text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}
