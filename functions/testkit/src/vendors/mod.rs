//! Local fakes of named vendors' APIs, each written from the vendor's public
//! docs (cited in each file) and served by [`crate::target::Target`], so every
//! request is recorded and any path can still be scripted to misbehave.

pub mod hubspot;
pub mod postmark;
pub mod salesforce;
