//! The values of the `outcome`, `class` and `failure` labels.

use crate::ingest::Reply;
use crate::model::Failure;

/// What ingest made of a webhook request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// New: its runs are enqueued (`202`).
    Accepted,
    /// Seen before within the dedupe window (`200`).
    Duplicate,
    /// Refused: signature, timestamp, size, content type, body, event id (`4xx`).
    Rejected,
}

impl Outcome {
    /// Every outcome, in the order of [`Outcome::index`].
    pub const ALL: [Outcome; 3] = [Outcome::Accepted, Outcome::Duplicate, Outcome::Rejected];

    /// The `outcome` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Duplicate => "duplicate",
            Outcome::Rejected => "rejected",
        }
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }

    /// The outcome of a request from ingest's answer: `None` for answers that
    /// are no event (a Slack URL challenge) or that ask the sender to retry
    /// (`5xx`: nothing was decided).
    pub fn of(reply: &Reply) -> Option<Outcome> {
        match reply.status {
            202 => Some(Outcome::Accepted),
            200 if reply.body["status"] == "duplicate" => Some(Outcome::Duplicate),
            400..=499 => Some(Outcome::Rejected),
            _ => None,
        }
    }
}

/// The status class of a call: `2xx` … `5xx`, or `error` when no answer came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 1xx/2xx.
    Success,
    /// 3xx.
    Redirect,
    /// 4xx.
    Client,
    /// 5xx.
    Server,
    /// No answer (timeout, connection error, refused redirect).
    Error,
}

impl Class {
    /// Every class, in the order of [`Class::index`].
    pub const ALL: [Class; 5] = [
        Class::Success,
        Class::Redirect,
        Class::Client,
        Class::Server,
        Class::Error,
    ];

    /// The class of a call that got `status` (`None`: no answer).
    pub fn of(status: Option<u16>) -> Class {
        match status {
            Some(0..=299) => Class::Success,
            Some(300..=399) => Class::Redirect,
            Some(400..=499) => Class::Client,
            Some(_) => Class::Server,
            None => Class::Error,
        }
    }

    /// The `class` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Success => "2xx",
            Class::Redirect => "3xx",
            Class::Client => "4xx",
            Class::Server => "5xx",
            Class::Error => "error",
        }
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }
}

/// The `failure` label: the failure kind, `none` for a run that did not fail.
pub fn failure_label(failure: Option<Failure>) -> &'static str {
    match failure {
        None => "none",
        Some(Failure::Mapping) => "mapping",
        Some(Failure::Rejected) => "rejected",
        Some(Failure::PermissionDenied) => "permission_denied",
        Some(Failure::AuthFailed) => "auth_failed",
        Some(Failure::Exhausted) => "exhausted",
        Some(Failure::Config) => "config",
    }
}
