//! Configuration: the format ([`model`]), durations, loading and validation.

pub mod duration;
pub mod model;

pub use duration::Dur;
pub use model::*;
