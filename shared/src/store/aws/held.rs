//! Writes held back for one Lambda invocation and sent together: the execute
//! Lambda runs a batch of SQS records inside [`hold_writes`], and the AWS
//! adapter, instead of writing at once,
//!
//! - keeps each run-log [`put`](crate::ports::RunLog::put) (a later put of
//!   the same run replaces the earlier one: "running", then "succeeded", is
//!   one write of the last);
//! - keeps each [`complete`](crate::ports::Idempotency::complete) of a key
//!   claimed in the same scope (the stored result of a step), as the whole
//!   completed item;
//!
//! and [`hold_writes`] sends them all at the end in `BatchWriteItem`
//! requests of 25 items (instead of two or three writes per record, one
//! request per ten records). Inside the scope, reads see what is held: a
//! run's `get` answers the held record, a claim of a held key answers
//! `Completed`. Conditional writes are never held (claims, creates, rate
//! limits, breakers): only unconditional puts, and completions of the
//! scope's own claims, whose condition ("the key is held") the scope's own
//! claim already met.
//!
//! What it changes: while the batch runs, a person reading the run log sees
//! its runs as they were before it (queued), not "running"; and a step's
//! result is durable when the batch ends rather than when the step ends, so
//! a crash of the invocation in between calls the step again on the retry
//! (with the same `Idempotency-Key`, after its lease) — as a crash between a
//! call and its result's write always did. If the final write fails,
//! [`hold_writes`] says so, and the caller must not acknowledge the batch.
//! Outside a scope (`ferry dev`, the CLI, the other Lambdas) nothing is held.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};

use super::gather::Gather;
use super::item::{Item, PK, SK};
use super::unavailable;
use crate::ports::{StoreError, StoreResult};

/// Items per `BatchWriteItem` request (DynamoDB's limit).
const MAX_ITEMS: usize = 25;
/// Rounds for items DynamoDB returned unprocessed (throttling).
const ROUNDS: u32 = 5;
/// Pause before the second round; doubles each round.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

tokio::task_local! {
    static HELD: Arc<Held>;
}

/// Run `fut` with the AWS adapter's run-log puts and step results held
/// back (see the module's docs), then write them in as few
/// `BatchWriteItem` requests as they fit. Returns `fut`'s output and
/// whether everything held was written; on an error nothing may be
/// acknowledged as done. On any other backend nothing is held and the
/// result is `Ok`.
pub async fn hold_writes<F: Future>(fut: F) -> (F::Output, StoreResult<()>) {
    let held = Arc::new(Held::default());
    let out = HELD.scope(held.clone(), fut).await;
    let written = held.flush().await;
    (out, written)
}

/// [`hold_writes`] over `tasks`, run together: their outputs in order, and
/// whether everything held was written. The idempotency claims the tasks
/// make at about the same time are also sent together, in one
/// `TransactWriteItems` (see `gather.rs`): a claim waits until every task
/// still running has made one, or [`IDLE_CLAIM_WAIT`] after the last one
/// arrived.
pub async fn hold_writes_each<F: Future>(tasks: Vec<F>) -> (Vec<F::Output>, StoreResult<()>) {
    let held = Arc::new(Held::default());
    held.gather.enter(tasks.len());
    let each = tasks.into_iter().map(|task| {
        let held = held.clone();
        async move {
            let out = task.await;
            held.gather.leave().await;
            out
        }
    });
    let out = HELD
        .scope(held.clone(), futures::future::join_all(each))
        .await;
    let written = held.flush().await;
    (out, written)
}

/// How long gathered claims wait for the other tasks' claims, after the
/// last one arrived, before they go without them.
pub const IDLE_CLAIM_WAIT: Duration = super::gather::IDLE;

/// What a scope holds.
#[derive(Default)]
pub(super) struct Held {
    inner: Mutex<Inner>,
    /// The claims of [`hold_writes_each`]'s tasks.
    pub(super) gather: Gather,
}

#[derive(Default)]
struct Inner {
    /// Where to write: the first adapter that held something.
    target: Option<(aws_sdk_dynamodb::Client, String)>,
    /// Items by `(pk, sk)`, in the order they were first held.
    order: Vec<(String, String)>,
    items: HashMap<(String, String), Item>,
    /// Keys claimed in this scope, with the claim's item (for completion).
    claims: HashMap<String, Item>,
}

