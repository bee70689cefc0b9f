//! Bulk replay: 500 dead letters across three workflows; a dry run counts
//! exactly one workflow's and changes nothing; the real replay runs each of
//! them exactly once at the target; the same replay again replays nothing.

mod replay_support;

use std::collections::HashSet;

use ferry::dlq::{self, Selection};
use ferry::model::{
    Attempt, Event, Job, RunJob, RunRecord, RunStatus, StepRecord, StepStatus, new_run_id,
};
use replay_support::{Bench, T0};
use serde_json::{Value, json};

const CONFIG: &str = r#"version: 1
connections:
  crm: { base_url: "${env:CRM_URL}" }
sources:
  form: { verify: { scheme: api-key, header: X-Key, secret: "${env:KEY}" }, event_id: "{{ body.id }}" }
workflows:
  wa: { trigger: { source: form }, steps: [ { id: a, connection: crm, request: { path: /a, json: { id: "{{ body.id }}" } } } ] }
  wb: { trigger: { source: form }, steps: [ { id: a, connection: crm, request: { path: /b, json: { id: "{{ body.id }}" } } } ] }
  wc: { trigger: { source: form }, steps: [ { id: a, connection: crm, request: { path: /c, json: { id: "{{ body.id }}" } } } ] }
"#;

const WORKFLOWS: [&str; 3] = ["wa", "wb", "wc"];

/// `n` dead-lettered runs, workflow `i % 3`, made through the ports (a run
/// record with its failed step, its job dead-lettered with a reason naming
/// the workflow). Workflow `wc`'s die a minute after the others.
async fn dead_letters(bench: &Bench, n: usize) {
    let ports = &bench.hub.ports;
    let mut bodies = Vec::new();
    for i in 0..n {
        let workflow = WORKFLOWS[i % 3];
        let job = RunJob {
            run_id: new_run_id(),
            workflow: workflow.into(),
            source: "form".into(),
            event_id: format!("e-{i}"),
            event: Event {
                body: json!({ "id": i }),
                ..Event::default()
            },
        };
        let run = RunRecord {
            id: job.run_id.clone(),
            workflow: workflow.into(),
            source: "form".into(),
            event_id: job.event_id.clone(),
            status: RunStatus::DeadLettered,
            attempts: 1,
            created_at: T0,
            updated_at: T0,
            error: Some(format!("step a: HTTP 503 ({workflow})")),
            failure: Some(ferry::model::Failure::Exhausted),
            steps: vec![StepRecord {
                id: "a".into(),
                status: StepStatus::Failed,
                attempts: vec![Attempt {
                    n: 1,
                    started_at: T0,
                    duration_ms: 5,
                    status_code: Some(503),
                    error: Some("HTTP 503".into()),
                    ..Attempt::default()
                }],
                budget_from: 0,
                last_error: Some("HTTP 503".into()),
            }],
            rerun_of: None,
            reruns: Vec::new(),
            event: None,
            expires_at: None,
        };
        ports.runs.put(&run).await.unwrap();
        bodies.push((Job::Run(job).encode(), std::time::Duration::ZERO));
    }
    for chunk in bodies.chunks(100) {
        ports.queue.send_batch(chunk).await.unwrap();
    }
    let mut later = Vec::new();
    loop {
        let got = ports
            .queue
            .receive(
                100,
                std::time::Duration::from_secs(600),
                std::time::Duration::ZERO,
            )
            .await
            .unwrap();
        if got.is_empty() {
            break;
        }
        for m in got {
            let Ok(Job::Run(job)) = Job::decode(&m.body) else {
                unreachable!()
            };
            let reason = format!("step a: HTTP 503 ({})", job.workflow);
            if job.workflow == "wc" {
                later.push((m.receipt, reason));
            } else {
                ports.queue.dead_letter(&m.receipt, &reason).await.unwrap();
            }
        }
    }
    bench.clock.advance(60_000);
    for (receipt, reason) in later {
        ports.queue.dead_letter(&receipt, &reason).await.unwrap();
    }
}

fn ids_at(bench: &Bench, path: &str) -> Vec<u64> {
    bench
        .target
        .seen_at(path)
        .iter()
        .map(|s| s.body["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_replay_runs_each_picked_dead_letter_exactly_once() {
    let bench = Bench::start(CONFIG).await;
    for p in ["/crm/a", "/crm/b", "/crm/c"] {
        bench.target.respond(p, 200, Value::Null);
    }
    dead_letters(&bench, 500).await;
    let hub = &bench.hub;
    assert_eq!(hub.ports.queue.dead_letters(1000).await.unwrap().len(), 500);

    // Dry runs: exactly wa's (167 of 500), and the filters narrow as they say.
    let only_a = Selection {
        workflow: Some("wa".into()),
        ..Selection::default()
    };
    let picked = dlq::select(hub, &only_a).await.unwrap();
    assert_eq!(picked.len(), 167);
    assert!(picked.iter().all(|l| l.workflow.as_deref() == Some("wa")));
    let by_reason = Selection {
        reason_contains: Some("(wb)".into()),
        ..Selection::default()
    };
    assert_eq!(dlq::select(hub, &by_reason).await.unwrap().len(), 167);
    let recent = Selection {
        all: true,
        since: Some(T0 + 30_000),
        ..Selection::default()
    };
    assert_eq!(dlq::select(hub, &recent).await.unwrap().len(), 166);
    let all = Selection {
        all: true,
        ..Selection::default()
    };
    assert_eq!(dlq::select(hub, &all).await.unwrap().len(), 500);
    assert!(
        dlq::select(hub, &Selection::default())
            .await
            .unwrap()
            .is_empty()
    );
    bench.drain(5).await;
    assert_eq!(bench.target.seen().len(), 0, "a dry run changes nothing");
    assert_eq!(hub.ports.queue.dead_letters(1000).await.unwrap().len(), 500);

    // The real replay: each of wa's runs exactly once at the target.
    let mut last = (0, 0);
    let done = dlq::replay_all(hub, &picked, |i, n| last = (i, n)).await;
    assert_eq!(
        (done.replayed.len(), done.skipped, done.failed.len()),
        (167, 0, 0)
    );
    assert_eq!(last, (167, 167), "progress reaches the end");
    bench.drain(20).await;
    let calls = ids_at(&bench, "/crm/a");
    assert_eq!(calls.len(), 167, "each once");
    assert_eq!(calls.iter().collect::<HashSet<_>>().len(), 167);
    assert!(calls.iter().all(|i| i % 3 == 0), "only wa's");
    assert_eq!(bench.target.seen().len(), 167, "nothing of wb's or wc's");
    for (_, run) in &done.replayed {
        let run = bench.run(run.as_deref().unwrap()).await.unwrap();
        assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    }
    assert_eq!(hub.ports.queue.dead_letters(1000).await.unwrap().len(), 333);

    // The same command again: nothing is left to pick; and a replay that
    // listed them before the first one ran (a concurrent command) skips them.
    assert!(dlq::select(hub, &only_a).await.unwrap().is_empty());
    let again = dlq::replay_all(hub, &picked, |_, _| {}).await;
    assert_eq!(
        (again.replayed.len(), again.skipped, again.failed.len()),
        (0, 167, 0)
    );
    bench.drain(20).await;
    assert_eq!(bench.target.seen().len(), 167, "nothing replayed twice");
}
