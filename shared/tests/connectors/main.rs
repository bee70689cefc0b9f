//! The generic capabilities real APIs need, through the one call path
//! ([`ferry::call::call`]): classification on the whole response, limits
//! learned from response headers. In-process, on the embedded store, with a
//! manual clock (no test waits for a pause to end: the clock is moved past it).

mod batch;
mod classify;
mod oauth;
mod rate_headers;
mod rotation;
mod support;
