//! Metrics: what ingest, execute and the call path did, counted once each at
//! the one place it happens, under the same names for both outputs:
//!
//! - `ferry dev` serves them at `GET /metrics` in the Prometheus text format
//!   ([`Metrics::prometheus`]);
//! - on Lambda each invocation prints what it counted as CloudWatch Embedded
//!   Metric Format lines ([`emf`]), with no API call.
//!
//! | metric | labels | counted in |
//! |---|---|---|
//! | [`EVENTS`] | `source`, `outcome` | [`crate::ingest::ingest`] |
//! | [`RUNS`] | `workflow`, `status`, `failure` | [`crate::execute`], where a run's final status is written |
//! | [`DLQ_SENDS`] | `workflow` | [`crate::execute`], where a run's dead-letter disposition is saved |
//! | [`CALLS`], [`CALL_DURATION`] | `connection`, `class` / `connection` | [`crate::call`], per HTTP call |
//! | [`RATE_LIMIT_WAITS`] | `connection` | [`crate::call`], when the rate limit sends a call back |
//!
//! Recording is an atomic increment on a handle cached per source, connection
//! or workflow: after the first event of a source, counting one allocates
//! nothing and takes only a read lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::execute::Disposition;
use crate::ingest::Reply;
use crate::model::{Failure, RunRecord, RunStatus};

pub mod emf;
mod kinds;
pub use kinds::{Class, Outcome, failure_label};

/// Webhook events per source by outcome.
pub const EVENTS: &str = "ferry_events_total";
/// Runs that reached a final status, per workflow, status and failure kind.
pub const RUNS: &str = "ferry_runs_total";
/// Calls per connection by status class.
pub const CALLS: &str = "ferry_calls_total";
/// How long calls took, per connection (seconds).
pub const CALL_DURATION: &str = "ferry_call_duration_seconds";
/// Calls a connection's rate limit sent back to the queue, per connection.
pub const RATE_LIMIT_WAITS: &str = "ferry_rate_limit_waits_total";
/// Runs sent to the dead-letter queue, per workflow.
pub const DLQ_SENDS: &str = "ferry_dlq_sends_total";

