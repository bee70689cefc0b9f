//! [`RunLog`] on DynamoDB: one item per run (`run#<id>`) holding the record as
//! JSON, indexed by four global secondary indexes so no listing scans. All
//! share the sort key `<created_at>#<id>`, so `since`/`until` are a key
//! condition on whichever index a query uses; the first filter in this order
//! picks the index, the others are a `FilterExpression` within it (paged until
//! the limit is met):
//!
//! - `by_event` (`gsi4pk` = `ev#<event_id>`): the runs of one event;
//! - `by_workflow` (`gsi1pk` = `wf#<workflow>`): "recent runs of workflow X";
//! - `by_source` (`gsi3pk` = `src#<source>`): runs of one source's events;
//! - `by_status` (`gsi2pk` = `st#<status>`): runs of one status; with no
//!   filter at all (time only, or nothing), one Query per status, merged
//!   newest first.
//!
//! `created_at` is zero-padded to 20 digits so the string sort key orders like
//! the number. Each item carries the table's TTL attribute (`expires_at`, from
//! [`RunRecord::expiry`]): DynamoDB deletes expired runs within days, so `get`
//! and `list` also hide a run past its expiry by the store's clock, and
//! `create` may replace one. Index reads are eventually consistent (as GSIs are): a run put a
//! moment ago may list with its previous status; `get` reads consistently.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;

use super::held::Held;
use super::item::{EXPIRES_AT, Item, PK, get_s, key, n, s, ttl_seconds};
use super::{AwsStore, unavailable};
use crate::model::{RunQuery, RunRecord, RunStatus};
use crate::ports::{RunLog, StoreError, StoreResult};

const KIND: &str = "run";
/// The index for "runs of a workflow".
pub(super) const BY_WORKFLOW: &str = "by_workflow";
/// The index for "runs with a status".
pub(super) const BY_STATUS: &str = "by_status";
/// The index for "runs of a source's events".
pub(super) const BY_SOURCE: &str = "by_source";
/// The index for "runs of an event".
pub(super) const BY_EVENT: &str = "by_event";
/// `create`'s condition: no run, or one past its expiry (`#exp < :now`, in
/// seconds) that DynamoDB has not deleted yet.
pub(super) const CREATE_CONDITION: &str = "attribute_not_exists(#pk) OR #exp < :now";
/// Runs listed when a query's `limit` is 0.
const DEFAULT_LIST_LIMIT: usize = 100;
/// Items read per page when a status filter drops some of them.
const FILTERED_PAGE: usize = 100;

/// Every status, for a listing without filters (one Query each).
const ALL_STATUSES: [RunStatus; 7] = [
    RunStatus::Queued,
    RunStatus::Running,
    RunStatus::Retrying,
    RunStatus::Succeeded,
    RunStatus::Skipped,
    RunStatus::DeadLettered,
    RunStatus::AuthFailed,
];

/// A new status must be added to [`ALL_STATUSES`]: this match stops compiling.
const fn _every_status_is_listed(s: RunStatus) {
    match s {
        RunStatus::Queued
        | RunStatus::Running
        | RunStatus::Retrying
        | RunStatus::Succeeded
        | RunStatus::Skipped
        | RunStatus::DeadLettered
        | RunStatus::AuthFailed => {}
    }
}

/// The sort key shared by both indexes: newest first when read backwards.
fn sort_key(run: &RunRecord) -> String {
    format!("{:020}#{}", run.created_at.max(0), run.id)
}

