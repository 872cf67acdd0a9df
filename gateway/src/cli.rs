//! `gateway plugin …`: the operators' command line for adapter versions, a thin client of the
//! admin API (plus signing, which stays on the operator's machine); `gateway config reload`:
//! the same for reloading a running gateway's config; `gateway calendar check`: the holiday
//! calendar a config names, read on the operator's machine.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use gateway_base::signature::{Algorithm, SigningKeyFile};
use serde_json::Value;
use std::path::PathBuf;

/// Where the admin API is and who is asking.
#[derive(Args, Debug)]
pub struct PluginArgs {
    /// The admin listener's base URL.
    #[arg(
        long,
        global = true,
        env = "GATEWAY_ADMIN_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub admin: String,
    /// The operator's bearer token (it names who makes the change).
    #[arg(
        long,
        global = true,
        env = "GATEWAY_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Print the admin API's JSON answer instead of a summary (before or after the
    /// subcommand: `gateway plugin --json list` and `gateway plugin list --json`).
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do with the versions.
    #[command(subcommand)]
    pub command: PluginCommand,
}

/// What to do with adapter versions.
#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// Upload a component; it is checked and stored as a version.
    Push {
        /// The component file.
        file: PathBuf,
        /// The department it must describe.
        #[arg(long)]
        department: Option<String>,
        /// Activate it at once.
        #[arg(long)]
        activate: bool,
        /// Activate it for this share of calls only (staged).
        #[arg(long)]
        percent: Option<u8>,
    },
    /// List departments, what serves them and their versions.
    List {
        /// Only this department, with its history.
        department: Option<String>,
    },
    /// Activate a version (by digest or a prefix of 8+ characters).
    Activate {
        /// The department.
        department: String,
        /// The version's digest.
        digest: String,
        /// Stage it for this share of calls instead of all.
        #[arg(long)]
        percent: Option<u8>,
    },
    /// Make the staged candidate the active version.
    Promote {
        /// The department.
        department: String,
    },
    /// Drop the staged candidate, or go back to the previous (or a given) version.
    Rollback {
        /// The department.
        department: String,
        /// The version to go back to (default: the one active before).
        digest: Option<String>,
    },
    /// Remove a version that serves no calls.
    Remove {
        /// The department.
        department: String,
        /// The version's digest.
        digest: String,
    },
    /// Sign a component with a private key file (offline; nothing is sent).
    Sign {
        /// The component file.
        file: PathBuf,
        /// The key file made by `keygen`.
        #[arg(long)]
        key: PathBuf,
        /// Where to write the signed component (default: over the input).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Make a signing key pair; prints the public part for `plugins.trusted_keys`.
    Keygen {
        /// Key id, named in signatures.
        #[arg(long)]
        id: String,
        /// `ed25519` or `sm2`.
        #[arg(long, default_value = "ed25519")]
        algorithm: String,
        /// Where to write the private key file (created with mode 0600).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Run one `gateway plugin` command.
pub async fn run(args: PluginArgs) -> anyhow::Result<()> {
    match &args.command {
        PluginCommand::Sign { file, key, out } => return sign(file, key, out.as_ref()),
        PluginCommand::Keygen { id, algorithm, out } => return keygen(id, algorithm, out),
        _ => {}
    }
    let client = Admin::new(&args)?;
    let answer = match &args.command {
        PluginCommand::Push {
            file,
            department,
            activate,
            percent,
        } => {
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let mut query = Vec::new();
            if let Some(d) = department {
                query.push(("department", d.clone()));
            }
            if *activate {
                query.push(("activate", "true".into()));
            }
            if let Some(p) = percent {
                query.push(("percent", p.to_string()));
            }
            client
                .send(client.post("/admin/v1/adapters").query(&query).body(bytes))
                .await?
        }
        PluginCommand::List { department } => {
            let path = match department {
                Some(d) => format!("/admin/v1/adapters/{d}"),
                None => "/admin/v1/adapters".into(),
            };
            client.send(client.get(&path)).await?
        }
        PluginCommand::Activate {
            department,
            digest,
            percent,
        } => {
            let body = serde_json::json!({"digest": digest, "percent": percent});
            client
                .send(
                    client
                        .post(&format!("/admin/v1/adapters/{department}/activate"))
                        .json(&body),
                )
                .await?
        }
        PluginCommand::Promote { department } => {
            client
                .send(client.post(&format!("/admin/v1/adapters/{department}/promote")))
                .await?
        }
        PluginCommand::Rollback { department, digest } => {
            let body = serde_json::json!({"digest": digest});
            client
                .send(
                    client
                        .post(&format!("/admin/v1/adapters/{department}/rollback"))
                        .json(&body),
                )
                .await?
        }
        PluginCommand::Remove { department, digest } => {
            client
                .send(client.delete(&format!(
                    "/admin/v1/adapters/{department}/versions/{digest}"
                )))
                .await?
        }
        PluginCommand::Sign { .. } | PluginCommand::Keygen { .. } => unreachable!("handled above"),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print!("{}", summary(&args.command, &answer));
    }
    Ok(())
}

struct Admin {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Admin {
    fn new(args: &PluginArgs) -> anyhow::Result<Admin> {
        Self::at(&args.admin, args.token.as_deref())
    }

    fn at(admin: &str, token: Option<&str>) -> anyhow::Result<Admin> {
        let token = token
            .map(str::to_string)
            .context("the admin API needs an operator's token: --token or GATEWAY_ADMIN_TOKEN")?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(gateway_plugins::tls::no_trust_config()?)
            .build()?;
        Ok(Admin {
            base: admin.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base))
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base))
    }

    fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.delete(format!("{}{path}", self.base))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("reaching the admin API at {}", self.base))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let error = &body["error"];
            let mut text = format!(
                "{status}: {}",
                error["message"].as_str().unwrap_or("no message")
            );
            for field in error["fields"].as_array().into_iter().flatten() {
                if let Some(file) = field["file"].as_str() {
                    text.push_str(&format!("\n  {file}:"));
                }
                text.push_str(&format!(
                    "\n  {} ({}): {}",
                    field["field"].as_str().unwrap_or_default(),
                    field["code"].as_str().unwrap_or_default(),
                    field["message"].as_str().unwrap_or_default()
                ));
            }
            bail!(text);
        }
        Ok(body)
    }
}

