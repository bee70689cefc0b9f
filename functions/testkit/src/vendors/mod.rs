//! Local fakes of named vendors' APIs, written from their public docs (each
//! behaviour cites its page), built on [`crate::target::Target`] so every
//! request is recorded. One module per vendor.

pub mod quickbooks;
pub mod shopify;
pub mod stripe;
