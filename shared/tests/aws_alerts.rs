//! The alert evaluator on DynamoDB + SQS (moto): a silent source alerts once
//! and resolves, failures are grouped per window with exact counts, and two
//! evaluators (two Lambda instances) send each message once. The same code
//! as on the embedded store (`alerts.rs`); only the ports differ.

mod alerts_support;
mod aws_support;
mod replay_support;

use alerts_support::{MINUTE, Recorder, config, minutes};
use ferry::alerts::{self, State};
use ferry::clock::ManualClock;
use ferry::config::Condition;
use ferry::hub::Hub;
use replay_support::{Bench, T0};
use serde_json::json;

async fn bench(test: &str) -> Option<Bench> {
    let backend = aws_support::backend(test).await?;
    let clock = ManualClock::at(T0);
    let store = backend.store(clock.clone()).await;
    Some(Bench::on(&config("max_silence: 30m"), clock, store.ports()).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_aws_a_silent_source_alerts_once_and_resolves() {
    let Some(b) = bench("on_aws_a_silent_source_alerts_once_and_resolves").await else {
        return;
    };
    let r = Recorder::default();
    alerts::evaluate(&b.hub, &r).await.unwrap();
    minutes(&b.hub, &b.clock, &r, 45).await;
    let sent = r.of(Condition::Silent);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].state, State::Firing);
    b.send_json("form", json!({"id": "1", "email": "a@b.c"}))
        .await;
    b.clock.advance(MINUTE);
    alerts::evaluate(&b.hub, &r).await.unwrap();
    let sent = r.of(Condition::Silent);
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert_eq!(sent[1].state, State::Resolved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_aws_failures_are_grouped_and_two_evaluators_send_once() {
    let Some(b) = bench("on_aws_failures_are_grouped_and_two_evaluators_send_once").await else {
        return;
    };
    b.target
        .respond("/crm/contacts", 422, json!({"error": "invalid"}));
    let second = Hub::new(b.hub.config.clone(), Vec::new(), b.hub.ports.clone()).unwrap();
    let r = Recorder::default();
    for minute in 0..3 {
        for i in 0..15 {
            b.send_json(
                "form",
                json!({"id": format!("{minute}-{i}"), "email": "a@b.c"}),
            )
            .await;
        }
        while b.step().await > 0 {}
        b.clock.advance(MINUTE);
        let (x, y) = tokio::join!(alerts::evaluate(&b.hub, &r), alerts::evaluate(&second, &r));
        x.unwrap();
        y.unwrap();
    }
    for _ in 0..10 {
        b.clock.advance(MINUTE);
        let (x, y) = tokio::join!(alerts::evaluate(&b.hub, &r), alerts::evaluate(&second, &r));
        x.unwrap();
        y.unwrap();
    }
    let sent = r.of(Condition::RunFailed);
    assert!((2..=3).contains(&sent.len()), "{sent:#?}");
    assert_eq!(sent.last().unwrap().state, State::Resolved);
    assert_eq!(sent.iter().map(|n| n.count).sum::<u64>(), 45, "{sent:#?}");
}
