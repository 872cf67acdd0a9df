//! The page that browses the portal's OpenAPI document (`GET /docs`), served whole from the
//! gateway binary: a hall's network often has no internet, so no script, style or font may come
//! from anywhere else.
//!
//! The viewer is Swagger UI, vendored in `crates/http/vendor/swagger-ui` (its version, licence
//! and why it was chosen are in the README there) and compiled in with `include_bytes!`. The
//! page fetches the document from `openapi.json` beside it, under a Content-Security-Policy that
//! allows scripts, styles and requests to the gateway only ([`CSP`]).
//!
//! Each asset is served under a name carrying its content's digest
//! (`/docs/assets/swagger-ui-bundle.1a2b….js`, as every embedded file), so browsers may keep
//! it for a year: a new gateway with another viewer has other names, never a stale cached file.

use crate::embedded::Embedded;
use crate::error::ApiError;
use axum::extract::Path;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use std::sync::LazyLock;

/// The page's Content-Security-Policy: everything from the gateway itself, nothing inline (the
/// stylesheet's icons are `data:` images), no frames, no form posts, no `<base>`.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

/// Where the assets are served, below the page.
const ASSETS: &str = "docs/assets";

const FILES: [Embedded; 4] = [
    Embedded {
        name: "swagger-ui.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../vendor/swagger-ui/swagger-ui.css"),
    },
    Embedded {
        name: "swagger-ui-bundle.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../vendor/swagger-ui/swagger-ui-bundle.js"),
    },
    // Named by the page, so the browser does not ask for `/favicon.ico` (which needs a
    // credential there).
    Embedded {
        name: "favicon-32x32.png",
        content_type: "image/png",
        bytes: include_bytes!("../../vendor/swagger-ui/favicon-32x32.png"),
    },
    Embedded {
        name: "start.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("start.js"),
    },
];

/// Each asset under its served name (`start.<digest>.js`), with its digest.
static SERVED: LazyLock<Vec<(String, String, &'static Embedded)>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|asset| {
            let digest = asset.digest();
            let (stem, extension) = asset.name.rsplit_once('.').expect("asset names have one");
            (format!("{stem}.{digest}.{extension}"), digest, asset)
        })
        .collect()
});

/// The path of an asset as the page names it (relative to the page).
fn href(name: &str) -> String {
    let served = SERVED
        .iter()
        .find(|(_, _, asset)| asset.name == name)
        .map(|(served, _, _)| served.as_str())
        .expect("the page names only assets it has");
    format!("{ASSETS}/{served}")
}

/// The page, the same for every request (the document is fetched, not inlined).
static PAGE: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>一网通办集成网关 · 接口文档</title>
<link rel="icon" type="image/png" href="{icon}">
<link rel="stylesheet" href="{css}">
</head>
<body>
<noscript>本页需要启用 JavaScript；接口文档本身在 <a href="openapi.json">openapi.json</a>。</noscript>
<div id="swagger-ui"></div>
<script src="{bundle}"></script>
<script src="{start}"></script>
</body>
</html>
"#,
        icon = href("favicon-32x32.png"),
        css = href("swagger-ui.css"),
        bundle = href("swagger-ui-bundle.js"),
        start = href("start.js"),
    )
});

/// `GET /docs`: the page, with its [`CSP`].
pub fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            // The page names the assets of this gateway's build: asked again after an upgrade.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        PAGE.as_str(),
    )
        .into_response()
}

/// One of the docs page's scripts and stylesheets, compiled into the gateway.
#[utoipa::path(
    get,
    path = "/docs/assets/{file}",
    operation_id = "docs_asset",
    tag = "operations",
    params(("file" = String, Path, description = "The asset's name as `/docs` names it, with its content's digest (`swagger-ui-bundle.<digest>.js`).")),
    responses(
        (status = 200, description = "The file, cacheable for a year (its name changes with its content).", content(
            (String = "text/javascript"),
            (String = "text/css"),
            // OpenAPI 3.1: a binary body is a string of that media type.
            (String = "image/png"),
        )),
        (status = 304, description = "Not modified: the browser's copy (its `If-None-Match` is the file's ETag) is current."),
        (status = 404, description = "`not_found`: no asset of that name in this gateway.", body = crate::openapi::Error),
    )
)]
pub async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some((_, digest, asset)) = SERVED.iter().find(|(served, _, _)| *served == file) else {
        return ApiError::NotFound {
            what: "asset",
            id: file,
        }
        .into_response();
    };
    asset.answer(digest, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_every_asset_by_its_digest_and_nothing_outside() {
        let page = PAGE.as_str();
        for (served, _, _) in SERVED.iter() {
            assert!(page.contains(&format!("\"{ASSETS}/{served}\"")), "{served}");
        }
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "{page}"
        );
        // Nothing inline for the CSP to allow: every script has a source.
        assert_eq!(
            page.matches("<script").count(),
            page.matches("<script src=").count()
        );
        assert!(!page.contains("<style") && !page.contains(" style="));
    }

    #[test]
    fn the_assets_route_is_documented_with_each_content_type_it_answers() {
        let doc = crate::portal::document();
        let ok = &doc["paths"]["/docs/assets/{file}"]["get"]["responses"]["200"]["content"];
        for asset in &FILES {
            let media = asset.content_type.split(';').next().unwrap();
            assert_eq!(ok[media]["schema"]["type"], "string", "{media}: {ok}");
        }
    }

    #[test]
    fn the_viewer_never_calls_the_public_validator() {
        let start = std::str::from_utf8(FILES[3].bytes).unwrap();
        assert!(start.contains("validatorUrl: null"), "{start}");
    }
}
