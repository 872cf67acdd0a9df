//! Files compiled into the gateway (the docs page's viewer, the screens' stylesheet, script and
//! icon) and served under their content's digest: an address never changes its content, so
//! browsers may keep it a year (`immutable`), and a new build's pages name new addresses. A
//! hall's network has no internet; nothing a page loads comes from anywhere else.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::Digest;

/// One file a page loads.
pub(crate) struct Embedded {
    /// Its name without a digest: `screens.css`.
    pub(crate) name: &'static str,
    pub(crate) content_type: &'static str,
    pub(crate) bytes: &'static [u8],
}

impl Embedded {
    /// The first 16 hex digits of its SHA-256: what its address carries.
    pub(crate) fn digest(&self) -> String {
        sdk::sign::to_hex(&sha2::Sha256::digest(self.bytes)[..8])
    }

    /// The file, cacheable for a year, with the digest as its ETag (`304` when the browser
    /// already holds it).
    pub(crate) fn answer(&self, digest: &str, request: &HeaderMap) -> Response {
        let etag = format!("\"{digest}\"");
        let cache = (
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
        if request
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == etag.as_bytes())
        {
            return (StatusCode::NOT_MODIFIED, [cache]).into_response();
        }
        (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(self.content_type),
                ),
                cache,
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
                (
                    header::ETAG,
                    HeaderValue::from_str(&etag).expect("hex digits"),
                ),
            ],
            self.bytes,
        )
            .into_response()
    }
}