fn short(digest: &Value) -> &str {
    let d = digest.as_str().unwrap_or("-");
    &d[..12.min(d.len())]
}

fn summary(command: &PluginCommand, answer: &Value) -> String {
    let route = |r: &Value| {
        let mut text = format!(
            "{}: active {}",
            r["department"].as_str().unwrap_or_default(),
            short(&r["active"])
        );
        if !r["candidate"].is_null() {
            text.push_str(&format!(
                ", candidate {} at {}%",
                short(&r["candidate"]),
                r["percent"]
            ));
        }
        text + "\n"
    };
    match command {
        PluginCommand::Push { .. } => {
            let v = &answer["version"];
            let mut text = format!(
                "admitted {} {} (department {}, contract {})\n",
                short(&v["digest"]),
                v["adapter_version"].as_str().unwrap_or_default(),
                v["department"].as_str().unwrap_or_default(),
                v["contract_version"].as_str().unwrap_or_default()
            );
            if !answer["route"].is_null() {
                text.push_str(&route(&answer["route"]));
            }
            text
        }
        PluginCommand::List { .. } => {
            let departments = match answer.get("departments") {
                Some(Value::Array(all)) => all.clone(),
                _ => vec![answer.clone()],
            };
            let mut text = String::new();
            for d in &departments {
                text.push_str(&format!(
                    "{}\n",
                    d["department"].as_str().unwrap_or_default()
                ));
                for v in d["versions"].as_array().into_iter().flatten() {
                    let role = if v["digest"] == d["active"]["digest"] {
                        "active".to_string()
                    } else if v["digest"] == d["candidate"]["digest"] {
                        format!("candidate {}%", d["percent"])
                    } else {
                        String::new()
                    };
                    text.push_str(&format!(
                        "  {}  {:<10} contract {:<6} {:<8} by {:<16} {}\n",
                        short(&v["digest"]),
                        v["adapter_version"].as_str().unwrap_or_default(),
                        v["contract_version"].as_str().unwrap_or_default(),
                        v["source"].as_str().unwrap_or_default(),
                        v["loaded_by"].as_str().unwrap_or_default(),
                        role
                    ));
                }
                for h in d["history"].as_array().into_iter().flatten().take(20) {
                    text.push_str(&format!(
                        "  · {} {} by {} {}\n",
                        h["action"].as_str().unwrap_or_default(),
                        short(&h["digest"]),
                        h["operator"].as_str().unwrap_or_default(),
                        h["detail"].as_str().unwrap_or_default()
                    ));
                }
            }
            text
        }
        PluginCommand::Remove { .. } => format!("removed {}\n", short(&answer["removed"])),
        _ => route(&answer["route"]),
    }
}

