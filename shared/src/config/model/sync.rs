//! Scheduled syncs: polling, pagination and two-way field maps.

use super::*;

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
