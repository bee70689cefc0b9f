//! `ferry runs export ID --as-test`: a recorded run as a case, with the
//! event it received (payload and visible headers) and, per step, the
//! answers it got in order; expected: the status it ended with and the
//! request each step sent first.

use std::collections::BTreeMap;

use super::file::{
    Answer, Case, EventSpec, Expect, IngestExpect, Mock, Reply, RequestExpect, StepExpect,
};
use crate::model::RunRecord;

/// `run` as a case; `bases` maps each step id to its connection's base
/// URL, so expected paths are written after it. Fails when the run log
/// holds no event for it (or only a truncated one).
pub fn case_of(run: &RunRecord, bases: &BTreeMap<String, String>) -> Result<Case, String> {
    let event = run
        .event
        .as_ref()
        .ok_or_else(|| format!("run {} has no recorded event", run.id))?;
    if event.truncated {
        return Err(format!(
            "run {}: its payload was cut when recorded; it cannot be replayed as a test",
            run.id
        ));
    }
    let mut mocks = BTreeMap::new();
    let mut steps = BTreeMap::new();
    for s in &run.steps {
        let answers: Vec<Answer> = s
            .attempts
            .iter()
            .filter_map(|a| a.response.as_ref())
            .map(|r| {
                Answer::Full(Reply {
                    status: Some(r.status),
                    headers: r
                        .headers
                        .iter()
                        .filter(|(k, _)| k.as_str() == "retry-after")
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    body: Some(r.body.clone()),
                    ..Reply::default()
                })
            })
            .collect();
        let request = s
            .attempts
            .first()
            .and_then(|a| a.request.as_ref())
            .map(|r| RequestExpect {
                method: Some(r.method.clone()),
                path: Some(path_of(&r.url, bases.get(&s.id).map(String::as_str))),
                headers: BTreeMap::new(),
                body: (!r.truncated && !r.body.is_null()).then(|| r.body.clone()),
            });
        if !answers.is_empty() {
            mocks.insert(s.id.clone(), Mock::Seq(answers));
        }
        steps.insert(
            s.id.clone(),
            StepExpect {
                calls: Some(
                    s.attempts
                        .iter()
                        .filter(|a| a.response.is_some() || a.error.is_some())
                        .count(),
                ),
                request,
            },
        );
    }
    let headers = event
        .headers
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "content-length" | "host" | "content-type" | "user-agent" | "accept"
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let failure = run
        .failure
        .and_then(|f| serde_json::to_value(f).ok())
        .and_then(|v| v.as_str().map(str::to_owned));
    Ok(Case {
        name: format!(
            "run {} of {} ({})",
            run.id,
            run.workflow,
            run.status.as_str()
        ),
        event: EventSpec {
            source: run.source.clone(),
            payload: event.payload.clone(),
            headers,
            ..EventSpec::default()
        },
        mocks,
        expect: Expect {
            ingest: Some(IngestExpect::Status(202)),
            status: Some(run.status.as_str().to_owned()),
            failure,
            steps,
            ..Expect::default()
        },
    })
}

/// The path and query of `url` after `base` (the connection's base URL);
/// without it, everything after the host.
fn path_of(url: &str, base: Option<&str>) -> String {
    if let Some(rest) = base.and_then(|b| url.strip_prefix(b.trim_end_matches('/'))) {
        return if rest.starts_with('/') {
            rest.to_owned()
        } else {
            format!("/{rest}")
        };
    }
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/')
        .map_or("/".to_owned(), |i| rest[i..].to_owned())
}
