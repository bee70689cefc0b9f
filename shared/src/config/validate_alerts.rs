//! Checks of the `alerts:` section: every channel a rule or `default` names
//! exists; a rule's workflows, connections and sources exist; thresholds and
//! windows are in range; a field that means nothing for a rule's condition is
//! an error naming it; channel settings are usable (a `whsec_` secret, an
//! `smtp://` URL, recipients); and no rule's alerts would go nowhere.
//! Secret values (`webhook_url`, `secret`, `smtp`) are never quoted.

use std::time::Duration;

use super::alerts::{Alerts, Channel, Condition, Rule};
use super::diagnostic::{Path, did_you_mean};
use super::duration::Dur;
use super::load::Parsed;
use super::validate::Report;

/// The shortest window (`alerts.window`, a rule's `window`).
pub const MIN_WINDOW: Duration = Duration::from_secs(60);

/// Runs every check of `alerts:`, if the config has one.
pub(crate) fn check(p: &Parsed, r: &mut Report<'_>) {
    let Some(a) = &p.alerts else { return };
    let root = Path::root().key("alerts");
    for (name, c) in &a.channels {
        channel(c, &root.key("channels").key(name), r);
    }
    let channels: Vec<&str> = a.channels.keys().map(String::as_str).collect();
    for (i, name) in a.default.iter().enumerate() {
        known("channel", name, &channels, &root.key("default").index(i), r);
    }
    window(a.window, &root.key("window"), r);
    if a.drift_after == Some(0) {
        r.error(
            &root.key("drift_after"),
            "drift_after must be at least 1 (events in a row missing a field)",
        );
    }
    for (i, rule) in a.rules.iter().enumerate() {
        let path = root.key("rules").index(i);
        self::rule(p, rule, &channels, &path, r);
    }
    nowhere(a, &root, r);
}

/// A rule with no `channels` goes to `default`; without one it goes nowhere.
fn nowhere(a: &Alerts, root: &Path, r: &mut Report<'_>) {
    if !a.default.is_empty() {
        return;
    }
    for (i, rule) in a.rules.iter().enumerate() {
        if rule.channels.is_empty() && rule.enabled != Some(false) {
            r.error(
                &root.key("rules").index(i),
                format!(
                    "this {} rule names no `channels` and alerts has no `default`, so its alerts would go nowhere; add `channels: [...]` to the rule or `default: [...]` to alerts",
                    rule.on.as_str()
                ),
            );
        }
    }
}

fn known(kind: &str, name: &str, names: &[&str], path: &Path, r: &mut Report<'_>) {
    if !names.contains(&name) {
        let hint = did_you_mean(name, names.iter().copied());
        r.error(path, format!("unknown {kind} {name:?}{hint}"));
    }
}

fn window(w: Option<Dur>, path: &Path, r: &mut Report<'_>) {
    if let Some(w) = w.filter(|w| w.get() < MIN_WINDOW) {
        r.error(
            path,
            format!("window {w} is shorter than the shortest window, 1m"),
        );
    }
}

/// Which conditions a rule field means something for.
fn applies(field: &str) -> &'static [Condition] {
    use Condition::*;
    match field {
        "workflows" => &[RunFailed, ErrorRate, Late, Drift],
        "connections" => &[AuthFailed, CircuitOpen],
        "sources" => &[Silent, Drift],
        "above" | "min_runs" => &[ErrorRate],
        "at_least" => &[DlqDepth],
        _ => &Condition::ALL,
    }
}

