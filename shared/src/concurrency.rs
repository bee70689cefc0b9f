//! Per-key concurrency: a workflow's `concurrency: { key, limit }` lets at
//! most `limit` runs with the same rendered `key` execute at once, across
//! every worker and instance.
//!
//! - **Slots in the store.** A (workflow, key) group has `limit` slots, each
//!   an [`Idempotency`] claim on `conc:<sha256(workflow, key)>:<i>` with the
//!   run id as its data. No new port: both stores already share claims with
//!   leases, and the hash keeps a hostile key value from bloating or breaking
//!   store keys.
//! - **Executing means executing now.** A run takes a slot before its first
//!   step (after its `when`: a skipped run takes none) and gives it back
//!   when it stops for now, whatever the outcome: succeeded, dead-lettered,
//!   waiting for a retry or for a rate limit.
//! - **Waiting is not an attempt.** A run that finds every slot taken goes
//!   back to the queue ([`crate::execute::Disposition::Requeue`]) for a random
//!   [`WAIT_MIN`]–[`WAIT_MAX`], so the runs waiting on one key do not all
//!   wake together. No order is kept among them.
//! - **A crashed holder.** The lease ([`lease`]) covers the longest the run
//!   can execute; when a holder dies its slot is free again once the lease
//!   ends (`ferry dev` frees it at once when it restarts). A redelivery of the
//!   same run finds its own run id in the slot and takes it over.

use std::num::NonZeroU32;
use std::time::Duration;

use rand::Rng;
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::config::{Concurrency, Workflow};
use crate::hub::{Hub, step_lease};
use crate::outbound;
use crate::ports::{Claim, Idempotency, StoreResult};

/// Shortest wait of a run that found every slot of its key taken.
pub const WAIT_MIN: Duration = Duration::from_millis(200);
/// Longest wait of a run that found every slot of its key taken.
pub const WAIT_MAX: Duration = Duration::from_millis(1000);
/// Prefix of every slot's store key.
pub const PREFIX: &str = crate::keys::CONCURRENCY_PREFIX;
/// A run re-takes its own slot (left by a crashed delivery) by releasing and
/// claiming it again, for a fresh lease; not when the old lease ends sooner
/// than this, which could release someone else's claim on the expired slot.
const RETAKE_MARGIN: Duration = Duration::from_secs(1);

/// A slot held by a run: give it back with [`release`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The slot's store key.
    pub key: String,
}

/// What a run finds at its workflow's `concurrency` gate.
#[derive(Debug)]
pub enum Entered {
    /// No `concurrency` on this flow: go on.
    Free,
    /// Go on holding this slot; give it back with [`release`].
    Held(Slot),
    /// Every slot of the key is taken: come back after this long (not an attempt).
    Wait(Duration),
    /// The key cannot be rendered for this run: a mapping failure, for good.
    Unmapped(String),
    /// The store could not be asked.
    StoreDown,
}

/// The gate a run of flow `name` passes before its steps, after its `when`;
/// `ctx` is the run's template context.
pub async fn enter(hub: &Hub, name: &str, run_id: &str, ctx: &minijinja::Value) -> Entered {
    let Some((wf, c)) = concurrency_of(hub, name) else {
        return Entered::Free;
    };
    let key = match c
        .key
        .as_ref()
        .map(|k| hub.templates.render(k, ctx))
        .transpose()
    {
        Ok(key) => key,
        Err(e) => return Entered::Unmapped(format!("concurrency.key: {e}")),
    };
    let idem = hub.ports.idempotency.as_ref();
    let clock = hub.ports.clock.as_ref();
    let (group, lease) = (group_key(name, key.as_deref()), lease(hub, wf));
    match acquire(idem, clock, &group, c.limit, run_id, lease).await {
        Ok(Some(slot)) => Entered::Held(slot),
        Ok(None) => {
            tracing::debug!(run_id, "every concurrency slot is taken; waiting");
            Entered::Wait(wait())
        }
        Err(e) => {
            tracing::warn!(run_id, error = %e, "idempotency store unavailable");
            Entered::StoreDown
        }
    }
}

