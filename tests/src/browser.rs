//! A real browser for the tests of pages: headless Chromium driven through `chromedriver`
//! (WebDriver, with the `fantoccini` client).
//!
//! Switched on like the PostgreSQL run: `GATEWAY_TEST_BROWSER=1`. Without it
//! [`Browser::start_if_switched_on`] prints that the test was skipped and gives `None`, so a
//! developer without Chromium still runs the rest of the suite; with it, a missing
//! `chromedriver` or `chromium` fails the test with the command that installs them.
//!
//! Each [`Browser`] is a `chromedriver` on a free port with one headless Chromium behind it, on a
//! fresh profile, whose host resolver resolves nothing: like a hall's network without internet,
//! a page that reaches for any host by name fails, and the failure is a console error the test
//! sees ([`Browser::console_errors`]). Both processes are killed when the `Browser` is dropped
//! (they run in a process group of their own, so Chromium's helpers go too).
//!
//! Waits are WebDriver waits (the element or text is looked for again until it is there, at
//! most [`WAIT`]), never a fixed sleep.

use anyhow::{Context, bail};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

pub use fantoccini;
pub use fantoccini::elements::Element;

/// The environment variable that switches the browser tests on.
pub const SWITCH: &str = "GATEWAY_TEST_BROWSER";

/// How long a wait looks for what it waits for.
pub const WAIT: Duration = Duration::from_secs(20);

/// A hall's window PC.
pub const DESKTOP: (u32, u32) = (1366, 768);

/// A phone, for the pages an applicant opens from a QR code.
pub const PHONE: (u32, u32) = (390, 844);

/// What to run to have the browser, said when it is missing.
const INSTALL: &str = "install Chromium and its WebDriver: `apt-get install -y chromium chromium-driver` \
(Debian; `.ci/run` does this), or unset GATEWAY_TEST_BROWSER to skip the browser tests";

/// True when the browser tests are switched on (`GATEWAY_TEST_BROWSER=1`).
pub fn switched_on() -> bool {
    std::env::var(SWITCH).is_ok_and(|v| v == "1")
}

