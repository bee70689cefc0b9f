//! AI connectors: the `openai` preset against a local fake that behaves as
//! OpenAI's docs describe (`ferry_testkit::vendors::openai`), and recipe 7
//! (records from a sync → embeddings within the requests- and
//! tokens-per-minute limits). In-process, on the embedded store, with a
//! virtual clock: every wait moves the clock (the fake counts its minutes
//! on the same clock), so no test sleeps or depends on timing.

mod openai;
mod recipe;
mod support;
mod tokens;
