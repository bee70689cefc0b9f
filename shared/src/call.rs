//! One outbound call of a step, with everything around it: the rate-limit
//! gate, the connection's credential (refreshed once after a `401`), the
//! `Idempotency-Key`, the verdict, and the connection-wide pause after a `429`
//! (or an answer a `classify` rule calls `rate_limited`).

use std::time::Duration;

use crate::auth::AuthError;
use crate::breaker::{self, Pass};
use crate::config::allow;
use crate::destination;
use crate::hub::Conn;
use crate::hub::Hub;
use crate::keys;
use crate::limits::Gate;
use crate::model::Attempt;
use crate::outbound::{self, CallError, Prepared, Response};
use crate::pause;
use crate::retry::{Rules, Verdict, judge_response};
use crate::runlog::{GotResponse, SentRequest};

/// How long a `429` (or a `rate_limited` answer) without a reset time pauses its connection.
pub const DEFAULT_429_PAUSE: Duration = Duration::from_secs(1);

/// What happened when a call was attempted.
#[derive(Debug, Clone)]
pub enum Called {
    /// The rate limit says not yet: give the message back for this long (not an attempt).
    Later(Duration),
    /// The store could not be asked: retry the message later (not an attempt).
    StoreDown(String),
    /// The credentials were refused before any call (the token endpoint said no).
    Refused(String),
    /// The connection's `allow` list does not cover the rendered request, or
    /// its token budget's `cost` cannot be computed for it: nothing was
    /// sent, and trying again cannot help (`rejected`).
    NotAllowed(String),
    /// One or two calls (two when a `401` led to a refreshed credential); the last decides.
    Done(Vec<Tried>),
}

/// One call and its verdict.
#[derive(Debug, Clone)]
pub struct Tried {
    /// For the run log (`n` is filled in by the caller).
    pub attempt: Attempt,
    /// What it means.
    pub verdict: Verdict,
    /// The answer, when one came.
    pub response: Option<Response>,
}

/// Call `req` on connection `name` once it may, as the step's judge says.
/// `limit_key` is the rendered `rate_limit.key`, when the connection has one.
///
/// A request outside the connection's `allow` list is refused first,
/// without sending (see [`allowed`]).
/// A paused connection holds the call next (see [`crate::pause`]).
/// The connection's circuit breaker is asked next (while it is open the call
/// waits, like for a rate limit), then the rate limit; what the call met is
/// told to the breaker afterwards.
pub async fn call(
    hub: &Hub,
    name: &str,
    conn: &Conn,
    req: &Prepared,
    idempotency_key: &str,
    rules: Rules<'_>,
    limit_key: Option<&str>,
) -> Called {
    if let Err(why) = allowed(conn, req) {
        return Called::NotAllowed(why);
    }
    let cost = match crate::limits::cost(&hub.templates, conn, req) {
        Ok(cost) => cost,
        Err(why) => {
            return Called::NotAllowed(format!("{why}; not sent ({} {})", req.method, req.url));
        }
    };
    let ports = &hub.ports;
    match pause::held(hub, pause::Kind::Connection, name).await {
        Ok(false) => {}
        Ok(true) => return Called::Later(pause::HOLD),
        Err(e) => return Called::StoreDown(e.to_string()),
    }
    let probe = match hub.circuits.pass(ports, name, conn).await {
        Pass::Go => false,
        Pass::Probe => true,
        Pass::Later(d) => return Called::Later(d),
        Pass::Unavailable(e) => return Called::StoreDown(e.to_string()),
    };
    let started_at = ports.clock.now_ms();
    let limit = Spend {
        key: limit_key,
        cost,
    };
    let (called, sent) = gated(hub, name, conn, req, idempotency_key, rules, limit).await;
    let last = match (&called, sent) {
        (Called::Done(tries), true) => tries.last(),
        _ => None,
    };
    let Some(last) = last else {
        if probe {
            hub.circuits.abandon(ports, name).await;
        }
        return called;
    };
    let outcome = breaker::outcome(last.attempt.status_code, &last.verdict);
    let why = || hub.redact(last.attempt.error.as_deref().unwrap_or("the call failed"));
    if probe {
        hub.circuits.probed(ports, name, conn, outcome, why).await;
    } else {
        let circuits = &hub.circuits;
        circuits
            .record(ports, name, conn, started_at, outcome, why)
            .await;
    }
    called
}

