//! A sender that records the alerts it is handed (and can fail on purpose),
//! for the evaluator's tests on either store.
#![allow(dead_code)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use ferry::alerts::{Notice, SendError, Sender};
use ferry::config::{Channel, Condition};

/// A minute of the manual clock.
pub const MINUTE: i64 = 60_000;

/// Source `form` → workflow `lead` → `crm` at `/contacts`, reading
/// `body.email` (required) and `body.note` (optional); alerts to `hook`.
/// `EXTRA` is replaced by more config (inside `alerts:` and after it).
const CONFIG: &str = r#"version: 1
connections:
  crm: { base_url: "${env:CRM_URL}" }
sources:
  form:
    verify: { scheme: api-key, header: X-Key, secret: "${env:KEY}" }
    event_id: "{{ body.id }}"
    SOURCE_EXTRA
workflows:
  lead:
    trigger: { source: form }
    steps:
      - id: contact
        connection: crm
        request: { path: /contacts, json: { email: "{{ body.email }}", note: "{{ body.note | default('') }}" } }
alerts:
  channels:
    hook: { type: webhook, url: "http://127.0.0.1:9/in", secret: "${env:ALERT_SECRET}" }
  default: [hook]
"#;

pub fn config(source_extra: &str) -> String {
    CONFIG.replace("SOURCE_EXTRA", source_extra)
}

/// `n` minutes, evaluating at the end of each.
pub async fn minutes(
    hub: &ferry::hub::Hub,
    clock: &ferry::clock::ManualClock,
    sender: &dyn Sender,
    n: usize,
) {
    for _ in 0..n {
        clock.advance(MINUTE);
        ferry::alerts::evaluate(hub, sender).await.unwrap();
    }
}

/// Records every message; fails the next `fail` sends (retryably).
#[derive(Default)]
pub struct Recorder {
    pub got: Mutex<Vec<(String, Notice)>>,
    pub fail: AtomicUsize,
    pub attempts: AtomicUsize,
}

#[async_trait]
impl Sender for Recorder {
    async fn send(&self, name: &str, _: &Channel, notice: &Notice) -> Result<(), SendError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(SendError {
                retryable: true,
                retry_after: None,
                message: "500 from the channel".into(),
            });
        }
        self.got
            .lock()
            .unwrap()
            .push((name.to_owned(), notice.clone()));
        Ok(())
    }
}

impl Recorder {
    pub fn of(&self, c: Condition) -> Vec<Notice> {
        let got = self.got.lock().unwrap();
        got.iter()
            .filter(|(_, n)| n.condition == c)
            .map(|(_, n)| n.clone())
            .collect()
    }
}
