//! Generated cases (`ferry test --standard`, `--generate`): for every
//! workflow, from an example payload, the seven kinds a workflow should be
//! tested with: normal data, each field the templates read missing in turn,
//! a duplicate delivery, a stale and a forged signature, expired
//! credentials (a `401`, then a failing token refresh for OAuth 2.0), a
//! permission error (`403`), and high volume at the connections' documented
//! rate limits.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::file::{
    Answer, Case, EventSpec, Expect, IngestExpect, Mock, Reply, Signature, StepExpect,
};
use crate::config::{Auth, Config, Workflow};
use crate::describe::{fields_of_request, fields_of_template};
use crate::verify::Verifier;

/// Events in the high-volume case when the test file does not say.
pub const DEFAULT_VOLUME: u32 = 20;

/// The generated cases of every workflow whose source has an example in
/// `examples` (by source name); `volume` events in the high-volume case.
pub fn cases(config: &Config, examples: &BTreeMap<String, Value>, volume: u32) -> Vec<Case> {
    let mut out = Vec::new();
    for (name, wf) in &config.workflows {
        let source = &wf.trigger.source;
        let Some(example) = examples.get(source) else {
            continue;
        };
        out.extend(for_workflow(config, name, wf, example, volume));
    }
    out
}

fn ok_mocks(wf: &Workflow) -> BTreeMap<String, Mock> {
    wf.steps.iter().map(|s| (s.id.clone(), ok(&s.id))).collect()
}

fn ok(step: &str) -> Mock {
    Mock::One(Answer::Full(Reply {
        status: Some(200),
        body: Some(json!({ "id": format!("{step}-1") })),
        ..Reply::default()
    }))
}

fn each_called(wf: &Workflow, n: usize) -> BTreeMap<String, StepExpect> {
    wf.steps
        .iter()
        .map(|s| {
            let request = (!s.request.path.contains("{{")).then(|| super::file::RequestExpect {
                method: Some(s.request.method.as_http().to_string()),
                path: Some(s.request.path.clone()),
                ..Default::default()
            });
            (
                s.id.clone(),
                StepExpect {
                    calls: Some(n),
                    request,
                },
            )
        })
        .collect()
}

