//! Reading one page of a poll: build the request for a page position (a
//! token, a URL the API gave, a page number, an offset), call the API within
//! the connection's rate limit, and find the records, the next page and, when
//! the API says, the total.

use serde_json::{Value, json};

use super::SyncError;
use super::state::PagePos;
use crate::call::{Called, call};
use crate::clock::Millis;
use crate::config::{Pagination, Poll};
use crate::destination;
use crate::hub::{Conn, Hub};
use crate::model::Attempt;
use crate::model::Failure;
use crate::outbound::{self, Prepared};
use crate::retry::{self, Decision, History, Policy, Rules};
use crate::template::context;

/// Most attempts at one page within a run: past them the pass ends and the
/// next run resumes from the cursor (a source that is down does not hold a
/// run, and its Lambda, for its whole budget).
pub const PAGE_ATTEMPTS: u32 = 4;
/// Longest backoff between two attempts at a page within a run.
pub const PAGE_MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(30);

/// One page as read.
#[derive(Debug)]
pub struct Page {
    /// The records on it.
    pub records: Vec<Value>,
    /// The next page, or `None` at the end of the pass.
    pub next: Option<PagePos>,
    /// How many records match, when the API says.
    pub total: Option<u64>,
    /// The call, for the run log.
    pub attempt: Attempt,
}

/// Where a pass starts.
pub fn first_pos(p: &Poll) -> PagePos {
    match &p.pagination {
        Some(Pagination::Page { first, .. }) => PagePos::Page {
            n: first.unwrap_or(1),
        },
        Some(Pagination::Offset { .. }) => PagePos::Offset { offset: 0 },
        _ => PagePos::First,
    }
}

/// Read the page at `pos` of a pass filtering from `since`.
pub async fn fetch(
    hub: &Hub,
    sync: &str,
    p: &Poll,
    since: &str,
    pos: &PagePos,
    n: u32,
    deadline: Millis,
) -> Result<Page, SyncError> {
    let conn = hub
        .connection(&p.connection)
        .ok_or_else(|| SyncError::Config(format!("unknown connection {:?}", p.connection)))?;
    let req = request(hub, conn, p, since, pos)?;
    let what = format!("{} {}", req.method, req.url);
    let page = PageCall {
        sync,
        name: &p.connection,
        conn,
        what: &what,
        n,
    };
    let (resp, attempt) = call_page(hub, page, &req, deadline).await?;
    let t = &hub.templates;
    let ctx = context(&json!({ "response": resp.to_output() }));
    let records = match t.eval_json(&p.records, &ctx) {
        Ok(Value::Array(items)) => items,
        Ok(other) => {
            return Err(SyncError::Config(format!(
                "records: expected a list in the answer of {what}, got {}",
                kind(&other)
            )));
        }
        Err(e) => return Err(SyncError::Config(format!("records: {e}"))),
    };
    let total = match &p.total {
        Some(expr) => t.eval_json(expr, &ctx).ok().and_then(|v| v.as_u64()),
        None => None,
    };
    let next = if records.is_empty() {
        None
    } else {
        next_pos(
            hub,
            p,
            pos,
            &ctx,
            &resp.headers,
            req.url.as_str(),
            records.len(),
        )?
    };
    Ok(Page {
        records,
        next,
        total,
        attempt,
    })
}

/// The request for `pos`: the configured one (empty query parameters left
/// out) plus the page's parameter, or the URL the API gave.
fn request(
    hub: &Hub,
    conn: &Conn,
    p: &Poll,
    since: &str,
    pos: &PagePos,
) -> Result<Prepared, SyncError> {
    let ctx = context(&json!({ "watermark": since }));
    let mut req = outbound::prepare(&hub.templates, conn, &p.request, &ctx)
        .map_err(|e| SyncError::Config(format!("request: {e}")))?;
    req.query.retain(|(_, v)| !v.is_empty());
    let mut set = |name: &str, value: String| {
        req.query.retain(|(k, _)| k != name);
        req.query.push((name.to_owned(), value));
    };
    match (pos, &p.pagination) {
        (PagePos::First, _) => {}
        (PagePos::Token { token }, Some(Pagination::Cursor { param, .. })) => {
            set(param, token.clone());
        }
        (PagePos::Page { n }, Some(Pagination::Page { param, .. })) => set(param, n.to_string()),
        (
            PagePos::Offset { offset },
            Some(Pagination::Offset {
                param,
                limit_param,
                limit,
            }),
        ) => {
            set(param, offset.to_string());
            set(limit_param, limit.to_string());
        }
        (PagePos::Url { url }, _) => {
            // Credentials go only where the connection points.
            let next = destination::parse(url)
                .and_then(|u| destination::check_within(&u, &conn.base_url).map(|()| u))
                .map_err(|e| SyncError::Config(format!("the API's next page: {e}")))?;
            req.url = next;
            req.query.clear();
        }
        (pos, _) => {
            return Err(SyncError::Config(format!(
                "the saved position ({pos}) does not fit this pagination; the config changed during a pass? reset the sync's cursor"
            )));
        }
    }
    Ok(req)
}

