//! Alerts: nothing fails quietly. See `docs/alerts.md`.
//!
//! - [`notice`]: what a message says.
//! - [`channel`]: how a message reaches Slack, a signed webhook, or e-mail.

pub mod channel;
pub mod notice;

pub use notice::{Notice, State, SubjectKind};
