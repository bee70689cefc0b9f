//! A sender that records the alerts it is handed (and can fail on purpose),
//! for the evaluator's tests on either store.
#![allow(dead_code)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use ferry::alerts::{Notice, SendError, Sender};
use ferry::config::{Channel, Condition};

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