/// The item of `run`, with its index keys and TTL.
pub(super) fn to_item(run: &RunRecord) -> StoreResult<Item> {
    let json = crate::runlog::encode(run)
        .map_err(|e| StoreError::Corrupt(format!("run {:?} cannot be encoded: {e}", run.id)))?;
    let mut item = key(KIND, &run.id);
    let sk = sort_key(run);
    item.extend([
        ("record".to_owned(), s(json)),
        ("workflow".to_owned(), s(&run.workflow)),
        ("status".to_owned(), s(run.status.as_str())),
        ("source".to_owned(), s(&run.source)),
        ("event_id".to_owned(), s(&run.event_id)),
        ("created_at".to_owned(), n(run.created_at)),
        ("gsi1pk".to_owned(), s(format!("wf#{}", run.workflow))),
        ("gsi1sk".to_owned(), s(sk.clone())),
        (
            "gsi2pk".to_owned(),
            s(format!("st#{}", run.status.as_str())),
        ),
        ("gsi2sk".to_owned(), s(sk.clone())),
        ("gsi3pk".to_owned(), s(format!("src#{}", run.source))),
        ("gsi3sk".to_owned(), s(sk.clone())),
        ("gsi4pk".to_owned(), s(format!("ev#{}", run.event_id))),
        ("gsi4sk".to_owned(), s(sk)),
        (EXPIRES_AT.to_owned(), ttl_seconds(run.expiry())),
    ]);
    Ok(item)
}

fn decode(item: &Item) -> StoreResult<RunRecord> {
    serde_json::from_str(get_s(item, "record")?)
        .map_err(|e| StoreError::Corrupt(format!("run record: {e}")))
}

#[async_trait]
impl RunLog for AwsStore {
    async fn create(&self, run: &RunRecord) -> StoreResult<bool> {
        let put = self
            .dynamo
            .put_item()
            .table_name(&self.names.table)
            .set_item(Some(to_item(run)?))
            // An expired run DynamoDB has not deleted yet is gone already.
            .condition_expression(CREATE_CONDITION)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#exp", EXPIRES_AT)
            .expression_attribute_values(":now", n(self.clock.now_ms().max(0) / 1000))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(unavailable("run create", e)),
            },
        }
    }

    async fn put(&self, run: &RunRecord) -> StoreResult<()> {
        let mut item = to_item(run)?;
        if let Some(held) = Held::current() {
            match held.put(&self.dynamo, &self.names.table, item) {
                Ok(()) => return Ok(()),
                Err(not_held) => item = not_held,
            }
        }
        self.dynamo
            .put_item()
            .table_name(&self.names.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| unavailable("run put", e))?;
        Ok(())
    }

    async fn get(&self, id: &str) -> StoreResult<Option<RunRecord>> {
        let now = self.clock.now_ms();
        if let Some(item) = Held::current().and_then(|h| h.get(&self.names.table, &key(KIND, id))) {
            return Ok(Some(decode(&item)?).filter(|r| r.expiry() > now));
        }
        let _reading = Held::reading();
        let got = self
            .dynamo
            .get_item()
            .table_name(&self.names.table)
            .set_key(Some(key(KIND, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("run get", e))?;
        let run = got.item.as_ref().map(decode).transpose()?;
        Ok(run.filter(|r| r.expiry() > now))
    }

    async fn list(&self, query: &RunQuery) -> StoreResult<Vec<RunRecord>> {
        let limit = if query.limit == 0 {
            DEFAULT_LIST_LIMIT
        } else {
            query.limit
        };
        let range = SortRange {
            since: query.since,
            until: query.until,
        };
        // The most selective filter picks the index; the rest filter within it.
        let mut filters: Vec<(&str, String)> = Vec::new();
        let mut index = None;
        let mut pick = |attr: &'static str, value: Option<String>, ix: Index| {
            if let Some(value) = value {
                if index.is_none() {
                    index = Some((ix, value));
                } else {
                    filters.push((attr, value));
                }
            }
        };
        pick("event_id", query.event_id.clone(), Index::Event);
        pick("workflow", query.workflow.clone(), Index::Workflow);
        pick("source", query.source.clone(), Index::Source);
        pick(
            "status",
            query.status.map(|s| s.as_str().to_owned()),
            Index::Status,
        );
        match index {
            Some((ix, value)) => self.query_index(ix, &value, range, &filters, limit).await,
            None => {
                let mut all = Vec::new();
                for status in ALL_STATUSES {
                    all.extend(
                        self.query_index(Index::Status, status.as_str(), range, &[], limit)
                            .await?,
                    );
                }
                all.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
                all.truncate(limit);
                Ok(all)
            }
        }
    }
}

