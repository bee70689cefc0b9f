//! [`RunLog`] on DynamoDB: one item per run (`run#<id>`) holding the record as
//! JSON, indexed by two global secondary indexes so no listing scans:
//!
//! - `by_workflow` (`gsi1pk` = `wf#<workflow>`, `gsi1sk` = `<created_at>#<id>`):
//!   "recent runs of workflow X" is one Query, newest first; a status filter
//!   on top is a `FilterExpression` within that workflow's runs (paged until
//!   the limit is met).
//! - `by_status` (`gsi2pk` = `st#<status>`, same sort key): runs of one status;
//!   with no filter at all, one Query per status, merged newest first.
//!
//! `created_at` is zero-padded to 20 digits so the string sort key orders like
//! the number. Each item carries the table's TTL attribute (`expires_at`, from
//! [`RunRecord::expiry`]): DynamoDB deletes expired runs within days, so `get`
//! and `list` also hide a run past its expiry by the store's clock, and
//! `create` may replace one. Index reads are eventually consistent (as GSIs are): a run put a
//! moment ago may list with its previous status; `get` reads consistently.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;

use super::item::{EXPIRES_AT, Item, PK, get_s, key, n, s, ttl_seconds};
use super::{AwsStore, unavailable};
use crate::model::{RunQuery, RunRecord, RunStatus};
use crate::ports::{RunLog, StoreError, StoreResult};

const KIND: &str = "run";
/// The index for "runs of a workflow".
pub(super) const BY_WORKFLOW: &str = "by_workflow";
/// The index for "runs with a status".
pub(super) const BY_STATUS: &str = "by_status";
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

fn to_item(run: &RunRecord) -> StoreResult<Item> {
    let json = crate::runlog::encode(run)
        .map_err(|e| StoreError::Corrupt(format!("run {:?} cannot be encoded: {e}", run.id)))?;
    let mut item = key(KIND, &run.id);
    let sk = sort_key(run);
    item.extend([
        ("record".to_owned(), s(json)),
        ("workflow".to_owned(), s(&run.workflow)),
        ("status".to_owned(), s(run.status.as_str())),
        ("created_at".to_owned(), n(run.created_at)),
        ("gsi1pk".to_owned(), s(format!("wf#{}", run.workflow))),
        ("gsi1sk".to_owned(), s(sk.clone())),
        (
            "gsi2pk".to_owned(),
            s(format!("st#{}", run.status.as_str())),
        ),
        ("gsi2sk".to_owned(), s(sk)),
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
            .condition_expression("attribute_not_exists(#pk) OR #exp < :now")
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
        self.dynamo
            .put_item()
            .table_name(&self.names.table)
            .set_item(Some(to_item(run)?))
            .send()
            .await
            .map_err(|e| unavailable("run put", e))?;
        Ok(())
    }

    async fn get(&self, id: &str) -> StoreResult<Option<RunRecord>> {
        let got = self
            .dynamo
            .get_item()
            .table_name(&self.names.table)
            .set_key(Some(key(KIND, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("run get", e))?;
        let now = self.clock.now_ms();
        let run = got.item.as_ref().map(decode).transpose()?;
        Ok(run.filter(|r| r.expiry() > now))
    }

    async fn list(&self, query: &RunQuery) -> StoreResult<Vec<RunRecord>> {
        let limit = if query.limit == 0 {
            DEFAULT_LIST_LIMIT
        } else {
            query.limit
        };
        match (&query.workflow, query.status) {
            (Some(workflow), status) => {
                let pk = format!("wf#{workflow}");
                self.query_index(BY_WORKFLOW, "gsi1pk", &pk, status, limit)
                    .await
            }
            (None, Some(status)) => {
                let pk = format!("st#{}", status.as_str());
                self.query_index(BY_STATUS, "gsi2pk", &pk, None, limit)
                    .await
            }
            (None, None) => {
                let mut all = Vec::new();
                for status in ALL_STATUSES {
                    let pk = format!("st#{}", status.as_str());
                    all.extend(
                        self.query_index(BY_STATUS, "gsi2pk", &pk, None, limit)
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

impl AwsStore {
    /// Newest first from `index` where its partition key `pk_name` is `pk`,
    /// optionally only runs with `status`, up to `limit` (paging as needed).
    async fn query_index(
        &self,
        index: &str,
        pk_name: &str,
        pk: &str,
        status: Option<RunStatus>,
        limit: usize,
    ) -> StoreResult<Vec<RunRecord>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            // A filter applies after `Limit`: read pages of a useful size then.
            let mut want = limit - out.len();
            if status.is_some() {
                want = want.max(FILTERED_PAGE);
            }
            let want = i32::try_from(want).unwrap_or(i32::MAX);
            let mut q = self
                .dynamo
                .query()
                .table_name(&self.names.table)
                .index_name(index)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", pk_name)
                .expression_attribute_values(":pk", s(pk))
                .scan_index_forward(false)
                .limit(want)
                .set_exclusive_start_key(start.take());
            if let Some(status) = status {
                q = q
                    .filter_expression("#status = :status")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":status", s(status.as_str()));
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
