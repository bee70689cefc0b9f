//! The dead-letter queue, for people: see what failed for good and why, and
//! replay it once the cause is fixed: one dead letter, or every one a
//! [`Selection`] picks. A replayed run resumes at the step that failed, with
//! a fresh retry budget; steps that had succeeded are not called again.
//!
//! A replay only puts the message back on the work queue: the workers run
//! it through the same gates as any run (rate limits, breakers, pauses), so
//! replaying thousands at once never goes over a connection's limit. Each
//! dead letter is replayed once: the redrive removes it from the dead-letter
//! queue, and `replay:<id>:<dead at>` is claimed first, so the same command
//! issued twice (or two at once, or one that crashed half-way) replays
//! nothing a second time.

use std::time::Duration;

use crate::clock::Millis;
use crate::hub::Hub;
use crate::keys;
use crate::model::{Job, RunRecord, RunStatus, StepStatus};
use crate::ports::{Claim, DeadLetter};

/// Most dead letters a listing or a bulk replay looks at.
pub const SCAN: usize = 100_000;
/// How long a replayed dead letter is remembered (longer than SQS keeps a message).
const REPLAYED_TTL: Duration = Duration::from_secs(15 * 24 * 3600);
/// The lease of a replay in progress.
const REPLAY_LEASE: Duration = Duration::from_secs(60);

/// A dead letter with what its body says (when it is a run's job).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    /// The dead letter.
    pub dead: DeadLetter,
    /// The run it belongs to.
    pub run_id: Option<String>,
    /// That run's workflow.
    pub workflow: Option<String>,
}

impl Letter {
    fn of(dead: DeadLetter) -> Letter {
        let (run_id, workflow) = match Job::decode(&dead.body) {
            Ok(Job::Run(j)) => (Some(j.run_id), Some(j.workflow)),
            Err(_) => (None, None),
        };
        Letter {
            dead,
            run_id,
            workflow,
        }
    }
}

/// The newest dead letters, up to `limit`, with the run each belongs to.
pub async fn list(hub: &Hub, limit: usize) -> Result<Vec<(DeadLetter, Option<String>)>, String> {
    let letters = hub
        .ports
        .queue
        .dead_letters(limit)
        .await
        .map_err(|e| e.to_string())?;
    Ok(letters
        .into_iter()
        .map(Letter::of)
        .map(|l| (l.dead, l.run_id))
        .collect())
}

/// Which dead letters to replay: those with one of `ids`, or, with `all`, every
/// one; either way narrowed by the filters that are set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// These dead letters (by id).
    pub ids: Vec<String>,
    /// Every dead letter (when `ids` is empty).
    pub all: bool,
    /// Only runs of this workflow.
    pub workflow: Option<String>,
    /// Only those dead-lettered at or after this time.
    pub since: Option<Millis>,
    /// Only those whose reason contains this text.
    pub reason_contains: Option<String>,
}

impl Selection {
    /// Whether anything narrows it (a selection with nothing replays nothing).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
            && !self.all
            && self.workflow.is_none()
            && self.since.is_none()
            && self.reason_contains.is_none()
    }

    fn picks(&self, l: &Letter) -> bool {
        (self.ids.is_empty() || self.ids.contains(&l.dead.id))
            && self
                .workflow
                .as_ref()
                .is_none_or(|w| l.workflow.as_ref() == Some(w))
            && self.since.is_none_or(|t| l.dead.dead_at >= t)
            && self
                .reason_contains
                .as_ref()
                .is_none_or(|s| l.dead.reason.contains(s.as_str()))
    }
}

/// `--since`: a time (RFC 3339, e.g. `2026-11-30T09:00:00Z`) or a duration
/// before `now` (`2h`, `30m`).
pub fn parse_since(s: &str, now: Millis) -> Result<Millis, String> {
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now - i64::try_from(d.as_millis()).unwrap_or(i64::MAX).min(now));
    }
    let t = humantime::parse_rfc3339_weak(s)
        .map_err(|_| format!("--since {s:?}: not a time (RFC 3339) nor a duration (2h)"))?;
    let ms = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| format!("--since {s:?}: before 1970"))?
        .as_millis();
    Ok(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// The dead letters `sel` picks, newest first (a dry run stops here).
pub async fn select(hub: &Hub, sel: &Selection) -> Result<Vec<Letter>, String> {
    if sel.is_empty() {
        return Ok(Vec::new());
    }
    let letters = hub
        .ports
        .queue
        .dead_letters(SCAN)
        .await
        .map_err(|e| e.to_string())?;
    let picked: Vec<Letter> = letters
        .into_iter()
        .map(Letter::of)
        .filter(|l| sel.picks(l))
        .collect();
    if let Some(missing) = sel
        .ids
        .iter()
        .find(|id| !picked.iter().any(|l| &l.dead.id == *id))
        && sel.workflow.is_none()
        && sel.since.is_none()
        && sel.reason_contains.is_none()
    {
        return Err(format!("no dead letter with id {missing}"));
    }
    Ok(picked)
}

/// What a bulk replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Put back on the queue: (dead letter id, run id).
    pub replayed: Vec<(String, Option<String>)>,
    /// Already replayed (by an earlier or concurrent command).
    pub skipped: usize,
    /// Could not be replayed: (dead letter id, why).
    pub failed: Vec<(String, String)>,
}

