//! ferry's shared crate: everything the Lambda functions and the `ferry` binary
//! have in common. Entry points stay thin; the logic lives here.
//!
//! - [`config`]: the YAML format, loading and validation.
//! - [`ports`]: the storage capabilities the domain needs; [`store`] has the adapters.
//! - [`model`]: queue payloads and run-log records.
//! - [`verify`]: webhook signature verification and signing, per scheme.

pub mod clock;
pub mod config;
pub mod model;
pub mod ports;
pub mod verify;
