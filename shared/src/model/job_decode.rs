//! [`Job::decode`](super::Job::decode) without buffering the message.
//!
//! serde reads an internally tagged enum (`#[serde(tag = "type")]`) by
//! copying the whole object into an intermediate tree first (to find the
//! tag wherever it is), then reading the variant from that copy: every
//! string of the event allocated twice. [`Job`] has one variant, so its
//! wire format is also a plain struct with a `type` field, read in one pass.

use serde::Deserialize;

use super::{Event, Job, RunJob};

/// The `type` tags [`Job`] knows.
#[derive(Deserialize)]
enum Kind {
    #[serde(rename = "run.v1")]
    Run,
}

/// [`Job::Run`]'s wire format, its tag a field like the others.
#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "type")]
    kind: Kind,
    run_id: String,
    workflow: String,
    source: String,
    event_id: String,
    event: Event,
}

/// Read a message body written by [`Job::encode`]: what serde's derived
/// reader gives, in one pass.
pub(super) fn decode(body: &str) -> Result<Job, serde_json::Error> {
    let Wire {
        kind: Kind::Run,
        run_id,
        workflow,
        source,
        event_id,
        event,
    } = serde_json::from_str(body)?;
    Ok(Job::Run(RunJob {
        run_id,
        workflow,
        source,
        event_id,
        event,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What serde's derived reader of [`Job`] answers.
    fn derived(body: &str) -> Result<Job, serde_json::Error> {
        serde_json::from_str(body)
    }

    /// Whatever the body, the answer is the derived reader's: the same job,
    /// or an error where it errs.
    #[test]
    fn reads_as_the_derived_reader_does() {
        let job = Job::Run(RunJob {
            run_id: "r-1".into(),
            workflow: "wf".into(),
            source: "form".into(),
            event_id: "e-1".into(),
            event: Event {
                headers: [("x-a".to_owned(), "1".to_owned())].into(),
                query: [("q".to_owned(), "2".to_owned())].into(),
                body: serde_json::json!({ "email": "a@example.com", "n": [1, 2.5, null] }),
                received_at: 42,
            },
        });
        let encoded = job.encode();
        assert_eq!(decode(&encoded).unwrap(), job);
        let bodies = [
            encoded.as_str(),
            // The tag last, an unknown field, an event with defaults.
            r#"{"run_id":"r","workflow":"w","source":"s","event_id":"e","event":{},"x":1,"type":"run.v1"}"#,
            // An unknown tag, no tag, a missing field, a wrong type, not JSON.
            r#"{"type":"run.v2","run_id":"r","workflow":"w","source":"s","event_id":"e","event":{}}"#,
            r#"{"run_id":"r","workflow":"w","source":"s","event_id":"e","event":{}}"#,
            r#"{"type":"run.v1","workflow":"w","source":"s","event_id":"e","event":{}}"#,
            r#"{"type":"run.v1","run_id":7,"workflow":"w","source":"s","event_id":"e","event":{}}"#,
            r#"{"type":"run.v1","#,
            "[]",
        ];
        for body in bodies {
            match (decode(body), derived(body)) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{body}"),
                (Err(_), Err(_)) => {}
                (got, want) => panic!("{body}: {got:?}, derived {want:?}"),
            }
        }
        assert!(decode(bodies[1]).is_ok() && decode(bodies[2]).is_err());
    }
}
