//! What `ferry describe` says, as data: the JSON output is these types
//! serialized, and the Markdown output is rendered from them. Every list is
//! in the config's name order (or step order), so the output is deterministic.

use serde::Serialize;

/// Everything `ferry describe` says about one config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Description {
    /// Webhook sources: what starts the automations.
    pub sources: Vec<SourceInfo>,
    /// Workflows: what they read and where each field goes.
    pub workflows: Vec<WorkflowInfo>,
    /// Scheduled syncs, one-way and two-way.
    pub syncs: Vec<SyncInfo>,
    /// Outbound APIs: permissions, limits, and what happens on failure.
    pub connections: Vec<ConnectionInfo>,
    /// Alerts that are not about one source, workflow, sync or connection
    /// (the dead-letter queue), and the channels that exist.
    pub alerting: AlertingInfo,
}

/// A webhook source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceInfo {
    /// Its name.
    pub name: String,
    /// Where providers post: `POST /hooks/<name>`.
    pub endpoint: String,
    /// The verification scheme (`hmac-sha256`, `stripe`, …).
    pub scheme: String,
    /// How a request is verified, in a sentence.
    pub verification: String,
    /// How old a signed timestamp may be (schemes with replay protection).
    pub replay_window: Option<String>,
    /// What identifies an event for dedupe, in words.
    pub event_id: String,
    /// The `event_id` template, when the source sets one.
    pub event_id_template: Option<String>,
    /// How long an event id is remembered.
    pub dedupe_window: String,
    /// Alert when no event arrived for this long.
    pub max_silence: Option<String>,
    /// The workflows it starts.
    pub starts: Vec<String>,
    /// Who is alerted for what about it.
    pub alerts: Vec<AlertInfo>,
}

/// A workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkflowInfo {
    /// Its name.
    pub name: String,
    /// The source whose events start it.
    pub trigger: String,
    /// The condition an event must meet (else the run is `skipped`).
    pub when: Option<String>,
    /// `false` when switched off in the config (events are held).
    pub enabled: bool,
    /// Every event field it reads (`body.email`, `headers.x-kind`).
    pub reads: Vec<String>,
    /// The steps, in order.
    pub steps: Vec<StepInfo>,
    /// What a duplicate delivery does.
    pub duplicates: String,
    /// What a missing field does.
    pub missing_fields: String,
    /// Per-key concurrency, when limited.
    pub concurrency: Option<String>,
    /// Alert when a run finishes later than this after its event arrived.
    pub max_latency: Option<String>,
    /// Who is alerted for what about it.
    pub alerts: Vec<AlertInfo>,
}

/// One step: a request on a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepInfo {
    /// Its id.
    pub id: String,
    /// The connection it calls.
    pub connection: String,
    /// `POST /contacts` (the path as a template).
    pub request: String,
    /// The batch endpoint, when the step is batched.
    pub batch: Option<String>,
    /// The condition under which it runs.
    pub when: Option<String>,
    /// Which fields feed which parts of the request.
    pub fields: Vec<FieldFlow>,
    /// The retry policy, in a sentence.
    pub retry: String,
}

/// One part of a request and what feeds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldFlow {
    /// The request part: `path`, `json.email`, `query.q`, `header X-Kind`, `form.name`.
    pub to: String,
    /// The fields it reads; empty for a fixed value.
    pub from: Vec<String>,
    /// The filters applied, in order of appearance (`lower`, `trim`).
    pub filters: Vec<String>,
}

/// A scheduled sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncInfo {
    /// Its name.
    pub name: String,
    /// `rate(5 minutes)`, `cron(…)`.
    pub schedule: String,
    /// `one-way` or `two-way`.
    pub kind: String,
    /// What it reads, page by page.
    pub polls: Vec<PollInfo>,
    /// One-way: the record as the steps see it (`body.x` ← fields of `record`).
    pub map: Vec<FieldFlow>,
    /// One-way: steps per new or changed record; two-way: the writes to each side.
    pub steps: Vec<StepInfo>,
    /// One-way: steps per deleted record.
    pub on_delete: Vec<StepInfo>,
    /// Two-way: each field, how each side spells it, and its source of truth.
    pub fields: Vec<SyncField>,
    /// What a record seen again unchanged, or a missing field, does.
    pub duplicates: String,
    /// What a missing field does.
    pub missing_fields: String,
    /// Alert when no pass succeeded for this long.
    pub max_silence: Option<String>,
    /// Who is alerted for what about it.
    pub alerts: Vec<AlertInfo>,
}

/// One poll of a sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PollInfo {
    /// `source`, `tombstones`, `side a`, `side b`.
    pub role: String,
    /// The connection polled.
    pub connection: String,
    /// `GET /contacts`.
    pub request: String,
    /// How the next page is found.
    pub pagination: String,
    /// Where the records are, their id, version and watermark.
    pub records: String,
}

/// A field of a two-way sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncField {
    /// Its name.
    pub name: String,
    /// How side A spells it.
    pub a: String,
    /// How side B spells it.
    pub b: String,
    /// `a`, `b`, or `the side changed last` (the conflict rule).
    pub source_of_truth: String,
}

/// An outbound API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionInfo {
    /// Its name.
    pub name: String,
    /// How it authenticates (never the secret).
    pub auth: String,
    /// The OAuth 2.0 scopes asked for, when configured.
    pub scopes: Vec<String>,
    /// The documented limit and what ferry spends of it.
    pub rate_limit: Option<String>,
    /// The per-request timeout.
    pub timeout: String,
    /// Every request the config can make on it, with who makes it.
    pub requests: Vec<RequestInfo>,
    /// The `allow` list, when set: nothing else may be called.
    pub allow: Option<Vec<String>>,
    /// How answers are judged: its own `classify` rules, then the defaults.
    pub classification: Vec<String>,
    /// The circuit breaker, in a sentence.
    pub circuit_breaker: String,
    /// `false` when switched off in the config.
    pub enabled: bool,
    /// Who is alerted for what about it.
    pub alerts: Vec<AlertInfo>,
}

/// One request a connection can be asked to make.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RequestInfo {
    /// The method.
    pub method: String,
    /// The path template, relative to the base URL.
    pub path: String,
    /// Who makes it: `workflow new-lead, step contact`.
    pub by: String,
}

/// Where one alert condition about a subject goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertInfo {
    /// The condition (`run_failed`).
    pub condition: String,
    /// What it means, in a few words.
    pub when: String,
    /// The channels; empty: nobody is alerted.
    pub channels: Vec<String>,
}

/// Alerting as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AlertingInfo {
    /// Whether the config has an `alerts:` section.
    pub configured: bool,
    /// The channels, by name, with their kind.
    pub channels: Vec<String>,
    /// The dead-letter queue's alert.
    pub dead_letters: Vec<AlertInfo>,
}
