//! Did a payload run? Three detectors, and payloads that trip all three when
//! a page renders them unescaped:
//!
//! - a dialog (`alert`, `confirm`, `prompt`) is open — WebDriver's alert text
//!   answers "no such alert" when none is (the session keeps an unexpected
//!   dialog open until it is looked at: `unhandledPromptBehavior: ignore`);
//! - an element matching a selector the payload would inject exists
//!   ([`MARKER`] for the payloads here);
//! - the page's `window.__ferry_xss` ([`CANARY`]) is set: a payload's script
//!   ran, even one that opened no dialog.
//!
//! A page that renders [`PAYLOADS`] as text passes; one that renders them as
//! markup fails each detector (tests/browser_harness.rs shows both).

use std::fmt;
use std::time::Instant;

use serde_json::Value;

use super::{Browser, POLL};

/// The global a payload's script sets.
pub const CANARY: &str = "__ferry_xss";

/// A selector matching the elements the payloads inject.
pub const MARKER: &str = "[data-ferry-xss]";

/// Payloads for an event field, a query parameter, a form value: each sets
/// [`CANARY`], opens a dialog, and (but the `<script>`) injects an element
/// matching [`MARKER`], when rendered unescaped in an element's text or in
/// a double-quoted attribute.
pub const PAYLOADS: &[&str] = &[
    "<script>window.__ferry_xss='script';alert('ferry-xss-script')</script>",
    "\"><img src=\"data:,\" data-ferry-xss onerror=\"window.__ferry_xss='img';alert('ferry-xss-img')\">",
    "'><svg data-ferry-xss onload=\"window.__ferry_xss='svg';confirm('ferry-xss-svg')\"></svg>",
];

/// One sign that a payload ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A dialog was open, with this text (it has been dismissed).
    Dialog(String),
    /// Elements matching `selector` were in the page: their HTML.
    Injected {
        /// The selector.
        selector: String,
        /// The outer HTML of each (cut at 200 characters).
        html: Vec<String>,
    },
    /// `window.__ferry_xss` held this value.
    Canary(String),
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Dialog(text) => write!(f, "a dialog was opened: {text:?}"),
            Finding::Injected { selector, html } => {
                write!(
                    f,
                    "injected elements match `{selector}`: {}",
                    html.join(" ")
                )
            }
            Finding::Canary(v) => write!(f, "window.{CANARY} was set to {v}"),
        }
    }
}

/// At most this many dialogs are dismissed in one look (each may open the next).
const MAX_DIALOGS: usize = 20;

impl Browser {
    /// The text of the dialog open now, if one is. It stays open.
    pub async fn open_dialog(&self) -> Option<String> {
        match self.client.get_alert_text().await {
            Ok(text) => Some(text),
            Err(e) if e.is_no_such_alert() => None,
            Err(e) => panic!("asking whether a dialog is open: {e}"),
        }
    }

    /// The outer HTML of every element matching `selector` now.
    pub async fn injected(&self, selector: &str) -> Vec<String> {
        let mut html = Vec::new();
        for el in self.find_all(selector).await {
            let mut h = el.html(false).await.unwrap_or_else(|e| format!("<{e}>"));
            if h.len() > 200 {
                let cut = (0..=200)
                    .rev()
                    .find(|i| h.is_char_boundary(*i))
                    .unwrap_or(0);
                h.truncate(cut);
                h.push('…');
            }
            html.push(h);
        }
        html
    }

    /// `window.__ferry_xss` as text, if a script set it.
    pub async fn canary(&self) -> Option<String> {
        let script = format!("return window.{CANARY} === undefined ? null : window.{CANARY};");
        match self.script(&script).await {
            Value::Null => None,
            Value::String(s) => Some(s),
            v => Some(v.to_string()),
        }
    }

    /// Every sign that a payload ran on the current page: each open dialog
    /// (dismissed in turn, so the page goes on), then the canary, then the
    /// elements matching each of `injected` ([`MARKER`] is always looked
    /// for). Empty when none.
    pub async fn xss_findings(&self, injected: &[&str]) -> Vec<Finding> {
        let mut found = Vec::new();
        self.settle(&mut found).await;
        if let Some(v) = self.canary().await {
            found.push(Finding::Canary(v));
        }
        let mut selectors = vec![MARKER];
        selectors.extend(injected.iter().copied().filter(|s| *s != MARKER));
        for selector in selectors {
            let html = self.injected(selector).await;
            if !html.is_empty() {
                found.push(Finding::Injected {
                    selector: selector.to_owned(),
                    html,
                });
            }
        }
        found
    }

    /// Dismiss each open dialog (noting it in `found`) until the page has
    /// loaded with none open: a payload's dialog blocks the page, so the next
    /// one may open only once the first is dismissed.
    async fn settle(&self, found: &mut Vec<Finding>) {
        let started = Instant::now();
        let mut dialogs = 0;
        loop {
            if let Some(text) = self.open_dialog().await {
                found.push(Finding::Dialog(text));
                dialogs += 1;
                assert!(
                    dialogs < MAX_DIALOGS,
                    "{MAX_DIALOGS} dialogs in a row: {found:?}"
                );
                match self.client.dismiss_alert().await {
                    Ok(()) => {}
                    Err(e) if e.is_no_such_alert() => {}
                    Err(e) => panic!("dismissing a dialog: {e}"),
                }
                continue;
            }
            match self
                .client
                .execute("return document.readyState;", vec![])
                .await
            {
                Ok(Value::String(s)) if s == "complete" => return,
                Ok(_) => {}
                // One opened between the two questions: dismissed next round.
                Err(e) if e.is_unexpected_alert_open() => continue,
                Err(e) => panic!("reading document.readyState: {e}"),
            }
            assert!(
                started.elapsed() < self.wait,
                "the page did not finish loading in {:?}",
                self.wait
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Panic, listing them, if [`Browser::xss_findings`] finds anything.
    pub async fn assert_no_xss(&self, injected: &[&str]) {
        let found = self.xss_findings(injected).await;
        if !found.is_empty() {
            let list: Vec<String> = found.iter().map(|f| format!("  - {f}")).collect();
            panic!(
                "a payload ran at {}:\n{}",
                self.url_or_error().await,
                list.join("\n")
            );
        }
    }
}
