//! The [`Tallies`](crate::ports::Tallies) contract: adds count atomically per
//! subject and window, keep the first time and the latest sample, and a
//! window reads back only its own subjects.

use std::sync::Arc;

use super::{Backend, Case, Env, T0, case_list, unique};

pub(super) fn cases() -> Vec<Case> {
    case_list!("tallies": counts_per_subject_and_window, concurrent_adds_all_count)
}

/// A window no other case uses (windows are shared by every case on a backend).
fn fresh_window() -> crate::clock::Millis {
    T0 + rand::random_range(0..1_000_000_000i64) * 300_000
}

/// Two subjects in one window and one in the next are counted apart; each
/// tally keeps its first time and its latest time and sample.
async fn counts_per_subject_and_window(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let t = &env.ports.tallies;
    let window = fresh_window();
    let (a, c) = (unique("run_failed:wf"), unique("auth_failed:conn"));
    assert!(
        t.window(window).await.unwrap().is_empty(),
        "a fresh window is empty"
    );
    t.add(&a, window, window + 10, "first reason")
        .await
        .unwrap();
    t.add(&a, window, window + 20, "second reason")
        .await
        .unwrap();
    t.add(&a, window, window + 30, "third reason")
        .await
        .unwrap();
    t.add(&c, window, window + 15, "401").await.unwrap();
    t.add(&a, window + 300_000, window + 300_001, "next window")
        .await
        .unwrap();

    let mut got = t.window(window).await.unwrap();
    got.sort_by(|x, y| x.subject.cmp(&y.subject));
    let mut want = vec![
        (a.clone(), 3, window + 10, window + 30, "third reason"),
        (c.clone(), 1, window + 15, window + 15, "401"),
    ];
    want.sort();
    let got: Vec<_> = got
        .iter()
        .map(|x| {
            (
                x.subject.clone(),
                x.count,
                x.first,
                x.last,
                x.sample.as_str(),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert!(
        t.window(window)
            .await
            .unwrap()
            .iter()
            .all(|x| x.window == window)
    );
    let next = t.window(window + 300_000).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!((next[0].subject.as_str(), next[0].count), (a.as_str(), 1));
}

/// Many adds at once, from many tasks, all count (no lost update).
async fn concurrent_adds_all_count(b: Arc<dyn Backend>) {
    let env = Env::new(&*b).await;
    let window = fresh_window();
    let subject = unique("run_failed:busy");
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let t = env.ports.tallies.clone();
            let subject = subject.clone();
            tokio::spawn(async move { t.add(&subject, window, window + i, "boom").await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let got = env.ports.tallies.window(window).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].count, 40);
    let (first, last) = (got[0].first, got[0].last);
    assert!(
        (window..window + 40).contains(&first) && (window..window + 40).contains(&last),
        "first {first} and last {last} are adds' times"
    );
}
