//! Building a [`Description`] from a config: sources, workflows and
//! connections here; syncs in `sync`; alert routes in `alerting`.

use std::collections::BTreeSet;

use super::about::{ConnectionInfo, Description, RequestInfo, SourceInfo, WorkflowInfo};
use super::alerting::{alerting, alerts_for};
use super::fields::fields_of_template;
use super::flows::{human, step_info};
use super::sync::{requests_of_syncs, sync_info};
use crate::alerts::SubjectKind;
use crate::config::{Auth, Condition, Config, Connection, Scheme, Source, Workflow};

impl Description {
    /// Everything `ferry describe` says about `config`, from the config alone.
    pub fn of(config: &Config) -> Description {
        Description {
            sources: config
                .sources
                .iter()
                .map(|(n, s)| source(config, n, s))
                .collect(),
            workflows: config
                .workflows
                .iter()
                .map(|(n, w)| workflow(config, n, w))
                .collect(),
            syncs: config
                .syncs
                .iter()
                .map(|(n, s)| sync_info(config, n, s))
                .collect(),
            connections: config
                .connections
                .iter()
                .map(|(n, c)| connection(config, n, c))
                .collect(),
            alerting: alerting(config),
        }
    }
}

fn source(config: &Config, name: &str, s: &Source) -> SourceInfo {
    let v = &s.verify;
    let header = |default: &str| v.header.clone().unwrap_or_else(|| default.to_owned());
    let verification = match v.scheme {
        Scheme::HmacSha256 => format!(
            "an HMAC-SHA256 signature of the body in header {}",
            header("X-Signature")
        ),
        Scheme::Github => "GitHub's signature (X-Hub-Signature-256)".to_owned(),
        Scheme::Stripe => "Stripe's signature (Stripe-Signature, timestamped)".to_owned(),
        Scheme::Shopify => "Shopify's signature (X-Shopify-Hmac-Sha256)".to_owned(),
        Scheme::Slack => "Slack's signature (X-Slack-Signature, timestamped)".to_owned(),
        Scheme::StandardWebhooks => "a Standard Webhooks signature (webhook-signature)".to_owned(),
        Scheme::ApiKey => format!("a shared key in header {}", header("X-API-Key")),
        Scheme::Basic => "HTTP basic authentication".to_owned(),
        Scheme::None => "nothing: anyone who knows the URL can post events".to_owned(),
    };
    let stamped = matches!(
        v.scheme,
        Scheme::Stripe | Scheme::Slack | Scheme::StandardWebhooks
    ) || (v.scheme == Scheme::HmacSha256 && v.timestamp_header.is_some());
    let default_id = match v.scheme {
        Scheme::Github => "the X-GitHub-Delivery header",
        Scheme::Shopify => "the X-Shopify-Webhook-Id header",
        Scheme::Stripe => "the body's `id`",
        Scheme::StandardWebhooks => "the webhook-id header",
        Scheme::Slack => "Slack's event id",
        _ => "a hash of the body (identical bodies count as one event)",
    };
    SourceInfo {
        name: name.to_owned(),
        endpoint: format!("POST /hooks/{name}"),
        scheme: v.scheme.as_str().to_owned(),
        verification,
        replay_window: stamped.then(|| {
            human(
                v.tolerance
                    .map_or(std::time::Duration::from_secs(300), |d| d.get()),
            )
        }),
        event_id: s
            .event_id
            .as_ref()
            .map_or_else(|| default_id.to_owned(), |t| format!("`{t}`")),
        event_id_template: s.event_id.clone(),
        dedupe_window: human(
            s.dedupe_window
                .map_or(crate::ingest::DEFAULT_DEDUPE_WINDOW, |d| d.get()),
        ),
        max_silence: s.max_silence.map(|d| human(d.get())),
        starts: config
            .workflows
            .iter()
            .filter(|(_, w)| w.trigger.source == name)
            .map(|(n, _)| n.clone())
            .collect(),
        alerts: match s.max_silence {
            Some(_) => alerts_for(
                config,
                SubjectKind::Source,
                name,
                None,
                &[Condition::Silent],
            ),
            None => Vec::new(),
        },
    }
}