/// Replay `letters` (from [`select`]), calling `progress(done, total)` after each.
pub async fn replay_all(
    hub: &Hub,
    letters: &[Letter],
    mut progress: impl FnMut(usize, usize),
) -> Replayed {
    let mut out = Replayed::default();
    for (i, l) in letters.iter().enumerate() {
        match replay_one(hub, l).await {
            Ok(true) => out.replayed.push((l.dead.id.clone(), l.run_id.clone())),
            Ok(false) => out.skipped += 1,
            Err(e) => out.failed.push((l.dead.id.clone(), e)),
        }
        progress(i + 1, letters.len());
    }
    tracing::info!(
        replayed = out.replayed.len(),
        skipped = out.skipped,
        failed = out.failed.len(),
        "replayed dead letters"
    );
    out
}

/// Put dead letter `id` back on the queue. Its run goes back to `queued`
/// (its history kept) so the workers pick it up again. Returns the run id.
pub async fn replay(hub: &Hub, id: &str) -> Result<Option<String>, String> {
    let sel = Selection {
        ids: vec![id.to_owned()],
        ..Selection::default()
    };
    let letters = select(hub, &sel).await?;
    let letter = letters
        .first()
        .ok_or_else(|| format!("no dead letter with id {id}"))?;
    match replay_one(hub, letter).await? {
        true => Ok(letter.run_id.clone()),
        false => Err(format!("dead letter {id} was already replayed")),
    }
}

/// Claim the replay of `l`, reopen its run, move it back. `Ok(false)`: already done.
async fn replay_one(hub: &Hub, l: &Letter) -> Result<bool, String> {
    let ports = &hub.ports;
    let key = keys::replay(&l.dead.id, l.dead.dead_at);
    let claim = ports
        .idempotency
        .claim(&key, "", "", REPLAY_LEASE)
        .await
        .map_err(|e| e.to_string())?;
    if !matches!(claim, Claim::Claimed) {
        return Ok(false);
    }
    let done = reopen_and_redrive(hub, l).await;
    match &done {
        Ok(()) => {
            if let Err(e) = ports.idempotency.complete(&key, "", REPLAYED_TTL).await {
                tracing::warn!(dead_letter = %l.dead.id, error = %e, "replay not marked done");
            }
        }
        Err(_) => {
            ports.idempotency.release(&key).await.ok();
        }
    }
    done.map(|()| true)
}

async fn reopen_and_redrive(hub: &Hub, l: &Letter) -> Result<(), String> {
    let ports = &hub.ports;
    if let Some(run_id) = &l.run_id
        && let Some(mut run) = ports.runs.get(run_id).await.map_err(|e| e.to_string())?
        && run.status.is_final()
    {
        reopen(&mut run, ports.clock.now_ms());
        ports.runs.put(&run).await.map_err(|e| e.to_string())?;
    }
    ports
        .queue
        .redrive(&l.dead.id)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(dead_letter = %l.dead.id, run_id = ?l.run_id, "replayed dead letter");
    Ok(())
}

/// A run that failed for good, made ready to run again as a replay: queued,
/// its failed step pending with a fresh retry budget (`max_attempts` and
/// `max_age` count from now; the earlier attempts stay on the record), the
/// steps that succeeded left as they are (their outputs are reused).
pub fn reopen(run: &mut RunRecord, now: Millis) {
    run.status = RunStatus::Queued;
    run.error = None;
    run.failure = None;
    for step in &mut run.steps {
        if matches!(step.status, StepStatus::Failed | StepStatus::Retrying) {
            step.status = StepStatus::Pending;
            step.budget_from = step.attempts.len();
        }
    }
    run.updated_at = now;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_a_time_or_a_duration_ago() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_since("2h", now), Ok(now - 7_200_000));
        assert_eq!(
            parse_since("2026-11-30T09:00:00Z", now),
            Ok(1_796_029_200_000)
        );
        assert!(parse_since("yesterday", now).is_err());
    }
}
