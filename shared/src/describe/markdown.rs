//! A [`Description`] as Markdown, for a person who does not read YAML.

use std::fmt::Write as _;

use super::about::{AlertInfo, ConnectionInfo, Description, FieldFlow, StepInfo, SyncInfo};

impl Description {
    /// The Markdown document `ferry describe` prints.
    pub fn to_markdown(&self) -> String {
        let mut o = String::from(
            "# What this configuration does\n\nWritten by `ferry describe` from the configuration alone (no secret or environment value appears); regenerate it rather than editing it.\n",
        );
        o.push_str("\n## Sources: what starts an automation\n");
        if self.sources.is_empty() {
            o.push_str("\nNo webhook sources.\n");
        }
        for s in &self.sources {
            let _ = writeln!(o, "\n### Source `{}`\n", s.name);
            let _ = writeln!(o, "- **Receives:** events posted to `{}`.", s.endpoint);
            let _ = writeln!(o, "- **Verified by:** {}.", s.verification);
            if let Some(w) = &s.replay_window {
                let _ = writeln!(
                    o,
                    "- **Replays:** a signed timestamp older than {w} is refused (401)."
                );
            }
            let _ = writeln!(
                o,
                "- **Duplicates:** an event is identified by {}; the same event delivered again within {} is answered 200 and not run again.",
                s.event_id, s.dedupe_window
            );
            let starts = if s.starts.is_empty() {
                "nothing (its events are recorded only)".to_owned()
            } else {
                list(&s.starts, |w| format!("workflow `{w}`"))
            };
            let _ = writeln!(o, "- **Starts:** {starts}.");
            if let Some(m) = &s.max_silence {
                let _ = writeln!(o, "- **Expected traffic:** at least one event every {m}.");
            }
            alerts(&mut o, &s.alerts);
        }
        o.push_str("\n## Workflows: what data moves, and where\n");
        if self.workflows.is_empty() {
            o.push_str("\nNo workflows.\n");
        }
        for w in &self.workflows {
            let _ = writeln!(o, "\n### Workflow `{}`\n", w.name);
            let when = w.when.as_ref().map_or(String::new(), |c| {
                format!(", when `{c}` (otherwise the run is skipped)")
            });
            let _ = writeln!(o, "- **Started by:** source `{}`{when}.", w.trigger);
            if !w.enabled {
                o.push_str("- **Switched off:** events are accepted and held; no run executes until it is enabled.\n");
            }
            let reads = if w.reads.is_empty() {
                "no event fields".to_owned()
            } else {
                list(&w.reads, |f| format!("`{f}`"))
            };
            let _ = writeln!(o, "- **Reads from the event:** {reads}.");
            if let Some(c) = &w.concurrency {
                let _ = writeln!(o, "- **Concurrency:** {c}.");
            }
            if let Some(l) = &w.max_latency {
                let _ = writeln!(
                    o,
                    "- **Expected latency:** each run done within {l} of its event."
                );
            }
            let _ = writeln!(o, "- **Duplicates:** {}.", w.duplicates);
            let _ = writeln!(o, "- **Missing fields:** {}.", w.missing_fields);
            steps(&mut o, "Steps, in order", &w.steps);
            alerts(&mut o, &w.alerts);
        }
        o.push_str("\n## Syncs: scheduled copies between systems\n");
        if self.syncs.is_empty() {
            o.push_str("\nNo syncs.\n");
        }
        for s in &self.syncs {
            sync(&mut o, s);
        }
        o.push_str("\n## Connections: permissions, limits and failures\n");
        if self.connections.is_empty() {
            o.push_str("\nNo connections.\n");
        }
        for c in &self.connections {
            connection(&mut o, c);
        }
        o.push_str("\n## Alerts\n\n");
        if self.alerting.configured {
            let channels = if self.alerting.channels.is_empty() {
                "none".to_owned()
            } else {
                list(&self.alerting.channels, |c| c.clone())
            };
            let _ = writeln!(o, "- **Channels:** {channels}.");
            alerts(&mut o, &self.alerting.dead_letters);
        } else {
            o.push_str("There is no `alerts:` section: nobody is alerted for anything; failures are only in the run log and the dead-letter queue.\n");
        }
        o
    }
}

