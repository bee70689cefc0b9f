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

/// Connection authentication. Secret fields must be references such as `${env:NAME}`.
/// `Debug` shows secrets as `[redacted]`.
#[derive(Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token (a secret reference).
        token: String,
    },
    /// HTTP basic authentication.
    Basic {
        /// User name.
        username: String,
        /// Password (a secret reference).
        password: String,
    },
    /// An API key in a header or a query parameter.
    ApiKey {
        /// Header name (default `X-API-Key`) unless `query` is set.
        #[serde(default)]
        header: Option<String>,
        /// Query parameter name; when set the key goes in the query string.
        #[serde(default)]
        query: Option<String>,
        /// The key (a secret reference).
        key: String,
    },
    /// OAuth 2.0: an access token from `token_url`, cached in the store across
    /// invocations, refreshed before it expires and once after a `401`.
    #[serde(rename = "oauth2")]
    OAuth2 {
        /// The token endpoint, e.g. `https://auth.example.com/oauth/token`.
        token_url: String,
        /// `client_credentials` (default) or `refresh_token`.
        #[serde(default)]
        grant: Grant,
        /// The client id.
        client_id: String,
        /// The client secret (a secret reference).
        client_secret: String,
        /// The refresh token for the `refresh_token` grant (a secret reference).
        #[serde(default)]
        refresh_token: Option<String>,
        /// Space-separated scopes to ask for.
        #[serde(default)]
        scope: Option<String>,
        /// Extra form fields for the token request (e.g. `audience`).
        #[serde(default)]
        params: BTreeMap<String, String>,
        /// How the client authenticates at the token endpoint: `body`
        /// (default: `client_id` and `client_secret` as form fields) or
        /// `basic` (HTTP Basic, as QuickBooks requires).
        #[serde(default)]
        client_auth: ClientAuth,
        /// The provider's authorization endpoint, where a person approves
        /// ferry (`grant: authorization_code`, used by `ferry connections
        /// authorize`), e.g. `https://auth.example.com/oauth/authorize`.
        #[serde(default)]
        authorize_url: Option<String>,
        /// The loopback port `ferry connections authorize` listens on for the
        /// redirect (`http://127.0.0.1:<port>/callback`); `0` or absent: any
        /// free port (RFC 8252 §7.3). Use the port registered with the provider.
        #[serde(default)]
        redirect_port: Option<u16>,
        /// Whether the authorization request carries a PKCE S256 challenge
        /// (RFC 7636); default `true`. Turn off only for a provider that
        /// rejects it.
        #[serde(default = "pkce_default")]
        pkce: bool,
    },
}

fn pkce_default() -> bool {
    true
}

/// How an OAuth 2.0 client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body.
    #[default]
    Body,
    /// `Authorization: Basic base64(urlencode(client_id):urlencode(client_secret))`.
    Basic,
}

/// OAuth 2.0 grant types ferry can use on its own (no user in the loop).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    /// Client credentials: the client id and secret buy an access token.
    #[default]
    ClientCredentials,
    /// Refresh token: a long-lived refresh token buys access tokens.
    RefreshToken,
    /// Authorization code: a person approves ferry once (`ferry connections
    /// authorize NAME`); the refresh token it yields is kept in the store
    /// (sealed) and buys access tokens from then on.
    AuthorizationCode,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Bearer { .. } => f.debug_struct("Bearer").field("token", &REDACTED).finish(),
            Auth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &REDACTED)
                .finish(),
            Auth::ApiKey { header, query, .. } => f
                .debug_struct("ApiKey")
                .field("header", header)
                .field("query", query)
                .field("key", &REDACTED)
                .finish(),
            Auth::OAuth2 {
                token_url,
                grant,
                client_id,
                refresh_token,
                scope,
                params,
                client_auth,
                authorize_url,
                redirect_port,
                pkce,
                ..
            } => f
                .debug_struct("OAuth2")
                .field("token_url", token_url)
                .field("grant", grant)
                .field("client_id", client_id)
                .field("client_secret", &REDACTED)
                .field("refresh_token", &refresh_token.as_ref().map(|_| REDACTED))
                .field("scope", scope)
                .field("params", params)
                .field("client_auth", client_auth)
                .field("authorize_url", authorize_url)
                .field("redirect_port", redirect_port)
                .field("pkce", pkce)
                .finish(),
        }
    }
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

