//! Workflows: their trigger, steps, requests, batching, retries and concurrency.

use super::*;

/// A workflow.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    /// What starts it.
    pub trigger: Trigger,
    /// A minijinja expression; the workflow runs only when it is true (else the run is `skipped`).
    #[serde(default)]
    pub when: Option<String>,
    /// Steps, run in order; each sees the outputs of the ones before it as `steps.<id>`.
    pub steps: Vec<Step>,
    /// Retry policy for every step of this workflow.
    #[serde(default)]
    pub retry: Option<RetryPolicy>,
    /// At most `limit` runs of this workflow with the same `key` execute at
    /// once, across every worker and instance; the others wait (not an attempt).
    #[serde(default)]
    pub concurrency: Option<Concurrency>,
    /// `false`: its events are still accepted (and held), but none of its
    /// runs execute until it is enabled again, as while `ferry pause
    /// workflow` holds it. On by default.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Alert (`late`) when a run finishes later than this after its event
    /// was received (a backlog, a long rate-limit wait, a paused connection).
    #[serde(default)]
    pub max_latency: Option<Dur>,
}

/// Per-key concurrency of a workflow's runs.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Concurrency {
    /// A template over the event (`body`, `headers`, `query`, `event`, `run`),
    /// e.g. `{{ body.account_id }}`: runs with the same rendered value share
    /// the limit. Without it, every run of the workflow shares one limit.
    #[serde(default)]
    pub key: Option<String>,
    /// Most runs with the same key executing at once (1 to 100).
    pub limit: NonZeroU32,
}

/// A workflow trigger.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Name of the source in `sources`.
    pub source: String,
}

/// One action: an HTTP request on a connection.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Step id, unique in its workflow; later steps read `steps.<id>.response`.
    pub id: String,
    /// Name of the connection in `connections`.
    pub connection: String,
    /// An optional minijinja expression; the step is skipped when false.
    #[serde(default)]
    pub when: Option<String>,
    /// The request to make.
    pub request: RequestSpec,
    /// Retry policy for this step (overrides the workflow's).
    #[serde(default)]
    pub retry: Option<RetryPolicy>,
    /// How answers are judged for this step (before the connection's `classify`),
    /// e.g. `{ "409": success }` for an upsert; the same forms as a connection's.
    #[serde(default)]
    pub classify: Classify,
    /// Send this step for several runs in one call to a batch endpoint.
    #[serde(default)]
    pub batch: Option<Batch>,
}

/// A batch endpoint: runs that reach this step together are sent as one call.
/// Each run's item is the step's `request.json`, rendered for that run.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// Most items in one call.
    pub max_items: NonZeroU32,
    /// HTTP method of the batch call (default POST).
    #[serde(default = "default_method")]
    pub method: Method,
    /// Path of the batch endpoint, appended to the connection's base URL (a template over `items`).
    pub path: String,
    /// The batch call's JSON body; templates see `items`, the list of item bodies (default `"{{ items }}"`).
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// Expression giving the per-item results in `response`, in item order
    /// (e.g. `response.body.results`); each becomes that run's response body.
    #[serde(default)]
    pub results: Option<String>,
    /// Expression giving an item's own status from its `result` (e.g. `result.status`);
    /// judged like an HTTP status, so failed items are retried (or fail) one by one.
    #[serde(default)]
    pub item_status: Option<String>,
    /// How long the first item waits for others to join it (default 50ms).
    #[serde(default)]
    pub wait: Option<Dur>,
    /// Expression giving an item's id from its body `item` (e.g. `item.email`)
    /// or its position `index` in the batch, from 0 (`index`, for answers
    /// keyed by position such as OpenAI's `data[].index`).
    /// With `result_id`, results are matched to items by id, in any order
    /// and number, instead of one per item in order.
    #[serde(default)]
    pub item_id: Option<String>,
    /// Expression giving the id a `result` is for (e.g. `result.properties.email`).
    #[serde(default)]
    pub result_id: Option<String>,
    /// Expression giving the 0-based position in the request of the item a
    /// `result` is for (e.g. `result.index`): results matched by index, in
    /// any order and number. Instead of `item_id` + `result_id`.
    #[serde(default)]
    pub result_index: Option<String>,
    /// Expression giving the list of per-item errors in `response`, apart from
    /// the results (e.g. HubSpot's `response.body.errors`); needs `error_ids`
    /// or `error_index`.
    #[serde(default)]
    pub errors: Option<String>,
    /// Expression giving the id (or list of ids) an `error` is about
    /// (e.g. `error.context.ids`).
    #[serde(default)]
    pub error_ids: Option<String>,
    /// Expression giving the 0-based position (or list of positions) in the
    /// request of the item(s) an `error` is about (e.g. `error.context.index`);
    /// numbers or strings holding them.
    #[serde(default)]
    pub error_index: Option<String>,
    /// Expression giving the status an `error` counts as (default 400: rejected),
    /// judged like an HTTP status under `classify`.
    #[serde(default)]
    pub error_status: Option<String>,
}

/// HTTP methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl Method {
    /// The method as an `http::Method`.
    pub fn as_http(self) -> http::Method {
        match self {
            Method::Get => http::Method::GET,
            Method::Post => http::Method::POST,
            Method::Put => http::Method::PUT,
            Method::Patch => http::Method::PATCH,
            Method::Delete => http::Method::DELETE,
        }
    }
}

/// A templated HTTP request. Every string inside is a minijinja template.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// HTTP method (default POST).
    #[serde(default = "default_method")]
    pub method: Method,
    /// Path appended to the connection's base URL.
    pub path: String,
    /// Query parameters.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body; every string value is rendered as a template.
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// A form-encoded body.
    #[serde(default)]
    pub form: Option<BTreeMap<String, String>>,
}

fn default_method() -> Method {
    Method::Post
}

/// When and how often a failed step is tried again.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (default 12, at most 100).
    #[serde(default)]
    pub max_attempts: Option<NonZeroU32>,
    /// First backoff (default 1s); doubles each attempt, with full jitter.
    #[serde(default)]
    pub initial_backoff: Option<Dur>,
    /// Largest backoff (default 1h).
    #[serde(default)]
    pub max_backoff: Option<Dur>,
    /// Give up once this long has passed since the step's first attempt (default 24h).
    #[serde(default)]
    pub max_age: Option<Dur>,
}
