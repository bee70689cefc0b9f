//! Local fakes of named vendors' APIs, one module per vendor, each written
//! from the vendor's public docs (cited in the module).

pub mod github;
pub mod hubspot;
pub mod openai;
pub mod postmark;
pub mod quickbooks;
pub mod salesforce;
pub mod shopify;
pub mod slack;
pub mod stripe;
pub mod zendesk;