fn for_workflow(
    config: &Config,
    name: &str,
    wf: &Workflow,
    example: &Value,
    volume: u32,
) -> Vec<Case> {
    let source_name = &wf.trigger.source;
    let source = &config.sources[source_name];
    let event = |payload: Value| EventSpec {
        source: source_name.clone(),
        payload,
        ..EventSpec::default()
    };
    let case = |what: &str, event: EventSpec, mocks, expect| Case {
        name: format!("{name}: {what}"),
        event,
        mocks,
        expect,
    };
    let mut out = vec![case(
        "normal data",
        event(example.clone()),
        ok_mocks(wf),
        Expect {
            ingest: Some(IngestExpect::Status(202)),
            status: Some("succeeded".into()),
            steps: each_called(wf, 1),
            ..Expect::default()
        },
    )];
    // Each field the templates read, missing in turn.
    let id_fields = source
        .event_id
        .as_deref()
        .map(fields_of_template)
        .unwrap_or_default();
    let when_fields = wf
        .when
        .as_deref()
        .map(fields_of_template)
        .unwrap_or_default();
    let mut read: BTreeSet<String> = id_fields.iter().chain(&when_fields).cloned().collect();
    let mut sources: Vec<&str> = wf.when.iter().map(String::as_str).collect();
    for s in &wf.steps {
        read.extend(fields_of_request(&s.request));
        sources.extend(templates_of(&s.request));
    }
    let top: BTreeSet<&str> = read
        .iter()
        .filter_map(|f| f.strip_prefix("body."))
        .map(|f| f.split('.').next().unwrap_or(f))
        .filter(|f| example.get(f).is_some())
        .collect();
    for field in top {
        let mut payload = example.clone();
        if let Some(m) = payload.as_object_mut() {
            m.remove(field);
        }
        let path = format!("body.{field}");
        let expect = if id_fields.iter().any(|f| f.starts_with(&path)) {
            Expect {
                ingest: Some(IngestExpect::Status(400)),
                ..Expect::default()
            }
        } else if when_fields.iter().any(|f| f.starts_with(&path))
            && wf.when.as_deref().is_some_and(|w| w.contains("defined"))
        {
            Expect {
                ingest: Some(IngestExpect::Status(202)),
                status: Some("skipped".into()),
                ..Expect::default()
            }
        } else if sources.iter().all(|s| defaulted(s, &path)) {
            Expect {
                ingest: Some(IngestExpect::Status(202)),
                status: Some("succeeded".into()),
                ..Expect::default()
            }
        } else {
            Expect {
                ingest: Some(IngestExpect::Status(202)),
                status: Some("dead_lettered".into()),
                failure: Some("mapping".into()),
                dead_letter: Some(path.clone()),
                ..Expect::default()
            }
        };
        out.push(case(
            &format!("{path} missing"),
            event(payload),
            ok_mocks(wf),
            expect,
        ));
    }
    // A duplicate delivery: accepted once, run once.
    out.push(case(
        "duplicate delivery",
        EventSpec {
            deliveries: Some(2),
            ..event(example.clone())
        },
        ok_mocks(wf),
        Expect {
            ingest: Some(IngestExpect::Full {
                status: 200,
                body: Some(json!({ "status": "duplicate" })),
            }),
            status: Some("succeeded".into()),
            steps: each_called(wf, 1),
            ..Expect::default()
        },
    ));
    // Signatures: forged is refused; stale is refused when the scheme signs a time.
    if let Ok(v) = Verifier::from_config(&source.verify)
        && !v.secret_headers().is_empty()
    {
        let refused = Expect {
            ingest: Some(IngestExpect::Status(401)),
            ..Expect::default()
        };
        out.push(case(
            "forged signature",
            EventSpec {
                signature: Signature::Forged,
                ..event(example.clone())
            },
            BTreeMap::new(),
            refused.clone(),
        ));
        let (what, expect) = if timestamped(&v) {
            ("stale signature", refused)
        } else {
            (
                "stale signature is accepted: the scheme signs no timestamp, only dedupe stops a replay",
                Expect {
                    ingest: Some(IngestExpect::Status(202)),
                    ..Expect::default()
                },
            )
        };
        out.push(case(
            what,
            EventSpec {
                signature: Signature::Stale,
                ..event(example.clone())
            },
            ok_mocks(wf),
            expect,
        ));
    }
    // Expired credentials, and a permission error, at each authenticated connection's first step.
    let mut seen = BTreeSet::new();
    for (i, step) in wf.steps.iter().enumerate() {
        let Some(conn) = config.connections.get(&step.connection) else {
            continue;
        };
        if !seen.insert(step.connection.clone()) {
            continue;
        }
        let later: Vec<&str> = wf.steps[i + 1..].iter().map(|s| s.id.as_str()).collect();
        let none_later = || {
            later
                .iter()
                .map(|s| {
                    (
                        (*s).to_owned(),
                        StepExpect {
                            calls: Some(0),
                            request: None,
                        },
                    )
                })
                .collect()
        };
        if let Some(auth) = &conn.auth {
            let mut mocks = ok_mocks(wf);
            mocks.insert(step.id.clone(), Mock::One(Answer::Status(401)));
            if matches!(auth, Auth::OAuth2 { .. }) {
                let token = json!({ "access_token": "ferry-test-token", "expires_in": 3600 });
                mocks.insert(
                    format!("{}.token", step.connection),
                    Mock::Seq(vec![
                        Answer::Full(Reply {
                            body: Some(token),
                            ..Reply::default()
                        }),
                        Answer::Full(Reply {
                            status: Some(400),
                            body: Some(json!({ "error": "invalid_grant" })),
                            ..Reply::default()
                        }),
                    ]),
                );
            }
            out.push(case(
                &format!("expired credentials on {} (401)", step.connection),
                event(example.clone()),
                mocks,
                Expect {
                    status: Some("auth_failed".into()),
                    failure: Some("auth_failed".into()),
                    steps: none_later(),
                    ..Expect::default()
                },
            ));
        }
        let mut mocks = ok_mocks(wf);
        mocks.insert(step.id.clone(), Mock::One(Answer::Status(403)));
        out.push(case(
            &format!("permission error on {} (403)", step.connection),
            event(example.clone()),
            mocks,
            Expect {
                status: Some("dead_lettered".into()),
                failure: Some("permission_denied".into()),
                steps: none_later(),
                ..Expect::default()
            },
        ));
    }
    out.push(volume_case(
        config,
        wf,
        example,
        &id_fields,
        volume,
        case("", event(Value::Null), BTreeMap::new(), Expect::default()),
    ));
    out
}

