//! Transport security: the portal listener over TLS (and mutual TLS), and the expiry dates of
//! every certificate in readiness and metrics. Certificates are made here, at test time.

use integration_tests::{Env, PORTAL_KEY, Setup};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde_json::Value;
use std::path::Path;
use time::{Duration, OffsetDateTime};

/// A CA that expires at `not_after`.
pub(crate) fn ca(name: &str, not_after: OffsetDateTime) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(vec![]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = OffsetDateTime::now_utc() - Duration::days(400);
    params.not_after = not_after;
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A certificate issued by `ca` for `localhost`/`127.0.0.1` (server) or a client, written as
/// `<name>.pem` and `<name>-key.pem`.
pub(crate) fn issue(
    dir: &Path,
    name: &str,
    ca: &CertifiedIssuer<'static, KeyPair>,
    purpose: ExtendedKeyUsagePurpose,
    not_after: OffsetDateTime,
) {
    let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![purpose];
    params.not_before = OffsetDateTime::now_utc() - Duration::days(1);
    params.not_after = not_after;
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}-key.pem")), key.serialize_pem()).unwrap();
}

/// `[server.tls]` with the certificate `<cert>.pem` and, optionally, a client CA file.
pub(crate) fn server_tls(dir: &Path, cert: &str, client_ca: Option<&str>) -> String {
    let mut text = format!(
        "\n[server.tls]\ncert = \"{0}/{cert}.pem\"\nkey = \"{0}/{cert}-key.pem\"\n",
        dir.display()
    );
    if let Some(ca) = client_ca {
        text.push_str(&format!("client_ca = \"{}/{ca}\"\n", dir.display()));
    }
    text
}