/// The Chromium binary: `GATEWAY_TEST_CHROMIUM`, else Debian's `/usr/bin/chromium`.
fn chromium() -> PathBuf {
    std::env::var_os("GATEWAY_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// The `chromedriver` binary: `GATEWAY_TEST_CHROMEDRIVER`, else the one on `PATH`.
fn chromedriver() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("GATEWAY_TEST_CHROMEDRIVER") {
        return Ok(PathBuf::from(path));
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("chromedriver"))
        .find(|path| path.is_file())
        .with_context(|| format!("{SWITCH}=1 but no `chromedriver` on PATH: {INSTALL}"))
}

/// One headless Chromium behind its own `chromedriver`.
pub struct Browser {
    client: Client,
    driver: tokio::process::Child,
    /// Chromium's profile, removed when dropped.
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A browser when the browser tests are switched on; otherwise a line saying `test` was
    /// skipped, and `None`.
    pub async fn start_if_switched_on(test: &str) -> anyhow::Result<Option<Browser>> {
        if !switched_on() {
            eprintln!(
                "skipped: {test} needs a browser ({SWITCH}=1, with chromium and chromium-driver)"
            );
            return Ok(None);
        }
        Browser::start().await.map(Some)
    }

    /// A new browser, its window the size of a hall's window PC ([`DESKTOP`]).
    pub async fn start() -> anyhow::Result<Browser> {
        let driver_path = chromedriver()?;
        let chromium = chromium();
        if !chromium.is_file() {
            bail!(
                "{SWITCH}=1 but no Chromium at {}: {INSTALL}",
                chromium.display()
            );
        }
        let port = crate::free_port();
        let mut command = tokio::process::Command::new(&driver_path);
        command
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            // A group of its own: dropping the browser kills Chromium's processes with it.
            .process_group(0);
        let mut driver = command
            .spawn()
            .with_context(|| format!("starting {}: {INSTALL}", driver_path.display()))?;
        // chromedriver says when it listens; nothing is asked of it before.
        let stdout = driver.stdout.take().context("chromedriver's output")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(WAIT, async {
            while let Some(line) = lines.next_line().await? {
                if line.contains("started successfully") {
                    return Ok(true);
                }
            }
            Ok::<_, std::io::Error>(false)
        })
        .await;
        match ready {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => bail!("chromedriver exited before it listened: {INSTALL}"),
            Ok(Err(e)) => bail!("reading chromedriver's output: {e}"),
            Err(_) => bail!("chromedriver did not start within {WAIT:?}"),
        }
        // Its later lines are read and dropped, so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let profile = tempfile::tempdir()?;
        let (width, height) = DESKTOP;
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                    // No internet, as in a hall: every host name fails to resolve (the gateway
                    // is reached by address; 127.0.0.2 is the tests' identity provider, another
                    // site on the loopback).
                    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE 127.0.0.2",
                    "--disable-dev-shm-usage",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-extensions",
                    "--no-first-run",
                    "--lang=zh-CN",
                ],
            },
            // The page's console, for console_errors().
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .with_context(|| {
                format!(
                    "starting headless Chromium ({}) through chromedriver",
                    chromium.display()
                )
            })?;
        Ok(Browser {
            client,
            driver,
            _profile: profile,
        })
    }

    /// The WebDriver client, for what this type does not wrap.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Go to `url` and wait for it to load.
    pub async fn open(&self, url: &str) -> anyhow::Result<()> {
        // WebDriver's own errors say little in their Display: their details are in Debug.
        self.client
            .goto(url)
            .await
            .map_err(|e| anyhow::anyhow!("opening {url}: {e:?}"))
    }

    /// The element `css` selects, now.
    pub async fn find(&self, css: &str) -> anyhow::Result<Element> {
        self.client
            .find(Locator::Css(css))
            .await
            .with_context(|| format!("finding {css}"))
    }

    /// Every element `css` selects, now.
    pub async fn find_all(&self, css: &str) -> anyhow::Result<Vec<Element>> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .with_context(|| format!("finding {css}"))
    }

    /// The element `css` selects, once there is one.
    pub async fn wait_for(&self, css: &str) -> anyhow::Result<Element> {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("waiting {WAIT:?} for {css}"))
    }

    /// An element whose own text contains `text`, once there is one.
    pub async fn wait_for_text(&self, text: &str) -> anyhow::Result<Element> {
        let xpath = format!("//*[contains(text(), {})]", xpath_literal(text));
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::XPath(&xpath))
            .await
            .with_context(|| format!("waiting {WAIT:?} for the text {text:?}"))
    }

    /// Click the element `css` selects, once there is one.
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        self.wait_for(css)
            .await?
            .click()
            .await
            .with_context(|| format!("clicking {css}"))
    }

    /// Type `text` into the element `css` selects (after what it holds), once there is one.
    pub async fn type_into(&self, css: &str, text: &str) -> anyhow::Result<()> {
        self.wait_for(css)
            .await?
            .send_keys(text)
            .await
            .with_context(|| format!("typing into {css}"))
    }

    /// Sign in on the gateway's login page at `login` (the screens' or the console's): open it,
    /// fill in the user and the password, send. The caller waits for what it expects next.
    pub async fn sign_in(&self, login: &str, user: &str, password: &str) -> anyhow::Result<()> {
        self.open(login).await?;
        self.type_into("#user", user).await?;
        self.type_into("#password", password).await?;
        self.click("button[type=submit]").await
    }

    /// The window's size, in CSS pixels ([`DESKTOP`], [`PHONE`]).
    pub async fn set_window_size(&self, (width, height): (u32, u32)) -> anyhow::Result<()> {
        self.client
            .set_window_size(width, height)
            .await
            .context("resizing the window")
    }

    /// Run `script` in the page (`return …` gives its value).
    pub async fn execute(&self, script: &str) -> anyhow::Result<Value> {
        self.client
            .execute(script, Vec::new())
            .await
            .context("running a script in the page")
    }

    /// Run `script` in the page until it calls back: its last argument is the callback, whose
    /// argument is the value given (for what a page reports after an event, as the paint
    /// timings after `load`).
    pub async fn execute_async(&self, script: &str) -> anyhow::Result<Value> {
        self.client
            .execute_async(script, Vec::new())
            .await
            .map_err(|e| anyhow::anyhow!("running an asynchronous script in the page: {e:?}"))
    }

    /// Empty the browser's HTTP cache (Chrome DevTools' `Network.clearBrowserCache`, through
    /// chromedriver), so the next page loads everything from the server as on a first visit.
    pub async fn clear_cache(&self) -> anyhow::Result<()> {
        self.client
            .issue_cmd(SessionCommand::dev_tools("Network.clearBrowserCache"))
            .await
            .context("clearing the browser's cache")?;
        Ok(())
    }

    /// Every URL the page loaded: the page itself and each resource the Performance API lists
    /// (scripts, styles, fonts, images, fetches).
    pub async fn resources(&self) -> anyhow::Result<Vec<String>> {
        let urls = self
            .execute(
                "return [location.href].concat(\
                 performance.getEntriesByType('resource').map(function (e) { return e.name; }));",
            )
            .await?;
        serde_json::from_value(urls).context("the page's resources")
    }

    /// The console's errors since the last call (a failed load and a Content-Security-Policy
    /// refusal are errors too), each as Chromium says it.
    pub async fn console_errors(&self) -> anyhow::Result<Vec<String>> {
        let entries = self
            .client
            .issue_cmd(SessionCommand::browser_log())
            .await
            .context("reading the browser's console")?;
        let entries: Vec<Value> = serde_json::from_value(entries).unwrap_or_default();
        Ok(entries
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect())
    }

    /// A PNG of the window, written to `path` (its folder made if missing).
    pub async fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let png = self.client.screenshot().await.context("a screenshot")?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// End the session (Chromium closes), then the driver. A session that does not end
    /// cleanly (chromedriver slow to quit Chromium on a loaded machine) fails no test: what the
    /// test checks is done by then, and the process group is killed here and on drop anyway.
    pub async fn close(mut self) {
        if let Err(e) = self.client.clone().close().await {
            eprintln!("the browser's session did not end cleanly ({e}); its processes are killed");
        }
        let _ = self.driver.kill().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: chromedriver and the Chromium processes it started.
        if let Some(pid) = self.driver.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// Where a screen's picture goes: `target/screens/<name>.png`, or with
/// `GATEWAY_TEST_SCREENSHOTS=docs` `docs/screens/<name>.png`, where the README shows it. Every
/// picture holds the run's case numbers and times, so an ordinary run does not rewrite the
/// committed ones.
pub fn screen_path(name: &str) -> PathBuf {
    let root = crate::workspace_root();
    let dir = if std::env::var("GATEWAY_TEST_SCREENSHOTS").is_ok_and(|v| v == "docs") {
        root.join("docs/screens")
    } else {
        root.join("target/screens")
    };
    let _ = std::fs::create_dir_all(&dir);
    dir.join(format!("{name}.png"))
}

/// `text` as an XPath string literal (XPath 1.0 has no escapes: `concat` joins the parts
/// around a quote).
fn xpath_literal(text: &str) -> String {
    if !text.contains('\'') {
        return format!("'{text}'");
    }
    if !text.contains('"') {
        return format!("\"{text}\"");
    }
    let parts: Vec<String> = text.split('\'').map(|p| format!("'{p}'")).collect();
    format!("concat({})", parts.join(", \"'\", "))
}

/// A chromedriver command fantoccini has no method for: `POST session/{id}/<path>` with a JSON
/// body — the console log (`se/log`, `goog:loggingPrefs`; it empties as it is read) or a Chrome
/// DevTools command (`goog/cdp/execute`).
#[derive(Debug)]
struct SessionCommand {
    path: &'static str,
    body: String,
}

impl SessionCommand {
    /// The browser's console log since the last read.
    fn browser_log() -> Self {
        SessionCommand {
            path: "se/log",
            body: r#"{"type":"browser"}"#.into(),
        }
    }

    /// A Chrome DevTools command without parameters.
    fn dev_tools(command: &str) -> Self {
        SessionCommand {
            path: "goog/cdp/execute",
            body: json!({"cmd": command, "params": {}}).to_string(),
        }
    }
}

impl WebDriverCompatibleCommand for SessionCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (axum::http::Method::POST, Some(self.body.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::xpath_literal;

    #[test]
    fn xpath_literals_quote_any_text() {
        assert_eq!(xpath_literal("接口"), "'接口'");
        assert_eq!(xpath_literal("it's"), "\"it's\"");
        assert_eq!(xpath_literal("a'b\"c"), "concat('a', \"'\", 'b\"c')");
    }
}
