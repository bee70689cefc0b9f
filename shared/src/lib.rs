//! ferry's shared crate: everything the Lambda functions and the `ferry` binary
//! have in common. Entry points stay thin; the logic lives here.
//!
//! Where to look:
//! - a webhook is verified in [`verify`], and accepted (dedupe, enqueue) in [`ingest`];
//! - a run is executed step by step in [`execute`]; whether a failure is
//!   retried, and when, is decided in one place, [`retry::decide`] (steps,
//!   batched steps and sync polls alike); what its record shows (the
//!   event, each attempt's request, response and decision; caps, retention)
//!   in [`runlog`];
//! - where a request may go (path values, base URL, redirects) is decided
//!   in [`destination`];
//! - a call is made in [`call`]: the rate limit is spent in [`limits`] through
//!   the [`ports::RateLimits`] port (bucket shape from [`limits::bucket`]), the
//!   credential comes from [`auth`] (OAuth 2.0 tokens cached in the store);
//!   batched steps share calls in [`batch`]; a connection that keeps failing
//!   is held by its circuit breaker in [`breaker`] (shared through
//!   [`ports::Breakers`]);
//! - dead letters are listed and replayed in [`dlq`]; a finished run is
//!   started again from its event in [`rerun`];
//! - a workflow or a connection is paused (by hand or `enabled: false`) in
//!   [`pause`], stored through [`ports::Cursors`];
//! - a workflow's per-key `concurrency` holds its runs to slots in [`concurrency`];
//! - syncs poll in [`sync`], on schedules parsed in [`schedule`] and fired
//!   by [`scheduler`] (in `ferry dev`; EventBridge in AWS);
//! - storage is behind [`ports`]; [`store`] has the adapters; every key
//!   written to the store is built in [`keys`];
//! - the config format and its validation are in [`config`]; the hub
//!   ([`hub`]) resolves it once at start (connections: [`hub::Conn`]; a
//!   run's flow: [`flow::FlowName`]); what flows
//!   where (`ferry graph`) is read from it in [`describe`];
//! - what was counted (events, runs, calls, rate-limit waits, dead
//!   letters) is in [`metrics`]: Prometheus text for `ferry dev`, EMF lines
//!   on Lambda;
//! - the web console (`ferry dev` at `/`, the `console` Lambda under
//!   `/console`) is [`console`]: HTML over the same functions as the CLI
//!   ([`status`] for the overview, [`run_filter`] for the run list);
//! - a workflow is tested before it goes live (`ferry test`: test files,
//!   mocked APIs, a virtual clock, generated cases) in [`testing`];
//! - `contract` (tests, or the `contract` feature): the port contract suites
//!   every adapter must pass.

pub mod alerts;
pub mod auth;
pub mod authorize;
pub mod batch;
pub mod batch_results;
pub mod boot;
pub mod breaker;
pub mod call;
pub mod clock;
pub mod concurrency;
pub mod config;
pub mod console;
#[cfg(any(test, feature = "contract"))]
pub mod contract;
pub mod describe;
pub mod destination;
pub mod dlq;
pub mod execute;
pub mod flow;
pub mod hub;
pub mod ingest;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod outbound;
pub mod pause;
pub mod ports;
pub mod rate_headers;
pub mod rerun;
pub mod respond;
pub mod retry;
pub mod run_counts;
pub mod run_filter;
pub mod run_search;
pub mod runlog;
pub mod schedule;
pub mod scheduler;
pub mod status;
pub mod store;
pub mod sync;
pub mod template;
pub mod testing;
pub mod token_cache;
pub mod token_endpoint;
pub mod token_envelope;
pub mod token_state;
pub mod verify;
pub mod worker;
