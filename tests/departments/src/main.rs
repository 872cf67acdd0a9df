//! Runs the four simulated departments for the demo until Ctrl-C.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "departments",
    about = "Simulated department systems (tax, real estate, public security, market regulation, social security)"
)]
struct Args {
    /// Folder for the public-security CA and client certificate (the gateway reads them).
    #[arg(long, default_value = "var/demo-certs")]
    cert_dir: PathBuf,
    #[arg(long, default_value_t = 18081)]
    tax_port: u16,
    #[arg(long, default_value_t = 18082)]
    real_estate_port: u16,
    #[arg(long, default_value_t = 18443)]
    public_security_port: u16,
    #[arg(long, default_value_t = 18084)]
    market_regulation_port: u16,
    /// The SMS provider (the notification channel).
    #[arg(long, default_value_t = 18086)]
    sms_port: u16,
    /// The national 好差评 system (where evaluations are reported).
    #[arg(long, default_value_t = 18087)]
    national_evaluation_port: u16,
    /// 社保 (social security); its SM2 key files go into the certificate folder.
    #[arg(long, default_value_t = 18088)]
    social_security_port: u16,
    /// Delay before an application is decided.
    #[arg(long, default_value_t = 300)]
    ticket_delay_ms: u64,
    /// The gateway's portal listener, where each department verifies the licences applicants
    /// name (`/licence-sharing/v1/licences/{id}`).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    gateway_url: String,
    /// Tax's licence-sharing token (the demo config keeps its SHA-256).
    #[arg(long, default_value = departments::TAX_LICENCE_SHARING_TOKEN)]
    tax_licence_sharing_token: String,
    /// Real estate's licence-sharing token.
    #[arg(long, default_value = departments::REAL_ESTATE_LICENCE_SHARING_TOKEN)]
    real_estate_licence_sharing_token: String,
    /// Public security's licence-sharing token.
    #[arg(long, default_value = departments::PUBLIC_SECURITY_LICENCE_SHARING_TOKEN)]
    public_security_licence_sharing_token: String,
    /// Market regulation's licence-sharing token.
    #[arg(long, default_value = departments::MARKET_REGULATION_LICENCE_SHARING_TOKEN)]
    market_regulation_licence_sharing_token: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let deps = departments::start(departments::Options {
        cert_dir: args.cert_dir,
        ticket_delay: Duration::from_millis(args.ticket_delay_ms),
        gateway: departments::GatewayLink::new(
            Some(args.gateway_url),
            departments::LicenceSharingTokens {
                tax: args.tax_licence_sharing_token,
                real_estate: args.real_estate_licence_sharing_token,
                public_security: args.public_security_licence_sharing_token,
                market_regulation: args.market_regulation_licence_sharing_token,
            },
        ),
        ports: departments::Ports {
            tax: args.tax_port,
            real_estate: args.real_estate_port,
            public_security: args.public_security_port,
            market_regulation: args.market_regulation_port,
            sms: args.sms_port,
            national: args.national_evaluation_port,
            social_security: args.social_security_port,
        },
        ..departments::Options::default()
    })
    .await?;
    for d in [
        &deps.tax,
        &deps.real_estate,
        &deps.public_security,
        &deps.market_regulation,
    ] {
        println!("{:<18} {}", d.name, d.base_url);
    }
    println!(
        "{:<18} {}",
        deps.sms.department.name, deps.sms.department.base_url
    );
    println!("{:<18} {}", "national-evaluation", deps.national.base_url);
    println!(
        "{:<18} {}",
        deps.social_security.department.name, deps.social_security.department.base_url
    );
    println!("{:<18} {}", "certificates", deps.cert_dir.display());
    // SIGTERM too, so a supervisor (the bench) stops it with its exit handlers run.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        stopped = tokio::signal::ctrl_c() => stopped?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
