//! The screens' stylesheet, script and icon, compiled into the binary and served under their
//! content's hash: an address never changes its content, so browsers may keep it a year
//! (`immutable`), and a new build's pages name new addresses.

use super::{Ctx, Desk};
use crate::embedded::Embedded;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::LazyLock;

static ASSETS: &[Embedded] = &[
    Embedded {
        name: "screens.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/screens/screens.css"),
    },
    Embedded {
        name: "screens.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/screens/screens.js"),
    },
    Embedded {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../assets/screens/favicon.svg"),
    },
];

/// Each asset's digest.
static HASHES: LazyLock<Vec<String>> =
    LazyLock::new(|| ASSETS.iter().map(Embedded::digest).collect());
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
    ASSETS[i].answer(&hash, &headers)
}
