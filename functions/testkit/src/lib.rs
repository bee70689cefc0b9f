//! Test support for the Lambda functions (a dev-dependency only).
//!
//! - [`browser`]: headless Chromium (the system's) through ChromeDriver on
//!   127.0.0.1, with helpers to find, click, fill, wait, read cookies, take
//!   screenshots and detect a payload that ran (XSS);
//! - [`alert_receivers`]: a Slack-like incoming webhook, a webhook receiver
//!   that verifies Standard Webhooks signatures, and an SMTP sink, for the
//!   alert channels;
//! - [`events`]: the generator of the signed sample events in `events/`
//!   (`cargo run -p ferry-testkit --example events` writes them; a test
//!   checks the committed files are what it makes);
//! - [`Fixture`]: a hub on the events config (`events/ferry.yaml`), a fresh
//!   embedded store and a clock standing at [`SIGNED_AT_MS`], the moment the
//!   events are signed at;
//! - [`vendors`]: local fakes of Stripe, Shopify, QuickBooks (…), written
//!   from their public docs, each on a [`target::Target`];
//! - [`target::Target`]: the one local HTTP server every test uses in place of
//!   the APIs (scripted, fixed or handler answers; every request recorded);
//! - [`oauth::Provider`]: a strict OAuth 2.0 authorization server on a
//!   target (authorization code with PKCE, client auth, rotating refresh
//!   tokens that die once replaced);
//! - [`sqs`]: what the SQS event source mapping does around a handler;
//! - [`runtime_api::RuntimeApi`]: a stand-in Lambda Runtime API, to run a
//!   function's real binary (process tests, cold-start timing);
//! - [`vendors`]: fakes of named APIs (Slack, GitHub, Zendesk, OpenAI, HubSpot, Salesforce, Postmark…), written
//!   from their public docs, built on the target.

pub mod alert_receivers;
pub mod bench;
pub mod browser;
pub mod drive;
pub mod events;
mod fixture;
pub mod oauth;
pub mod runtime_api;
pub mod sqs;
pub mod target;
pub mod vendors;

pub use fixture::{Fixture, env_file, events_config, events_dir, repo_root};

/// When the sample events are signed (2023-11-14T22:13:20Z); tests put the
/// hub's clock here so timestamped schemes accept them.
pub const SIGNED_AT_MS: i64 = 1_700_000_000_000;
