//! CloudWatch Embedded Metric Format: what a Lambda invocation counted, as
//! JSON log lines that CloudWatch Logs turns into metrics (no API call).
//!
//! The format is specified in the Amazon CloudWatch User Guide,
//! "Specification: Embedded metric format"
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>):
//! a root object with `_aws: {Timestamp, CloudWatchMetrics: [{Namespace,
//! Dimensions, Metrics}]}`, the dimension values and the metric values as
//! members of the root. On Lambda, a line written to stdout is enough.
//!
//! Each metric keeps its Prometheus name ([`super::EVENTS`], …) and its
//! labels become its dimensions. A root member holds one value, so one line
//! holds one value per dimension: everything an invocation counted fits one
//! line when it touched one source (ingest: always), one workflow status and
//! one connection; otherwise the values are packed into as few lines as the
//! format allows. An invocation that counted nothing prints nothing.
//!
//! Values are taken and reset: each line carries what was counted since the
//! previous one, so CloudWatch's `Sum` over a period is the count in it.

use std::io::Write;

use serde_json::{Map, Value, json};

use super::{CALL_DURATION, CALLS, Class, DLQ_SENDS, EVENTS, Metrics, Outcome, RATE_LIMIT_WAITS};
use super::{RUNS, failure_label};
use crate::hub::Hub;

/// The CloudWatch namespace of every ferry metric.
pub const NAMESPACE: &str = "ferry";

/// One metric value with its dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Metric name (the Prometheus name).
    pub name: &'static str,
    /// CloudWatch unit.
    pub unit: &'static str,
    /// Dimension names and values (the Prometheus labels).
    pub dims: Vec<(&'static str, String)>,
    /// A count, or an array of observed values.
    pub value: Value,
}

impl Metrics {
    /// Everything counted since the last take, and reset.
    pub fn take(&self) -> Vec<Series> {
        let mut out = Vec::new();
        let count = |name, dims: Vec<(&'static str, String)>, n: u64| {
            (n > 0).then(|| Series {
                name,
                unit: "Count",
                dims,
                value: json!(n),
            })
        };
        self.sources.each(|source, tallies| {
            for o in Outcome::ALL {
                let dims = vec![
                    ("source", source.to_owned()),
                    ("outcome", o.as_str().into()),
                ];
                out.extend(count(EVENTS, dims, tallies[o.index()].take()));
            }
        });
        self.flows.each(|workflow, t| {
            let runs = t.runs.lock().unwrap_or_else(|p| p.into_inner());
            for (status, failure, tally) in runs.iter() {
                let dims = vec![
                    ("workflow", workflow.to_owned()),
                    ("status", status.as_str().into()),
                    ("failure", failure_label(*failure).into()),
                ];
                out.extend(count(RUNS, dims, tally.take()));
            }
            let dims = vec![("workflow", workflow.to_owned())];
            out.extend(count(DLQ_SENDS, dims, t.dlq.take()));
        });
        self.connections.each(|conn, t| {
            for c in Class::ALL {
                let dims = vec![
                    ("connection", conn.to_owned()),
                    ("class", c.as_str().into()),
                ];
                out.extend(count(CALLS, dims, t.calls[c.index()].take()));
            }
            let recent = std::mem::take(&mut *t.recent.lock().unwrap_or_else(|p| p.into_inner()));
            if !recent.is_empty() {
                out.push(Series {
                    name: CALL_DURATION,
                    unit: "Seconds",
                    dims: vec![("connection", conn.to_owned())],
                    value: json!(recent),
                });
            }
            let dims = vec![("connection", conn.to_owned())];
            out.extend(count(RATE_LIMIT_WAITS, dims, t.waits.take()));
        });
        out
    }
}

/// `series` as EMF documents stamped `timestamp_ms`: as few as the format
/// allows (one unless two series need different values of one dimension).
pub fn documents(series: Vec<Series>, timestamp_ms: i64) -> Vec<Value> {
    let mut docs: Vec<Map<String, Value>> = Vec::new();
    for s in series {
        let fits = |doc: &Map<String, Value>| {
            !doc.contains_key(s.name)
                && s.dims
                    .iter()
                    .all(|(k, v)| doc.get(*k).is_none_or(|have| have == v))
        };
        let i = match docs.iter().position(fits) {
            Some(i) => i,
            None => {
                let mut doc = Map::new();
                doc.insert(
                    "_aws".into(),
                    json!({ "Timestamp": timestamp_ms, "CloudWatchMetrics": [] }),
                );
                docs.push(doc);
                docs.len() - 1
            }
        };
        let doc = &mut docs[i];
        let keys: Vec<&str> = s.dims.iter().map(|(k, _)| *k).collect();
        let directive = json!({
            "Namespace": NAMESPACE,
            "Dimensions": [keys],
            "Metrics": [{ "Name": s.name, "Unit": s.unit }],
        });
        if let Some(Value::Array(directives)) = doc
            .get_mut("_aws")
            .and_then(|a| a.get_mut("CloudWatchMetrics"))
        {
            directives.push(directive);
        }
        for (k, v) in s.dims {
            doc.insert(k.into(), Value::String(v));
        }
        doc.insert(s.name.into(), s.value);
    }
    docs.into_iter().map(Value::Object).collect()
}

/// Write what was counted since the last call to `out`, one document per
/// line; returns how many lines were written.
pub fn write(metrics: &Metrics, timestamp_ms: i64, out: &mut impl Write) -> std::io::Result<usize> {
    let docs = documents(metrics.take(), timestamp_ms);
    let mut text = String::new();
    for doc in &docs {
        text.push_str(&doc.to_string());
        text.push('\n');
    }
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(docs.len())
}

/// Print what this invocation counted to stdout, where Lambda sends it to
/// CloudWatch Logs. Called once at the end of each invocation.
pub fn print(hub: &Hub) {
    let now = hub.ports.clock.now_ms();
    if let Err(e) = write(&hub.metrics, now, &mut std::io::stdout().lock()) {
        tracing::warn!(error = %e, "could not write the metrics line");
    }
}
