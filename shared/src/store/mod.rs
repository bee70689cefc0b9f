//! Storage adapters behind the [`crate::ports`] traits.
//!
//! - [`sqlite`]: the embedded adapter `ferry dev` runs on, one SQLite file for
//!   every port, with the same semantics as DynamoDB + SQS.
//! - [`aws`]: the production adapter, DynamoDB + SQS.

pub mod aws;
mod bucket;
pub mod sqlite;

pub use aws::{AwsNames, AwsStore};
pub use sqlite::{SqliteOptions, SqliteStore, WriteStats};
