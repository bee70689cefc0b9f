//! Webhook verification through the public API: every scheme, the published
//! vectors, config checking, and properties (no panics, sign→verify).

mod config;
mod docs;
mod particulars;
mod props;
mod schemes;
mod support;
mod vectors;
