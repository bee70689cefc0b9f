//! ferry's shared crate: everything the Lambda functions and the `ferry` binary
//! have in common. Entry points stay thin; the logic lives here.
//!
//! - [`config`]: the YAML format, loading and validation.
//! - [`ports`]: the storage capabilities the domain needs; [`store`] has the adapters.
//! - [`model`]: queue payloads and run-log records.
//! - `contract` (tests, or the `contract` feature): the port contract suites
//!   every adapter must pass.

pub mod clock;
pub mod config;
#[cfg(any(test, feature = "contract"))]
pub mod contract;
pub mod model;
pub mod ports;
pub mod store;
