//! The connector bench ([`ferry_testkit::bench`]) at this suite's start time.

use ferry::clock::VirtualClock;
pub use ferry_testkit::bench::{Bench, last, recipe_text as recipe, request};

/// Where the manual clock starts (2027-01-15T08:00:00Z).
pub const T0: i64 = 1_800_000_000_000;

/// `yaml` loaded with `vars` as the environment, on a fresh store at [`T0`].
pub fn start(yaml: &str, vars: &[(&str, String)]) -> Bench {
    Bench::start(yaml, vars, VirtualClock::at(T0))
}
