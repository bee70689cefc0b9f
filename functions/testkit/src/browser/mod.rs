//! A real browser for end-to-end tests: headless Chromium from the system's
//! packages, driven through ChromeDriver (WebDriver) on 127.0.0.1.
//!
//! ```no_run
//! # async fn t() {
//! use ferry_testkit::browser::{Browser, By};
//! let Some(browser) = Browser::launch("console_overview").await else { return };
//! browser.goto("http://127.0.0.1:8080/").await;
//! browser.fill(By::id("name"), "Ada").await;
//! browser.submit("form").await;
//! browser.wait_for_text(By::test("greeting"), "Hello, Ada").await;
//! browser.screenshot("greeted").await;
//! browser.assert_no_xss(&["[data-ferry-xss]"]).await;
//! browser.close().await;
//! # }
//! ```
//!
//! - [`Browser::launch`] starts a session in a fresh profile, sharing the
//!   process's one ChromeDriver (stopped, with every Chromium it started,
//!   when the last browser is dropped). Without a ChromeDriver it returns
//!   `None` after printing why, unless `FERRY_REQUIRE_BROWSER=1`
//!   (scripts/test), where it panics: see [`availability`].
//! - Every helper panics with the selector and the page's URL when it cannot
//!   do what it says; the finders wait (poll) for an element to appear, up
//!   to [`Browser::set_wait`] (20 s by default), and never sleep otherwise.
//! - [`xss`]: detectors for a payload that ran (a dialog, an injected
//!   element, the [`xss::CANARY`]) and payloads that trip all three.
//!
//! Environment: `FERRY_CHROMEDRIVER`, `FERRY_CHROMIUM` (the programs),
//! `FERRY_REQUIRE_BROWSER=1` (fail, don't skip), `FERRY_BROWSER_HEADFUL=1`
//! (a visible window, to debug; needs a display), `FERRY_SCREENSHOTS` (where
//! [`Browser::screenshot`] writes; default `target/screenshots`).

mod driver;
mod page;
pub mod xss;

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use driver::{Availability, Tools, availability};
pub use fantoccini::cookies::Cookie;
pub use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder};
pub use page::{PNG_SIGNATURE, screenshot_dir};
use serde_json::{Value, json};
use tempfile::TempDir;

/// How long a finder or a `wait_*` polls by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(20);

/// How often they poll.
const POLL: Duration = Duration::from_millis(100);

/// The flags Chromium starts with (besides `--user-data-dir`): headless, no
/// sandbox (tests run as root), and no traffic of its own (the machine has
/// no network but loopback).
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-gpu",
    "--disable-sync",
    "--disable-default-apps",
    "--no-first-run",
    "--window-size=1280,900",
];

/// What a finder looks for: a CSS selector (a plain `&str` is one), an `id`,
/// or a `data-test` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum By {
    /// A CSS selector.
    Css(String),
    /// The element with this `id`.
    Id(String),
    /// The elements with `data-test="<name>"` (the console's test hooks).
    Test(String),
}

impl By {
    /// A CSS selector.
    pub fn css(selector: &str) -> By {
        By::Css(selector.to_owned())
    }

    /// The element with this `id`.
    pub fn id(id: &str) -> By {
        By::Id(id.to_owned())
    }

    /// The elements with `data-test="<name>"`.
    pub fn test(name: &str) -> By {
        By::Test(name.to_owned())
    }

    /// As a CSS selector.
    pub fn selector(&self) -> String {
        match self {
            By::Css(s) => s.clone(),
            By::Id(id) => format!("[id={}]", css_string(id)),
            By::Test(name) => format!("[data-test={}]", css_string(name)),
        }
    }
}

impl From<&str> for By {
    fn from(selector: &str) -> By {
        By::css(selector)
    }
}

impl From<&By> for By {
    fn from(by: &By) -> By {
        by.clone()
    }
}

impl fmt::Display for By {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            By::Css(s) => write!(f, "css `{s}`"),
            By::Id(id) => write!(f, "id `{id}`"),
            By::Test(name) => write!(f, "data-test `{name}`"),
        }
    }
}

/// `s` as a quoted CSS string.
fn css_string(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\a ");
    format!("\"{escaped}\"")
}

