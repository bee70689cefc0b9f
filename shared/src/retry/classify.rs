//! Classification: what an answer (or a failed call) means for a retry —
//! the default rules, a step's and its connection's `classify` (by status,
//! or by expressions over the whole response), and `Retry-After`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::RETRY_AFTER_CAP;
use crate::config::{Classify, Outcome, ResponseRule, StatusRule};
use crate::model::Failure;
use crate::outbound::Response;
use crate::template::Templates;

/// The `classify` rules that apply to a step: its own first, then its connection's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules<'a> {
    /// The step's rules.
    pub step: Option<&'a Classify>,
    /// The connection's rules.
    pub connection: Option<&'a Classify>,
}

impl Rules<'_> {
    /// The configured outcome for `status` by the status maps alone: an exact
    /// code beats a class; the step beats the connection.
    pub fn outcome(&self, status: u16) -> Option<Outcome> {
        self.levels()
            .find_map(|c| status_outcome(&c.status, status))
    }

    fn levels(&self) -> impl Iterator<Item = &Classify> {
        [self.step, self.connection].into_iter().flatten()
    }
}

fn status_outcome(rules: &BTreeMap<String, Outcome>, status: u16) -> Option<Outcome> {
    let mut class = None;
    for (k, o) in rules {
        match StatusRule::parse(k) {
            Some(StatusRule::Exact(n)) if n == status => return Some(*o),
            Some(StatusRule::Class(d)) if d == status / 100 => class = Some(*o),
            _ => {}
        }
    }
    class
}

/// What to do after an outbound call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The call did what it should.
    Success,
    /// Worth trying again; `after` is the server's `Retry-After`, if it sent one.
    Retry {
        /// Server-requested wait.
        after: Option<Duration>,
    },
    /// Too many calls (a `classify` rule said `rate_limited`): the whole
    /// connection pauses for `after` (or a default), then the call is tried again.
    RateLimited {
        /// When the limit resets, from `Retry-After` or the rule's `until_header`.
        after: Option<Duration>,
    },
    /// The credentials were refused (`401`, or a rule's `auth_failed`):
    /// refresh once if they can be, else `auth_failed`.
    Unauthorized,
    /// Trying again cannot help (`permission_denied` for a `403`, else `rejected`).
    Fail,
    /// Trying again cannot help, and a `classify` rule said which failure it is.
    Final(Failure),
}

/// Judge an HTTP status (and `Retry-After`, when present) under the status
/// maps of `rules` (response rules need the whole answer: [`judge_response`]).
pub fn judge(status: u16, retry_after: Option<&str>, now_ms: i64, rules: Rules<'_>) -> Verdict {
    let parsed = || retry_after.and_then(|v| parse_retry_after(v, now_ms));
    for level in rules.levels() {
        if let Some(o) = status_outcome(&level.status, status) {
            return of_status_rule(o, status, parsed);
        }
    }
    default(status, parsed)
}

/// Judge a whole answer under `rules`: at each level (the step's, then the
/// connection's) the response rules in order, then the status map; then the
/// defaults. A rule whose expression fails on this answer does not match.
pub fn judge_response(
    resp: &Response,
    now_ms: i64,
    rules: Rules<'_>,
    templates: &Templates,
) -> Verdict {
    let retry_after = resp.headers.get("retry-after").map(String::as_str);
    let parsed = || retry_after.and_then(|v| parse_retry_after(v, now_ms));
    let mut ctx = None;
    for level in rules.levels() {
        if !level.rules.is_empty() {
            let ctx = ctx.get_or_insert_with(|| context(resp));
            if let Some(rule) = level.rules.iter().find(|r| matches(templates, r, ctx)) {
                let from_header = || match &rule.until_header {
                    Some(h) => resp
                        .headers
                        .get(&h.to_ascii_lowercase())
                        .and_then(|v| {
                            super::reset::parse_reset(v, super::reset::ResetFormat::Auto, now_ms)
                        })
                        .or_else(parsed),
                    None => parsed(),
                };
                let ctx = &*ctx;
                let after = || {
                    rule.until
                        .as_deref()
                        .and_then(|e| seconds(templates, e, ctx))
                        .or_else(from_header)
                        .or(rule.pause.map(|d| d.0))
                };
                return of_outcome(rule.outcome, after);
            }
        }
        if let Some(o) = status_outcome(&level.status, resp.status) {
            return of_status_rule(o, resp.status, parsed);
        }
    }
    default(resp.status, parsed)
}

/// What rules see: `response.status`, `response.headers`, `response.body`.
fn context(resp: &Response) -> minijinja::Value {
    crate::template::context(&serde_json::json!({ "response": resp.to_output() }))
}

/// A rule's `until`: its value as seconds (a number, or text holding one),
/// capped at [`RETRY_AFTER_CAP`]; `None` when it fails or is not ≥ 0.
fn seconds(templates: &Templates, expr: &str, ctx: &minijinja::Value) -> Option<Duration> {
    let v = templates.eval_json(expr, ctx).ok()?;
    let secs = match v {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0)
        .then(|| Duration::from_secs_f64(secs.min(RETRY_AFTER_CAP.as_secs_f64())))
}