/// `volume` events at once: all succeed, no call over a documented limit,
/// and the virtual time is at least what the slowest limit needs.
fn volume_case(
    config: &Config,
    wf: &Workflow,
    example: &Value,
    id_fields: &BTreeSet<String>,
    volume: u32,
    mut case: Case,
) -> Case {
    let mut payload = example.clone();
    for f in id_fields {
        if let Some(field) = f.strip_prefix("body.")
            && let Some(v) = payload.get_mut(field)
        {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            *v = Value::String(format!("{text}-{{{{ n }}}}"));
        }
    }
    let mut need_ms = 0u128;
    let mut calls: BTreeMap<&str, u128> = BTreeMap::new();
    for s in &wf.steps {
        *calls.entry(s.connection.as_str()).or_default() += u128::from(volume);
    }
    for (conn, n) in calls {
        if let Some(rl) = config
            .connections
            .get(conn)
            .and_then(|c| c.rate_limit.as_ref())
        {
            let req = u128::from(rl.requests.get());
            need_ms = need_ms.max((n.div_ceil(req) - 1) * rl.per.get().as_millis());
        }
    }
    case.name = format!("{}high volume ({volume} events)", case.name);
    case.event.payload = payload;
    case.event.count = Some(volume);
    case.mocks = ok_mocks(wf);
    case.expect = Expect {
        ingest: Some(IngestExpect::Status(202)),
        status: Some("succeeded".into()),
        steps: each_called(wf, volume as usize),
        within_rate_limits: Some(true),
        min_duration: Some(format!("{need_ms}ms")),
        ..Expect::default()
    };
    case
}

/// Whether the scheme signs a time: a signature made a day later differs.
fn timestamped(v: &Verifier) -> bool {
    v.sign(b"{}", 0, Some("x")) != v.sign(b"{}", 86_400_000, Some("x"))
}

/// Whether every mention of `path` in `src` is followed by a `default` filter.
fn defaulted(src: &str, path: &str) -> bool {
    src.match_indices(path).all(|(at, _)| {
        let rest = src[at + path.len()..].trim_start();
        rest.strip_prefix('|').is_some_and(|r| {
            let r = r.trim_start();
            r.starts_with("default")
        })
    })
}

fn templates_of(spec: &crate::config::RequestSpec) -> Vec<&str> {
    fn json<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::String(s) => out.push(s),
            Value::Array(a) => a.iter().for_each(|i| json(i, out)),
            Value::Object(m) => m.values().for_each(|i| json(i, out)),
            _ => {}
        }
    }
    let mut out = vec![spec.path.as_str()];
    out.extend(spec.query.values().map(String::as_str));
    out.extend(spec.headers.values().map(String::as_str));
    out.extend(
        spec.form
            .iter()
            .flat_map(|f| f.values().map(String::as_str)),
    );
    if let Some(j) = &spec.json {
        json(j, &mut out);
    }
    out
}
