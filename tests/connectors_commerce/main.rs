//! The Stripe, Shopify and QuickBooks presets and recipes 2 and 3, each a
//! real run through ferry (the one call path, ingest, the queue, syncs) on
//! the embedded store and a virtual clock, against the testkit's local fakes
//! of those APIs (`ferry_testkit::vendors`). No test waits for a pause to
//! end: the clock is moved past it.

mod quickbooks;
mod recipes;
mod shopify;
mod stripe;
mod support;