fn matches(templates: &Templates, rule: &ResponseRule, ctx: &minijinja::Value) -> bool {
    templates.is_true(&rule.when, ctx).unwrap_or(false)
}

/// A status map's outcome: as [`of_outcome`], `Retry-After` read for a
/// `retry` on a `429`/`503` only (as the defaults do).
fn of_status_rule(o: Outcome, status: u16, parsed: impl Fn() -> Option<Duration>) -> Verdict {
    match o {
        Outcome::Retry if status != 429 && status != 503 => Verdict::Retry { after: None },
        o => of_outcome(o, parsed),
    }
}

/// The verdict a configured outcome stands for; `after` is when to try again.
fn of_outcome(o: Outcome, after: impl Fn() -> Option<Duration>) -> Verdict {
    match o {
        Outcome::Success => Verdict::Success,
        Outcome::Retry => Verdict::Retry { after: after() },
        Outcome::RateLimited => Verdict::RateLimited { after: after() },
        Outcome::Fail => Verdict::Fail,
        Outcome::AuthFailed => Verdict::Unauthorized,
        Outcome::PermissionDenied => Verdict::Final(Failure::PermissionDenied),
        Outcome::Rejected => Verdict::Final(Failure::Rejected),
    }
}

fn default(status: u16, parsed: impl Fn() -> Option<Duration>) -> Verdict {
    match status {
        200..=299 => Verdict::Success,
        401 => Verdict::Unauthorized,
        429 | 503 => Verdict::Retry { after: parsed() },
        408 | 500..=599 => Verdict::Retry { after: None },
        _ => Verdict::Fail,
    }
}

/// Judge an HTTP status with the default rules.
pub fn judge_status(status: u16, retry_after: Option<&str>, now_ms: i64) -> Verdict {
    judge(status, retry_after, now_ms, Rules::default())
}

/// `Retry-After` as seconds or an HTTP date, capped at [`RETRY_AFTER_CAP`].
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<Duration> {
    let value = value.trim();
    let d = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else if let Ok(secs) = value.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        // Not in RFC 9110, but some APIs send fractions ("0.5").
        Duration::from_secs_f64(secs.min(RETRY_AFTER_CAP.as_secs_f64()))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        let at_ms = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as i64;
        Duration::from_millis((at_ms - now_ms).max(0) as u64)
    };
    Some(d.min(RETRY_AFTER_CAP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(judge_status(200, None, 0), Verdict::Success);
        assert_eq!(judge_status(204, None, 0), Verdict::Success);
        assert_eq!(
            judge_status(500, Some("5"), 0),
            Verdict::Retry { after: None }
        );
        assert_eq!(
            judge_status(503, Some("5"), 0),
            Verdict::Retry {
                after: Some(Duration::from_secs(5))
            }
        );
        assert_eq!(
            judge_status(429, Some("2"), 0),
            Verdict::Retry {
                after: Some(Duration::from_secs(2))
            }
        );
        assert_eq!(judge_status(408, None, 0), Verdict::Retry { after: None });
        assert_eq!(judge_status(401, None, 0), Verdict::Unauthorized);
        for s in [400, 403, 404, 409, 422, 302] {
            assert_eq!(judge_status(s, None, 0), Verdict::Fail, "{s}");
        }
    }

    #[test]
    fn configured_rules_come_first_exact_before_class_step_before_connection() {
        let step = Classify {
            status: [
                ("409".to_owned(), Outcome::Success),
                ("5xx".to_owned(), Outcome::Fail),
            ]
            .into(),
            rules: Vec::new(),
        };
        let conn = Classify {
            status: [
                ("503".to_owned(), Outcome::Retry),
                ("4xx".to_owned(), Outcome::Retry),
            ]
            .into(),
            rules: Vec::new(),
        };
        let rules = Rules {
            step: Some(&step),
            connection: Some(&conn),
        };
        assert_eq!(judge(409, None, 0, rules), Verdict::Success);
        // The step's class wins over the connection's exact code: the step is more specific.
        assert_eq!(judge(503, Some("3"), 0, rules), Verdict::Fail);
        assert_eq!(judge(422, None, 0, rules), Verdict::Retry { after: None });
        assert_eq!(judge(200, None, 0, rules), Verdict::Success);
        let only_conn = Rules {
            step: None,
            connection: Some(&conn),
        };
        assert_eq!(
            judge(503, Some("3"), 0, only_conn),
            Verdict::Retry {
                after: Some(Duration::from_secs(3))
            }
        );
        assert_eq!(StatusRule::parse("4xx"), Some(StatusRule::Class(4)));
        assert_eq!(StatusRule::parse("409"), Some(StatusRule::Exact(409)));
        for bad in ["6xx", "99", "600", "40x", "x", "0409"] {
            assert_eq!(StatusRule::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn retry_after_http_date_and_cap() {
        let now = 1_700_000_000_000;
        let date = httpdate::fmt_http_date(
            std::time::UNIX_EPOCH + Duration::from_millis(now as u64 + 30_000),
        );
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("999999", now), Some(RETRY_AFTER_CAP));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(
            parse_retry_after("0.5", now),
            Some(Duration::from_millis(500))
        );
    }
}
