//! Replaying a dead letter starts a fresh retry budget: `max_attempts` and
//! `max_age` count from the replay, and the earlier attempts stay on the record.
//! The embedded store on a manual clock, so waiting out an age takes no time.

mod replay_support;

use ferry::model::{RunStatus, StepStatus};
use replay_support::{Bench, RETRYING};
use serde_json::Value;

#[tokio::test]
async fn a_replay_after_max_age_calls_the_step_again_and_succeeds() {
    let bench = Bench::start(&RETRYING.replace(
        "RETRY",
        "{ max_attempts: 100, initial_backoff: 500ms, max_backoff: 500ms, max_age: 2s }",
    ))
    .await;
    bench.target.respond("/crm/x", 503, Value::Null);
    let run_id = bench.send("r-1").await;
    let run = bench.drive(&run_id).await;
    assert_eq!(run.status, RunStatus::DeadLettered, "{run:?}");
    assert!(run.error.as_deref().unwrap().contains("max_age"), "{run:?}");
    let before = bench.target.count("/crm/x");
    assert!(before >= 2, "retried within its 2 s: {before} calls");

    // Five seconds after the first attempt (well past max_age), the target
    // is fixed and the dead letter replayed: the step is called and succeeds.
    bench.clock.advance(5_000);
    bench.target.respond("/crm/x", 200, Value::Null);
    let letters = ferry::dlq::list(&bench.hub, 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    ferry::dlq::replay(&bench.hub, &letters[0].0.id)
        .await
        .unwrap();
    let run = bench.drive(&run_id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(bench.target.count("/crm/x"), before + 1);
    let step = &run.steps[0];
    assert_eq!(step.status, StepStatus::Succeeded);
    assert_eq!(step.attempts.len(), before + 1, "earlier attempts kept");
    assert_eq!(step.budget_from, before);
    assert_eq!(step.attempts.last().unwrap().n as usize, before + 1);
}

#[tokio::test]
async fn an_exhausted_run_replayed_gets_its_full_max_attempts_again() {
    let bench = Bench::start(&RETRYING.replace(
        "RETRY",
        "{ max_attempts: 3, initial_backoff: 10ms, max_backoff: 10ms }",
    ))
    .await;
    bench.target.respond("/crm/x", 503, Value::Null);
    let run_id = bench.send("r-2").await;
    let run = bench.drive(&run_id).await;
    assert_eq!(run.status, RunStatus::DeadLettered, "{run:?}");
    assert_eq!(bench.target.count("/crm/x"), 3);

    let letters = ferry::dlq::list(&bench.hub, 10).await.unwrap();
    ferry::dlq::replay(&bench.hub, &letters[0].0.id)
        .await
        .unwrap();
    let run = bench.drive(&run_id).await;
    assert_eq!(run.status, RunStatus::DeadLettered, "{run:?}");
    assert_eq!(
        bench.target.count("/crm/x"),
        6,
        "three more attempts, not one"
    );
    assert!(
        run.error
            .as_deref()
            .unwrap()
            .contains("gave up after 3 attempts"),
        "{run:?}"
    );
    let ns: Vec<u32> = run.steps[0].attempts.iter().map(|a| a.n).collect();
    assert_eq!(ns, [1, 2, 3, 4, 5, 6], "all six on the record");
}
