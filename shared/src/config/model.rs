//! The configuration format: plain serde structs. Doc comments double as the
//! JSON Schema descriptions printed by `ferry schema`.
//!
//! Strings that hold secrets are references (`${env:NAME}`), resolved when the
//! config is loaded; templates are minijinja, compiled and checked at load.

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::classify::Classify;
use super::duration::Dur;

mod auth;
mod source;
mod sync;
mod workflow;

pub use auth::*;
pub use source::*;
pub use sync::*;
pub use workflow::*;

/// A ferry configuration file (`version: 1`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Format version; must be 1.
    pub version: u32,
    /// Outbound APIs that workflow steps call, by name.
    #[serde(default)]
    pub connections: BTreeMap<String, Connection>,
    /// Inbound webhook sources, by name; each is served at `POST /hooks/<name>`.
    #[serde(default)]
    pub sources: BTreeMap<String, Source>,
    /// Workflows: a trigger, an optional filter and the steps to run.
    #[serde(default)]
    pub workflows: BTreeMap<String, Workflow>,
    /// Scheduled syncs: poll a source API from a saved cursor and run steps per record.
    #[serde(default)]
    pub syncs: BTreeMap<String, SyncDef>,
    /// How long a run (with its event's payload and every attempt's request
    /// and response) is kept after it last changed (default 30d; 1d to 3650d).
    /// Event ids kept for dedupe have their own window (`sources.*.dedupe_window`).
    #[serde(default)]
    pub retention: Option<Dur>,
    /// Alerts: channels and the rules that route conditions to them
    /// (see [`Alerts`](super::alerts::Alerts)).
    #[serde(default)]
    pub alerts: Option<super::alerts::Alerts>,
}

/// An outbound API.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// Base URL every step path is appended to, e.g. `https://api.example.com/v2`.
    pub base_url: String,
    /// How requests authenticate.
    #[serde(default)]
    pub auth: Option<Auth>,
    /// The provider's documented limit; ferry spends it below this rate.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Per-request timeout (default 10s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Extra headers sent with every request on this connection.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How answers are judged on this connection: by status code (`"409"`) or
    /// class (`"4xx"`) as a map (`{"409": success}`), or as a list of rules
    /// with expressions over the response (`[{ when: "response.body.ok ==
    /// false", outcome: retry }]`). Outcomes: `success` (`ok`), `retry`,
    /// `rate_limited`, `auth_failed`, `permission_denied`, `rejected`, `fail`.
    /// A step's own `classify` comes first; anything neither mentions follows
    /// the defaults.
    #[serde(default)]
    pub classify: Classify,
    /// When calls on this connection keep failing, stop calling for a while
    /// (on by default; `enabled: false` turns it off). See docs/breaker.md.
    #[serde(default)]
    pub circuit_breaker: Option<CircuitBreaker>,
    /// `false`: no calls go out on this connection; runs that need it wait
    /// (without spending attempts) until it is enabled again, as while
    /// `ferry pause connection` holds it. On by default.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// The only requests this connection may make, e.g.
    /// `["GET /contacts*", "POST /contacts"]`: a method (or `*`) and a path
    /// relative to `base_url`, where `*` matches within one segment and a
    /// final `*` matches the rest. `ferry validate` rejects a step or poll
    /// outside it, and a rendered request outside it is refused without
    /// being sent (the step fails as `rejected`). Unset: no restriction.
    #[serde(default)]
    pub allow: Option<Vec<String>>,
}

/// A connection's circuit breaker: it opens when retryable failures (connection
/// errors, timeouts, `5xx`, `408`) reach `failure_ratio` of at least `min_calls`
/// calls within `window`; while open, runs wait without calling or spending an
/// attempt; after `open_for` one probe call decides whether it closes.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreaker {
    /// Whether the breaker is on (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Fraction of calls in the window that must fail for it to open, above 0 and at most 1 (default 0.8).
    #[serde(default)]
    pub failure_ratio: Option<f64>,
    /// Fewest calls in the window before the ratio is judged (default 20).
    #[serde(default)]
    pub min_calls: Option<NonZeroU32>,
    /// How far back calls are counted (default 1m).
    #[serde(default)]
    pub window: Option<Dur>,
    /// How long it stays open before one probe call (default 30s).
    #[serde(default)]
    pub open_for: Option<Dur>,
}

/// What `Debug` prints in place of a secret.
#[derive(Clone, Copy)]
struct Redacted;
const REDACTED: Redacted = Redacted;

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A documented rate limit: `requests` per `per`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Number of requests allowed per window.
    pub requests: NonZeroU32,
    /// Window length, e.g. `1s`, `10s`, `1m`.
    pub per: Dur,
    /// Fraction of the limit ferry spends (default 0.8).
    #[serde(default)]
    pub headroom: Option<f64>,
    /// Optional template giving a per-key limit (e.g. `{{ body.channel }}`).
    #[serde(default)]
    pub key: Option<String>,
    /// Read the limit from each answer's headers too, and pause the
    /// connection before it runs out (see [`FromHeaders`](super::FromHeaders)):
    /// one pair of headers, or a list of them (OpenAI's requests and tokens).
    #[serde(default)]
    pub from_headers: Option<super::FromHeadersList>,
    /// A second budget in tokens per window, each call spending what an
    /// expression over its rendered request says (see
    /// [`TokenBudget`](super::TokenBudget)).
    #[serde(default)]
    pub tokens: Option<super::TokenBudget>,
}