/// Buckets of [`CALL_DURATION`], in seconds: 5 ms to 30 s.
pub const DURATION_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Most call durations kept per connection between two EMF lines (the
/// specification's limit for a metric's array of values); the counts are exact.
pub const EMF_MAX_VALUES: usize = 100;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    source: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    workflow: String,
    status: &'static str,
    failure: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    connection: String,
    class: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnLabels {
    connection: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlowLabels {
    workflow: String,
}

/// A counter of the registry, and how much of it EMF has already reported.
#[derive(Debug)]
struct Tally {
    counter: Counter,
    emitted: AtomicU64,
}

impl Tally {
    fn new(counter: Counter) -> Self {
        Tally {
            counter,
            emitted: AtomicU64::new(0),
        }
    }

    fn inc(&self) {
        self.counter.inc();
    }

    /// What was counted since the last take (concurrent takes never count twice).
    fn take(&self) -> u64 {
        let now = self.counter.get();
        now.saturating_sub(self.emitted.fetch_max(now, Ordering::Relaxed))
    }
}

#[derive(Debug)]
struct ConnTally {
    calls: [Tally; 5],
    seconds: Histogram,
    waits: Tally,
    /// Durations (seconds) since the last EMF line, at most [`EMF_MAX_VALUES`].
    recent: Mutex<Vec<f64>>,
}

#[derive(Debug)]
struct FlowTally {
    runs: Mutex<Vec<(RunStatus, Option<Failure>, Tally)>>,
    dlq: Tally,
}

/// Handles cached by name, created on first use.
#[derive(Debug)]
struct Index<T>(RwLock<HashMap<Box<str>, T>>);

impl<T> Default for Index<T> {
    fn default() -> Self {
        Index(RwLock::default())
    }
}

impl<T> Index<T> {
    fn with<R>(&self, key: &str, make: impl FnOnce() -> T, f: impl FnOnce(&T) -> R) -> R {
        if let Some(t) = self.0.read().unwrap_or_else(|p| p.into_inner()).get(key) {
            return f(t);
        }
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        f(map.entry(key.into()).or_insert_with(make))
    }

    fn each(&self, mut f: impl FnMut(&str, &T)) {
        let map = self.0.read().unwrap_or_else(|p| p.into_inner());
        let mut keys: Vec<&Box<str>> = map.keys().collect();
        keys.sort();
        for k in keys {
            f(k, &map[k]);
        }
    }
}

/// This process's metrics (one per [`crate::hub::Hub`]).
pub struct Metrics {
    registry: Registry,
    events: Family<EventLabels, Counter>,
    runs: Family<RunLabels, Counter>,
    calls: Family<CallLabels, Counter>,
    seconds: Family<ConnLabels, Histogram, fn() -> Histogram>,
    waits: Family<ConnLabels, Counter>,
    dlq: Family<FlowLabels, Counter>,
    sources: Index<[Tally; 3]>,
    connections: Index<ConnTally>,
    flows: Index<FlowTally>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// `name` without the `_total` the registry appends to counters.
fn base(name: &str) -> &str {
    name.strip_suffix("_total").unwrap_or(name)
}

impl Metrics {
    /// Empty metrics, every family registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let events = Family::<EventLabels, Counter>::default();
        let runs = Family::<RunLabels, Counter>::default();
        let calls = Family::<CallLabels, Counter>::default();
        let seconds: Family<ConnLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        let waits = Family::<ConnLabels, Counter>::default();
        let dlq = Family::<FlowLabels, Counter>::default();
        registry.register(
            base(EVENTS),
            "Webhook requests per source by outcome (accepted, duplicate, rejected)",
            events.clone(),
        );
        registry.register(
            base(RUNS),
            "Runs that reached a final status, per workflow, status and failure kind",
            runs.clone(),
        );
        registry.register(
            base(CALLS),
            "Calls per connection by status class (2xx, 3xx, 4xx, 5xx, error)",
            calls.clone(),
        );
        registry.register_with_unit(
            "ferry_call_duration",
            "How long calls took, per connection",
            Unit::Seconds,
            seconds.clone(),
        );
        registry.register(
            base(RATE_LIMIT_WAITS),
            "Calls a connection's rate limit sent back to the queue to wait, per connection",
            waits.clone(),
        );
        registry.register(
            base(DLQ_SENDS),
            "Runs sent to the dead-letter queue, per workflow",
            dlq.clone(),
        );
        Metrics {
            registry,
            events,
            runs,
            calls,
            seconds,
            waits,
            dlq,
            sources: Index::default(),
            connections: Index::default(),
            flows: Index::default(),
        }
    }

    /// Count a webhook request to configured `source` by ingest's answer
    /// (see [`Outcome::of`]); `None`: not a configured source, not counted
    /// (a label per made-up name would let anyone grow the metrics).
    pub fn event(&self, source: Option<&str>, reply: &Reply) {
        let (Some(source), Some(outcome)) = (source, Outcome::of(reply)) else {
            return;
        };
        let make = || {
            Outcome::ALL.map(|o| {
                Tally::new(self.events.get_or_create_owned(&EventLabels {
                    source: source.to_owned(),
                    outcome: o.as_str(),
                }))
            })
        };
        self.sources
            .with(source, make, |t| t[outcome.index()].inc());
    }

    /// Count `run` when it was just saved with a final status, and its
    /// dead-letter send when `then` is one. Called where execute writes the
    /// run record, after the write succeeded, so the counts follow the run log.
    pub fn run_saved(&self, run: &RunRecord, then: &Disposition) {
        if !run.status.is_final() {
            return;
        }
        let make = || FlowTally {
            runs: Mutex::default(),
            dlq: Tally::new(self.dlq.get_or_create_owned(&FlowLabels {
                workflow: run.workflow.clone(),
            })),
        };
        self.flows.with(&run.workflow, make, |t| {
            let mut runs = t.runs.lock().unwrap_or_else(|p| p.into_inner());
            match runs
                .iter()
                .find(|(s, f, _)| *s == run.status && *f == run.failure)
            {
                Some((_, _, tally)) => tally.inc(),
                None => {
                    let tally = Tally::new(self.runs.get_or_create_owned(&RunLabels {
                        workflow: run.workflow.clone(),
                        status: run.status.as_str(),
                        failure: failure_label(run.failure),
                    }));
                    tally.inc();
                    runs.push((run.status, run.failure, tally));
                }
            }
            if matches!(then, Disposition::DeadLetter(_)) {
                t.dlq.inc();
            }
        });
    }

    /// Count one call on `connection` that got `status` (`None`: no answer) after `took`.
    pub fn call(&self, connection: &str, status: Option<u16>, took: Duration) {
        self.with_conn(connection, |t| {
            t.calls[Class::of(status).index()].inc();
            let secs = took.as_secs_f64();
            t.seconds.observe(secs);
            let mut recent = t.recent.lock().unwrap_or_else(|p| p.into_inner());
            if recent.len() < EMF_MAX_VALUES {
                recent.push(secs);
            }
        });
    }

    /// Count a call on `connection` that its rate limit sent back to wait.
    pub fn rate_limit_wait(&self, connection: &str) {
        self.with_conn(connection, |t| t.waits.inc());
    }

    fn with_conn(&self, connection: &str, f: impl FnOnce(&ConnTally)) {
        let label = || ConnLabels {
            connection: connection.to_owned(),
        };
        let make = || ConnTally {
            calls: Class::ALL.map(|c| {
                Tally::new(self.calls.get_or_create_owned(&CallLabels {
                    connection: connection.to_owned(),
                    class: c.as_str(),
                }))
            }),
            seconds: self.seconds.get_or_create_owned(&label()),
            waits: Tally::new(self.waits.get_or_create_owned(&label())),
            recent: Mutex::default(),
        };
        self.connections.with(connection, make, f);
    }

    /// Everything counted since the start, in the Prometheus text format
    /// (version 0.0.4, [`PROMETHEUS_CONTENT_TYPE`]).
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The `Content-Type` of [`Metrics::prometheus`].
pub const PROMETHEUS_CONTENT_TYPE: &str =
    prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[cfg(test)]
mod tests;
