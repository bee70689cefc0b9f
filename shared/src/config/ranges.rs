//! The range of every duration and count in a config, checked at load.
//!
//! A value that parses can still be absurd: `timeout: 10000000000000000000s`
//! is a valid duration, and once overflowed a panic in a worker. Each field
//! below has a documented range (docs/config.md, "Limits"); a value outside it
//! is reported with its path and line like any other mistake. A value another
//! check already reported (a zero, say) is not reported twice.

use std::time::Duration;

use super::diagnostic::Path;
use super::duration::Dur;
use super::load::Parsed;
use super::model::{Batch, Connection, Pagination, Poll, RetryPolicy, Source, Step, SyncDef};
use super::validate::Report;

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// Smallest and largest value of a duration field.
pub type DurRange = (Duration, Duration);

/// `connections.*.timeout`: a call's timeout (Lambda runs 15 minutes at most).
pub const TIMEOUT: DurRange = (MS, Duration::from_secs(15 * 60));
/// `connections.*.rate_limit.per`: the window of a documented rate limit.
pub const RATE_WINDOW: DurRange = (MS, Duration::from_secs(31 * 86_400));
/// `connections.*.rate_limit.requests`: most requests per window.
pub const MAX_RATE_REQUESTS: u64 = 1_000_000;
/// `connections.*.rate_limit.tokens.limit`: most tokens per window.
pub const MAX_RATE_TOKENS: u64 = 1_000_000_000;
/// `connections.*.circuit_breaker.window`: how far back calls are counted.
pub const BREAKER_WINDOW: DurRange = (SEC, DAY);
/// `connections.*.circuit_breaker.open_for`: how long calls wait before a probe.
pub const BREAKER_OPEN_FOR: DurRange = (SEC, DAY);
/// `connections.*.circuit_breaker.min_calls`.
pub const MAX_BREAKER_MIN_CALLS: u64 = 1_000_000;
/// `sources.*.dedupe_window`: how long an event id is remembered.
pub const DEDUPE_WINDOW: DurRange = (SEC, Duration::from_secs(90 * 86_400));
/// `sources.*.verify.tolerance`: the replay window of a signed timestamp.
pub const TOLERANCE: DurRange = (SEC, DAY);
/// `sources.*.max_body_bytes`: at most the 6 MB a Lambda request may carry.
pub const MAX_BODY_BYTES: u64 = 6 * 1024 * 1024;
/// `retry.max_attempts`: attempts in all.
pub const MAX_ATTEMPTS: u64 = 100;
/// `retry.initial_backoff`.
pub const INITIAL_BACKOFF: DurRange = (MS, HOUR);
/// `retry.max_backoff`.
pub const MAX_BACKOFF: DurRange = (MS, DAY);
/// `retry.max_age`: SQS keeps a message 14 days at most.
pub const MAX_AGE: DurRange = (SEC, Duration::from_secs(14 * 86_400));
/// `syncs.*.budget`: one sync run (Lambda runs 15 minutes at most).
pub const SYNC_BUDGET: DurRange = (SEC, Duration::from_secs(15 * 60));
/// `batch.wait`: how long a batch waits for items to join it.
pub const BATCH_WAIT: DurRange = (MS, Duration::from_secs(10));
/// `batch.max_items`, `pagination.size` and `pagination.limit`.
pub const MAX_ITEMS: u64 = 10_000;
/// `pagination.first`: the first page number.
pub const MAX_FIRST_PAGE: u64 = 1_000_000_000;
/// `workflows.*.concurrency.limit`: runs of one key at once. A run that
/// waits probes every slot, so the bound also bounds that cost.
pub const MAX_CONCURRENCY: u64 = 100;

/// `retention`: how long runs are kept after they last changed (a day at
/// least, so a failure is still there when someone looks the next morning).
pub const RETENTION: DurRange = (DAY, Duration::from_secs(3650 * 86_400));

/// Check every duration and count that could be read.
pub(crate) fn check(p: &Parsed, r: &mut Report<'_>) {
    let root = Path::root();
    dur(p.retention, &root.key("retention"), RETENTION, r);
    for (name, c) in &p.connections {
        if let Some(c) = c {
            connection(c, &root.key("connections").key(name), r);
        }
    }
    for (name, s) in &p.sources {
        if let Some(s) = s {
            source(s, &root.key("sources").key(name), r);
        }
    }
    for (name, f) in &p.workflows {
        let path = root.key("workflows").key(name);
        if let Some(w) = &f.def {
            retry(w.retry.as_ref(), &path.key("retry"), r);
            if let Some(c) = &w.concurrency {
                let limit = c.limit.get().into();
                let lp = path.key("concurrency").key("limit");
                count(limit, &lp, MAX_CONCURRENCY, r);
            }
        }
        steps(readable(&f.steps), &path.key("steps"), r);
    }
    for (name, f) in &p.syncs {
        let path = root.key("syncs").key(name);
        steps(readable(&f.steps), &path.key("steps"), r);
        if let Some(s) = &f.def {
            sync(s, &path, r);
        }
    }
}

/// The steps that could be read, with their index.
fn readable(steps: &[Option<Step>]) -> impl Iterator<Item = (usize, &Step)> {
    steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((i, s.as_ref()?)))
}