fn workflow(config: &Config, name: &str, w: &Workflow) -> WorkflowInfo {
    let steps: Vec<_> = w
        .steps
        .iter()
        .map(|s| step_info(s, w.retry.as_ref()))
        .collect();
    let mut reads = BTreeSet::new();
    if let Some(when) = &w.when {
        reads.extend(fields_of_template(when));
    }
    for s in &steps {
        for f in &s.fields {
            reads.extend(f.from.iter().cloned());
        }
    }
    for s in &w.steps {
        if let Some(when) = &s.when {
            reads.extend(fields_of_template(when));
        }
    }
    let reads: Vec<String> = reads
        .into_iter()
        .filter(|f| {
            ["body", "headers", "query"]
                .iter()
                .any(|p| f.starts_with(p))
        })
        .collect();
    let mut conditions = vec![Condition::RunFailed, Condition::ErrorRate, Condition::Drift];
    if w.max_latency.is_some() {
        conditions.push(Condition::Late);
    }
    let src = w.trigger.source.as_str();
    WorkflowInfo {
        name: name.to_owned(),
        trigger: w.trigger.source.clone(),
        when: w.when.clone(),
        enabled: w.enabled != Some(false),
        reads,
        steps,
        duplicates: format!(
            "a second delivery of the same event (same id, within {}'s dedupe window) is answered 200 and not run again; a redelivered queue message skips the steps already done and resumes at the failed one; every call carries an Idempotency-Key",
            src
        ),
        missing_fields: "a field a step needs that the event lacks fails the run at once as `mapping` (no retry) and dead-letters it with the field's name; use `| default(…)` in a template to make a field optional".to_owned(),
        concurrency: w.concurrency.as_ref().map(|c| match &c.key {
            Some(k) => format!("at most {} runs at once per `{k}`", c.limit),
            None => format!("at most {} runs at once", c.limit),
        }),
        max_latency: w.max_latency.map(|d| human(d.get())),
        alerts: alerts_for(
            config,
            SubjectKind::Workflow,
            name,
            Some(src),
            &conditions,
        ),
    }
}

