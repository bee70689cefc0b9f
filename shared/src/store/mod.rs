//! Storage adapters behind the [`crate::ports`] traits.
//!
//! - [`sqlite`]: the embedded adapter `ferry dev` runs on, one SQLite file for
//!   every port, with the same semantics as DynamoDB + SQS.

pub mod sqlite;

pub use sqlite::{SqliteOptions, SqliteStore};
