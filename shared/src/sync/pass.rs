//! Driving one poll through a pass: page after page from the saved position,
//! each page's records handed on, the position saved after each page, until
//! the pass ends or the next page would not fit the deadline.

use serde_json::Value;

use super::state::Saved;
use super::{
    Counts, LOG_LIMIT, Pass, Progress, ProgressFn, SyncError, later, one_way, poll, rfc3339, scalar,
};
use crate::clock::Millis;
use crate::config::{Poll, SyncDef};
use crate::hub::Hub;
use crate::model::{Attempt, StepRecord, StepStatus};
use crate::template::context;

/// A run in progress.
pub(crate) struct Run<'a> {
    pub hub: &'a Hub,
    pub name: &'a str,
    pub def: &'a SyncDef,
    pub id: String,
    pub deadline: Millis,
    pub saved: Saved,
    pub counts: Counts,
    pub pages: u64,
    /// The longest page so far (ms): the next page is started only if it fits.
    pub longest_page: i64,
    pub log: Vec<StepRecord>,
    pub failures: Vec<String>,
    pub conflicts: Vec<String>,
    pub progress: Option<ProgressFn>,
}

/// How a pass (or its part in this run) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PassEnd {
    Finished,
    OutOfTime,
}

/// What to do with each page's records.
pub(crate) enum Handler {
    /// One-way: enqueue upserts (and deletes of `deleted` records).
    Records,
    /// One-way: enqueue deletes.
    Tombstones,
    /// Two-way: keep them for the merge (the caller saves the state).
    Collect(Vec<Value>),
}

impl Run<'_> {
    fn out_of_time(&self) -> bool {
        self.hub.ports.clock.now_ms() + self.longest_page >= self.deadline
    }

    /// Read `poll`'s pages from the saved position until the pass ends or time is up.
    pub(crate) async fn drive(
        &mut self,
        key: &str,
        poll: &Poll,
        handler: &mut Handler,
    ) -> Result<PassEnd, SyncError> {
        let hub = self.hub;
        let now = hub.ports.clock.now_ms();
        let ps = self.saved.state.polls.entry(key.to_owned()).or_default();
        if ps.pass.is_none() {
            if ps.watermark.is_none() && poll.start.as_deref() == Some("now") {
                ps.watermark = Some(rfc3339(now));
            }
            let since = ps
                .watermark
                .clone()
                .or_else(|| poll.start.clone())
                .unwrap_or_default();
            ps.pass = Some(Pass {
                since,
                next: poll::first_pos(poll),
                pages: 0,
                high: None,
            });
        }
        let step = format!("poll:{key}");
        loop {
            if self.out_of_time() {
                return Ok(PassEnd::OutOfTime);
            }
            let pass = self.pass(key).clone();
            let n = self.pages as u32 + 1;
            let before = hub.ports.clock.now_ms();
            let page = match poll::fetch(
                hub,
                self.name,
                poll,
                &pass.since,
                &pass.next,
                n,
                self.deadline,
            )
            .await
            {
                Ok(p) => p,
                Err(e) => {
                    self.log_attempt(
                        &step,
                        Attempt {
                            n,
                            started_at: before,
                            duration_ms: (hub.ports.clock.now_ms() - before).max(0) as u64,
                            status_code: None,
                            error: Some(e.to_string()),
                            ..Attempt::default()
                        },
                    );
                    return Err(e);
                }
            };
            self.longest_page = self.longest_page.max(hub.ports.clock.now_ms() - before);
            self.log_attempt(&step, page.attempt.clone());
            self.pages += 1;
            self.counts.seen += page.records.len() as u64;
            let high = highest(hub, poll, &page.records);
            match handler {
                Handler::Records => one_way::records(self, poll, &page.records, false).await?,
                Handler::Tombstones => one_way::records(self, poll, &page.records, true).await?,
                Handler::Collect(all) => all.extend(page.records),
            }
            let ps = self.saved.state.polls.get_mut(key).expect("created above");
            let p = ps.pass.as_mut().expect("created above");
            p.pages += 1;
            p.high = max_opt(p.high.take(), high);
            let finished = match page.next {
                Some(next) => {
                    p.next = next;
                    false
                }
                None => {
                    let high = p.high.take();
                    ps.watermark = max_opt(ps.watermark.take(), high);
                    ps.pass = None;
                    true
                }
            };
            if !matches!(handler, Handler::Collect(_)) {
                self.saved.save(hub, self.name).await?;
            }
            if let Some(f) = &self.progress {
                f(&Progress {
                    poll: key.to_owned(),
                    pages: self.pages,
                    counts: self.counts,
                    total: page.total,
                });
            }
            if finished {
                return Ok(PassEnd::Finished);
            }
        }
    }

    fn pass(&self, key: &str) -> &Pass {
        self.saved.state.polls[key]
            .pass
            .as_ref()
            .expect("a pass is open")
    }

    fn log_attempt(&mut self, step: &str, a: Attempt) {
        let rec = match self.log.iter_mut().find(|s| s.id == step) {
            Some(r) => r,
            None => {
                self.log.push(StepRecord {
                    id: step.to_owned(),
                    status: StepStatus::Succeeded,
                    attempts: Vec::new(),
                    budget_from: 0,
                    last_error: None,
                });
                self.log.last_mut().expect("just pushed")
            }
        };
        if a.error.is_some() {
            rec.status = StepStatus::Failed;
            rec.last_error.clone_from(&a.error);
        }
        if rec.attempts.len() < LOG_LIMIT {
            rec.attempts.push(a);
        }
    }

    pub(crate) fn fail_record(&mut self, why: String) {
        self.counts.failed += 1;
        if self.failures.len() < LOG_LIMIT {
            self.failures.push(self.hub.redact(&why));
        }
    }
}

/// The highest watermark among `records`.
fn highest(hub: &Hub, poll: &Poll, records: &[Value]) -> Option<String> {
    let expr = poll.watermark.as_ref()?;
    records
        .iter()
        .filter_map(|r| {
            let v = hub
                .templates
                .eval_json(expr, &context(&serde_json::json!({ "record": r })))
                .ok()?;
            (!v.is_null()).then(|| scalar(&v))
        })
        .fold(None, |acc, v| max_opt(acc, Some(v)))
}

pub(crate) fn max_opt(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if later(&b, &a) { b } else { a }),
        (a, b) => a.or(b),
    }
}
