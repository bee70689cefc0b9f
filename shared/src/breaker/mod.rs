//! Circuit breaking per connection.
//!
//! - Each process counts the outcomes of its own calls per connection in a
//!   sliding [`Window`]; when retryable failures reach `failure_ratio` of at
//!   least `min_calls` calls within `window`, it opens the breaker **in the
//!   store** ([`Breakers`](crate::ports::Breakers)), so every instance honours it.
//! - While open, [`Circuits::pass`] answers [`Pass::Later`]: the call's
//!   message goes back to the queue with the time left (not an attempt).
//! - Once `open_for` has passed, one caller across every instance wins the
//!   probe ([`Pass::Probe`]); the others keep waiting ([`PROBE_WAIT`]). The
//!   probe's answer closes the breaker, or re-opens it for another `open_for`.
//! - Each process keeps a copy of the store's state per connection and reads
//!   the store again at most every [`REFRESH`] (so another instance's opening
//!   is honoured here within a second); what this process decides itself
//!   (opening, probing, closing) takes effect here at once.

mod status;
mod window;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

pub use status::{ConnectionStatus, State, status};
pub use window::{
    DEFAULT_FAILURE_RATIO, DEFAULT_MIN_CALLS, DEFAULT_OPEN_FOR, DEFAULT_WINDOW, Outcome, Settings,
    Window, outcome,
};

use crate::clock::{Millis, after};
use crate::hub::Conn;
use crate::ports::{Breaker, Ports, StoreError};

/// Longest this process trusts its copy of a connection's breaker.
pub const REFRESH: Duration = Duration::from_secs(1);
/// How long a caller that lost the probe waits before looking again.
pub const PROBE_WAIT: Duration = Duration::from_secs(1);

/// What the breaker says about a call.
#[derive(Debug)]
pub enum Pass {
    /// Closed (or off): call.
    Go,
    /// This caller probes: call, then [`Circuits::probed`] decides.
    Probe,
    /// Open: put the message back for this long (not an attempt).
    Later(Duration),
    /// The store could not be asked.
    Unavailable(StoreError),
}

/// This process's windows and its copy of every connection's breaker.
#[derive(Debug, Default)]
pub struct Circuits {
    local: Mutex<HashMap<String, Local>>,
}

#[derive(Debug)]
struct Local {
    window: Window,
    /// The breaker as last read or set (`None`: closed), and when.
    seen: Option<(Option<Breaker>, Millis)>,
}

impl Circuits {
    /// May a call on connection `name` go out now?
    pub async fn pass(&self, ports: &Ports, name: &str, conn: &Conn) -> Pass {
        if conn.breaker.is_none() {
            return Pass::Go;
        }
        let now = ports.clock.now_ms();
        let state = match self.cached(name, now) {
            Some(state) => state,
            None => match ports.breakers.get(name).await {
                Ok(state) => {
                    self.remember(name, state.clone(), now);
                    state
                }
                Err(e) => return Pass::Unavailable(e),
            },
        };
        let Some(open) = state else {
            return Pass::Go;
        };
        if open.until > now {
            return Pass::Later(wait(open.until - now));
        }
        match ports.breakers.probe(name, probe_lease(conn)).await {
            Ok(true) => Pass::Probe,
            Ok(false) => {
                // Someone else probes: wait here without asking the store again.
                let mut held = open;
                held.until = after(now, PROBE_WAIT);
                self.set(name, Some(held), now, false);
                Pass::Later(PROBE_WAIT)
            }
            Err(e) => Pass::Unavailable(e),
        }
    }