/// A webhook source.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// How requests are verified.
    pub verify: Verify,
    /// Template giving the event id used for dedupe (overrides the scheme's default).
    #[serde(default)]
    pub event_id: Option<String>,
    /// Dedupe window (default 7d, covering Stripe's 3-day retry horizon).
    #[serde(default)]
    pub dedupe_window: Option<Dur>,
    /// Largest accepted body in bytes (default 256 KiB).
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
    /// Alert (`silent`) when no event was accepted for this long.
    #[serde(default)]
    pub max_silence: Option<Dur>,
    /// What the sender is answered once an event is accepted (new or a
    /// duplicate), instead of ferry's `202`/`200` JSON: for providers that
    /// want a plain `200` or a body of their own (Slack).
    #[serde(default)]
    pub respond: Option<Respond>,
}

/// A source's answer to an accepted event (`sources.*.respond`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Respond {
    /// The status, a 2xx (default `200`).
    #[serde(default = "Respond::default_status")]
    pub status: u16,
    /// The JSON body; strings are templates over `body`, `headers`, `query`
    /// and `event` (`id`, `source`). None: an empty body.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
}

impl Respond {
    fn default_status() -> u16 {
        200
    }
}

/// Signature verification scheme names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// HMAC-SHA256 of the raw body in a named header (hex by default, optional `sha256=` prefix).
    HmacSha256,
    /// GitHub: `X-Hub-Signature-256: sha256=<hex>`.
    Github,
    /// Stripe: `Stripe-Signature: t=..,v1=..` over `<t>.<body>`.
    Stripe,
    /// Shopify: `X-Shopify-Hmac-Sha256: <base64>`.
    Shopify,
    /// Slack: `X-Slack-Signature: v0=<hex>` over `v0:<ts>:<body>`.
    Slack,
    /// Standard Webhooks (Svix and others).
    StandardWebhooks,
    /// A header must equal a secret.
    ApiKey,
    /// HTTP basic authentication.
    Basic,
    /// No verification; must be written explicitly and is reported as a warning.
    None,
}

impl Scheme {
    /// The scheme as written in config (`hmac-sha256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::HmacSha256 => "hmac-sha256",
            Scheme::Github => "github",
            Scheme::Stripe => "stripe",
            Scheme::Shopify => "shopify",
            Scheme::Slack => "slack",
            Scheme::StandardWebhooks => "standard-webhooks",
            Scheme::ApiKey => "api-key",
            Scheme::Basic => "basic",
            Scheme::None => "none",
        }
    }

    /// The settings of [`Verify`] besides `scheme` that this scheme reads;
    /// any other one set in config is an error. The config loader and the
    /// verifier both judge by this one table.
    pub fn settings(self) -> &'static [&'static str] {
        match self {
            Scheme::HmacSha256 => &[
                "header",
                "secret",
                "encoding",
                "prefix",
                "timestamp_header",
                "signed_content",
                "timestamp_unit",
                "tolerance",
            ],
            Scheme::Github | Scheme::Shopify | Scheme::ApiKey => &["header", "secret"],
            Scheme::Stripe | Scheme::Slack => &["header", "secret", "tolerance"],
            Scheme::StandardWebhooks => &["secret", "tolerance"],
            Scheme::Basic => &["secret", "username"],
            Scheme::None => &[],
        }
    }
}

/// How a signed timestamp header is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TimestampUnit {
    /// Unix seconds, or an ISO-8601 (RFC 3339) date-time.
    #[default]
    Seconds,
    /// Unix milliseconds (HubSpot's `X-HubSpot-Request-Timestamp`).
    Milliseconds,
}

/// Signature encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Lower- or upper-case hexadecimal.
    Hex,
    /// Standard base64.
    Base64,
}

