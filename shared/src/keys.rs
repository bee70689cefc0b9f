//! Every key ferry writes to the store, built here and nowhere else.
//!
//! Grouped by the port that holds them (each port is its own namespace):
//!
//! | port | key | what it holds |
//! |---|---|---|
//! | idempotency | `ingest:<source>:<event id>` | an accepted event (dedupe) |
//! | idempotency | `step:<run id>:<step>` | a step's claim, then its output |
//! | idempotency | `sync-lease:<sync>` | the one pass of a sync running now |
//! | idempotency | `oauth2:<connection>:refresh` | the one token request in flight |
//! | idempotency | `conc:<sha256 of workflow, key>:<i>` | slot `i` of a `concurrency` key |
//! | idempotency | `redrive:<message id>` | a message SQS moved back from the DLQ, replayed once |
//! | idempotency | `replay:<dead letter id>:<dead at>` | a dead letter `ferry dlq replay` put back once |
//! | cursors | `sync:<sync>` | a sync's watermark, pass position and counts |
//! | cursors | `sync:<sync>:key:<record key>` | a two-way sync's shadow of one record |
//! | cursors | `oauth2:<connection>` | a connection's OAuth 2.0 token |
//! | cursors | `pause:<workflow\|connection>:<name>` | paused or resumed, and when |
//! | cursors | `alerts` | open and recent alerts, the outbox, the evaluator's mark |
//! | cursors | `fields:<source>` | the fields seen in a source's events (drift) |
//! | rate limits | `conn:<connection>` | the connection's bucket and its pause |
//! | rate limits | `conn:<connection>:key:<value>` | a per-key bucket (`rate_limit.key`) |
//! | tallies | `<what>:<name>` per minute | `run_failed`, `finished`, `late` (workflows), `auth_failed` (connections) |
//!
//! Names of sources, syncs and connections are identifiers (the config
//! checks them), so a `:` in a key always separates parts.

/// An accepted event of `source` (the dedupe claim).
pub fn ingest(source: &str, event_id: &str) -> String {
    format!("ingest:{source}:{event_id}")
}

/// A step's claim and, once it succeeded, its output.
pub fn step(run_id: &str, step: &str) -> String {
    format!("step:{run_id}:{step}")
}

/// The lease of the pass of sync `name` running now.
pub fn sync_lease(name: &str) -> String {
    format!("sync-lease:{name}")
}

/// The lock on a connection's token request.
pub fn oauth2_refresh(connection: &str) -> String {
    format!("oauth2:{connection}:refresh")
}

/// A message moved back from the dead-letter queue by SQS's own redrive
/// (its token: the SQS message id), so its run is replayed once.
pub fn redrive(token: &str) -> String {
    format!("redrive:{token}")
}

/// A dead letter replayed by `ferry dlq replay` (its id and when it died:
/// the same message dead-lettered again later is another dead letter).
pub fn replay(dead_letter: &str, dead_at: i64) -> String {
    format!("replay:{dead_letter}:{dead_at}")
}

/// What every concurrency slot's key starts with (`ferry dev` frees them at restart).
pub const CONCURRENCY_PREFIX: &str = "conc:";

/// A `concurrency` group: a workflow and a rendered key, hashed (hex).
pub fn concurrency_group(hash_hex: &str) -> String {
    format!("{CONCURRENCY_PREFIX}{hash_hex}")
}

/// Slot `i` of a `concurrency` group.
pub fn concurrency_slot(group: &str, i: u32) -> String {
    format!("{group}:{i}")
}

/// The cursor of sync `name`.
pub fn sync_cursor(name: &str) -> String {
    format!("sync:{name}")
}

/// A two-way sync's shadow copy of the record with key `record`.
pub fn sync_shadow(name: &str, record: &str) -> String {
    format!("sync:{name}:key:{record}")
}

/// A connection's OAuth 2.0 token (a cursor, so its version guards updates).
pub fn oauth2_token(connection: &str) -> String {
    format!("oauth2:{connection}")
}

/// Whether a workflow or a connection is paused.
pub fn pause(kind: crate::pause::Kind, name: &str) -> String {
    format!("pause:{}:{name}", kind.as_str())
}

/// A connection's rate-limit bucket and pause.
pub fn connection(name: &str) -> String {
    format!("conn:{name}")
}

/// The `rate_limit.tokens` budget of a connection.
pub fn connection_tokens(name: &str) -> String {
    format!("{}:tokens", connection(name))
}

/// The bucket of one rendered `rate_limit.key` value on a connection.
pub fn connection_value(name: &str, value: &str) -> String {
    format!("{}:key:{value}", connection(name))
}

/// The alert book (see `crate::alerts`).
pub const ALERT_BOOK: &str = "alerts";

/// The fields seen in the events of `source` (schema drift).
pub fn source_fields(source: &str) -> String {
    format!("fields:{source}")
}

/// What a tally counts: `what` (`run_failed`, `finished`, `late`,
/// `auth_failed`) of the workflow or connection `name`.
pub fn tally(what: &str, name: &str) -> String {
    format!("{what}:{name}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn keys_of_one_port_never_collide() {
        // Same names everywhere: only the key's kind tells them apart.
        let n = "crm";
        let claims = [
            ingest(n, n),
            step(n, n),
            sync_lease(n),
            oauth2_refresh(n),
            concurrency_slot(&concurrency_group(n), 0),
            redrive(n),
            replay(n, 0),
        ];
        let cursors = [
            sync_cursor(n),
            sync_shadow(n, n),
            oauth2_token(n),
            pause(crate::pause::Kind::Workflow, n),
            pause(crate::pause::Kind::Connection, n),
            ALERT_BOOK.to_owned(),
            source_fields(n),
        ];
        let limits = [connection(n), connection_value(n, n)];
        for group in [&claims[..], &cursors[..], &limits[..]] {
            let distinct: HashSet<_> = group.iter().collect();
            assert_eq!(distinct.len(), group.len(), "{group:?}");
        }
        assert_eq!(connection_value("crm", "acct-1"), "conn:crm:key:acct-1");
    }
}
