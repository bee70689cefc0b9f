//! `rate_limit.from_headers`: the limit as the API reports it on every
//! answer (calls left, and when the window resets), so that ferry stops
//! before a `429` rather than after one.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::Dur;

/// Where an API reports its rate limit on each answer. One of `remaining`
/// (GitHub `x-ratelimit-remaining`, OpenAI `x-ratelimit-remaining-requests`,
/// HubSpot `x-hubspot-ratelimit-remaining`) or `used_limit` (Shopify
/// `X-Shopify-Shop-Api-Call-Limit: 39/40`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FromHeaders {
    /// Header with the calls left in the current window.
    #[serde(default)]
    pub remaining: Option<String>,
    /// Header with `used/limit` (calls used of the limit).
    #[serde(default)]
    pub used_limit: Option<String>,
    /// Header saying when the window resets (see `reset_format`).
    #[serde(default)]
    pub reset: Option<String>,
    /// How `reset` is written (default `auto`: a number of 1e9 or more is
    /// epoch seconds, a smaller one seconds, else a duration such as `6m0s`).
    #[serde(default)]
    pub reset_format: ResetFormat,
    /// Pause once the calls left are at or below this (default 0).
    #[serde(default)]
    pub low_watermark: Option<u32>,
    /// How long to pause when no reset time is given (default 1s).
    #[serde(default)]
    pub pause: Option<Dur>,
}

/// `from_headers`: one pair of headers, or a list of pairs when an API
/// reports several limits (OpenAI: requests and tokens). Each pair is
/// watched on its own; any one at its watermark pauses the connection.
///
/// `Deserialize` is written by hand so a wrong value says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum FromHeadersList {
    /// A single pair (`{ remaining: …, reset: … }`).
    One(FromHeaders),
    /// Several pairs (`[{ remaining: …-requests, … }, { remaining: …-tokens, … }]`).
    Many(Vec<FromHeaders>),
}

impl FromHeadersList {
    /// Every pair, in order.
    pub fn all(&self) -> &[FromHeaders] {
        match self {
            FromHeadersList::One(f) => std::slice::from_ref(f),
            FromHeadersList::Many(v) => v,
        }
    }
}

impl From<FromHeaders> for FromHeadersList {
    fn from(f: FromHeaders) -> Self {
        FromHeadersList::One(f)
    }
}

impl<'de> Deserialize<'de> for FromHeadersList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FromHeadersList;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a mapping such as { remaining: x-ratelimit-remaining, reset: x-ratelimit-reset }, or a list of them",
                )
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<FromHeadersList, A::Error> {
                FromHeaders::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(FromHeadersList::One)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<FromHeadersList, A::Error> {
                let mut all = Vec::new();
                while let Some(f) = seq.next_element::<FromHeaders>()? {
                    all.push(f);
                }
                Ok(FromHeadersList::Many(all))
            }
        }
        d.deserialize_any(V)
    }
}

/// How a reset header is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResetFormat {
    /// Guess from the value: a number of 1e9 or more is epoch seconds, a
    /// smaller one seconds from now, else a duration (`6m0s`) or an HTTP date.
    #[default]
    Auto,
    /// Unix time in seconds when the limit resets (`1700000000`).
    EpochSeconds,
    /// Seconds from now (`30`, `0.5`).
    Seconds,
    /// A duration from now such as `6m0s`, `1.5s` or `20ms`.
    Duration,
}

/// Every problem of one `from_headers`, at `path`.
pub(crate) fn check(
    f: &FromHeaders,
    path: &super::diagnostic::Path,
    r: &mut super::validate::Report<'_>,
) {
    match (&f.remaining, &f.used_limit) {
        (None, None) => r.error(
            path,
            "from_headers needs `remaining` (a header with the calls left) or `used_limit` (a header such as \"39/40\")",
        ),
        (Some(_), Some(_)) => r.error(
            &path.key("used_limit"),
            "set `remaining` or `used_limit`, not both",
        ),
        _ => {}
    }
    for (key, h) in [
        ("remaining", &f.remaining),
        ("used_limit", &f.used_limit),
        ("reset", &f.reset),
    ] {
        if let Some(h) = h {
            super::validate::header(h, None, &path.key(key), r);
        }
    }
    if f.pause.is_some_and(|d| d.get().is_zero()) {
        r.error(&path.key("pause"), "pause must be greater than zero");
    }
}
