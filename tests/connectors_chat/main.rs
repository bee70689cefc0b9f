//! Connector presets for chat, code and support tools, each against a local
//! fake that behaves like the vendor's documented API
//! (`ferry_testkit::vendors`). In-process, on the embedded store and a
//! virtual clock.

mod slack;
mod support;
