//! One evaluation's decisions: observations against the open alerts, and
//! the messages that follow. Pure (no store, no clock): the book in, the
//! book and the messages out, so every rule about storms is tested here.
//!
//! - A condition that **counts** (run_failed, late): the first occurrence
//!   opens the alert and sends at once; more of it is grouped, one message
//!   per window at most while it goes on; a whole window without any
//!   resolves it (one message, with whatever came after the last one).
//! - A condition that **holds** (silent, drift, error_rate, circuit_open,
//!   dlq_depth, and auth_failed once counted): one message when it starts,
//!   none while it stays, one when it clears.

use std::collections::BTreeSet;

use crate::clock::{Millis, millis};
use crate::config::{Alerts, Condition};

use super::book::{Alert, Book};
use super::notice::{Notice, State};
use super::route::route;
use super::seen::{Message, Seen, What, counts};

/// What one evaluation decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decided {
    /// Keys of alerts opened.
    pub opened: Vec<String>,
    /// Keys of alerts resolved.
    pub resolved: Vec<String>,
    /// Messages queued (one per notice, whatever the channels).
    pub notices: Vec<Notice>,
}

/// Apply `seen` to `book` at `now`.
pub fn apply(alerts: &Alerts, book: &mut Book, seen: Vec<Seen>, now: Millis) -> Decided {
    let mut out = Decided::default();
    let mut observed = BTreeSet::new();
    for s in seen {
        let key = s.key();
        let Some(route) = route(alerts, s.condition, s.route_subject()) else {
            continue;
        };
        observed.insert(key.clone());
        let window = millis(route.window);
        match (s.what.clone(), book.open.get_mut(&key)) {
            (What::Counted { new: 0, .. }, _) => {}
            (
                What::Counted {
                    new,
                    first,
                    last,
                    message,
                },
                None,
            ) => {
                let alert = opened(&s, &key, &message, now, first, last, new);
                let notice = notice(&alert, State::Firing, new, first, last, now);
                book.open.insert(key.clone(), alert);
                book.enqueue(&notice, &route.channels, now);
                out.opened.push(key.clone());
                out.notices.push(notice);
            }
            (
                What::Counted {
                    new, last, message, ..
                },
                Some(a),
            ) => {
                a.pending += new;
                a.last_at = a.last_at.max(last);
                a.title = message.title;
                a.detail = message.detail;
                a.facts.extend(message.facts);
                a.commands = message.commands;
            }
            (What::Holds { since, message }, None) => {
                let alert = opened(&s, &key, &message, now, since, now, 1);
                let notice = notice(&alert, State::Firing, 1, since, now, now);
                book.open.insert(key.clone(), alert);
                book.enqueue(&notice, &route.channels, now);
                out.opened.push(key.clone());
                out.notices.push(notice);
            }
            (What::Holds { message, .. }, Some(a)) => {
                a.last_at = now;
                a.detail = message.detail;
                a.facts.extend(message.facts);
            }
            (What::Clear { why }, Some(a)) if !counts(a.condition) => {
                a.detail = format!("{}\nResolved: {why}", a.detail);
                resolve(book, &key, &route.channels, now, &mut out);
            }
            (What::Clear { .. }, _) => {}
        }
        group(book, &key, &route.channels, window, now, &mut out);
    }
    // Open alerts nothing observed: quiet counters, and what is no longer watched.
    let stale: Vec<String> = book
        .open
        .keys()
        .filter(|k| !observed.contains(*k))
        .cloned()
        .collect();
    for key in stale {
        let a = &book.open[&key];
        let subject = super::route::Subject {
            kind: a.kind,
            name: &a.subject,
            source: a.facts.get("source").map(String::as_str),
        };
        match route(alerts, a.condition, subject) {
            Some(r) if counts(a.condition) => {
                group(book, &key, &r.channels, millis(r.window), now, &mut out);
            }
            // Still watched, but not observed this time (auth_failed between
            // failures): it stays open.
            Some(_) if a.condition == Condition::AuthFailed => {}
            Some(r) => {
                let a = book.open.get_mut(&key).expect("listed above");
                a.detail = format!("{}\nResolved: no longer watched", a.detail);
                resolve(book, &key, &r.channels, now, &mut out);
            }
            None => {
                book.close(&key, now);
                out.resolved.push(key);
            }
        }
    }
    out
}

/// A counting alert (`run_failed`, `late`): one summary per `window` while
/// occurrences go on; resolved after a whole window without any.
fn group(
    book: &mut Book,
    key: &str,
    channels: &[String],
    window: Millis,
    now: Millis,
    out: &mut Decided,
) {
    let Some(a) = book.open.get_mut(key).filter(|a| counts(a.condition)) else {
        return;
    };
    if now - a.last_at >= window {
        resolve(book, key, channels, now, out);
    } else if a.pending > 0 && now - a.last_sent_at >= window {
        let n = notice(a, State::Firing, a.pending, a.last_sent_at, a.last_at, now);
        a.reported += a.pending;
        a.pending = 0;
        a.last_sent_at = now;
        book.enqueue(&n, channels, now);
        out.notices.push(n);
    }
}

fn opened(
    s: &Seen,
    key: &str,
    m: &Message,
    now: Millis,
    first: Millis,
    last: Millis,
    n: u64,
) -> Alert {
    let mut facts = m.facts.clone();
    if let Some(src) = &s.source {
        facts.insert("source".into(), src.clone());
    }
    if let Some(f) = &s.field {
        facts.insert("field".into(), f.clone());
    }
    Alert {
        key: key.to_owned(),
        condition: s.condition,
        kind: s.kind,
        subject: s.subject.clone(),
        title: m.title.clone(),
        detail: m.detail.clone(),
        facts,
        commands: m.commands.clone(),
        opened_at: now,
        first_at: first,
        last_at: last,
        last_sent_at: now,
        reported: n,
        pending: 0,
        resolved_at: None,
    }
}

fn resolve(book: &mut Book, key: &str, channels: &[String], now: Millis, out: &mut Decided) {
    let Some(a) = book.close(key, now) else {
        return;
    };
    let n = notice(
        &a,
        State::Resolved,
        a.pending,
        a.last_sent_at,
        a.last_at,
        now,
    );
    book.enqueue(&n, channels, now);
    out.resolved.push(key.to_owned());
    out.notices.push(n);
}

/// The message about `a`: `count` occurrences between `first` and `last`.
fn notice(a: &Alert, state: State, count: u64, first: Millis, last: Millis, now: Millis) -> Notice {
    let title = match state {
        State::Firing => a.title.clone(),
        State::Resolved => format!("Resolved: {}", a.title),
    };
    let mut facts = a.facts.clone();
    facts.insert("total".into(), a.total().to_string());
    Notice {
        id: format!("{}:{now}", a.key),
        condition: a.condition,
        kind: a.kind,
        subject: a.subject.clone(),
        state,
        title,
        detail: a.detail.clone(),
        count,
        first_at: first,
        last_at: last,
        commands: a.commands.clone(),
        facts,
    }
}
