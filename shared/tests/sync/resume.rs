//! Budgets and leases: a run stopped by its budget after page 7 resumes at
//! page 8; overlapping runs never both advance the cursor.

use ferry::clock::ManualClock;
use ferry::sync::{Outcome, PagePos, RunOptions, SyncError, run_sync, run_sync_with};
use std::time::Duration;

use crate::api::Api;
use crate::one_way::config;
use crate::support::{drain, hub};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_stop_after_page_7_resumes_at_page_8() {
    let api = Api::start().await;
    api.seed(2500, 1);
    let clock = ManualClock::at(1_800_000_000_000);
    // Each page takes one second of (injected) time.
    let c = clock.clone();
    api.on_get(move |_| c.advance(1000));
    let yaml = config("page", "    budget: 7500ms\n");
    let env = hub(&yaml, &[("API_URL", &api.url)], Some(clock.clone()));
    let h = &env.hub;

    let first = run_sync(h, "contacts").await.unwrap();
    assert_eq!(first.outcome, Outcome::Stopped, "{first:?}");
    assert_eq!((first.pages, first.counts.sent), (7, 700));
    let pass = first.state.polls["source"].pass.clone().unwrap();
    assert_eq!(pass.next, PagePos::Page { n: 8 });
    assert_eq!(api.gets().len(), 7);

    let second = run_sync_with(
        h,
        "contacts",
        &RunOptions {
            budget: Some(Duration::from_secs(3600)),
            ..RunOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(second.outcome, Outcome::Completed, "{second:?}");
    let gets = api.gets();
    assert!(gets[7].contains("page=8"), "resumes at page 8: {}", gets[7]);
    assert_eq!(second.counts.sent, 1800);
    assert!(second.state.polls["source"].pass.is_none());

    drain(h).await;
    let d = api.deliveries();
    assert_eq!(d.len(), 2500);
    assert!(
        d.values().all(|n| *n == 1),
        "every record exactly once across both runs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_runs_hold_a_lease() {
    let api = Api::start().await;
    api.seed(600, 1);
    let env = hub(&config("cursor", ""), &[("API_URL", &api.url)], None);
    let h = &env.hub;

    // Someone else holds the lease: this run does nothing at all.
    let idem = &h.ports.idempotency;
    idem.claim(
        "sync-lease:contacts",
        "",
        "other-run",
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let busy = run_sync(h, "contacts").await.unwrap();
    assert_eq!((busy.outcome, busy.counts.seen), (Outcome::Busy, 0));
    assert!(api.gets().is_empty());
    idem.release("sync-lease:contacts").await.unwrap();

    // Two at once: one runs, the other backs off.
    let (a, b) = tokio::join!(run_sync(h, "contacts"), run_sync(h, "contacts"));
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut outcomes = [a.outcome, b.outcome];
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(outcomes, [Outcome::Busy, Outcome::Completed]);
    assert_eq!(a.counts.sent + b.counts.sent, 600);
    drain(h).await;
    assert!(api.deliveries().values().all(|n| *n == 1));
    // The lease is given back: the next run goes ahead.
    let next = run_sync(h, "contacts").await.unwrap();
    assert_eq!(next.outcome, Outcome::Completed);
}

/// A run whose cursor another run saved in the meantime (its lease ran out)
/// stops instead of moving the cursor back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_cursor_moved_under_it_stops() {
    let api = Api::start().await;
    api.seed(500, 1);
    let env = hub(&config("cursor", ""), &[("API_URL", &api.url)], None);
    let h = &env.hub;
    let ports = h.ports.clone();
    api.on_get(move |uri| {
        if uri.contains("cursor=tok-200") {
            // Another run saves its own state while this one reads page 3.
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(async {
                    let c = ports.cursors.get("sync:contacts").await.unwrap().unwrap();
                    let theirs = r#"{"polls":{"source":{"watermark":"theirs"}}}"#;
                    ports
                        .cursors
                        .put("sync:contacts", theirs, Some(c.version))
                        .await
                        .unwrap();
                });
            });
        }
    });
    let e = run_sync(h, "contacts").await.unwrap_err();
    assert_eq!(e, SyncError::Moved("contacts".into()));
    let (state, _) = ferry::sync::status(h, "contacts").await.unwrap().unwrap();
    assert_eq!(
        state.polls["source"].watermark.as_deref(),
        Some("theirs"),
        "the other run's cursor stands"
    );
    assert_eq!(state.last_run.unwrap().outcome, "failed");
}
