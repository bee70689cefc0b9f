//! The watch Lambda's handler is the evaluator: a tick after a run failed
//! for good delivers one signed message (the real webhook channel to a
//! receiver that verifies it), and the next tick sends nothing new.

use std::sync::Arc;

use ferry::clock::{Clock, ManualClock};
use ferry::hub::Hub;
use ferry::model::{Failure, RunRecord, RunStatus};
use ferry::store::{SqliteOptions, SqliteStore};
use ferry_testkit::alert_receivers::WebhookReceiver;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

const CONFIG: &str = r#"version: 1
connections:
  crm: { base_url: "http://127.0.0.1:9" }
sources:
  form: { verify: { scheme: api-key, header: X-Key, secret: "${env:KEY}" } }
workflows:
  lead:
    trigger: { source: form }
    steps: [ { id: contact, connection: crm, request: { path: /contacts } } ]
alerts:
  channels:
    hook: { type: webhook, url: "${env:HOOK_URL}", secret: "${env:HOOK_SECRET}" }
  default: [hook]
"#;

#[tokio::test]
async fn a_tick_delivers_what_failed_and_the_next_repeats_nothing() {
    let clock = ManualClock::at(1_800_000_000_000);
    let rx = WebhookReceiver::start(SECRET, clock.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path(),
        SqliteOptions {
            max_receives: 5,
            clock: clock.clone(),
        },
    )
    .unwrap();
    let url = rx.url().to_owned();
    let env = move |n: &str| match n {
        "KEY" => Some("k".to_owned()),
        "HOOK_URL" => Some(url.clone()),
        "HOOK_SECRET" => Some(SECRET.to_owned()),
        _ => None,
    };
    let loaded = ferry::config::load_str(CONFIG, &env).unwrap();
    let hub: Arc<Hub> = Hub::new(loaded.config, loaded.secrets, store.ports()).unwrap();
    let senders = ferry::alerts::Senders::with_clock(clock.clone());

    let now = clock.now_ms();
    let run = RunRecord {
        id: "r-1".into(),
        workflow: "lead".into(),
        source: "form".into(),
        event_id: "e-1".into(),
        status: RunStatus::DeadLettered,
        attempts: 1,
        created_at: now,
        updated_at: now,
        error: Some("step contact: HTTP 422".into()),
        failure: Some(Failure::Rejected),
        steps: Vec::new(),
        event: None,
        expires_at: None,
        rerun_of: None,
        reruns: Vec::new(),
    };
    ferry::alerts::note::finished(&hub, &run).await;
    clock.advance(60_000);
    let report = ferry_watch::handle(&hub, &senders).await.unwrap();
    assert_eq!(report.opened, ["run_failed:workflow:lead"]);
    assert_eq!((report.queued, report.delivered.sent), (1, 1));
    let got = rx.verified();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1["facts"]["run"], "r-1");
    clock.advance(60_000);
    let report = ferry_watch::handle(&hub, &senders).await.unwrap();
    assert_eq!((report.queued, report.delivered.sent), (0, 0));
    assert_eq!(rx.verified().len(), 1);
}
