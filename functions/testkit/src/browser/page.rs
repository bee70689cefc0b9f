//! What a test does on a page: go, find, click, fill, submit, read, wait,
//! cookies and screenshots. Each helper panics with the selector and the URL
//! when it cannot.

use std::path::{Path, PathBuf};

use fantoccini::Locator;
use fantoccini::cookies::Cookie;
use fantoccini::elements::Element;
use serde_json::Value;

use super::{Browser, By};

/// The eight bytes every PNG file starts with.
pub const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

impl Browser {
    /// Open `url` (absolute, or relative to the current page) and wait until
    /// it has loaded (`document.readyState` complete, as WebDriver does).
    ///
    /// A dialog the page opens while loading is left open for
    /// [`Browser::xss_findings`] to find; it does not fail this call.
    pub async fn goto(&self, url: &str) {
        match self.client.goto(url).await {
            Ok(()) => {}
            Err(e) if e.is_unexpected_alert_open() => {}
            Err(e) => panic!("opening {url}: {e}"),
        }
    }

    /// The current URL.
    pub async fn current_url(&self) -> String {
        match self.client.current_url().await {
            Ok(u) => u.to_string(),
            Err(e) => panic!("reading the current URL: {e}"),
        }
    }

    /// Every element matching `by` now (no waiting; may be empty).
    pub async fn find_all(&self, by: impl Into<By>) -> Vec<Element> {
        let by = by.into();
        let selector = by.selector();
        match self.client.find_all(Locator::Css(&selector)).await {
            Ok(found) => found,
            Err(e) => panic!("looking for {by} at {}: {e}", self.url_or_error().await),
        }
    }

    /// Whether an element matches `by` now (no waiting).
    pub async fn exists(&self, by: impl Into<By>) -> bool {
        !self.find_all(by).await.is_empty()
    }

    /// The first element matching `by`, waiting for one to appear.
    pub async fn find(&self, by: impl Into<By>) -> Element {
        let by = by.into();
        let what = format!("an element matching {by}");
        self.wait_until(&what, async |b| b.find_all(&by).await.into_iter().next())
            .await
    }

    /// Click the element matching `by` (waiting for it). A click that
    /// navigates returns once the new page has started loading: wait for
    /// what it shows ([`Browser::wait_for_text`], [`Browser::wait_for_url`]).
    pub async fn click(&self, by: impl Into<By>) {
        let by = by.into();
        let el = self.find(&by).await;
        if let Err(e) = el.click().await {
            panic!("clicking {by} at {}: {e}", self.url_or_error().await);
        }
    }

    /// Type `text` into the field matching `by` (waiting for it), replacing
    /// what it held.
    pub async fn fill(&self, by: impl Into<By>, text: &str) {
        let by = by.into();
        let el = self.find(&by).await;
        if let Err(e) = el.clear().await {
            panic!("clearing {by} at {}: {e}", self.url_or_error().await);
        }
        if let Err(e) = el.send_keys(text).await {
            panic!("typing into {by} at {}: {e}", self.url_or_error().await);
        }
    }

    /// Submit the form matching `by` as a person does: by clicking its first
    /// submit button (`button[type=submit]` or `input[type=submit]`).
    pub async fn submit(&self, by: impl Into<By>) {
        let by = by.into();
        let selector = by.selector();
        self.find(&by).await;
        let result = match self.client.form(Locator::Css(&selector)).await {
            Ok(form) => form.submit().await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            panic!(
                "submitting the form {by} (by its submit button) at {}: {e}",
                self.url_or_error().await
            );
        }
    }

    /// The visible text of the element matching `by` (waiting for it).
    pub async fn text(&self, by: impl Into<By>) -> String {
        let by = by.into();
        let el = self.find(&by).await;
        match el.text().await {
            Ok(t) => t,
            Err(e) => panic!(
                "reading the text of {by} at {}: {e}",
                self.url_or_error().await
            ),
        }
    }

    /// Attribute `name` of the element matching `by` (waiting for it).
    pub async fn attr(&self, by: impl Into<By>, name: &str) -> Option<String> {
        let by = by.into();
        let el = self.find(&by).await;
        match el.attr(name).await {
            Ok(v) => v,
            Err(e) => panic!(
                "reading {name} of {by} at {}: {e}",
                self.url_or_error().await
            ),
        }
    }

    /// Wait until the element matching `by` shows text containing `needle`,
    /// and return its whole text.
    pub async fn wait_for_text(&self, by: impl Into<By>, needle: &str) -> String {
        let by = by.into();
        let selector = by.selector();
        let what = format!("{by} to show {needle:?}");
        self.wait_until(&what, async |b| {
            let el = b.client.find(Locator::Css(&selector)).await.ok()?;
            el.text().await.ok().filter(|t| t.contains(needle))
        })
        .await
    }

    /// Wait until the current URL contains `needle`, and return it.
    pub async fn wait_for_url(&self, needle: &str) -> String {
        let what = format!("a URL containing {needle:?}");
        self.wait_until(&what, async |b| {
            let url = b.client.current_url().await.ok()?.to_string();
            url.contains(needle).then_some(url)
        })
        .await
    }

    /// Run `script` in the page (`return …` gives its value).
    pub async fn script(&self, script: &str) -> Value {
        match self.client.execute(script, vec![]).await {
            Ok(v) => v,
            Err(e) => panic!(
                "running a script at {}: {e}\n{script}",
                self.url_or_error().await
            ),
        }
    }

    /// The cookies the browser holds for the current page, with their
    /// attributes as the browser keeps them (HttpOnly, Secure, SameSite…).
    pub async fn cookies(&self) -> Vec<Cookie<'static>> {
        match self.client.get_all_cookies().await {
            Ok(c) => c,
            Err(e) => panic!("reading cookies at {}: {e}", self.url_or_error().await),
        }
    }

    /// The cookie `name`, if the browser holds it for the current page.
    pub async fn cookie(&self, name: &str) -> Option<Cookie<'static>> {
        self.cookies().await.into_iter().find(|c| c.name() == name)
    }

    /// A PNG of the page as it is now, written to
    /// `<screenshots>/<test>/<name>.png` (see [`screenshot_dir`]); its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = match self.client.screenshot().await {
            Ok(png) => png,
            Err(e) => panic!(
                "taking screenshot {name} at {}: {e}",
                self.url_or_error().await
            ),
        };
        let dir = screenshot_dir().join(file_name(&self.test));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let path = dir.join(format!("{}.png", file_name(name)));
        std::fs::write(&path, &png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }
}

/// Where screenshots go: `FERRY_SCREENSHOTS`, else `screenshots/` in the
/// Cargo target folder (`CARGO_TARGET_DIR`, else the repository's `target/`).
pub fn screenshot_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FERRY_SCREENSHOTS").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| crate::repo_root().join("target"), PathBuf::from);
    target.join("screenshots")
}

/// `name` as one file name: anything but letters, digits, `-`, `_` and `.`
/// becomes `_` (`browser_harness::form` → `browser_harness__form`).
fn file_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() || Path::new(&clean).file_name().is_none() {
        "unnamed".to_owned()
    } else {
        clean
    }
}
