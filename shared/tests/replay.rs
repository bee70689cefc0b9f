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

#[tokio::test]
async fn a_rerun_is_a_new_run_of_the_same_event_linked_both_ways() {
    let bench = Bench::start(&RETRYING.replace("RETRY", "{ max_attempts: 1 }")).await;
    bench.target.respond("/crm/x", 422, Value::Null);
    let old_id = bench.send("r-3").await;
    assert_eq!(bench.drive(&old_id).await.status, RunStatus::DeadLettered);

    bench.target.respond("/crm/x", 200, Value::Null);
    let new_id = ferry::rerun::rerun(&bench.hub, &old_id).await.unwrap();
    assert_ne!(new_id, old_id);
    let new = bench.drive(&new_id).await;
    assert_eq!(new.status, RunStatus::Succeeded, "{new:?}");
    assert_eq!(new.rerun_of.as_deref(), Some(old_id.as_str()));
    assert_eq!((new.workflow.as_str(), new.event_id.as_str()), ("w", "r-3"));
    let old = bench.run(&old_id).await.unwrap();
    assert_eq!(old.reruns, std::slice::from_ref(&new_id));
    assert_eq!(
        old.status,
        RunStatus::DeadLettered,
        "the old run is left as it was"
    );
    let seen = bench.target.seen_at("/crm/x");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].body["id"], "r-3", "the same event");
    assert_eq!(seen[1].header("idempotency-key"), format!("{new_id}:a"));

    // The re-run succeeded and left no dead letter: it is re-run from the
    // event its record keeps.
    let third = ferry::rerun::rerun(&bench.hub, &new_id).await.unwrap();
    assert_eq!(bench.drive(&third).await.status, RunStatus::Succeeded);
    let seen = bench.target.seen_at("/crm/x");
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2].body["id"], "r-3", "the same event, from the record");
    let missing = ferry::rerun::rerun(&bench.hub, "nope").await.unwrap_err();
    assert_eq!(missing, "no run with id nope");
}
