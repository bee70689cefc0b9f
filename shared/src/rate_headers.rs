//! Limits learned from answers (`rate_limit.from_headers`): many APIs say on
//! every answer how many calls are left and when the window resets (GitHub
//! `x-ratelimit-remaining` / `x-ratelimit-reset`, Shopify
//! `X-Shopify-Shop-Api-Call-Limit: 39/40`, OpenAI
//! `x-ratelimit-remaining-requests` / `x-ratelimit-reset-requests: 6m0s`).
//! Once the calls left reach the low watermark, the connection pauses until
//! the reset — the same shared pause a `429` sets — so the next call waits
//! instead of provoking a `429`. Several pairs can be watched at once (OpenAI
//! reports requests and tokens, `x-ratelimit-remaining-tokens` /
//! `x-ratelimit-reset-tokens`); the one that runs out holds the connection
//! until its own reset (the latest, when several do).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::clock::Millis;
use crate::config::{FromHeaders, RateLimit, ResetFormat};
use crate::hub::Hub;
use crate::keys;
use crate::retry::parse_reset;

/// How long a pause lasts when the answer gives no reset time.
pub const DEFAULT_PAUSE: Duration = Duration::from_secs(1);

/// Where the calls left are read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Left {
    /// A header with the number left.
    Remaining(String),
    /// A header with `used/limit`.
    UsedLimit(String),
}

/// A connection's `from_headers`, resolved once: each pair of headers it watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Learned {
    pairs: Vec<Pair>,
}

/// One pair of headers (header names lower-cased).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pair {
    left: Left,
    reset: Option<String>,
    format: ResetFormat,
    low_watermark: u64,
    pause: Duration,
}

impl Learned {
    /// The settings of a connection's `rate_limit`, when it has `from_headers`.
    pub fn of(rl: Option<&RateLimit>) -> Option<Learned> {
        let pairs: Vec<Pair> = rl?
            .from_headers
            .as_ref()?
            .all()
            .iter()
            .filter_map(Pair::of)
            .collect();
        (!pairs.is_empty()).then_some(Learned { pairs })
    }

    /// How long to hold the connection after an answer with `headers`: the
    /// longest hold any pair asks for (see [`Pair::hold`]); `None` while
    /// every pair has calls left.
    pub fn hold(&self, headers: &BTreeMap<String, String>, now: Millis) -> Option<Duration> {
        self.pairs.iter().filter_map(|p| p.hold(headers, now)).max()
    }
}

impl Pair {
    fn of(f: &FromHeaders) -> Option<Pair> {
        let left = match (&f.remaining, &f.used_limit) {
            (Some(h), _) => Left::Remaining(h.to_ascii_lowercase()),
            (None, Some(h)) => Left::UsedLimit(h.to_ascii_lowercase()),
            (None, None) => return None,
        };
        Some(Pair {
            left,
            reset: f.reset.as_ref().map(|h| h.to_ascii_lowercase()),
            format: f.reset_format,
            low_watermark: f.low_watermark.map_or(0, u64::from),
            pause: f.pause.map_or(DEFAULT_PAUSE, |d| d.get()),
        })
    }

    /// The calls left, as the answer's `headers` (lower-case names) say.
    fn left(&self, headers: &BTreeMap<String, String>) -> Option<u64> {
        match &self.left {
            Left::Remaining(h) => headers.get(h)?.trim().parse().ok(),
            Left::UsedLimit(h) => {
                let (used, limit) = headers.get(h)?.split_once('/')?;
                // A `name=` label before the count is allowed: Salesforce's
                // `Sforce-Limit-Info: api-usage=25/15000`.
                let used = used.rsplit('=').next()?;
                let used: u64 = used.trim().parse().ok()?;
                let limit: u64 = limit.trim().parse().ok()?;
                Some(limit.saturating_sub(used))
            }
        }
    }

    /// How long to hold the connection after an answer with `headers`:
    /// until the reset once the calls left are at or below the watermark
    /// (the default pause when no reset is given); `None` while calls are left.
    fn hold(&self, headers: &BTreeMap<String, String>, now: Millis) -> Option<Duration> {
        if self.left(headers)? > self.low_watermark {
            return None;
        }
        let reset = self
            .reset
            .as_ref()
            .and_then(|h| headers.get(h))
            .and_then(|v| parse_reset(v, self.format, now));
        Some(reset.unwrap_or(self.pause))
    }
}

