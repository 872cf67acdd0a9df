//! The gateway binary: `gateway serve` runs it, `gateway check` validates a config,
//! `gateway plugin …` manages adapter versions on a running gateway, `gateway config reload`
//! reloads its config, `gateway calendar check` reads the holiday calendar a config names.
//!
//! # Layout
//! - this file: the command line; the allocator's limits are set before the runtime starts.
//! - `allocator`: jemalloc for Rust's allocations, glibc's arenas capped for the C libraries.
//! - `runtime`: the async runtime, one worker thread fewer than the cores.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

mod allocator;
mod runtime;

#[derive(Parser)]
#[command(
    version,
    about = "Integration gateway for one-network government service portals"
)]
struct Cli {
    /// On an error, print its whole chain and, when `RUST_BACKTRACE` asks for one, the
    /// backtrace; without it an error is one line (an operator's environment may set
    /// `RUST_BACKTRACE` for other programs, and a stack trace says nothing to them).
    #[arg(long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Config file.
        #[arg(long, default_value = "config/gateway.toml")]
        config: PathBuf,
    },
    /// Manage adapter versions on a running gateway (through its admin API), sign components.
    Plugin(gateway::cli::PluginArgs),
    /// The config of a running gateway (through its admin API).
    Config(gateway::cli::ConfigArgs),
    /// Print the portal API's OpenAPI 3.1 document (what `GET /openapi.json` answers).
    Openapi,
    /// Make a random API key or operator token, and print it with the SHA-256 the config keeps.
    ClientKey,
    /// Make a random key for `[store.encryption]` and print it (base64, for a key file).
    StoreKey {
        /// `sm4-gcm` (16 bytes) or `aes-256-gcm` (32 bytes).
        #[arg(long, default_value = "sm4-gcm")]
        algorithm: String,
    },
    /// The hall's screens.
    #[command(subcommand)]
    Screens(ScreensCommand),
    /// The audit log of department exchanges.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The holiday calendar (working days for the promised time limits).
    #[command(subcommand)]
    Calendar(gateway::cli::CalendarCommand),
    /// Check a config file without starting anything.
    Check {
        /// Config file.
        #[arg(long, default_value = "config/gateway.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum ScreensCommand {
    /// Read a password from standard input (its first line) and print its Argon2id PHC string
    /// for `[[screens.accounts]] password_hash`. Standard input, not an argument: an argument
    /// is seen by every user of the machine (`ps`) and kept in the shell's history.
    HashPassword,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute every chain and check every seal in the config's store; exits non-zero and
    /// names each problem when anything was edited, removed or reordered.
    Verify {
        /// Config file (its store is read; its `audit.signing_key` verifies seals by default).
        #[arg(long, default_value = "config/gateway.toml")]
        config: PathBuf,
        /// Base64 public key the seals must verify with (Ed25519 or SM2; repeat for rotated keys).
        #[arg(long)]
        public_key: Vec<String>,
    },
}

fn main() -> std::process::ExitCode {
    // Before the runtime starts its threads: the arenas are shaped as threads first allocate.
    allocator::cap_arenas();
    runtime::build()
        .expect("the runtime starts")
        .block_on(start())
}

async fn start() -> std::process::ExitCode {
    let cli = Cli::parse();
    let verbose = cli.verbose;
    match run(cli.command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            if verbose {
                eprintln!("error: {error:?}");
            } else {
                // `{:#}`: the context chain joined with ": ", never the backtrace.
                eprintln!("error: {error:#}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Plugin(args) => gateway::cli::run(args).await?,
        Command::Config(args) => gateway::cli::run_config(args).await?,
        Command::ClientKey => {
            let key = hex::encode(rand::random::<[u8; 24]>());
            println!(
                "key:    {key}\nsha256: {}",
                gateway_http::auth::sha256_hex(&key)
            );
        }
        Command::Screens(ScreensCommand::HashPassword) => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let password = line.trim_end_matches(['\r', '\n']);
            anyhow::ensure!(!password.is_empty(), "no password on standard input");
            let hash =
                gateway_http::screens::hash_password(password).map_err(anyhow::Error::msg)?;
            println!("{hash}");
        }
        Command::StoreKey { algorithm } => {
            use gateway_base::config::Cipher;
            let cipher = match algorithm.as_str() {
                "sm4-gcm" => Cipher::Sm4Gcm,
                "aes-256-gcm" => Cipher::Aes256Gcm,
                other => anyhow::bail!("unknown algorithm {other}: sm4-gcm or aes-256-gcm"),
            };
            println!("{}", cipher.new_key());
        }
        Command::Check { config } => {
            gateway::logging::init(gateway_base::config::LogFormat::Text, &Default::default())?;
            gateway_base::config::Config::load(&config)?;
            println!("{}: ok", config.display());
        }
        Command::Calendar(gateway::cli::CalendarCommand::Check { config, today }) => {
            let (report, ok) = gateway::cli::calendar_check(&config, today)?;
            print!("{report}");
            if !ok {
                std::process::exit(1);
            }
        }
        Command::Audit(AuditCommand::Verify { config, public_key }) => {
            if !gateway::cli::audit_verify(&config, &public_key).await? {
                std::process::exit(1);
            }
        }
        Command::Openapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(&gateway_http::portal::document())
                    .expect("the OpenAPI document serialises")
            );
        }
        Command::Serve { config } => {
            // The config names the log format, so it is read before anything logs.
            let config = gateway_base::config::Config::load(&config)?;
            let export = gateway::logging::init(
                gateway::logging::format(config.log.format)?,
                &config.telemetry,
            )?;
            let gateway = gateway::Gateway::start(config).await?;
            println!("gateway ready at {}", gateway.url());
            use tokio::signal::unix::{SignalKind, signal};
            let mut terminate = signal(SignalKind::terminate())?;
            let mut hangup = signal(SignalKind::hangup())?;
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => break,
                    _ = terminate.recv() => break,
                    // Reload: the outcome is logged and counted by the reload itself.
                    _ = hangup.recv() => { let _ = gateway.reload("signal:SIGHUP").await; }
                }
            }
            tracing::info!("stopping: no new requests; finishing what is in flight");
            let finished = gateway.shutdown().await;
            tracing::info!(finished, "stopped");
            if let Some(export) = export {
                export.shutdown();
            }
        }
    }
    Ok(())
}
