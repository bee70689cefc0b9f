//! What flows where, read from the config alone: which source starts which
//! workflow, which steps call which connection with which payload fields,
//! and what each sync moves between its systems. `ferry graph` draws it;
//! `ferry describe` tells it in words ([`Description`]): the trigger and its
//! verification, the fields and where each goes, the source of truth per
//! synced field, each connection's permissions, limits and failure handling,
//! and who is alerted for what.
//!
//! Everything here is deterministic (config maps are ordered, field sets are
//! sorted), so the output can be committed and checked in CI.

mod about;
mod alerting;
mod build;
mod fields;
mod flows;
mod graph;
mod markdown;
mod sync;

pub use about::{
    AlertInfo, AlertingInfo, ConnectionInfo, Description, FieldFlow, PollInfo, RequestInfo,
    SourceInfo, StepInfo, SyncField, SyncInfo, WorkflowInfo,
};
pub use build::requests_of;
pub use fields::{fields_of_request, fields_of_template};
pub use flows::filters_of;
pub use graph::{Edge, Graph, Node, NodeKind};
