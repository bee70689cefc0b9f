//! A connection as calls use it: the config with every default applied and
//! everything derived from it computed once, when the hub starts — the
//! timeout, the rate-limit bucket, the circuit breaker's settings and the
//! lease a step's claim needs.

use std::ops::Deref;
use std::time::Duration;

use crate::breaker::Settings;
use crate::config::Connection;
use crate::config::allow::{self, AllowRule};
use crate::destination::{self, UrlError};
use crate::limits::Limit;
use crate::outbound::DEFAULT_TIMEOUT;

/// A resolved connection. It reads as its config too (`conn.base_url`).
#[derive(Debug, Clone)]
pub struct Conn {
    /// Its name in the config.
    pub name: String,
    /// The validated config, secrets resolved.
    pub config: Connection,
    /// How long one call may take.
    pub call_timeout: Duration,
    /// Its `rate_limit`: the token bucket, per rendered key or not.
    pub limit: Limit,
    /// Its `rate_limit.from_headers`: the limit as answers report it.
    pub learned: Option<crate::rate_headers::Learned>,
    /// Its circuit breaker; `None` when turned off.
    pub breaker: Option<Settings>,
    /// How long a step's claim is leased: the call, a retry after a `401`,
    /// and the in-process rate-limit and batch waits.
    pub step_lease: Duration,
    /// Its parsed `allow` list; `None`: every request is allowed.
    pub allow_rules: Option<Vec<AllowRule>>,
    /// Its `base_url`, parsed ([`destination::join_parsed`]).
    pub base: Result<reqwest::Url, UrlError>,
}

impl Conn {
    /// Resolve connection `name`.
    pub fn new(name: &str, config: Connection) -> Conn {
        let call_timeout = config.timeout.map_or(DEFAULT_TIMEOUT, |d| d.get());
        Conn {
            name: name.to_owned(),
            limit: Limit::of(config.rate_limit.as_ref()),
            learned: crate::rate_headers::Learned::of(config.rate_limit.as_ref()),
            breaker: Settings::of(&config),
            call_timeout,
            step_lease: step_lease(call_timeout),
            allow_rules: config.allow.as_deref().map(allow::parse_all),
            base: destination::parse(&config.base_url),
            config,
        }
    }
}

/// The lease of a step's claim on a connection whose calls take `timeout` at most.
pub fn step_lease(timeout: Duration) -> Duration {
    timeout
        .saturating_mul(2)
        .saturating_add(Duration::from_secs(30))
}

impl Deref for Conn {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.config
    }
}
