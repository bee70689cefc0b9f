//! Where an outbound request may go and what it carries (issue 9, items 2, 3,
//! 7 and 8): path values stay one segment under the base URL, redirects stay
//! on the connection's origin, bad header values are mapping errors, and the
//! store never keeps a credential a target echoed; a connection's `allow`
//! list refuses what it does not cover (issue 15).

mod allow;
mod headers;
mod paths;
mod props;
mod redirects;
mod secrets;
mod support;