fn sign(file: &PathBuf, key: &PathBuf, out: Option<&PathBuf>) -> anyhow::Result<()> {
    let key: SigningKeyFile = toml::from_str(
        &std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?,
    )
    .with_context(|| format!("{} is not a signing key file", key.display()))?;
    let component = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let signed = key.sign(&component).map_err(anyhow::Error::msg)?;
    let out = out.unwrap_or(file);
    std::fs::write(out, signed).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "signed {} with key {} ({})",
        out.display(),
        key.id,
        key.algorithm
    );
    Ok(())
}

fn keygen(id: &str, algorithm: &str, out: &PathBuf) -> anyhow::Result<()> {
    let algorithm = match algorithm {
        "ed25519" => Algorithm::Ed25519,
        "sm2" => Algorithm::Sm2,
        other => bail!("algorithm {other}: use ed25519 or sm2"),
    };
    let key = SigningKeyFile::generate(id, algorithm);
    let text = format!(
        "# Adapter signing key `{id}`. Keep this file on the signing machine only.\n{}",
        toml::to_string(&key)?
    );
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    use std::io::Write as _;
    options
        .open(out)
        .with_context(|| format!("creating {}", out.display()))?
        .write_all(text.as_bytes())?;
    println!(
        "wrote {}; add to the gateway's config:\n\n[[plugins.trusted_keys]]\nid = \"{id}\"\nalgorithm = \"{algorithm}\"\npublic_key = \"{}\"",
        out.display(),
        key.public_key
    );
    Ok(())
}

/// Where the admin API is and who is asking, for `gateway config …`.
#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// The admin listener's base URL.
    #[arg(
        long,
        global = true,
        env = "GATEWAY_ADMIN_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub admin: String,
    /// The operator's bearer token (it names who reloads).
    #[arg(
        long,
        global = true,
        env = "GATEWAY_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Print the admin API's JSON answer instead of a summary (before or after the
    /// subcommand: `gateway plugin --json list` and `gateway plugin list --json`).
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do with the config.
    #[command(subcommand)]
    pub command: ConfigCommand,
}

/// What to do with a running gateway's config.
#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Read the gateway's config file again: applied whole, or refused whole with every
    /// problem (the running config keeps serving then). Same as `kill -HUP`, recorded with
    /// the operator.
    Reload,
}

