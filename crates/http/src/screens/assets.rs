//! The screens' stylesheet, script and icon, compiled into the binary and served under their
//! content's hash: an address never changes its content, so browsers may keep it a year
//! (`immutable`), and a new build's pages name new addresses.

use super::{Ctx, Desk};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::Digest;
use std::sync::LazyLock;

struct Asset {
    name: &'static str,
    kind: &'static str,
    bytes: &'static [u8],
}

static ASSETS: &[Asset] = &[
    Asset {
        name: "screens.css",
        kind: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/screens/screens.css"),
    },
    Asset {
        name: "screens.js",
        kind: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/screens/screens.js"),
    },
    Asset {
        name: "favicon.svg",
        kind: "image/svg+xml",
        bytes: include_bytes!("../../assets/screens/favicon.svg"),
    },
];

/// Each asset's hash: the first 16 hex digits of its SHA-256.
static HASHES: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| hex::encode(&sha2::Sha256::digest(a.bytes)[..8]))
        .collect()
});

/// The address of an asset on a desk.
pub(crate) fn href(desk: &Desk, name: &str) -> String {
    href_at(desk.prefix, name)
}

/// The address of an asset under a desk's prefix (`/screens`, `/console`).
pub(crate) fn href_at(prefix: &str, name: &str) -> String {
    let i = ASSETS
        .iter()
        .position(|a| a.name == name)
        .expect("a known asset");
    format!("{prefix}/assets/{}/{name}", HASHES[i])
}

/// `GET <prefix>/assets/{hash}/{name}`: the asset, if the hash is its current one.
pub(super) async fn serve(
    State(_): State<Ctx>,
    Path((hash, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if HASHES[i] != hash {
        return StatusCode::NOT_FOUND.into_response();
    }
    let etag = format!("\"{hash}\"");
    let cache = (
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return (StatusCode::NOT_MODIFIED, [cache]).into_response();
    }
    let etag = HeaderValue::from_str(&etag).expect("hex");
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(ASSETS[i].kind),
            ),
            cache,
            (header::ETAG, etag),
        ],
        ASSETS[i].bytes,
    )
        .into_response()
}