fn connection(config: &Config, name: &str, c: &Connection) -> ConnectionInfo {
    let (auth, scopes) = match &c.auth {
        None => ("none".to_owned(), Vec::new()),
        Some(Auth::Bearer { .. }) => ("a bearer token".to_owned(), Vec::new()),
        Some(Auth::Basic { username, .. }) => (format!("HTTP basic as {username:?}"), Vec::new()),
        Some(Auth::ApiKey { header, query, .. }) => (
            match (header, query) {
                (_, Some(q)) => format!("an API key in query parameter {q}"),
                (h, None) => format!(
                    "an API key in header {}",
                    h.as_deref().unwrap_or("X-API-Key")
                ),
            },
            Vec::new(),
        ),
        Some(Auth::OAuth2 { grant, scope, .. }) => (
            format!(
                "OAuth 2.0 ({} grant), the token cached and refreshed before it expires and once after a 401",
                match grant {
                    crate::config::Grant::ClientCredentials => "client credentials",
                    crate::config::Grant::RefreshToken => "refresh token",
                    crate::config::Grant::AuthorizationCode => "authorization code",
                }
            ),
            scope
                .as_deref()
                .map(|s| s.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
        ),
    };
    let rate_limit = c.rate_limit.as_ref().map(|rl| {
        let headroom = rl.headroom.unwrap_or(0.8);
        let n = rl.requests.get();
        let mut s = format!(
            "{n} request{} per {}; ferry spends {}% of it; after a 429 every call on it waits for Retry-After",
            if n == 1 { "" } else { "s" },
            human(rl.per.get()),
            (headroom * 100.0).round()
        );
        if let Some(k) = &rl.key {
            s.push_str(&format!(", counted per `{k}`"));
        }
        s
    });
    let outcome = |o: &crate::config::Outcome| {
        serde_json::to_value(o)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "?".into())
    };
    let mut classification: Vec<String> = c
        .classify
        .rules
        .iter()
        .map(|r| {
            let until = match (&r.until, &r.until_header) {
                (Some(e), _) => format!(" for `{e}` seconds"),
                (None, Some(h)) => format!(" until `{h}`"),
                (None, None) => String::new(),
            };
            let until = match r.pause {
                Some(d) => format!("{until} (else {})", humantime::format_duration(d.0)),
                None => until,
            };
            format!("when `{}`: {}{until}", r.when, outcome(&r.outcome))
        })
        .chain(
            c.classify
                .status
                .iter()
                .map(|(status, o)| format!("{status}: {}", outcome(o))),
        )
        .collect();
    let unauthorized = if matches!(c.auth, Some(Auth::OAuth2 { .. })) {
        "401 gets a fresh token and one more try, then fails as `auth_failed`"
    } else {
        "401 fails as `auth_failed`"
    };
    classification.push(format!(
        "{}2xx succeeds; timeouts, connection errors, 5xx, 408 and 429 are retried (429 honouring Retry-After); {unauthorized}; 403 fails as `permission_denied`; other 4xx fail as `rejected`; a failure that is not retried, or runs out of retries, dead-letters the run",
        if c.classify.is_empty() { "" } else { "otherwise: " }
    ));
    let cb = c.circuit_breaker.clone().unwrap_or_default();
    let circuit_breaker = if cb.enabled == Some(false) {
        "off".to_owned()
    } else {
        format!(
            "opens when {}% of at least {} calls within {} fail; runs then wait (no attempt spent) for {} before one probe call",
            (cb.failure_ratio
                .unwrap_or(crate::breaker::DEFAULT_FAILURE_RATIO)
                * 100.0)
                .round(),
            cb.min_calls
                .map_or(crate::breaker::DEFAULT_MIN_CALLS, |n| n.get()),
            human(
                cb.window
                    .map_or(crate::breaker::DEFAULT_WINDOW, |d| d.get())
            ),
            human(
                cb.open_for
                    .map_or(crate::breaker::DEFAULT_OPEN_FOR, |d| d.get())
            ),
        )
    };
    let mut conditions = vec![Condition::AuthFailed];
    if cb.enabled != Some(false) {
        conditions.push(Condition::CircuitOpen);
    }
    ConnectionInfo {
        name: name.to_owned(),
        auth,
        scopes,
        rate_limit,
        timeout: human(
            c.timeout
                .map_or(crate::outbound::DEFAULT_TIMEOUT, |d| d.get()),
        ),
        requests: requests_of(config, name),
        allow: c.allow.clone(),
        classification,
        circuit_breaker,
        enabled: c.enabled != Some(false),
        alerts: alerts_for(config, SubjectKind::Connection, name, None, &conditions),
    }
}

/// Every request the config can make on connection `name`, sorted.
pub fn requests_of(config: &Config, name: &str) -> Vec<RequestInfo> {
    let mut out = Vec::new();
    for (wf, w) in &config.workflows {
        for s in w.steps.iter().filter(|s| s.connection == name) {
            out.push(step_request(s, &format!("workflow {wf}, step {}", s.id)));
        }
    }
    out.extend(requests_of_syncs(config, name));
    out.sort();
    out.dedup();
    out
}

/// The request a step sends: its batch call when batched.
pub fn step_request(s: &crate::config::Step, by: &str) -> RequestInfo {
    let (method, path) = match &s.batch {
        Some(b) => (b.method, &b.path),
        None => (s.request.method, &s.request.path),
    };
    RequestInfo {
        method: method.as_http().to_string(),
        path: path.clone(),
        by: by.to_owned(),
    }
}