/// The run indexes: name, key attributes, partition key prefix.
#[derive(Debug, Clone, Copy)]
enum Index {
    Workflow,
    Status,
    Source,
    Event,
}

impl Index {
    /// (index name, partition key attribute, sort key attribute, partition key prefix).
    fn keys(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Index::Workflow => (BY_WORKFLOW, "gsi1pk", "gsi1sk", "wf#"),
            Index::Status => (BY_STATUS, "gsi2pk", "gsi2sk", "st#"),
            Index::Source => (BY_SOURCE, "gsi3pk", "gsi3sk", "src#"),
            Index::Event => (BY_EVENT, "gsi4pk", "gsi4sk", "ev#"),
        }
    }
}

/// `since` (inclusive) and `until` (exclusive) on the shared sort key.
#[derive(Debug, Clone, Copy)]
struct SortRange {
    since: Option<i64>,
    until: Option<i64>,
}

impl SortRange {
    /// The key condition on sort key `sk` (`#sk`), with its values.
    fn condition(self) -> (Option<&'static str>, Vec<(&'static str, String)>) {
        // `<ms>#` sorts before every `<ms>#<id>`: since is inclusive, until exclusive.
        let at = |ms: i64| format!("{:020}#", ms.max(0));
        match (self.since, self.until) {
            (None, None) => (None, vec![]),
            (Some(a), None) => (Some("#sk >= :since"), vec![(":since", at(a))]),
            (None, Some(b)) => (Some("#sk < :until"), vec![(":until", at(b))]),
            (Some(a), Some(b)) => (
                Some("#sk BETWEEN :since AND :until"),
                vec![(":since", at(a)), (":until", at(b))],
            ),
        }
    }
}

impl AwsStore {
    /// Newest first from `index` where its partition key is `value`, within
    /// `range`, keeping only items whose attributes equal `filters`, up to
    /// `limit` (paging as needed).
    async fn query_index(
        &self,
        index: Index,
        value: &str,
        range: SortRange,
        filters: &[(&str, String)],
        limit: usize,
    ) -> StoreResult<Vec<RunRecord>> {
        let (name, pk_name, sk_name, prefix) = index.keys();
        let (sk_cond, sk_values) = range.condition();
        let mut key_cond = "#pk = :pk".to_owned();
        if let Some(c) = sk_cond {
            key_cond = format!("{key_cond} AND {c}");
        }
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            // A filter applies after `Limit`: read pages of a useful size then.
            let mut want = limit - out.len();
            if !filters.is_empty() {
                want = want.max(FILTERED_PAGE);
            }
            let want = i32::try_from(want).unwrap_or(i32::MAX);
            let mut q = self
                .dynamo
                .query()
                .table_name(&self.names.table)
                .index_name(name)
                .key_condition_expression(&key_cond)
                .expression_attribute_names("#pk", pk_name)
                .expression_attribute_values(":pk", s(format!("{prefix}{value}")))
                .scan_index_forward(false)
                .limit(want)
                .set_exclusive_start_key(start.take());
            if sk_cond.is_some() {
                q = q.expression_attribute_names("#sk", sk_name);
            }
            for (k, v) in &sk_values {
                q = q.expression_attribute_values(*k, s(v));
            }
            if !filters.is_empty() {
                let mut terms = Vec::new();
                for (i, (attr, v)) in filters.iter().enumerate() {
                    terms.push(format!("#f{i} = :f{i}"));
                    q = q
                        .expression_attribute_names(format!("#f{i}"), *attr)
                        .expression_attribute_values(format!(":f{i}"), s(v));
                }
                q = q.filter_expression(terms.join(" AND "));
            }
            let page = q.send().await.map_err(|e| unavailable("run list", e))?;
            let now = self.clock.now_ms();
            for item in page.items() {
                let run = decode(item)?;
                if run.expiry() <= now {
                    continue;
                }
                out.push(run);
                if out.len() >= limit {
                    return Ok(out);
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }
}