    /// A call that passed as [`Pass::Go`] (started at `started_at`) ended with
    /// `outcome`; `why` describes a failure. Opens the breaker when the window says so.
    pub async fn record(
        &self,
        ports: &Ports,
        name: &str,
        conn: &Conn,
        started_at: Millis,
        outcome: Outcome,
        why: impl FnOnce() -> String,
    ) {
        let Some(s) = conn.breaker else { return };
        let failed = match outcome {
            Outcome::Up => false,
            Outcome::Down => true,
            Outcome::RateLimited | Outcome::NotSent => return,
        };
        let now = ports.clock.now_ms();
        let trips = {
            let mut local = self.lock();
            let entry = local.entry(name.to_owned()).or_insert_with(|| Local {
                window: Window::new(started_at),
                seen: None,
            });
            entry.window.record(&s, started_at, now, failed)
        };
        if trips {
            self.open(ports, name, &s, why()).await;
        }
    }

    /// The probe this caller won ended with `outcome`: close, re-open, or
    /// (nothing went out) let another caller probe.
    pub async fn probed(
        &self,
        ports: &Ports,
        name: &str,
        conn: &Conn,
        outcome: Outcome,
        why: impl FnOnce() -> String,
    ) {
        let Some(s) = conn.breaker else { return };
        match outcome {
            Outcome::Down => self.open(ports, name, &s, why()).await,
            Outcome::Up | Outcome::RateLimited => {
                // The store first: until it says closed, no other caller here goes.
                match ports.breakers.close(name).await {
                    Ok(()) => tracing::info!(
                        connection = name,
                        "circuit breaker closed: the probe succeeded"
                    ),
                    Err(e) => {
                        tracing::warn!(connection = name, error = %e, "could not close the circuit breaker")
                    }
                }
                self.set(name, None, ports.clock.now_ms(), true);
            }
            Outcome::NotSent => self.abandon(ports, name).await,
        }
    }

    /// The probe this caller won never called (a rate-limit wait, the store):
    /// let another caller probe at once.
    pub async fn abandon(&self, ports: &Ports, name: &str) {
        if let Err(e) = ports.breakers.release(name).await {
            tracing::warn!(connection = name, error = %e, "could not release the breaker's probe");
        }
    }

    async fn open(&self, ports: &Ports, name: &str, s: &Settings, why: String) {
        let now = ports.clock.now_ms();
        let until = after(now, s.open_for);
        let state = match ports.breakers.open(name, until, &why).await {
            Ok(b) => {
                tracing::warn!(connection = name, until = b.until, why = %b.why, "circuit breaker open");
                b
            }
            Err(e) => {
                // Honoured here all the same; other instances count for themselves.
                tracing::warn!(connection = name, error = %e, "could not record the open circuit breaker");
                Breaker {
                    name: name.to_owned(),
                    since: now,
                    until,
                    why,
                    probe_until: 0,
                }
            }
        };
        self.set(name, Some(state), now, true);
    }

    /// This process's copy of `name`'s breaker, if read within [`REFRESH`].
    fn cached(&self, name: &str, now: Millis) -> Option<Option<Breaker>> {
        let local = self.lock();
        let (state, at) = local.get(name)?.seen.as_ref()?;
        (now < after(*at, REFRESH) && now >= *at).then(|| state.clone())
    }

    /// Keep what the store said; a change between open and closed starts the window afresh.
    fn remember(&self, name: &str, state: Option<Breaker>, now: Millis) {
        self.set(name, state, now, false);
    }

    fn set(&self, name: &str, state: Option<Breaker>, now: Millis, reset: bool) {
        let mut local = self.lock();
        let entry = local.entry(name.to_owned()).or_insert_with(|| Local {
            window: Window::new(now),
            seen: None,
        });
        let was_open = entry.seen.as_ref().map(|(s, _)| s.is_some());
        if reset || was_open.is_some_and(|o| o != state.is_some()) {
            entry.window.reset(now);
        }
        entry.seen = Some((state, now));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Local>> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A probe's lease: long enough for the call (twice, after a `401`) and its
/// rate-limit wait; if its caller dies, another may probe once it ends.
fn probe_lease(conn: &Conn) -> Duration {
    conn.call_timeout * 2 + Duration::from_secs(10)
}

fn wait(ms: Millis) -> Duration {
    Duration::from_millis(u64::try_from(ms.max(1)).unwrap_or(u64::MAX))
}