impl Held {
    /// The scope of the current task, if any.
    pub(super) fn current() -> Option<Arc<Held>> {
        HELD.try_with(Arc::clone).ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hold `item` for the table `table` of `client`; it replaces a held
    /// item with the same key. `Err(item)`: not held (the scope holds
    /// another table's items), to be written at once.
    pub(super) fn put(
        &self,
        client: &aws_sdk_dynamodb::Client,
        table: &str,
        item: Item,
    ) -> Result<(), Item> {
        let k = item_key(&item);
        let mut inner = self.lock();
        let (_, held_table) = inner
            .target
            .get_or_insert_with(|| (client.clone(), table.to_owned()));
        if held_table != table {
            return Err(item);
        }
        if !inner.items.contains_key(&k) {
            inner.order.push(k.clone());
        }
        inner.items.insert(k, item);
        Ok(())
    }

    /// The held item with `key` (its `pk` and `sk`) for `table`, if any.
    pub(super) fn get(&self, table: &str, key: &Item) -> Option<Item> {
        let inner = self.lock();
        match &inner.target {
            Some((_, t)) if t == table => inner.items.get(&item_key(key)).cloned(),
            _ => None,
        }
    }

    /// Note that the current task of a scope reads the store until the
    /// guard drops (see `gather.rs`); `None` outside a scope.
    pub(super) fn reading() -> Option<Reading> {
        let held = Self::current()?;
        held.gather.reading();
        Some(Reading(held))
    }

    /// Note a claim made in this scope: the item it wrote.
    pub(super) fn claimed(&self, key_name: &str, item: Item) {
        self.lock().claims.insert(key_name.to_owned(), item);
    }

    /// The item a claim made in this scope wrote, if it was.
    pub(super) fn claim_of(&self, key_name: &str) -> Option<Item> {
        self.lock().claims.get(key_name).cloned()
    }

    /// Forget a claim and anything held for its item `key` (it was released).
    pub(super) fn forget(&self, key_name: &str, key: &Item) {
        let mut inner = self.lock();
        inner.claims.remove(key_name);
        let k = item_key(key);
        if inner.items.remove(&k).is_some() {
            inner.order.retain(|o| *o != k);
        }
    }

    /// Write everything held, in order, 25 items a request.
    async fn flush(&self) -> StoreResult<()> {
        let (target, items) = {
            let mut inner = self.lock();
            let order = std::mem::take(&mut inner.order);
            let mut items = std::mem::take(&mut inner.items);
            let list: Vec<Item> = order.iter().filter_map(|k| items.remove(k)).collect();
            (inner.target.clone(), list)
        };
        let Some((client, table)) = target else {
            return Ok(());
        };
        for chunk in items.chunks(MAX_ITEMS) {
            write_batch(&client, &table, chunk).await?;
        }
        Ok(())
    }
}

/// A read of the store by a task of a scope ([`Held::reading`]).
pub(super) struct Reading(Arc<Held>);

impl Drop for Reading {
    fn drop(&mut self) {
        self.0.gather.read_done();
    }
}

fn item_key(item: &Item) -> (String, String) {
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    (text(PK), text(SK))
}

/// One `BatchWriteItem` of `items`, with the unprocessed ones sent again.
async fn write_batch(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    items: &[Item],
) -> StoreResult<()> {
    let mut pending: Vec<WriteRequest> = items
        .iter()
        .map(|item| {
            let put = PutRequest::builder()
                .set_item(Some(item.clone()))
                .build()
                .expect("the item is set");
            WriteRequest::builder().put_request(put).build()
        })
        .collect();
    let mut backoff = FIRST_BACKOFF;
    for round in 0..ROUNDS {
        if round > 0 {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
        let out = client
            .batch_write_item()
            .request_items(table, pending)
            .send()
            .await
            .map_err(|e| unavailable("held writes", e))?;
        pending = out
            .unprocessed_items
            .and_then(|mut u| u.remove(table))
            .unwrap_or_default();
        if pending.is_empty() {
            return Ok(());
        }
    }
    Err(StoreError::Unavailable(format!(
        "held writes: {} of {} items still unprocessed after {ROUNDS} rounds",
        pending.len(),
        items.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::aws::item::{key, s};

    fn client() -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    fn item(kind: &str, name: &str, status: &str) -> Item {
        let mut item = key(kind, name);
        item.insert("status".into(), s(status));
        item
    }

    fn status(item: &Item) -> &str {
        item.get("status").and_then(|v| v.as_s().ok()).unwrap()
    }

    #[test]
    fn a_later_write_of_an_item_replaces_the_held_one_in_its_first_place() {
        let held = Held::default();
        let c = client();
        held.put(&c, "t", item("run", "a", "running")).unwrap();
        held.put(&c, "t", item("idem", "a", "COMPLETED")).unwrap();
        held.put(&c, "t", item("run", "a", "succeeded")).unwrap();
        assert_eq!(
            status(&held.get("t", &key("run", "a")).unwrap()),
            "succeeded"
        );
        assert!(
            held.get("other", &key("run", "a")).is_none(),
            "another table's read"
        );
        let inner = held.lock();
        let order: Vec<&str> = inner.order.iter().map(|(pk, _)| pk.as_str()).collect();
        assert_eq!(order, ["run#a", "idem#a"]);
        assert_eq!(inner.items.len(), 2);
    }

    #[test]
    fn another_tables_item_is_not_held_and_a_release_forgets_the_claim() {
        let held = Held::default();
        let c = client();
        held.put(&c, "t", item("run", "a", "running")).unwrap();
        let other = held.put(&c, "u", item("run", "b", "running"));
        assert!(other.is_err(), "a second table's write goes out at once");
        held.claimed("step:a", item("idem", "step:a", "IN_PROGRESS"));
        held.put(&c, "t", item("idem", "step:a", "COMPLETED"))
            .unwrap();
        assert!(held.claim_of("step:a").is_some());
        held.forget("step:a", &key("idem", "step:a"));
        assert!(held.claim_of("step:a").is_none());
        assert!(held.get("t", &key("idem", "step:a")).is_none());
        assert_eq!(held.lock().order.len(), 1);
    }

    #[tokio::test]
    async fn a_scope_that_held_nothing_writes_nothing() {
        let (out, written) = hold_writes(async { Held::current().is_some() }).await;
        assert!(out, "the scope is visible inside");
        assert!(written.is_ok());
        assert!(Held::current().is_none(), "and gone outside");
    }
}
