//! Port contract suites: the behaviour every adapter must have, written once
//! against the traits in [`crate::ports`] and run against each backend, so the
//! embedded and AWS adapters cannot drift.
//!
//! An adapter implements [`Backend`] (fresh ports driven by a [`ManualClock`])
//! and runs the cases, e.g. one test per port:
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn queue_contract() {
//!     ferry::contract::run(Arc::new(MyBackend::new()), "queue").await;
//! }
//! ```
//!
//! Cases use unique (uuid) keys, workflows and cursor names, so every call of
//! [`Backend::ports`] may share the same tables. Each case asks for its own
//! ports and its own clock, so cases can run in parallel. The only thing that
//! must be fresh per call is the work queue (its port has no queue name).
//!
//! Time: idempotency, cursors, rate limits and breakers compare against the injected
//! clock (adapters compute `now` client-side, DynamoDB conditions included), so
//! those cases jump a `ManualClock`. The queue's delays and visibility follow
//! either that clock (embedded) or the server's real time (SQS): see
//! [`QueueTime`]. Queue cases therefore use whole seconds.

pub mod aws;
pub mod aws_batching;
mod breakers;
mod idempotency;
mod queue;
mod records;
mod run_lists;
mod run_merge;
mod run_search;
mod runs;
mod settle;
mod tallies;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::{ManualClock, Millis};
use crate::ports::Ports;

/// Where a [`ManualClock`] handed to [`Backend::ports`] starts (2023-11-14).
pub const T0: Millis = 1_700_000_000_000;

/// Whose time a backend's queue follows for delays and visibility timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueTime {
    /// The clock given to [`Backend::ports`] (embedded adapter): cases advance it.
    Clock,
    /// The server's real time (SQS): cases sleep, with a second of slack.
    Real,
}

/// A backend under test.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Ports whose clock is `clock`, with a new, empty work queue each call.
    /// Other tables may be shared between calls.
    async fn ports(&self, clock: Arc<ManualClock>) -> Ports;
    /// The `max_receives` its queues dead-letter after.
    fn max_receives(&self) -> u32;
    /// Whose time its queue follows.
    fn queue_time(&self) -> QueueTime {
        QueueTime::Clock
    }
    /// Whether its queue delivers strictly oldest-visible-first (SQS standard
    /// queues only try to).
    fn queue_is_ordered(&self) -> bool {
        true
    }
}

/// What a case works with: fresh ports and the clock that drives them.
pub struct Env {
    /// The ports under test.
    pub ports: Ports,
    /// Their clock, standing at [`T0`].
    pub clock: Arc<ManualClock>,
    /// See [`Backend::max_receives`].
    pub max_receives: u32,
    /// See [`Backend::queue_time`].
    pub queue_time: QueueTime,
    /// See [`Backend::queue_is_ordered`].
    pub queue_is_ordered: bool,
}

impl Env {
    /// Fresh ports from `backend` on a new clock at [`T0`].
    pub async fn new(backend: &dyn Backend) -> Self {
        let clock = ManualClock::at(T0);
        Self {
            ports: backend.ports(clock.clone()).await,
            clock,
            max_receives: backend.max_receives(),
            queue_time: backend.queue_time(),
            queue_is_ordered: backend.queue_is_ordered(),
        }
    }

    /// Let `d` pass for the clock-driven ports.
    pub fn advance(&self, d: Duration) {
        self.clock.advance(ms(d));
    }

    /// Let `d` pass for the queue (and the clock).
    pub async fn advance_queue(&self, d: Duration) {
        self.advance(d);
        if self.queue_time == QueueTime::Real {
            tokio::time::sleep(d + Duration::from_secs(1)).await;
        }
    }
}

/// Longest a case may take (real-time queues sleep through their timeouts).
const CASE_TIMEOUT: Duration = Duration::from_secs(300);

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// One contract case.
#[derive(Clone, Copy)]
pub struct Case {
    /// The port it checks: `idempotency`, `queue`, `runs`, `cursors`, `limits`, `breakers`.
    pub port: &'static str,
    /// What it checks.
    pub name: &'static str,
    /// The check; panics on failure.
    pub run: fn(Arc<dyn Backend>) -> BoxFuture<()>,
}

macro_rules! case_list {
    ($port:literal: $($name:ident),* $(,)?) => {
        vec![$($crate::contract::Case {
            port: $port,
            name: stringify!($name),
            run: |b| -> $crate::contract::BoxFuture<()> { Box::pin($name(b)) },
        }),*]
    };
}
pub(crate) use case_list;

/// Every case of every port.
pub fn cases() -> Vec<Case> {
    let mut all = idempotency::cases();
    all.extend(queue::cases());
    all.extend(records::cases());
    all.extend(settle::cases());
    all.extend(breakers::cases());
    all.extend(tallies::cases());
    all
}

/// Run every case of `port` (or of every port for `"all"`) against `backend`,
/// one after the other, each in its own task; panics at the end naming every
/// case that failed or hung (their panic messages are printed as they happen).
pub async fn run(backend: Arc<dyn Backend>, port: &str) {
    let mut failed = Vec::new();
    for case in selected(port) {
        failed.extend(run_case(backend.clone(), case).await);
    }
    report(failed);
}

/// Like [`run`], but every case at once. Cases never share state (each has
/// its own ports, queue and clock), so this only saves time: with a queue on
/// real time ([`QueueTime::Real`]) the suite takes as long as its slowest case
/// instead of the sum of its sleeps.
pub async fn run_concurrently(backend: Arc<dyn Backend>, port: &str) {
    let tasks: Vec<_> = selected(port)
        .into_iter()
        .map(|case| tokio::spawn(run_case(backend.clone(), case)))
        .collect();
    let mut failed = Vec::new();
    for task in tasks {
        match task.await {
            Ok(outcome) => failed.extend(outcome),
            Err(e) => failed.push(format!("(a case runner: {e})")),
        }
    }
    report(failed);
}

fn selected(port: &str) -> Vec<Case> {
    let cases: Vec<Case> = cases()
        .into_iter()
        .filter(|c| port == "all" || c.port == port)
        .collect();
    assert!(!cases.is_empty(), "no contract cases for port {port:?}");
    cases
}

/// Run one case in its own task; its name if it failed or hung.
async fn run_case(backend: Arc<dyn Backend>, case: Case) -> Option<String> {
    let name = format!("{}::{}", case.port, case.name);
    let task = tokio::spawn((case.run)(backend));
    let abort = task.abort_handle();
    match tokio::time::timeout(CASE_TIMEOUT, task).await {
        Ok(Ok(())) => None,
        Ok(Err(_panicked)) => Some(name),
        Err(_elapsed) => {
            abort.abort();
            eprintln!("contract case {name} timed out after {CASE_TIMEOUT:?}");
            Some(name)
        }
    }
}

fn report(failed: Vec<String>) {
    assert!(
        failed.is_empty(),
        "contract cases failed: {}",
        failed.join(", ")
    );
}

/// A name no other case (or run) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7())
}

fn ms(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}
