//! Checks of `classify` (a connection's or a step's): status keys, and the
//! response rules' expressions, outcomes and reset headers.

use super::classify::{Classify, Outcome};
use super::diagnostic::Path;
use super::templates::Jinja;
use super::validate::{Report, header};

/// Every problem of one `classify`, at `path`.
pub(crate) fn check(c: &Classify, path: &Path, jinja: &Jinja, r: &mut Report<'_>) {
    for key in c.status.keys() {
        if super::StatusRule::parse(key).is_none() {
            r.error(
                &path.key(key),
                format!(
                    "{key:?} is not a status code (100-599, e.g. \"409\") or a class (e.g. \"4xx\")"
                ),
            );
        }
    }
    for (i, rule) in c.rules.iter().enumerate() {
        let p = path.index(i);
        jinja.response_expression(&rule.when, &p.key("when"), r);
        if let Some(h) = &rule.until_header {
            let hp = p.key("until_header");
            if rule.outcome != Outcome::RateLimited {
                r.error(
                    &hp,
                    "`until_header` only applies to `outcome: rate_limited` (it says when the connection may call again)",
                );
            } else {
                header(h, None, &hp, r);
            }
        }
        if rule.pause.is_some_and(|d| d.0.is_zero()) {
            r.error(&p.key("pause"), "must be greater than zero");
        }
        if rule.pause.is_some() && !matches!(rule.outcome, Outcome::RateLimited | Outcome::Retry) {
            r.error(
                &p.key("pause"),
                "`pause` only applies to `outcome: rate_limited` or `retry` (how long to wait when the answer does not say)",
            );
        }
        if let Some(until) = &rule.until {
            let up = p.key("until");
            if rule.outcome != Outcome::RateLimited {
                r.error(
                    &up,
                    "`until` only applies to `outcome: rate_limited` (it says how many seconds the connection waits)",
                );
            } else {
                jinja.response_expression(until, &up, r);
            }
        }
    }
}