/// One secret reference or a list of them (rotation: any one valid secret passes).
///
/// `Deserialize` is written by hand so a wrong value says what was expected,
/// instead of serde's "data did not match any variant of untagged enum".
/// `Debug` shows secrets as `[redacted]`.
#[derive(Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Secrets {
    /// A single secret reference.
    One(String),
    /// Several secret references.
    Many(Vec<String>),
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secrets::One(_) => f.debug_tuple("One").field(&REDACTED).finish(),
            Secrets::Many(v) => f
                .debug_tuple("Many")
                .field(&vec![REDACTED; v.len()])
                .finish(),
        }
    }
}

impl<'de> Deserialize<'de> for Secrets {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Secrets;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a secret reference such as \"${env:NAME}\", or a list of them")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Secrets, E> {
                Ok(Secrets::One(s.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Secrets, A::Error> {
                let mut all = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    all.push(s);
                }
                Ok(Secrets::Many(all))
            }
        }
        d.deserialize_any(V)
    }
}

impl Secrets {
    /// All secrets in order.
    pub fn all(&self) -> Vec<&str> {
        match self {
            Secrets::One(s) => vec![s.as_str()],
            Secrets::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// Verification settings of a source.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// The scheme.
    pub scheme: Scheme,
    /// Header carrying the signature or key (scheme default when omitted).
    #[serde(default)]
    pub header: Option<String>,
    /// Signing secret(s), as references.
    #[serde(default)]
    pub secret: Option<Secrets>,
    /// Signature encoding for `hmac-sha256` (default hex).
    #[serde(default)]
    pub encoding: Option<Encoding>,
    /// Signature prefix for `hmac-sha256`, e.g. `sha256=` (optional on input).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Timestamp header for `hmac-sha256` with replay protection.
    #[serde(default)]
    pub timestamp_header: Option<String>,
    /// Signed content template for `hmac-sha256` with a timestamp, e.g. `{timestamp}.{body}`.
    #[serde(default)]
    pub signed_content: Option<String>,
    /// How `timestamp_header` is written for `hmac-sha256` (default seconds).
    #[serde(default)]
    pub timestamp_unit: Option<TimestampUnit>,
    /// Replay window (scheme default, 5m).
    #[serde(default)]
    pub tolerance: Option<Dur>,
    /// User name for `basic`.
    #[serde(default)]
    pub username: Option<String>,
}

impl Verify {
    /// The settings written in config that `scheme` does not read.
    pub fn settings_not_read(&self) -> Vec<&'static str> {
        let given = [
            ("header", self.header.is_some()),
            ("secret", self.secret.is_some()),
            ("encoding", self.encoding.is_some()),
            ("prefix", self.prefix.is_some()),
            ("timestamp_header", self.timestamp_header.is_some()),
            ("signed_content", self.signed_content.is_some()),
            ("timestamp_unit", self.timestamp_unit.is_some()),
            ("tolerance", self.tolerance.is_some()),
            ("username", self.username.is_some()),
        ];
        let read = self.scheme.settings();
        given
            .into_iter()
            .filter(|(f, set)| *set && !read.contains(f))
            .map(|(f, _)| f)
            .collect()
    }
}

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

/// A scheduled sync: poll an API for what changed since the saved watermark,
/// page by page, and run steps once per new or changed record (one-way), or
/// keep two systems in step (`two_way`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncDef {
    /// EventBridge schedule: `rate(5 minutes)` or `cron(0 2 * * ? *)`.
    pub schedule: String,
    /// How long one run may take before it stops after the current page and
    /// leaves the rest to the next run (default 5m; in Lambda, the deadline decides).
    #[serde(default)]
    pub budget: Option<Dur>,
    /// One-way: where the records come from.
    #[serde(default)]
    pub source: Option<Poll>,
    /// One-way: a separate endpoint listing deleted records (their ids run `on_delete`).
    #[serde(default)]
    pub tombstones: Option<Poll>,
    /// One-way: the record as the steps see it (`body`): a JSON value whose
    /// strings are templates over `record`. A missing field fails that record only.
    #[serde(default)]
    pub map: Option<serde_json::Value>,
    /// One-way: steps run per new or changed record; templates see `body` and `steps`.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// One-way: steps run per deleted record (a `deleted` record, or a tombstone).
    #[serde(default)]
    pub on_delete: Vec<Step>,
    /// Retry policy for the steps.
    #[serde(default)]
    pub retry: Option<RetryPolicy>,
    /// Two-way: keep two systems in step, field by field.
    #[serde(default)]
    pub two_way: Option<TwoWay>,
    /// Alert (`silent`) when no pass succeeded for this long.
    #[serde(default)]
    pub max_silence: Option<Dur>,
}

