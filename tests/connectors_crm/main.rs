//! The CRM presets (`hubspot`, `salesforce`) against local fakes that
//! behave as the vendors document (`ferry_testkit::vendors`), and the two
//! recipes built on them: the lead chain (recipe 1) and the HubSpot ↔
//! Salesforce two-way contact sync (recipe 4). Every test is a real run
//! through ferry — ingest, the queue, the one call path — on a virtual clock.

mod contact_sync;
mod hubspot;
mod lead_chain;
mod salesforce;
mod support;