fn next_pos(
    hub: &Hub,
    p: &Poll,
    pos: &PagePos,
    ctx: &minijinja::Value,
    headers: &std::collections::BTreeMap<String, String>,
    url: &str,
    count: usize,
) -> Result<Option<PagePos>, SyncError> {
    let t = &hub.templates;
    let text = |expr: &str, what: &str| -> Result<Option<String>, SyncError> {
        let v = t
            .eval(expr, ctx)
            .map_err(|e| SyncError::Config(format!("pagination.{what}: {e}")))?;
        if v.is_undefined() || v.is_none() {
            return Ok(None);
        }
        let s = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        Ok((!s.is_empty()).then_some(s))
    };
    Ok(match &p.pagination {
        None => None,
        Some(Pagination::Cursor { token, .. }) => text(token, "token")?
            .filter(|tok| !matches!(pos, PagePos::Token { token } if token == tok))
            .map(|token| PagePos::Token { token }),
        Some(Pagination::NextUrl { next }) => text(next, "next")?
            .map(|n| resolve(url, &n))
            .filter(|n| !matches!(pos, PagePos::Url { url } if url == n))
            .map(|url| PagePos::Url { url }),
        Some(Pagination::LinkHeader) => headers
            .get("link")
            .and_then(|l| link_next(l))
            .map(|n| resolve(url, &n))
            .filter(|n| !matches!(pos, PagePos::Url { url } if url == n))
            .map(|url| PagePos::Url { url }),
        Some(Pagination::Page { size, .. }) => {
            let short = size.is_some_and(|s| count < s.get() as usize);
            match pos {
                PagePos::Page { n } if !short => Some(PagePos::Page { n: n + 1 }),
                _ => None,
            }
        }
        Some(Pagination::Offset { limit, .. }) => match pos {
            PagePos::Offset { offset } if count >= limit.get() as usize => Some(PagePos::Offset {
                offset: offset + count as u64,
            }),
            _ => None,
        },
    })
}

