//! `classify`: what an answer means, as the config says it — by status
//! (`{"409": success, "5xx": retry}`), or by rules with expressions over the
//! whole response (`[{ when: "response.body.ok == false", outcome: retry }]`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What an answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The call did what it should (e.g. `409` for an upsert that already happened).
    #[serde(alias = "ok")]
    Success,
    /// Worth trying again, with backoff (or after `Retry-After`, when sent).
    Retry,
    /// Trying again cannot help: the run is dead-lettered with the reason
    /// (`permission_denied` for a `403`, else `rejected`).
    Fail,
    /// Too many calls: the whole connection pauses until `Retry-After` (or the
    /// rule's `until_header`), and the call is tried again then.
    RateLimited,
    /// The credentials were refused: refreshed once when they can be (OAuth
    /// 2.0), else the run fails `auth_failed`.
    AuthFailed,
    /// The credentials lack a permission: the run fails `permission_denied`.
    PermissionDenied,
    /// The target refused the request: the run fails `rejected`.
    Rejected,
}

/// A status key of the `classify` map: one status, or a class such as `4xx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusRule {
    /// Exactly this status.
    Exact(u16),
    /// Every status whose first digit is this.
    Class(u16),
}

impl StatusRule {
    /// `"409"` or `"4xx"` (100–599); anything else is `None`.
    pub fn parse(key: &str) -> Option<Self> {
        let k = key.trim().to_ascii_lowercase();
        if let Some(d) = k.strip_suffix("xx") {
            let d: u16 = d.parse().ok()?;
            return (d.to_string().len() == 1 && (1..=5).contains(&d)).then_some(Self::Class(d));
        }
        let n: u16 = k.parse().ok()?;
        (k.len() == 3 && (100..=599).contains(&n)).then_some(Self::Exact(n))
    }
}

/// One response rule: when `when` is true of the response, it means `outcome`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseRule {
    /// A minijinja expression over `response.status` (a number),
    /// `response.headers` (lower-case names, string values) and
    /// `response.body` (JSON when it parses, else the text), e.g.
    /// `response.body.ok == false and response.body.error == 'ratelimited'`.
    /// A rule whose expression fails on a response (a missing field) does not match.
    pub when: String,
    /// What a matching response means.
    pub outcome: Outcome,
    /// For `rate_limited`: the header that says when the limit resets, as epoch
    /// seconds, seconds from now or a duration (`6m0s`, `1.5s`); `Retry-After`
    /// is read when this is absent (or the header is missing).
    #[serde(default)]
    pub until_header: Option<String>,
    /// For `rate_limited` and `retry`: how long to wait when neither
    /// `until_header` nor `Retry-After` says (e.g. `15m` for a daily
    /// allocation that is used up; Salesforce sends no reset time).
    #[serde(default)]
    pub pause: Option<super::Dur>,
    /// For `rate_limited`: an expression over `response` giving the seconds to
    /// wait, for APIs that say it only in the body (Shopify GraphQL's
    /// `extensions.cost.throttleStatus`); read before `until_header`. A value
    /// that is not a number of seconds ≥ 0 (or an expression that fails) is
    /// passed over.
    #[serde(default)]
    pub until: Option<String>,
}

/// How answers are judged: a map of status rules (`{"409": success}`, the
/// original form), or a list of response rules, tried in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Classify {
    /// By status code (`"409"`) or class (`"4xx"`); an exact code beats a class.
    pub status: BTreeMap<String, Outcome>,
    /// By expressions over the response; the first that matches decides
    /// (before `status`).
    pub rules: Vec<ResponseRule>,
}

impl Classify {
    /// No rules at all.
    pub fn is_empty(&self) -> bool {
        self.status.is_empty() && self.rules.is_empty()
    }
}

impl<'de> Deserialize<'de> for Classify {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Classify;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a map of status rules ({\"409\": success}) or a list of rules ([{ when: \"response.status == 409\", outcome: success }])",
                )
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Classify, A::Error> {
                Ok(Classify {
                    status: BTreeMap::deserialize(MapAccessDeserializer::new(map))?,
                    rules: Vec::new(),
                })
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Classify, A::Error> {
                Ok(Classify {
                    status: BTreeMap::new(),
                    rules: Vec::deserialize(SeqAccessDeserializer::new(seq))?,
                })
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Classify, E> {
                Ok(Classify::default())
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Classify {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.rules.is_empty() {
            self.status.serialize(s)
        } else {
            self.rules.serialize(s)
        }
    }
}

impl JsonSchema for Classify {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Classify".into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let map = g.subschema_for::<BTreeMap<String, Outcome>>();
        let list = g.subschema_for::<Vec<ResponseRule>>();
        schemars::json_schema!({
            "description": "Status rules ({\"409\": success, \"5xx\": retry}) or a list of response rules ([{ when, outcome, until_header, until }]).",
            "anyOf": [map, list]
        })
    }
}