fn sync(o: &mut String, s: &SyncInfo) {
    let _ = writeln!(o, "\n### Sync `{}` ({})\n", s.name, s.kind);
    let _ = writeln!(o, "- **Runs:** on the schedule `{}`.", s.schedule);
    for p in &s.polls {
        let _ = writeln!(
            o,
            "- **Reads ({}):** `{}` on connection `{}`; {}; pages: {}.",
            p.role, p.request, p.connection, p.records, p.pagination
        );
    }
    if !s.map.is_empty() {
        o.push_str("- **Maps each record to:**\n\n");
        flows(o, &s.map, "record field");
    }
    if !s.fields.is_empty() {
        o.push_str("- **Fields kept in step, and their source of truth:**\n\n");
        o.push_str("  | field | in a | in b | source of truth |\n  |---|---|---|---|\n");
        for f in &s.fields {
            let _ = writeln!(
                o,
                "  | {} | `{}` | `{}` | {} |",
                cell(&f.name),
                cell(&f.a),
                cell(&f.b),
                cell(&f.source_of_truth)
            );
        }
        o.push('\n');
    }
    if let Some(m) = &s.max_silence {
        let _ = writeln!(o, "- **Expected:** a successful pass at least every {m}.");
    }
    let _ = writeln!(o, "- **Duplicates:** {}.", s.duplicates);
    let _ = writeln!(o, "- **Missing fields:** {}.", s.missing_fields);
    let title = if s.kind == "two-way" {
        "Writes"
    } else {
        "Steps per new or changed record"
    };
    steps(o, title, &s.steps);
    steps(o, "Steps per deleted record", &s.on_delete);
    alerts(o, &s.alerts);
}

fn connection(o: &mut String, c: &ConnectionInfo) {
    let _ = writeln!(o, "\n### Connection `{}`\n", c.name);
    if !c.enabled {
        o.push_str("- **Switched off:** no call goes out; runs that need it wait.\n");
    }
    let _ = writeln!(o, "- **Authenticates with:** {}.", c.auth);
    if !c.scopes.is_empty() {
        let _ = writeln!(
            o,
            "- **OAuth scopes:** {}.",
            list(&c.scopes, |s| format!("`{s}`"))
        );
    }
    match &c.rate_limit {
        Some(r) => {
            let _ = writeln!(o, "- **Rate limit:** {r}.");
        }
        None => o.push_str("- **Rate limit:** none declared.\n"),
    }
    let _ = writeln!(o, "- **Timeout:** {} per request.", c.timeout);
    match &c.allow {
        Some(a) => {
            let _ = writeln!(
                o,
                "- **Allowed requests:** only {}; anything else is refused without being sent.",
                list(a, |r| format!("`{r}`"))
            );
        }
        None => {
            o.push_str("- **Allowed requests:** no `allow` list; any request under its base URL.\n")
        }
    }
    if c.requests.is_empty() {
        o.push_str("- **Requests the configuration makes:** none.\n");
    } else {
        o.push_str("- **Requests the configuration makes:**\n\n  | method | path | made by |\n  |---|---|---|\n");
        for r in &c.requests {
            let _ = writeln!(
                o,
                "  | {} | `{}` | {} |",
                r.method,
                cell(&r.path),
                cell(&r.by)
            );
        }
        o.push('\n');
    }
    o.push_str("- **When a call fails:**\n");
    for c in &c.classification {
        let _ = writeln!(o, "  - {c}");
    }
    let _ = writeln!(o, "  - circuit breaker: {}", c.circuit_breaker);
    alerts(o, &c.alerts);
}

fn steps(o: &mut String, title: &str, steps: &[StepInfo]) {
    if steps.is_empty() {
        return;
    }
    let _ = writeln!(o, "- **{title}:**");
    for (i, s) in steps.iter().enumerate() {
        let _ = writeln!(
            o,
            "  {}. **{}** calls connection `{}`: `{}`",
            i + 1,
            s.id,
            s.connection,
            s.request
        );
        if let Some(b) = &s.batch {
            let _ = writeln!(o, "     - batched: `{b}`");
        }
        if let Some(w) = &s.when {
            let _ = writeln!(o, "     - only when `{w}`");
        }
        let _ = writeln!(o, "     - retries: {}", s.retry);
        if !s.fields.is_empty() {
            o.push_str("     - sends:\n\n");
            let mut table = String::new();
            flows(&mut table, &s.fields, "request field");
            for line in table.lines() {
                if line.is_empty() {
                    o.push('\n');
                } else {
                    let _ = writeln!(o, "     {line}");
                }
            }
        }
    }
}

fn flows(o: &mut String, flows: &[FieldFlow], what: &str) {
    let _ = writeln!(o, "  | {what} | from | through |\n  |---|---|---|");
    for f in flows {
        let from = if f.from.is_empty() {
            "—".to_owned()
        } else {
            list(&f.from, |x| format!("`{}`", cell(x)))
        };
        let through = if f.filters.is_empty() {
            "—".to_owned()
        } else {
            cell(&f.filters.join(", "))
        };
        let _ = writeln!(o, "  | `{}` | {from} | {through} |", cell(&f.to));
    }
    o.push('\n');
}

fn alerts(o: &mut String, alerts: &[AlertInfo]) {
    if alerts.is_empty() {
        return;
    }
    o.push_str("- **Who is alerted:**\n");
    for a in alerts {
        let who = if a.channels.is_empty() {
            "nobody".to_owned()
        } else {
            list(&a.channels, |c| format!("`{c}`"))
        };
        let _ = writeln!(o, "  - when {} (`{}`): {who}", a.when, a.condition);
    }
}

fn list(items: &[String], f: impl Fn(&String) -> String) -> String {
    items.iter().map(f).collect::<Vec<_>>().join(", ")
}

/// Text in a table cell: a `|` would end the cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