/// Whether the connection's `allow` list covers `req`: its method and its
/// rendered URL's path relative to the base URL, as the URL parser
/// normalised it (`..` and `.` segments resolved), so no rendering escapes.
pub fn allowed(conn: &Conn, req: &Prepared) -> Result<(), String> {
    let Some(rules) = &conn.allow_rules else {
        return Ok(());
    };
    let refuse = |why: String| Err(format!("{why}; not sent ({} {})", req.method, req.url));
    let (url, base) = match (&req.url, &conn.base) {
        (u, Ok(b)) if destination::same_origin(u, b) => (u, b),
        _ => return refuse("the request leaves the connection's base URL".into()),
    };
    let prefix = base.path().trim_end_matches('/');
    let path = match url.path().strip_prefix(prefix) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => return refuse("the request leaves the connection's base URL".into()),
    };
    match allow::refusal(rules, req.method.as_str(), path) {
        None => Ok(()),
        Some(why) => refuse(why),
    }
}

/// What a call spends of its connection's rate limit.
#[derive(Debug, Clone, Copy)]
struct Spend<'a> {
    /// The rendered `rate_limit.key`, when the connection has one.
    key: Option<&'a str>,
    /// Its cost in the `rate_limit.tokens` budget, when there is one.
    cost: Option<f64>,
}

/// The call behind the rate-limit gate; `true` when a request went out.
async fn gated(
    hub: &Hub,
    name: &str,
    conn: &Conn,
    req: &Prepared,
    idempotency_key: &str,
    rules: Rules<'_>,
    limit: Spend<'_>,
) -> (Called, bool) {
    let ports = &hub.ports;
    match spend(hub, name, conn, limit).await {
        Gate::Go => {}
        Gate::Later(d) => return (Called::Later(d), false),
        Gate::Unavailable(e) => return (Called::StoreDown(e.to_string()), false),
    }
    let http = hub.http.client();
    let mut cred = match hub.tokens.credential(ports, http, name, conn).await {
        Ok(c) => c,
        Err(AuthError::Refused(why)) => return (Called::Refused(why), false),
        Err(AuthError::Unavailable(why)) => {
            // The token endpoint, not the target: the breaker is not told.
            let now = ports.clock.now_ms();
            let unavailable = Called::Done(vec![Tried {
                attempt: Attempt {
                    n: 0,
                    started_at: now,
                    duration_ms: 0,
                    status_code: None,
                    error: Some(why),
                    ..Attempt::default()
                },
                verdict: Verdict::Retry { after: None },
                response: None,
            }]);
            return (unavailable, false);
        }
    };
    let mut tries: Vec<Tried> = Vec::new();
    loop {
        // The call after a refresh is a call like any other: it spends a
        // token and waits out a pause set meanwhile.
        if let Some(last) = tries.last_mut() {
            let held = match spend(hub, name, conn, limit).await {
                Gate::Go => None,
                Gate::Later(d) => Some((
                    format!(
                        "the rate limit holds the call for {}",
                        humantime::format_duration(d)
                    ),
                    Some(d),
                )),
                Gate::Unavailable(e) => {
                    Some((format!("the rate limit could not be asked: {e}"), None))
                }
            };
            if let Some((why, after)) = held {
                // The 401 stands as a retryable attempt; the token is fresh for the retry.
                last.verdict = Verdict::Retry { after };
                last.attempt.error = Some(format!(
                    "{}; token refreshed, {why}",
                    last.attempt.error.as_deref().unwrap_or("HTTP 401")
                ));
                return (Called::Done(tries), true);
            }
        }
        let started_at = ports.clock.now_ms();
        let result = hub
            .http
            .send_with(conn.call_timeout, req, idempotency_key, &cred)
            .await;
        let tried = judge_result(hub, req, result, started_at, rules);
        let (status, took) = tried.response.as_ref().map_or(
            (None, Duration::from_millis(tried.attempt.duration_ms)),
            |r| (Some(r.status), r.elapsed),
        );
        hub.metrics.call(name, status, took);
        if let (Some(learned), Some(resp)) = (&conn.learned, &tried.response) {
            crate::rate_headers::observe(hub, name, learned, &resp.headers).await;
        }
        let rate_limited = match &tried.verdict {
            Verdict::Retry { after } if tried.attempt.status_code == Some(429) => Some(after),
            Verdict::RateLimited { after } => Some(after),
            _ => None,
        };
        if let Some(after) = rate_limited {
            let until = ports.clock.now_ms()
                + after.unwrap_or(DEFAULT_429_PAUSE).as_millis() as crate::clock::Millis;
            hub.limiter.pause_here(name, until);
            if let Err(e) = ports.limits.pause(&keys::connection(name), until).await {
                tracing::warn!(connection = name, error = %e, "could not pause the rate-limited connection");
            }
        }
        let unauthorized = tried.verdict == Verdict::Unauthorized;
        tries.push(tried);
        if !unauthorized || tries.len() > 1 {
            return (Called::Done(tries), true);
        }
        match hub.tokens.invalidate(ports, http, name, conn, &cred).await {
            Ok(Some(fresh)) => cred = fresh,
            Ok(None) => return (Called::Done(tries), true),
            // The target answered (401): it is up.
            Err(AuthError::Refused(why)) => return (Called::Refused(why), false),
            Err(AuthError::Unavailable(why)) => {
                // The 401 stands; the step is retried once the endpoint answers.
                if let Some(last) = tries.last_mut() {
                    last.verdict = Verdict::Retry { after: None };
                    last.attempt.error = Some(format!(
                        "{}; refreshing the token failed: {why}",
                        last.attempt.error.as_deref().unwrap_or("HTTP 401")
                    ));
                }
                return (Called::Done(tries), true);
            }
        }
    }
}