/// How to read changed records from an API, page by page.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Poll {
    /// Connection polled.
    pub connection: String,
    /// The first page's request; templates see `watermark` (empty on a first run without `start`).
    /// A query parameter that renders empty is left out.
    pub request: RequestSpec,
    /// How to get the next page (default: one page only).
    #[serde(default)]
    pub pagination: Option<Pagination>,
    /// Expression giving the list of records in `response`, e.g. `response.body.results`.
    pub records: String,
    /// Expression giving a record's id, e.g. `record.id` (two-way: the key both systems share).
    pub id: String,
    /// Expression giving a record's version, e.g. `record.updated_at`; a record is sent again only when it changes.
    #[serde(default)]
    pub version: Option<String>,
    /// Expression giving the watermark a record advances the cursor to, e.g. `record.updated_at`.
    #[serde(default)]
    pub watermark: Option<String>,
    /// Watermark for the very first run: a value, or `now` (start with changes from now on).
    #[serde(default)]
    pub start: Option<String>,
    /// Expression true for a deleted record, e.g. `record.deleted`.
    #[serde(default)]
    pub deleted: Option<String>,
    /// Expression giving the number of matching records, when the API says (for progress bars).
    #[serde(default)]
    pub total: Option<String>,
}

/// Pagination styles.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "style", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// A token in the response body, sent back as a query parameter.
    Cursor {
        /// Expression giving the next token, e.g. `response.body.next_cursor`; none or empty ends the pass.
        token: String,
        /// Query parameter that carries the token.
        param: String,
    },
    /// The next page's full URL in the response body.
    NextUrl {
        /// Expression giving the URL, e.g. `response.body.next`; none or empty ends the pass.
        next: String,
    },
    /// RFC 8288 `Link: <url>; rel="next"` response header.
    LinkHeader,
    /// A page number in a query parameter.
    Page {
        /// Query parameter.
        param: String,
        /// First page number (default 1).
        #[serde(default)]
        first: Option<u64>,
        /// Records per page: a shorter page ends the pass (else an empty page does).
        #[serde(default)]
        size: Option<NonZeroU32>,
    },
    /// A record offset and a page size in query parameters.
    Offset {
        /// Query parameter for the offset.
        param: String,
        /// Query parameter for the page size.
        limit_param: String,
        /// Records per page; a shorter page ends the pass.
        limit: NonZeroU32,
    },
}

/// Two-way sync between systems `a` and `b`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TwoWay {
    /// Who wins when a field changed on both sides: `newest` (later `watermark`), `a` or `b`.
    #[serde(default)]
    pub conflict: Option<ConflictRule>,
    /// The synced fields: how each side spells it, and optionally its owner.
    pub fields: BTreeMap<String, FieldMap>,
    /// System A.
    pub a: Side,
    /// System B.
    pub b: Side,
}

/// Conflict rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConflictRule {
    /// The side whose record changed last (by its `watermark`) wins.
    Newest,
    /// A wins.
    A,
    /// B wins.
    B,
}

/// A side of a two-way sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SideName {
    /// System A.
    A,
    /// System B.
    B,
}

/// One synced field.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldMap {
    /// Expression reading the field from an A record, e.g. `record.email`.
    pub a: String,
    /// Expression reading the field from a B record.
    pub b: String,
    /// The side that is the source of truth for this field (the other side's edits are overwritten).
    #[serde(default)]
    pub owner: Option<SideName>,
}

/// One system of a two-way sync.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Side {
    /// How to read its changed records (`watermark` is the record's update time).
    pub source: Poll,
    /// Steps that write a record into this side; templates see `body.key`,
    /// `body.fields` (the merged values) and `body.record` (this side's record, or none).
    pub write: Vec<Step>,
}