fn connection(c: &Connection, path: &Path, r: &mut Report<'_>) {
    dur(c.timeout, &path.key("timeout"), TIMEOUT, r);
    if let Some(rl) = &c.rate_limit {
        let rp = path.key("rate_limit");
        dur(Some(rl.per), &rp.key("per"), RATE_WINDOW, r);
        count(
            rl.requests.get().into(),
            &rp.key("requests"),
            MAX_RATE_REQUESTS,
            r,
        );
        if let Some(t) = &rl.tokens {
            let tp = rp.key("tokens");
            dur(Some(t.per), &tp.key("per"), RATE_WINDOW, r);
            count(t.limit.get().into(), &tp.key("limit"), MAX_RATE_TOKENS, r);
        }
    }
    if let Some(cb) = &c.circuit_breaker {
        let bp = path.key("circuit_breaker");
        if let Some(ratio) = cb.failure_ratio {
            let rp = bp.key("failure_ratio");
            let out_of_range = ratio.is_nan() || ratio <= 0.0 || ratio > 1.0;
            if out_of_range && !r.has_error_at(&rp) {
                r.error(
                    &rp,
                    format!(
                        "failure_ratio {ratio} is out of range; expected above 0 and at most 1"
                    ),
                );
            }
        }
        if let Some(n) = cb.min_calls {
            count(
                n.get().into(),
                &bp.key("min_calls"),
                MAX_BREAKER_MIN_CALLS,
                r,
            );
        }
        dur(cb.window, &bp.key("window"), BREAKER_WINDOW, r);
        dur(cb.open_for, &bp.key("open_for"), BREAKER_OPEN_FOR, r);
    }
}

fn source(s: &Source, path: &Path, r: &mut Report<'_>) {
    dur(
        s.dedupe_window,
        &path.key("dedupe_window"),
        DEDUPE_WINDOW,
        r,
    );
    dur(
        s.verify.tolerance,
        &path.key("verify").key("tolerance"),
        TOLERANCE,
        r,
    );
    if let Some(n) = s.max_body_bytes {
        count(n, &path.key("max_body_bytes"), MAX_BODY_BYTES, r);
    }
}

fn sync(s: &SyncDef, path: &Path, r: &mut Report<'_>) {
    dur(s.budget, &path.key("budget"), SYNC_BUDGET, r);
    retry(s.retry.as_ref(), &path.key("retry"), r);
    steps(s.on_delete.iter().enumerate(), &path.key("on_delete"), r);
    let mut polls = vec![
        (path.key("source"), s.source.as_ref()),
        (path.key("tombstones"), s.tombstones.as_ref()),
    ];
    if let Some(tw) = &s.two_way {
        for (key, side) in [("a", &tw.a), ("b", &tw.b)] {
            let sp = path.key("two_way").key(key);
            steps(side.write.iter().enumerate(), &sp.key("write"), r);
            polls.push((sp.key("source"), Some(&side.source)));
        }
    }
    for (pp, p) in polls {
        if let Some(p) = p {
            pagination(p, &pp.key("pagination"), r);
        }
    }
}

fn pagination(p: &Poll, path: &Path, r: &mut Report<'_>) {
    match &p.pagination {
        Some(Pagination::Page { first, size, .. }) => {
            if let Some(first) = first {
                count(*first, &path.key("first"), MAX_FIRST_PAGE, r);
            }
            if let Some(size) = size {
                count(size.get().into(), &path.key("size"), MAX_ITEMS, r);
            }
        }
        Some(Pagination::Offset { limit, .. }) => {
            count(limit.get().into(), &path.key("limit"), MAX_ITEMS, r);
        }
        _ => {}
    }
}

fn steps<'s>(list: impl Iterator<Item = (usize, &'s Step)>, path: &Path, r: &mut Report<'_>) {
    for (i, s) in list {
        let sp = path.index(i);
        retry(s.retry.as_ref(), &sp.key("retry"), r);
        if let Some(b) = &s.batch {
            batch(b, &sp.key("batch"), r);
        }
    }
}

fn batch(b: &Batch, path: &Path, r: &mut Report<'_>) {
    count(
        b.max_items.get().into(),
        &path.key("max_items"),
        MAX_ITEMS,
        r,
    );
    dur(b.wait, &path.key("wait"), BATCH_WAIT, r);
}

fn retry(p: Option<&RetryPolicy>, path: &Path, r: &mut Report<'_>) {
    let Some(p) = p else { return };
    if let Some(n) = p.max_attempts {
        count(n.get().into(), &path.key("max_attempts"), MAX_ATTEMPTS, r);
    }
    dur(
        p.initial_backoff,
        &path.key("initial_backoff"),
        INITIAL_BACKOFF,
        r,
    );
    dur(p.max_backoff, &path.key("max_backoff"), MAX_BACKOFF, r);
    dur(p.max_age, &path.key("max_age"), MAX_AGE, r);
}

/// A duration within `(min, max)`.
fn dur(value: Option<Dur>, path: &Path, (min, max): DurRange, r: &mut Report<'_>) {
    let Some(v) = value else { return };
    if (min..=max).contains(&v.get()) || r.has_error_at(path) {
        return;
    }
    let (field, v, min, max) = (field(path), show(v.get()), show(min), show(max));
    r.error(
        path,
        format!("{field} {v} is out of range; expected {min} to {max}"),
    );
}

/// `d` in the largest unit that divides it (`15m`, `90d`, `10000000000000000000s`).
pub fn show(d: Duration) -> String {
    let ns = d.as_nanos();
    let units: [(u128, &str); 7] = [
        (86_400_000_000_000, "d"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    let (size, unit) = units
        .into_iter()
        .find(|(size, _)| ns > 0 && ns.is_multiple_of(*size))
        .unwrap_or((1, "ns"));
    format!("{}{unit}", ns / size)
}

/// A count of at most `max` (the types already make it at least 1 where needed).
fn count(n: u64, path: &Path, max: u64, r: &mut Report<'_>) {
    if n <= max || r.has_error_at(path) {
        return;
    }
    let field = field(path);
    r.error(path, format!("{field} {n} is too large; at most {max}"));
}

fn field(path: &Path) -> String {
    path.shape().last().copied().unwrap_or_default().to_owned()
}
