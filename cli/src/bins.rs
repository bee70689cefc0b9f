//! What the sandbox keeps, bounded: a sandbox left running while large
//! requests arrive must not grow without end. Each bin keeps its last
//! [`MAX_REQUESTS`] requests and at most [`MAX_BIN_BYTES`] of them; a body over
//! [`MAX_BODY_BYTES`] is kept cut short and marked `body_truncated`; there are
//! at most [`MAX_BINS`] bins and [`MAX_FAILURES`] programmed failures per bin.
//! At most `MAX_BINS × MAX_BIN_BYTES` (64 MiB) is kept in all.

use std::collections::VecDeque;

use serde::{Serialize, Serializer};
use serde_json::Value;

/// Requests a bin keeps (the oldest go first).
pub const MAX_REQUESTS: usize = 100;
/// Bytes of recorded requests (as JSON) a bin keeps (the oldest go first).
pub const MAX_BIN_BYTES: usize = 2 * 1024 * 1024;
/// Bytes of a request's body kept in its record.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Bins the sandbox holds; a request to a new bin beyond them is refused.
pub const MAX_BINS: usize = 32;
/// Programmed failures waiting in one bin.
pub const MAX_FAILURES: usize = 100;

/// A bin's recorded requests, oldest first, each kept as its JSON text.
#[derive(Debug, Default)]
pub struct Requests {
    kept: VecDeque<String>,
    bytes: usize,
}

impl Requests {
    /// Record `request` (a JSON object with a `body`), cutting its body short
    /// when it is over [`MAX_BODY_BYTES`], and forget the oldest requests
    /// beyond the bin's bounds.
    pub fn push(&mut self, mut request: Value) {
        if let Some(body) = request.get_mut("body") {
            let text = match &*body {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if text.len() > MAX_BODY_BYTES {
                let mut cut = MAX_BODY_BYTES;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                *body = Value::String(text[..cut].to_owned());
                request["body_truncated"] = Value::Bool(true);
                request["body_bytes"] = Value::from(text.len());
            }
        }
        let text = request.to_string();
        self.bytes += text.len();
        self.kept.push_back(text);
        while self.kept.len() > MAX_REQUESTS || (self.bytes > MAX_BIN_BYTES && self.kept.len() > 1)
        {
            if let Some(old) = self.kept.pop_front() {
                self.bytes -= old.len();
            }
        }
    }

    /// Forget every request.
    pub fn clear(&mut self) {
        self.kept.clear();
        self.bytes = 0;
    }

    /// Requests kept.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.kept.len()
    }
}

impl Serialize for Requests {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.kept
                .iter()
                .map(|t| serde_json::from_str::<Value>(t).unwrap_or(Value::Null)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_bin_keeps_its_last_requests_and_cuts_large_bodies_short() {
        let mut r = Requests::default();
        for n in 0..(MAX_REQUESTS + 50) {
            r.push(json!({ "n": n, "body": { "small": true } }));
        }
        assert_eq!(r.len(), MAX_REQUESTS);
        let all = serde_json::to_value(&r).unwrap();
        assert_eq!(all[0]["n"], 50, "the oldest went first");

        let big = "x".repeat(3 * 1024 * 1024);
        for _ in 0..(MAX_REQUESTS + 10) {
            r.push(json!({ "body": big }));
        }
        assert!(r.bytes <= MAX_BIN_BYTES, "{} bytes kept", r.bytes);
        let all = serde_json::to_value(&r).unwrap();
        let last = &all[all.as_array().unwrap().len() - 1];
        assert_eq!(last["body_truncated"], true);
        assert_eq!(last["body_bytes"], big.len());
        assert_eq!(last["body"].as_str().unwrap().len(), MAX_BODY_BYTES);

        r.clear();
        assert_eq!(serde_json::to_value(&r).unwrap(), json!([]));
    }
}