/// The `rel="next"` target of an RFC 8288 `Link` header.
pub fn link_next(header: &str) -> Option<String> {
    // Split on the commas between links, not those inside <...>.
    let mut links = Vec::new();
    let (mut depth, mut start) = (false, 0);
    for (i, c) in header.char_indices() {
        match c {
            '<' => depth = true,
            '>' => depth = false,
            ',' if !depth => {
                links.push(&header[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    links.push(&header[start..]);
    links.into_iter().find_map(|link| {
        let (target, params) = link.trim().strip_prefix('<')?.split_once('>')?;
        let is_next = params.split(';').any(|p| {
            let Some((k, v)) = p.split_once('=') else {
                return false;
            };
            k.trim().eq_ignore_ascii_case("rel")
                && v.trim()
                    .trim_matches('"')
                    .split_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
        });
        is_next.then(|| target.trim().to_owned())
    })
}

/// `next` resolved against the URL of the page that gave it.
fn resolve(base: &str, next: &str) -> String {
    reqwest::Url::parse(base)
        .and_then(|b| b.join(next))
        .map_or_else(|_| next.to_owned(), |u| u.to_string())
}

/// Make one page's call through the call path steps use ([`crate::call`]):
/// the rate-limit gate (the shared bucket and the connection-wide pause),
/// the credential with its once-on-401 refresh, and the connection's
/// `classify` rules. What a failure means is the one retry decision steps
/// use, [`retry::decide`], under the sync's `retry` policy: a `429` pauses
/// the connection for everyone and the page is asked again after
/// `Retry-After`; a `5xx` or a timeout is asked again after a backoff — as
/// long as `deadline` allows. Past it, or once the decision gives up, the
/// pass ends and the next run resumes from the cursor.
async fn call_page(
    hub: &Hub,
    page: PageCall<'_>,
    req: &crate::outbound::Prepared,
    deadline: Millis,
) -> Result<(crate::outbound::Response, Attempt), SyncError> {
    let PageCall {
        sync,
        name,
        conn,
        what,
        n,
    } = page;
    let rules = Rules {
        step: None,
        connection: Some(&conn.classify),
    };
    let policy = page_policy(hub.config.syncs.get(sync).and_then(|s| s.retry.as_ref()));
    let mut history: Option<History> = None;
    loop {
        let started_at = hub.ports.clock.now_ms();
        let key = format!("sync:{sync}:{started_at}:{n}");
        let tried = match call(hub, name, conn, req, &key, rules, None).await {
            Called::Later(wait) => {
                let until = crate::clock::after(hub.ports.clock.now_ms(), wait);
                if until >= deadline {
                    return Err(SyncError::Source {
                        message: format!(
                            "{what}: the connection is paused until {until} (rate limited), past this run's deadline; the next run resumes"
                        ),
                        retryable: true,
                    });
                }
                tokio::time::sleep(wait).await;
                continue;
            }
            Called::StoreDown(why) => {
                return Err(SyncError::Source {
                    message: format!("{what}: the store is unavailable: {why}"),
                    retryable: true,
                });
            }
            Called::Refused(why) => {
                return Err(SyncError::Source {
                    message: format!("{what}: credentials refused: {why}"),
                    retryable: false,
                });
            }
            Called::NotAllowed(why) => {
                return Err(SyncError::Source {
                    message: format!("{what}: {why}"),
                    retryable: false,
                });
            }
            Called::Done(mut tries) => tries.pop().expect("a call makes at least one try"),
        };
        let mut attempt = tried.attempt;
        attempt.n = n;
        let h = History {
            attempts: history.map_or(1, |h| h.attempts + 1),
            first_at: history.map_or(attempt.started_at, |h| h.first_at),
        };
        history = Some(h);
        let error = attempt.error.clone().unwrap_or_else(|| what.to_owned());
        let now = hub.ports.clock.now_ms();
        let jitter = hub.ports.clock.jitter();
        match retry::decide(&tried.verdict, attempt.status_code, h, &policy, now, jitter) {
            Decision::Done => match tried.response {
                Some(resp) => return Ok((resp, attempt)),
                None => unreachable!("a success always has an answer"),
            },
            Decision::RetryIn(wait) => {
                if crate::clock::after(now, wait) >= deadline {
                    return Err(SyncError::Source {
                        message: format!(
                            "{error}; asking again in {} would pass this run's deadline; the next run resumes",
                            humantime::format_duration(wait)
                        ),
                        retryable: true,
                    });
                }
                tracing::warn!(sync, page = n, attempt = h.attempts, retry_in_ms = wait.as_millis() as u64, error = %error, "page failed; will ask again");
                tokio::time::sleep(wait).await;
            }
            Decision::GiveUp(g) => {
                let message = match g.failure {
                    Failure::AuthFailed => format!("{error}; credentials refused"),
                    _ => g.reason(&error),
                };
                return Err(SyncError::Source {
                    message,
                    // Out of attempts on a retryable failure: the next run may fare better.
                    retryable: g.failure == Failure::Exhausted,
                });
            }
        }
    }
}

/// The sync's `retry` policy, held to [`PAGE_ATTEMPTS`] and [`PAGE_MAX_BACKOFF`] within a run.
fn page_policy(retry: Option<&crate::config::RetryPolicy>) -> Policy {
    let p = Policy::resolve(None, retry);
    Policy {
        max_attempts: p.max_attempts.min(PAGE_ATTEMPTS),
        max: p.max.min(PAGE_MAX_BACKOFF),
        ..p
    }
}

/// Who makes a page's call, for [`call_page`].
#[derive(Clone, Copy)]
struct PageCall<'a> {
    sync: &'a str,
    name: &'a str,
    conn: &'a Conn,
    what: &'a str,
    n: u32,
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::link_next;

    #[test]
    fn link_header_next() {
        let h = r#"<https://api.example.com/items?page=3>; rel="next", <https://api.example.com/items?page=1>; rel="first""#;
        assert_eq!(
            link_next(h).as_deref(),
            Some("https://api.example.com/items?page=3")
        );
        let gh = r#"<https://x.example/a?p=1,2>; rel="prev", <https://x.example/a?p=3>; rel="next last""#;
        assert_eq!(link_next(gh).as_deref(), Some("https://x.example/a?p=3"));
        assert_eq!(link_next(r#"<https://x.example/a>; rel="prev""#), None);
    }
}
