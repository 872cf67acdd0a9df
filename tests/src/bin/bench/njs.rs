//! The fifth row of the lookup benchmark: the peer a team would build without the gateway,
//! nginx with its JavaScript module (njs) doing the tax adapter's work for the one lookup.
//!
//! `njs/tax_lookup.js` checks the portal's API key against its SHA-256, requires the lookup's
//! headers, maps `taxpayer_id` to the department's `nsrsbh`, signs the department request as the
//! tax adapter does, sends it through a subrequest to an internal location that proxies to a
//! keep-alive upstream (`ngx.fetch` opens a connection per call), and maps the answer back to
//! the gateway's unified answer and error codes. The bench writes the script and the
//! `nginx.conf` below into its temp dir and starts nginx like the plain proxy row: one worker,
//! no access log.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// The script, served from the bench's temp dir.
const SCRIPT: &str = include_str!("njs/tax_lookup.js");

/// Where distributions install nginx's dynamic modules (Debian's `libnginx-mod-http-js` first).
const MODULE_DIRS: &[&str] = &[
    "/usr/lib/nginx/modules",
    "/usr/lib64/nginx/modules",
    "/usr/share/nginx/modules",
    "/etc/nginx/modules",
];

/// The njs HTTP module, if installed.
pub fn module() -> Option<PathBuf> {
    MODULE_DIRS
        .iter()
        .map(|dir| Path::new(dir).join("ngx_http_js_module.so"))
        .find(|path| path.is_file())
}

/// What the njs peer is configured with: the gateway config's values for the same lookup.
pub struct Settings<'a> {
    /// Hex SHA-256 of the portal's API key (`[[auth.clients]] api_key_sha256`).
    pub portal_key_sha256: &'a str,
    /// The tax department's `app-key` and app secret.
    pub app_key: &'a str,
    pub app_secret: &'a str,
}

/// Write `tax_lookup.js` and an `nginx.conf` serving `POST /api/v1/lookups/tax.clearance` on
/// `listen`, calling the tax department on `tax`; the conf's path.
pub fn write_conf(
    dir: &Path,
    module: &Path,
    listen: u16,
    tax: u16,
    settings: &Settings,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir.join("logs"))?;
    std::fs::write(dir.join("tax_lookup.js"), SCRIPT)?;
    let d = dir.display();
    let module = module.display();
    let Settings {
        portal_key_sha256,
        app_key,
        app_secret,
    } = settings;
    let conf = format!(
        r#"# Written by the gateway benchmark: nginx + njs doing the tax adapter's work for one lookup.
load_module {module};
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/logs/error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    # The query is read in memory (njs's requestText), never from a temp file.
    client_max_body_size 64k;
    client_body_buffer_size 64k;

    js_path {d};
    js_import tax from tax_lookup.js;

    # The portal client's key as the gateway's config holds it, and the department's credentials.
    js_var $portal_key_sha256 {portal_key_sha256};
    js_var $tax_app_key {app_key};
    js_var $tax_app_secret {app_secret};
    # One department request's signed headers, set by the handler for the internal location.
    js_var $tax_timestamp;
    js_var $tax_nonce;
    js_var $tax_signature;

    upstream tax_department {{
        server 127.0.0.1:{tax};
        keepalive 64;
    }}

    server {{
        listen 127.0.0.1:{listen};

        location = /api/v1/lookups/tax.clearance {{
            js_content tax.lookup;
        }}

        # The department call, only as a subrequest of the handler: the portal's headers stay
        # here, the signed ones go out; the gateway's department timeout (3 s).
        location = /_tax/qscx {{
            internal;
            proxy_pass http://tax_department/api/v1/qscx;
            proxy_http_version 1.1;
            proxy_pass_request_headers off;
            proxy_set_header Connection "";
            proxy_set_header Content-Type application/json;
            proxy_set_header X-App-Key $tax_app_key;
            proxy_set_header X-Timestamp $tax_timestamp;
            proxy_set_header X-Nonce $tax_nonce;
            proxy_set_header X-Sign-Method HMAC-SHA256;
            proxy_set_header X-Signature $tax_signature;
            proxy_connect_timeout 3s;
            proxy_send_timeout 3s;
            proxy_read_timeout 3s;
            subrequest_output_buffer_size 16k;
        }}
    }}
}}
"#
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf)?;
    Ok(path)
}

/// Before the load: a wrong API key must be refused with the gateway's 401 body, and the right
/// one answered with the lookup, or the row would measure something else.
pub async fn check_keys(url: &str, good_key: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let send = |key: &str| {
        client
            .post(url)
            .header("content-type", "application/json")
            .header("x-api-key", key)
            .header("x-lookup-purpose", integration_tests::LOOKUP_PURPOSE)
            .header("x-clerk-id", integration_tests::CLERK)
            .body(format!(r#"{{"taxpayer_id":"{}"}}"#, super::TAXPAYER))
            .send()
    };
    let bad = send("not-the-portal-key")
        .await
        .context("njs: the request with a wrong API key failed")?;
    let status = bad.status().as_u16();
    let body = bad.text().await?;
    if status != 401 || !body.contains(r#""code":"unauthorized""#) {
        bail!(
            "njs: a wrong API key was not refused with 401 unauthorized (HTTP {status}: {body}); \
             the row would not check keys"
        );
    }
    let good = send(good_key)
        .await
        .context("njs: the request with the portal's API key failed")?;
    let status = good.status().as_u16();
    let body = good.text().await?;
    if status != 200 || !body.contains(r#""cleared":true"#) {
        bail!("njs: the portal's API key did not get the lookup (HTTP {status}: {body})");
    }
    Ok(())
}
