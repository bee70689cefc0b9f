//! Run ids: random for work with no event behind it, derived from the event
//! where a retry after a crash must find the same runs, and time-ordered
//! where the store accepts an event in one atomic write.

use sha2::{Digest, Sha256};

use crate::clock::Millis;

/// A new run id: a UUIDv7, so ids sort by creation time. For work that has
/// no event behind it (a sync pass, a benchmark); a run of an event gets
/// [`run_id_for`] or [`ordered_run_id`].
pub fn new_run_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The run id of `workflow` for event `event_id` of `source`: the same inputs
/// always give the same id, so an event enqueued twice (a crash between the
/// enqueue and the "seen" mark, then the sender's retry) is still one run, and
/// every call of that run carries the same `Idempotency-Key` (`<run id>:<step>`).
/// Ingest uses it where accepting an event takes several writes (DynamoDB +
/// SQS, the composed ports).
///
/// A UUID of version 8 (RFC 9562, custom) over SHA-256 of the three parts,
/// each length-prefixed so no two different triples share an input.
pub fn run_id_for(source: &str, event_id: &str, workflow: &str) -> String {
    let mut bytes = digest(source, event_id, workflow);
    bytes[6] = (bytes[6] & 0x0f) | 0x80; // version 8
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 9562 variant
    uuid::Uuid::from_bytes(bytes).to_string()
}

/// The run id of `workflow` for event `event_id` of `source`, received at
/// `at`: a UUIDv7 whose time is `at` and whose other bits are those of
/// [`run_id_for`]'s hash, so ids sort by the time their events arrived and
/// two runs of the same millisecond still differ.
///
/// Ingest uses it where the store accepts an event in one atomic write
/// ([`Intake::atomic`](crate::ports::Intake::atomic): the embedded store).
/// There no crash leaves an event half-accepted, so nothing needs to find
/// the same id again, and new ids land at the end of the store's id index
/// instead of on a random page of it (see docs/performance.md, "run ids in
/// time order").
pub fn ordered_run_id(at: Millis, source: &str, event_id: &str, workflow: &str) -> String {
    let hash = digest(source, event_id, workflow);
    let ms = u64::try_from(at).unwrap_or(0);
    let counter_random: [u8; 10] = hash[6..].try_into().expect("ten bytes");
    uuid::Builder::from_unix_timestamp_millis(ms, &counter_random)
        .into_uuid()
        .to_string()
}

/// The first 16 bytes of SHA-256 over the three parts, length-prefixed.
fn digest(source: &str, event_id: &str, workflow: &str) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(b"ferry.run.v1");
    for part in [source, event_id, workflow] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_of_events_are_stable_and_distinct() {
        let id = run_id_for("form", "e-1", "new-lead");
        assert_eq!(
            id,
            run_id_for("form", "e-1", "new-lead"),
            "same event, same run"
        );
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 8);
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        for other in [
            run_id_for("form", "e-2", "new-lead"),
            run_id_for("form", "e-1", "other"),
            run_id_for("crm", "e-1", "new-lead"),
            // The parts are length-prefixed: moving a character between them changes the id.
            run_id_for("for", "me-1", "new-lead"),
            run_id_for("form", "e-1n", "ew-lead"),
        ] {
            assert_ne!(id, other);
        }
    }

    #[test]
    fn ordered_run_ids_sort_by_time_and_differ_within_a_millisecond() {
        let at = 1_764_547_200_123; // 2025-12-01T00:00:00.123Z
        let id = ordered_run_id(at, "form", "e-1", "new-lead");
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        let (secs, nanos) = parsed.get_timestamp().unwrap().to_unix();
        assert_eq!(
            secs * 1000 + u64::from(nanos) / 1_000_000,
            at as u64,
            "the id carries its acceptance time"
        );
        assert_eq!(id, ordered_run_id(at, "form", "e-1", "new-lead"));
        // Same millisecond, another event or workflow: another id.
        assert_ne!(id, ordered_run_id(at, "form", "e-2", "new-lead"));
        assert_ne!(id, ordered_run_id(at, "form", "e-1", "other"));
        // Later ids sort after earlier ones, whatever the event.
        let mut ids: Vec<String> = (0..50)
            .map(|i| ordered_run_id(at + i, "form", &format!("e-{}", 97 * i % 50), "w"))
            .collect();
        let in_time_order = ids.clone();
        ids.sort();
        assert_eq!(ids, in_time_order);
        // Not the derived id of the same event.
        assert_ne!(id, run_id_for("form", "e-1", "new-lead"));
    }
}
