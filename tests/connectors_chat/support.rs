//! The connector bench ([`ferry_testkit::bench`]) at this suite's start time,
//! and what the chat tests read from its answers.

use ferry::clock::VirtualClock;
use ferry::model::{RunRecord, StepRecord};
use ferry::respond::Wire;
pub use ferry_testkit::bench::Bench;

/// When the clock starts: 2026-11-30T12:00:00Z.
pub const T0: i64 = 1_796_040_000_000;

/// A hub for `yaml`, with `${env:…}` from `env`, at [`T0`], executing in
/// order: the vendors' rate-limit headers are read before the next call.
pub fn start(yaml: &str, env: &[(&str, String)]) -> Bench {
    in_order(Bench::start(yaml, env, VirtualClock::at(T0)))
}

/// A recipe with its `.env`, `overrides` winning (the fakes' URLs), at
/// [`T0`], executing in order.
pub fn recipe(slug: &str, overrides: &[(&str, String)]) -> Bench {
    in_order(Bench::recipe(slug, overrides, VirtualClock::at(T0)))
}

fn in_order(mut bench: Bench) -> Bench {
    bench.in_order = true;
    bench
}

/// The run id of an accepted event's first workflow.
pub fn run_id(wire: &Wire) -> String {
    ferry_testkit::bench::run_id(wire.body.as_ref().expect("ferry's own JSON answer"))
}

/// Step `id` of `run`.
pub fn step<'r>(run: &'r RunRecord, id: &str) -> &'r StepRecord {
    run.steps
        .iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no step {id} in {run:?}"))
}