/// Run one `gateway config` command.
pub async fn run_config(args: ConfigArgs) -> anyhow::Result<()> {
    let client = Admin::at(&args.admin, args.token.as_deref())?;
    let answer = match args.command {
        ConfigCommand::Reload => client.send(client.post("/admin/v1/config/reload")).await?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    println!(
        "reloaded {}",
        answer["file"].as_str().unwrap_or("the config")
    );
    let changes = answer["changes"].as_array().cloned().unwrap_or_default();
    if changes.is_empty() {
        println!("  nothing changed");
    }
    for change in changes {
        println!("  {}", change.as_str().unwrap_or_default());
    }
    for item in answer["needs_restart"].as_array().into_iter().flatten() {
        println!(
            "  needs a restart: {} ({})",
            item["key"].as_str().unwrap_or_default(),
            item["reason"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}

/// `gateway audit verify`: open the config's store, verify, print the report; true when OK.
pub async fn audit_verify(
    config: &std::path::Path,
    public_keys: &[String],
) -> anyhow::Result<bool> {
    use gateway_store::audit::verify::{configured_keys, public_key, verify};
    let config = gateway_base::config::Config::load(config)?;
    let mut keys = public_keys
        .iter()
        .map(|k| public_key(k).map_err(|why| anyhow::anyhow!("--public-key {k}: {why}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if keys.is_empty() {
        keys = configured_keys(&config.audit).map_err(anyhow::Error::msg)?;
    }
    let store = gateway_store::Store::open(&config.store.url).await?;
    let report = verify(store.pool(), &keys).await?;
    println!("{report}");
    Ok(report.ok())
}

/// `gateway calendar …`: the holiday calendar a config names, without a running gateway.
#[derive(Subcommand, Debug)]
pub enum CalendarCommand {
    /// Print the years the holiday calendar covers, the working days of each month, and every
    /// problem: a year missing (this year; next year from 1 November; a gap), a workday that is
    /// not a Saturday or Sunday, a date both a holiday and a workday, a date outside its year.
    /// Exits non-zero when there is one.
    Check {
        /// Config file (only its `[deadlines] calendar` is read).
        #[arg(long, default_value = "config/gateway.toml")]
        config: PathBuf,
        /// Judge which years are due as on this date (YYYY-MM-DD; default: today, Beijing time).
        #[arg(long, value_parser = parse_date)]
        today: Option<gateway_base::calendar::Date>,
    },
}

fn parse_date(text: &str) -> Result<gateway_base::calendar::Date, String> {
    gateway_base::calendar::parse_date(text).ok_or_else(|| "not a date like 2026-11-01".to_string())
}

/// `gateway calendar check`: the report, and whether the calendar has no problem.
pub fn calendar_check(
    config: &std::path::Path,
    today: Option<gateway_base::calendar::Date>,
) -> anyhow::Result<(String, bool)> {
    use gateway_base::calendar::Calendar;
    use std::fmt::Write;
    let today =
        today.unwrap_or_else(|| gateway_base::time::beijing_date(gateway_base::time::now_ms()));
    let Some(path) = gateway_base::config::deadlines::calendar_of(config)? else {
        return Ok((
            format!(
                "{} names no holiday calendar ([deadlines] calendar): every year counts Monday–Friday only\n",
                config.display()
            ),
            true,
        ));
    };
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading the calendar {} (named by {})",
            path.display(),
            config.display()
        )
    })?;
    let (calendar, mut problems) = Calendar::check(&path, &text);
    let outlook = calendar.outlook(today);
    let mut out = String::new();
    let years: Vec<String> = calendar.years().map(|y| y.to_string()).collect();
    writeln!(
        out,
        "calendar: {} (named by {})",
        path.display(),
        config.display()
    )?;
    writeln!(
        out,
        "years covered: {}",
        if years.is_empty() {
            "none".to_string()
        } else {
            years.join(", ")
        }
    )?;
    if !years.is_empty() {
        writeln!(out, "working days per month:")?;
        let months = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let header: String = months.iter().map(|m| format!("{m:>5}")).collect();
        writeln!(out, "{:6}{header}  {:>5}", "", "year")?;
        for year in calendar.years() {
            let months = calendar.working_days_per_month(year);
            let cells: String = months.iter().map(|d| format!("{d:>5}")).collect();
            writeln!(out, "  {year}{cells}  {:>5}", months.iter().sum::<i64>())?;
        }
    }
    let mut missing = Vec::new();
    if let Some(warning) = outlook.warning() {
        missing.push(warning);
    }
    let count = problems.len() + missing.len();
    if count == 0 {
        writeln!(
            out,
            "no problem (judged on {today}; next year's table is due from 1 November)"
        )?;
    } else {
        writeln!(out, "{count} problem(s) (judged on {today}):")?;
        for problem in problems.drain(..) {
            writeln!(out, "  {problem}")?;
        }
        for warning in missing {
            writeln!(out, "  {}: {warning}", path.display())?;
        }
    }
    Ok((out, count == 0))
}