/// A portal client trusting `ca.pem`, presenting `identity` (`<name>.pem` + key) if given.
fn portal(dir: &Path, identity: Option<&str>) -> reqwest::Client {
    let ca = std::fs::read(dir.join("ca.pem")).unwrap();
    let mut builder = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .default_headers(
            [(
                reqwest::header::HeaderName::from_static("x-api-key"),
                reqwest::header::HeaderValue::from_static(PORTAL_KEY),
            )]
            .into_iter()
            .collect(),
        );
    if let Some(name) = identity {
        let mut pem = std::fs::read(dir.join(format!("{name}.pem"))).unwrap();
        pem.extend(std::fs::read(dir.join(format!("{name}-key.pem"))).unwrap());
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_listener_serves_https_and_can_require_portal_certificates() {
    let pki = tempfile::tempdir().unwrap();
    let dir = pki.path();
    let year = OffsetDateTime::now_utc() + Duration::days(365);
    let authority = ca("Test Portal CA", year);
    std::fs::write(dir.join("ca.pem"), authority.pem()).unwrap();
    issue(
        dir,
        "gateway",
        &authority,
        ExtendedKeyUsagePurpose::ServerAuth,
        year,
    );
    issue(
        dir,
        "portal",
        &authority,
        ExtendedKeyUsagePurpose::ClientAuth,
        year,
    );
    let stranger = ca("Stranger CA", year);
    issue(
        dir,
        "stranger",
        &stranger,
        ExtendedKeyUsagePurpose::ClientAuth,
        year,
    );

    let env = Env::start_with(Setup {
        config_extra: server_tls(dir, "gateway", Some("ca.pem")),
        ..Setup::default()
    })
    .await
    .unwrap();
    let url = env.gateway.url();
    assert!(url.starts_with("https://"), "{url}");
    let catalogue = format!("{url}/api/v1/catalogue");

    // A portal with a certificate from the configured CA is served, over TLS.
    let answer = portal(dir, Some("portal"))
        .get(&catalogue)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    assert!(body["services"].as_array().is_some_and(|s| !s.is_empty()));

    // No certificate, or one from another CA: the handshake is refused.
    for identity in [None, Some("stranger")] {
        let refused = portal(dir, identity).get(&catalogue).send().await;
        assert!(refused.is_err(), "{identity:?} was let in: {refused:?}");
    }
    // Plain HTTP on the TLS port gets no answer.
    let plain = format!("http://{}/api/v1/catalogue", env.gateway.addr);
    let answer = integration_tests::client().get(&plain).send().await;
    assert!(
        answer.is_err(),
        "plain HTTP answered on the TLS listener: {answer:?}"
    );
    // The portal's credentials still apply inside TLS: a certificate alone is not a client.
    let anonymous = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(dir.join("ca.pem")).unwrap()).unwrap(),
        )
        .identity({
            let mut pem = std::fs::read(dir.join("portal.pem")).unwrap();
            pem.extend(std::fs::read(dir.join("portal-key.pem")).unwrap());
            reqwest::Identity::from_pem(&pem).unwrap()
        })
        .build()
        .unwrap();
    let answer = anonymous.get(&catalogue).send().await.unwrap();
    assert_eq!(answer.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_expiry_dates_are_in_readiness_and_metrics() {
    let pki = tempfile::tempdir().unwrap();
    let dir = pki.path();
    let now = OffsetDateTime::now_utc();
    let soon = (now + Duration::days(5)).replace_nanosecond(0).unwrap();
    let authority = ca("Test Portal CA", now + Duration::days(365));
    std::fs::write(dir.join("ca.pem"), authority.pem()).unwrap();
    // The listener's certificate expires in five days; the portal CA expired yesterday.
    issue(
        dir,
        "expiring",
        &authority,
        ExtendedKeyUsagePurpose::ServerAuth,
        soon,
    );
    let expired = ca("Expired Portal CA", now - Duration::days(1));
    std::fs::write(dir.join("expired-ca.pem"), expired.pem()).unwrap();

    let env = Env::start_with(Setup {
        admin: true,
        config_extra: server_tls(dir, "expiring", Some("expired-ca.pem")),
        ..Setup::default()
    })
    .await
    .unwrap();
    let admin = integration_tests::admin_client();
    let answer = admin
        .get(format!("{}/readyz", env.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 503, "an expired certificate: not ready");
    let body: Value = answer.json().await.unwrap();
    let checks = &body["checks"];

    let listener = &checks["certificate.server.tls.cert"];
    assert_eq!(listener["state"], "up", "{body:#}");
    assert_eq!(
        listener["detail"], "CN=expiring expires in 4 days",
        "five days less the seconds since: {body:#}"
    );
    let at = OffsetDateTime::parse(
        listener["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(at, soon);

    let ca_check = &checks["certificate.server.tls.client_ca"];
    assert_eq!(ca_check["state"], "down", "{body:#}");
    assert_eq!(ca_check["detail"], "CN=Expired Portal CA expired");
    // The department's pinned CA and the gateway's client certificate towards it are listed.
    for name in [
        "certificate.departments.public-security.tls.ca",
        "certificate.departments.public-security.tls.client_cert",
    ] {
        assert_eq!(checks[name]["state"], "up", "{name}: {body:#}");
        assert!(checks[name]["expires_at"].is_string(), "{name}: {body:#}");
    }

    let metrics = env.metrics().await;
    // (Tests share one metrics registry per process: each certificate here has its own subject.)
    let value = |certificate: &str, subject: &str| -> f64 {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with("gateway_certificate_not_after_seconds{")
                    && l.contains(&format!("certificate=\"{certificate}\""))
                    && l.contains(&format!("subject=\"{subject}\""))
            })
            .unwrap_or_else(|| panic!("no expiry of {certificate}: {metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(
        value("server.tls.cert", "CN=expiring"),
        soon.unix_timestamp() as f64
    );
    assert!(value("server.tls.client_ca", "CN=Expired Portal CA") < now.unix_timestamp() as f64);
}

/// The gateway process started with `config` (found by its command line).
fn pid_of(config: &Path) -> u32 {
    let needle = config.to_str().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .expect("the gateway process")
}

/// Open file descriptors and resident memory (KiB) of a process.
fn usage(pid: u32) -> (usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    (fds, rss)
}

/// Thousands of clients that connect to the TLS listener, send the start of a 16 KiB
/// ClientHello record and stall: the gateway holds at most `max_handshakes` (default 256) of
/// them, so its descriptors and memory stay bounded, and real clients arriving meanwhile, each
/// with a handshake of its own, are all served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_tls_handshakes_do_not_exhaust_descriptors_or_memory_and_real_clients_are_served() {
    use tokio::io::AsyncWriteExt;
    const STALLED: usize = 3_000;
    const LIMIT: usize = 256;
    let pki = tempfile::tempdir().unwrap();
    let dir = pki.path();
    let year = OffsetDateTime::now_utc() + Duration::days(365);
    let authority = ca("Test Portal CA", year);
    std::fs::write(dir.join("ca.pem"), authority.pem()).unwrap();
    issue(
        dir,
        "gateway",
        &authority,
        ExtendedKeyUsagePurpose::ServerAuth,
        year,
    );
    let departments = integration_tests::departments_in(dir).await;
    let setup = Setup {
        config_extra: server_tls(dir, "gateway", None),
        ..Setup::default()
    };
    let store = format!("sqlite://{}", dir.join("gateway.db").display());
    let config = integration_tests::write_config(dir, &departments, &setup, &store).unwrap();
    let gateway = integration_tests::GatewayProcess::spawn(&config)
        .await
        .unwrap();
    let pid = pid_of(&config);
    let addr = gateway.url.strip_prefix("https://").unwrap().to_string();
    let catalogue = format!("{}/api/v1/catalogue", gateway.url);
    // One real request first, so what it allocates once is in the baseline.
    assert_eq!(
        portal(dir, None)
            .get(&catalogue)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let (fds_before, rss_before) = usage(pid);

    // The flood: a record header announcing 16 KiB of handshake, 8 KiB of it, then nothing.
    // About a thousand connections a second, for three seconds.
    let mut hello = vec![0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0x3f, 0xfc];
    hello.resize(8 * 1024, 0);
    let flood = tokio::spawn(async move {
        let mut stalled = Vec::with_capacity(STALLED);
        for burst in 0..STALLED / 50 {
            for _ in 0..50 {
                let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
                // Displaced handshakes are closed by the gateway: a write may find it gone.
                let _ = stream.write_all(&hello).await;
                stalled.push(stream);
            }
            if burst % 2 == 1 {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        stalled
    });
    // Meanwhile real clients, each with a fresh connection and handshake.
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    while !flood.is_finished() {
        let started = std::time::Instant::now();
        match portal(dir, None).get(&catalogue).send().await {
            Ok(answer) if answer.status() == 200 => latencies.push(started.elapsed()),
            other => failures.push(format!("{other:?}")),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let stalled = flood.await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (fds_during, rss_during) = usage(pid);
    latencies.sort();
    eprintln!(
        "{} stalled handshakes: gateway descriptors {fds_before} -> {fds_during}, resident \
         memory {rss_before} KiB -> {rss_during} KiB; {} real clients served (slowest {:?}, \
         median {:?}), {} failed",
        stalled.len(),
        latencies.len(),
        latencies.last(),
        latencies.get(latencies.len() / 2),
        failures.len(),
    );
    assert!(
        failures.is_empty(),
        "every real client was served: {failures:#?}"
    );
    assert!(latencies.len() >= 10, "real clients came during the flood");
    assert!(
        latencies.last().unwrap() < &std::time::Duration::from_secs(2),
        "real clients were served promptly: {latencies:?}"
    );
    assert!(
        fds_during <= fds_before + LIMIT + 16,
        "{} stalled handshakes held {} descriptors (limit {LIMIT})",
        stalled.len(),
        fds_during - fds_before
    );
    assert!(
        rss_during < rss_before + 32 * 1024,
        "{} stalled handshakes took {} KiB",
        stalled.len(),
        rss_during - rss_before
    );
    drop(stalled);
    gateway.kill().await;
}