/// The workflow named `name` and its `concurrency`, when it has one (a
/// sync's flows, `sync:<name>…`, have none).
/// Whether flow `name` has a `concurrency` gate ([`enter`] may hold a slot).
pub fn limited(hub: &Hub, name: &str) -> bool {
    concurrency_of(hub, name).is_some()
}

fn concurrency_of<'h>(hub: &'h Hub, name: &str) -> Option<(&'h Workflow, &'h Concurrency)> {
    let name = crate::flow::FlowName::parse(name)?.workflow()?;
    let wf = hub.config.workflows.get(name)?;
    Some((wf, wf.concurrency.as_ref()?))
}

/// The group a run's slots belong to: its workflow and rendered key, hashed
/// (SHA-256, hex) so any value makes a short, well-formed store key.
pub fn group_key(workflow: &str, key: Option<&str>) -> String {
    let mut h = Sha256::new();
    h.update((workflow.len() as u64).to_le_bytes());
    h.update(workflow.as_bytes());
    if let Some(k) = key {
        h.update([1]);
        h.update(k.as_bytes());
    }
    crate::keys::concurrency_group(&hex::encode(h.finalize()))
}

/// How long a slot is leased: the longest the workflow's steps can execute,
/// each as long as its own step claim's lease (twice the connection's
/// timeout, for the call and a retry after a 401, plus 30 s of rate-limit
/// and batch waits). A run that resumes mid-way needs less.
pub fn lease(hub: &Hub, wf: &Workflow) -> Duration {
    wf.steps
        .iter()
        .map(|s| {
            hub.connection(&s.connection)
                .map_or_else(|| step_lease(outbound::DEFAULT_TIMEOUT), |c| c.step_lease)
        })
        .fold(Duration::ZERO, Duration::saturating_add)
}

/// A random wait in [`WAIT_MIN`, `WAIT_MAX`].
pub fn wait() -> Duration {
    let ms = rand::rng().random_range(WAIT_MIN.as_millis()..=WAIT_MAX.as_millis());
    Duration::from_millis(ms as u64)
}

/// Take one of the `limit` slots of `group` for run `run_id`, for `lease`;
/// `None` when another run holds every one. The slots are tried from a
/// random one on, so runs of one key do not all contend for slot 0.
pub async fn acquire(
    idem: &dyn Idempotency,
    clock: &dyn Clock,
    group: &str,
    limit: NonZeroU32,
    run_id: &str,
    lease: Duration,
) -> StoreResult<Option<Slot>> {
    let n = limit.get();
    let first = rand::rng().random_range(0..n);
    for i in (0..n).map(|i| (first + i) % n) {
        let key = crate::keys::concurrency_slot(group, i);
        match idem.claim(&key, "", run_id, lease).await? {
            Claim::Claimed => return Ok(Some(Slot { key })),
            // Left by an earlier delivery of this very run (it crashed, or its
            // message became visible again): take it over with a fresh lease.
            Claim::InProgress { data, lease_until }
                if data == run_id
                    && lease_until - clock.now_ms() > crate::clock::millis(RETAKE_MARGIN) =>
            {
                idem.release(&key).await?;
                if idem.claim(&key, "", run_id, lease).await? == Claim::Claimed {
                    return Ok(Some(Slot { key }));
                }
            }
            // Held by another run (slots are never completed).
            Claim::InProgress { .. } | Claim::Completed { .. } | Claim::PayloadMismatch { .. } => {}
        }
    }
    Ok(None)
}

/// Give a slot back. If that fails, the lease frees it in the end.
pub async fn release(idem: &dyn Idempotency, slot: &Slot) {
    if let Err(e) = idem.release(&slot.key).await {
        tracing::warn!(key = %slot.key, error = %e, "could not release a concurrency slot; its lease frees it");
    }
}

#[cfg(test)]
mod tests;
