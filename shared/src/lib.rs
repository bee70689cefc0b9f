//! ferry's shared crate: everything the Lambda functions and the `ferry` binary
//! have in common. Entry points stay thin; the logic lives here.
//!
//! - [`config`]: the YAML format, loading and validation.
//! - [`ports`]: the storage capabilities the domain needs; [`store`] has the adapters.
//! - [`model`]: queue payloads and run-log records.

pub mod clock;
pub mod config;
pub mod execute;
pub mod hub;
pub mod ingest;
pub mod model;
pub mod outbound;
pub mod ports;
pub mod retry;
pub mod schedule;
pub mod sync;
pub mod template;
pub mod verify;
pub mod worker;