/// A browser session: one Chromium window with a fresh profile.
pub struct Browser {
    client: Client,
    test: String,
    wait: Duration,
    // Dropped in this order: the driver (when this is its last user, with
    // Chromium) before the profile folder Chromium writes in.
    driver: Arc<driver::Driver>,
    profile: TempDir,
}

impl Browser {
    /// A new session for the test `test` (its screenshots go under that
    /// name). `None`, after printing why, when no ChromeDriver is to be had
    /// and `FERRY_REQUIRE_BROWSER` is not `1`; a panic when it is, or when
    /// ChromeDriver or Chromium cannot start.
    pub async fn launch(test: &str) -> Option<Browser> {
        let tools = match availability(|name| std::env::var(name).ok()) {
            Availability::Ready(tools) => tools,
            Availability::Skip(why) => {
                eprintln!("browser test {test} skipped: {why}");
                return None;
            }
            Availability::Fail(why) => panic!("browser test {test}: {why}"),
        };
        Some(Browser::start(test, &tools).await)
    }

    /// A new session with these programs (no skipping).
    pub async fn start(test: &str, tools: &Tools) -> Browser {
        let driver = driver::shared(&tools.chromedriver).await;
        let profile = tempfile::Builder::new()
            .prefix("ferry-chromium-")
            .tempdir()
            .expect("a temporary folder for Chromium's profile");
        let headful = std::env::var("FERRY_BROWSER_HEADFUL").as_deref() == Ok("1");
        let mut args: Vec<String> = CHROMIUM_FLAGS
            .iter()
            .filter(|f| !(headful && f.starts_with("--headless")))
            .map(|f| (*f).to_owned())
            .collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut chrome = json!({ "args": args });
        if let Some(bin) = &tools.chromium {
            chrome["binary"] = json!(bin.display().to_string());
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": chrome,
            // A dialog stays open until a detector looks (xss::open_dialog):
            // ChromeDriver's default would dismiss it at the next command.
            "unhandledPromptBehavior": "ignore",
            "timeouts": { "script": 30_000, "pageLoad": 30_000, "implicit": 0 },
        });
        let Value::Object(caps) = caps else {
            unreachable!("a JSON object")
        };
        let client = ClientBuilder::rustls()
            .expect("rustls with the platform's roots")
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "no Chromium session from ChromeDriver at {}: {e}\nChromeDriver's log:\n{}",
                    driver.url,
                    driver.log_tail()
                )
            });
        Browser {
            client,
            test: test.to_owned(),
            wait: DEFAULT_WAIT,
            driver,
            profile,
        }
    }

    /// The WebDriver client, for anything the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Chromium's profile folder (`--user-data-dir`; removed on drop).
    pub fn profile_dir(&self) -> &Path {
        self.profile.path()
    }

    /// ChromeDriver's process id (shared with the other browsers open in
    /// this process).
    pub fn driver_pid(&self) -> u32 {
        self.driver.pid()
    }

    /// How long finders and `wait_*` poll before they fail.
    pub fn set_wait(&mut self, wait: Duration) {
        self.wait = wait;
    }

    /// End the session (Chromium quits). Dropping a browser instead leaves
    /// Chromium to be stopped with ChromeDriver.
    pub async fn close(self) {
        let Browser { client, .. } = self;
        if let Err(e) = client.close().await {
            eprintln!("closing the browser session: {e}");
        }
    }

    /// Poll `check` until it returns `Some`, and return that; panic, naming
    /// `what`, after the wait ([`Browser::set_wait`]).
    pub async fn wait_until<T>(
        &self,
        what: &str,
        mut check: impl AsyncFnMut(&Browser) -> Option<T>,
    ) -> T {
        let started = Instant::now();
        loop {
            if let Some(v) = check(self).await {
                return v;
            }
            if started.elapsed() > self.wait {
                panic!(
                    "waited {:?} for {what}, in vain (at {})",
                    self.wait,
                    self.url_or_error().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The current URL, or why there is none (for messages).
    async fn url_or_error(&self) -> String {
        match self.client.current_url().await {
            Ok(u) => u.to_string(),
            Err(e) => format!("no URL: {e}"),
        }
    }
}