/// After an answer on connection `name`: pause it until the reset when the
/// answer says the calls are (nearly) used up. A store that cannot be told
/// is logged; this process holds its calls all the same.
pub async fn observe(hub: &Hub, name: &str, learned: &Learned, headers: &BTreeMap<String, String>) {
    let now = hub.ports.clock.now_ms();
    let Some(hold) = learned.hold(headers, now) else {
        return;
    };
    if hold.is_zero() {
        return;
    }
    let until = crate::clock::after(now, hold);
    hub.limiter.pause_here(name, until);
    if let Err(e) = hub.ports.limits.pause(&keys::connection(name), until).await {
        tracing::warn!(connection = name, error = %e, "could not pause the connection at its reported rate limit");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learned(f: FromHeaders) -> Learned {
        let rl = RateLimit {
            requests: std::num::NonZeroU32::new(10).unwrap(),
            per: crate::config::Dur(Duration::from_secs(1)),
            headroom: None,
            key: None,
            from_headers: Some(f.into()),
            tokens: None,
        };
        Learned::of(Some(&rl)).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn holds_only_at_the_watermark_until_the_reset() {
        let now = 1_700_000_000_000;
        let github = learned(FromHeaders {
            remaining: Some("X-RateLimit-Remaining".into()),
            used_limit: None,
            reset: Some("X-RateLimit-Reset".into()),
            reset_format: ResetFormat::EpochSeconds,
            low_watermark: None,
            pause: None,
        });
        let at = |left: &str| {
            headers(&[
                ("x-ratelimit-remaining", left),
                ("x-ratelimit-reset", "1700000042"),
            ])
        };
        assert_eq!(github.hold(&at("1"), now), None);
        assert_eq!(github.hold(&at("0"), now), Some(Duration::from_secs(42)));
        assert_eq!(github.hold(&headers(&[]), now), None, "no header, no hold");
        assert_eq!(
            github.hold(&headers(&[("x-ratelimit-remaining", "0")]), now),
            Some(DEFAULT_PAUSE),
            "no reset header: the default pause"
        );
        let shopify = learned(FromHeaders {
            remaining: None,
            used_limit: Some("X-Shopify-Shop-Api-Call-Limit".into()),
            reset: None,
            reset_format: ResetFormat::Auto,
            low_watermark: Some(2),
            pause: Some(crate::config::Dur(Duration::from_secs(1))),
        });
        let used = |v: &str| headers(&[("x-shopify-shop-api-call-limit", v)]);
        assert_eq!(shopify.hold(&used("37/40"), now), None);
        assert_eq!(
            shopify.hold(&used("38/40"), now),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            shopify.hold(&used("40/40"), now),
            Some(Duration::from_secs(1))
        );
        assert_eq!(shopify.hold(&used("garbage"), now), None);
        // A labelled count, as Salesforce's `Sforce-Limit-Info` writes it.
        assert_eq!(shopify.hold(&used("api-usage=37/40"), now), None);
        assert_eq!(
            shopify.hold(&used("api-usage=39/40"), now),
            Some(Duration::from_secs(1))
        );
        let openai = learned(FromHeaders {
            remaining: Some("x-ratelimit-remaining-requests".into()),
            used_limit: None,
            reset: Some("x-ratelimit-reset-requests".into()),
            reset_format: ResetFormat::Duration,
            low_watermark: None,
            pause: None,
        });
        let h = headers(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "6m0s"),
        ]);
        assert_eq!(openai.hold(&h, now), Some(Duration::from_secs(360)));
    }

    /// Two pairs (OpenAI's requests and tokens): whichever runs out holds
    /// the connection until its own reset, the later one when both do.
    #[test]
    fn of_several_pairs_the_one_that_runs_out_holds_until_its_reset() {
        let now = 1_700_000_000_000;
        let pair = |kind: &str, low: Option<u32>| FromHeaders {
            remaining: Some(format!("x-ratelimit-remaining-{kind}")),
            used_limit: None,
            reset: Some(format!("x-ratelimit-reset-{kind}")),
            reset_format: ResetFormat::Duration,
            low_watermark: low,
            pause: None,
        };
        let rl = RateLimit {
            requests: std::num::NonZeroU32::new(500).unwrap(),
            per: crate::config::Dur(Duration::from_secs(60)),
            headroom: None,
            key: None,
            from_headers: Some(crate::config::FromHeadersList::Many(vec![
                pair("requests", None),
                pair("tokens", Some(1_000)),
            ])),
            tokens: None,
        };
        let openai = Learned::of(Some(&rl)).unwrap();
        let at = |requests: &str, tokens: &str| {
            headers(&[
                ("x-ratelimit-remaining-requests", requests),
                ("x-ratelimit-reset-requests", "120ms"),
                ("x-ratelimit-remaining-tokens", tokens),
                ("x-ratelimit-reset-tokens", "6m0s"),
            ])
        };
        assert_eq!(openai.hold(&at("499", "150000"), now), None);
        assert_eq!(
            openai.hold(&at("499", "1000"), now),
            Some(Duration::from_secs(360)),
            "the tokens at their watermark"
        );
        assert_eq!(
            openai.hold(&at("0", "150000"), now),
            Some(Duration::from_millis(120)),
            "the requests used up"
        );
        assert_eq!(
            openai.hold(&at("0", "0"), now),
            Some(Duration::from_secs(360)),
            "both: the later reset"
        );
    }
}