/// A token from connection `name`'s rate limit (and the call's cost from its
/// token budget); a refusal is counted as a wait.
async fn spend(hub: &Hub, name: &str, conn: &Conn, limit: Spend<'_>) -> Gate {
    let gate = hub
        .limiter
        .pass(&hub.ports, name, &conn.limit, limit.key, limit.cost)
        .await;
    if matches!(gate, Gate::Later(_)) {
        hub.metrics.rate_limit_wait(name);
    }
    gate
}

fn judge_result(
    hub: &Hub,
    req: &Prepared,
    result: Result<Response, CallError>,
    started_at: crate::clock::Millis,
    rules: Rules<'_>,
) -> Tried {
    let now = hub.ports.clock.now_ms();
    match result {
        Ok(resp) => {
            let verdict = judge_response(&resp, now, rules, &hub.templates);
            let error = (verdict != Verdict::Success)
                .then(|| describe_status(hub, &req.method, req.url.as_str(), &resp));
            Tried {
                attempt: Attempt {
                    n: 0,
                    started_at,
                    duration_ms: resp.elapsed.as_millis() as u64,
                    status_code: Some(resp.status),
                    error,
                    request: Some(SentRequest::new(hub, req)),
                    response: Some(GotResponse::new(hub, &resp)),
                    decision: None,
                },
                verdict,
                response: Some(resp),
            }
        }
        Err(e) => Tried {
            attempt: Attempt {
                n: 0,
                started_at,
                duration_ms: (now - started_at).max(0) as u64,
                status_code: e.status(),
                error: Some(format!("{} {}: {e}", req.method, req.url)),
                request: Some(SentRequest::new(hub, req)),
                ..Attempt::default()
            },
            // A refused redirect or an unbuildable request fails at once
            // (`rejected`, or `mapping` without a status).
            verdict: if e.is_retryable() {
                Verdict::Retry { after: None }
            } else {
                Verdict::Fail
            },
            response: None,
        },
    }
}

/// `HTTP 403 Forbidden (permission denied) from POST https://…: <body excerpt>`, redacted.
pub fn describe_status(hub: &Hub, method: &http::Method, url: &str, resp: &Response) -> String {
    let reason = http::StatusCode::from_u16(resp.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let kind = match resp.status {
        401 => " (authentication failed)",
        403 => " (permission denied)",
        _ => "",
    };
    let body = hub.redact(&outbound::excerpt(&resp.body, 300));
    format!(
        "HTTP {} {reason}{kind} from {method} {url}: {body}",
        resp.status
    )
}
