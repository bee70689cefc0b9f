//! The test file format (`tests/*.ferry.yaml`): a config, and cases, each an
//! event, mocked answers per step and what is expected. Every key is in
//! `docs/testing.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One test file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// The config under test, relative to this file (`--config` wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<PathBuf>,
    /// Values for `${env:NAME}` references (over the environment and the
    /// config's env file); a name nobody sets gets a placeholder.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// An example payload (JSON file, relative to this file) the generated
    /// cases start from (`--standard`, `--generate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<PathBuf>,
    /// Events in the generated high-volume case (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<u32>,
    /// The cases, run in order, each on a fresh store.
    #[serde(default)]
    pub cases: Vec<Case>,
}

/// One case.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What it shows, one line.
    pub name: String,
    /// The webhook.
    pub event: EventSpec,
    /// Mocked answers, by step id (`<connection>.token` for an OAuth 2.0
    /// token endpoint). An unmocked call fails the case.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mocks: BTreeMap<String, Mock>,
    /// What must happen.
    #[serde(default)]
    pub expect: Expect,
}

/// The event of a case.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// The source (a key of `sources`).
    pub source: String,
    /// The JSON payload. With `count` > 1 its strings are templates of `n`
    /// (1…count), so each event can carry its own id.
    #[serde(default)]
    pub payload: Value,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// How it is signed (default `valid`).
    #[serde(default, skip_serializing_if = "Signature::is_valid")]
    pub signature: Signature,
    /// Times the same request is delivered (2: a duplicate delivery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<u32>,
    /// Distinct events sent (high volume); default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

/// How a case's event is signed.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Signature {
    /// With the source's scheme and secret, now.
    #[default]
    Valid,
    /// With a wrong secret.
    Forged,
    /// With the right secret, a day ago.
    Stale,
    /// No signature headers.
    None,
}

impl Signature {
    fn is_valid(&self) -> bool {
        *self == Signature::Valid
    }
}

/// A step's mocked answers: one (given for every call) or a sequence (in
/// order; the last repeats).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Mock {
    /// A sequence.
    Seq(Vec<Answer>),
    /// One answer for every call.
    One(Answer),
}

impl Mock {
    /// The answer to call `n` (0-based).
    pub fn nth(&self, n: usize) -> &Answer {
        match self {
            Mock::One(a) => a,
            Mock::Seq(seq) => &seq[n.min(seq.len().saturating_sub(1))],
        }
    }
}

/// One mocked answer: a bare status (`500`) or in full.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Answer {
    /// Just a status, empty JSON object body.
    Status(u16),
    /// In full.
    Full(Reply),
}

/// A mocked answer in full.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// Status (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// JSON body (default `{}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Seconds for `Retry-After`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Virtual time the answer takes (`2s`, `150ms`); at or over the
    /// connection's timeout the connection is dropped instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
}

impl Answer {
    /// The answer in full.
    pub fn reply(&self) -> Reply {
        match self {
            Answer::Status(s) => Reply {
                status: Some(*s),
                ..Reply::default()
            },
            Answer::Full(r) => r.clone(),
        }
    }
}

/// What a case expects. Every key is optional; what is not said is not checked.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Ingest's answer to the last delivery: a status (`202`, `200`, `401`)
    /// or `{status, body}` (body: subset match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest: Option<IngestExpect>,
    /// Status of every run (`succeeded`, `dead_lettered`, `auth_failed`, `skipped`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Failure kind of every run (`mapping`, `rejected`, `permission_denied`,
    /// `auth_failed`, `exhausted`, `config`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Text the dead-letter reason contains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<String>,
    /// Per step id: calls and the request received.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub steps: BTreeMap<String, StepExpect>,
    /// No call went over a connection's documented `rate_limit` (the mock
    /// answers such a call `429`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_rate_limits: Option<bool>,
    /// Least virtual time from the first delivery to the last run's end (`20s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_duration: Option<String>,
    /// An alert the case fired: a condition (`run_failed`), or
    /// `{ condition, subject, state }`. Checked by running the alert
    /// evaluator after the runs end (see [`super::alerts`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<super::alerts::AlertExpect>,
}

/// The expected ingest answer.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum IngestExpect {
    /// Status only.
    Status(u16),
    /// Status and a body subset.
    Full {
        /// Status.
        status: u16,
        /// JSON subset of the answer's body.
        #[serde(default)]
        body: Option<Value>,
    },
}

/// What one step expects.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StepExpect {
    /// Calls made, over every run of the case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<usize>,
    /// The request of the first call (subset match; strings may be
    /// templates of `body`, the event's payload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestExpect>,
}

/// An expected request.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RequestExpect {
    /// Method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Path after the connection's base URL, with the query if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Headers that must be present (names case-insensitive).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// JSON subset of the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

/// Read a test file.
pub fn load(path: &Path) -> Result<TestFile, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A duration as the config writes it (`3s`, `1m`, `150ms`).
pub fn duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("duration {s:?}: {e}"))
}

/// `file` as YAML.
pub fn to_yaml(file: &TestFile) -> Result<String, String> {
    serde_yaml_ng::to_string(file).map_err(|e| e.to_string())
}
