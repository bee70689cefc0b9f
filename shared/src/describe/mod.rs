//! What flows where, read from the config alone: which source starts which
//! workflow, which steps call which connection with which payload fields,
//! and what each sync moves between its systems. `ferry graph` draws it.
//!
//! Everything here is deterministic (config maps are ordered, field sets are
//! sorted), so the output can be committed and checked in CI.

mod fields;
mod graph;

pub use fields::{fields_of_request, fields_of_template};
pub use graph::{Edge, Graph, Node, NodeKind};
