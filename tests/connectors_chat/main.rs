//! Connector presets for chat, code and support tools — `slack`, `github`,
//! `zendesk` — each against a local fake that behaves like the vendor's
//! documented API (`ferry_testkit::vendors`), and the recipes built on them
//! (examples/recipes/), run end to end. In-process, on the embedded store and
//! a virtual clock.

mod github;
mod recipes;
mod slack;
mod support;
mod zendesk;