fn rule(p: &Parsed, rule: &Rule, channels: &[&str], path: &Path, r: &mut Report<'_>) {
    let on = rule.on;
    let given = [
        ("workflows", !rule.workflows.is_empty()),
        ("connections", !rule.connections.is_empty()),
        ("sources", !rule.sources.is_empty()),
        ("above", rule.above.is_some()),
        ("min_runs", rule.min_runs.is_some()),
        ("at_least", rule.at_least.is_some()),
    ];
    for (field, _) in given.iter().filter(|(_, set)| *set) {
        let ok = applies(field);
        if !ok.contains(&on) {
            let for_: Vec<&str> = ok.iter().map(|c| c.as_str()).collect();
            r.error(
                &path.key(field),
                format!(
                    "`{field}` means nothing for {}; it is for {}",
                    on.as_str(),
                    for_.join(", ")
                ),
            );
        }
    }
    for (i, c) in rule.channels.iter().enumerate() {
        known("channel", c, channels, &path.key("channels").index(i), r);
    }
    let workflows: Vec<&str> = p.workflows.keys().map(String::as_str).collect();
    for (i, w) in rule.workflows.iter().enumerate() {
        known(
            "workflow",
            w,
            &workflows,
            &path.key("workflows").index(i),
            r,
        );
    }
    let connections: Vec<&str> = p.connections.keys().map(String::as_str).collect();
    for (i, c) in rule.connections.iter().enumerate() {
        known(
            "connection",
            c,
            &connections,
            &path.key("connections").index(i),
            r,
        );
    }
    let feeds: Vec<&str> = p
        .sources
        .keys()
        .chain(p.syncs.keys())
        .map(String::as_str)
        .collect();
    for (i, s) in rule.sources.iter().enumerate() {
        known(
            "source or sync",
            s,
            &feeds,
            &path.key("sources").index(i),
            r,
        );
    }
    match rule.above {
        Some(x) if !(x > 0.0 && x <= 100.0) => r.error(
            &path.key("above"),
            format!("above {x} is not a percentage in (0, 100]"),
        ),
        None if on == Condition::ErrorRate => r.error(
            path,
            "error_rate needs `above`: the percentage of failed runs above which it alerts, e.g. `above: 20`",
        ),
        _ => {}
    }
    if rule.at_least == Some(0) {
        r.error(&path.key("at_least"), "at_least must be at least 1");
    }
    if rule.min_runs == Some(0) {
        r.error(&path.key("min_runs"), "min_runs must be at least 1");
    }
    window(rule.window, &path.key("window"), r);
}

fn channel(c: &Channel, path: &Path, r: &mut Report<'_>) {
    match c {
        Channel::Slack { webhook_url } => {
            let p = path.key("webhook_url");
            if !r.has_error_at(&p) && !is_http_url(webhook_url) {
                r.error(&p, "the value is not an absolute http(s) URL such as https://hooks.slack.com/services/…");
            }
        }
        Channel::Webhook { url, secret } => {
            let p = path.key("url");
            if !r.has_error_at(&p) && !is_http_url(url) {
                let shown = r.shown(&p, url).to_owned();
                r.error(&p, format!("url {shown:?} is not an absolute http(s) URL"));
            }
            let p = path.key("secret");
            if !r.has_error_at(&p)
                && let Err(why) = crate::verify::check_standard_webhooks_secret(secret)
            {
                r.error(
                    &p,
                    format!("secret {why} (a Standard Webhooks secret, whsec_<base64>)"),
                );
            }
        }
        Channel::Email {
            to,
            from,
            smtp,
            sns_topic,
        } => email(
            to,
            from.as_deref(),
            smtp.as_deref(),
            sns_topic.as_deref(),
            path,
            r,
        ),
    }
}

fn email(
    to: &[String],
    from: Option<&str>,
    smtp: Option<&str>,
    sns_topic: Option<&str>,
    path: &Path,
    r: &mut Report<'_>,
) {
    if smtp.is_none() && sns_topic.is_none() {
        r.error(path, "an email channel needs `smtp` (to send from ferry dev) or `sns_topic` (on AWS), or both");
    }
    if to.is_empty() && (smtp.is_some() || sns_topic.is_none()) {
        r.error(path, "an email channel needs `to`, the recipients (only a channel with just `sns_topic` goes without: the topic's subscriptions are its recipients)");
    }
    for (i, address) in to.iter().enumerate() {
        if address.parse::<lettre::message::Mailbox>().is_err() {
            r.error(
                &path.key("to").index(i),
                format!("{address:?} is not an e-mail address"),
            );
        }
    }
    if let Some(from) = from.filter(|f| f.parse::<lettre::message::Mailbox>().is_err()) {
        r.error(
            &path.key("from"),
            format!("{from:?} is not an e-mail address"),
        );
    }
    let p = path.key("smtp");
    if let Some(url) = smtp
        && !r.has_error_at(&p)
    {
        let ok = reqwest::Url::parse(url).is_ok_and(|u| {
            matches!(u.scheme(), "smtp" | "smtps") && u.host_str().is_some_and(|h| !h.is_empty())
        });
        if !ok {
            r.error(&p, "the value is not an smtp:// or smtps:// URL such as smtp://user:password@mail.example.com:587?tls=required");
        }
    }
    if let Some(arn) = sns_topic.filter(|a| !a.starts_with("arn:") || a.split(':').count() != 6) {
        r.error(
            &path.key("sns_topic"),
            format!(
                "{arn:?} is not an SNS topic ARN such as arn:aws:sns:us-east-1:123456789012:alerts"
            ),
        );
    }
}

fn is_http_url(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
    })
}
