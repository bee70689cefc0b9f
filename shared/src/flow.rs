//! The name a run's `workflow` field carries, parsed and built in one place:
//! a workflow's name, or one of a sync's flows — `sync:<name>` (its steps
//! per new or changed record, and its own runs in the run log),
//! `sync:<name>:delete` (its `on_delete`), `sync:<name>:a` / `:b` (a two-way
//! side's `write`). A sync's record events come from source `sync:<name>`.

use std::fmt;

use crate::config::SideName as Side;

/// Which steps a run executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowName<'a> {
    /// A workflow.
    Workflow(&'a str),
    /// A sync's steps per new or changed record.
    SyncRecords(&'a str),
    /// A sync's `on_delete` steps.
    SyncDeletes(&'a str),
    /// A two-way sync's writes to one side.
    SyncWrite(&'a str, Side),
}

impl<'a> FlowName<'a> {
    /// Read a run's `workflow`; `None` for a `sync:` name of no known shape.
    pub fn parse(name: &'a str) -> Option<FlowName<'a>> {
        let Some(rest) = name.strip_prefix("sync:") else {
            return Some(FlowName::Workflow(name));
        };
        Some(match rest.split_once(':') {
            None => FlowName::SyncRecords(rest),
            Some((sync, "delete")) => FlowName::SyncDeletes(sync),
            Some((sync, "a")) => FlowName::SyncWrite(sync, Side::A),
            Some((sync, "b")) => FlowName::SyncWrite(sync, Side::B),
            Some(_) => return None,
        })
    }

    /// The workflow's name, for a workflow.
    pub fn workflow(&self) -> Option<&'a str> {
        match self {
            FlowName::Workflow(w) => Some(w),
            _ => None,
        }
    }
}

impl fmt::Display for FlowName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlowName::Workflow(w) => f.write_str(w),
            FlowName::SyncRecords(s) => write!(f, "sync:{s}"),
            FlowName::SyncDeletes(s) => write!(f, "sync:{s}:delete"),
            FlowName::SyncWrite(s, side) => write!(f, "sync:{s}:{side}"),
        }
    }
}

/// `a` or `b`, as in flow names and a two-way sync's event ids.
impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::A => "a",
            Side::B => "b",
        })
    }
}

/// The source a sync's record events come from.
pub fn sync_source(sync: &str) -> String {
    FlowName::SyncRecords(sync).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flow_name_reads_back_as_itself() {
        let all = [
            FlowName::Workflow("new-lead"),
            FlowName::SyncRecords("contacts"),
            FlowName::SyncDeletes("contacts"),
            FlowName::SyncWrite("contacts", Side::A),
            FlowName::SyncWrite("contacts", Side::B),
        ];
        for f in all {
            assert_eq!(FlowName::parse(&f.to_string()), Some(f));
        }
        assert_eq!(FlowName::parse("sync:contacts:c"), None);
        assert_eq!(FlowName::parse("sync:a:b:c"), None);
        assert_eq!(sync_source("contacts"), "sync:contacts");
    }
}
