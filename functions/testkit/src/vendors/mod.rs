//! Local fakes of named vendors' APIs, written from their public docs: one module per vendor.

pub mod openai;
