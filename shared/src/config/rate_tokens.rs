//! `rate_limit.tokens`: a second budget beside the requests, spent by each
//! call at a cost an expression computes from the rendered request (OpenAI
//! counts tokens per minute as well as requests per minute).

use std::num::NonZeroU32;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::Dur;

/// A token budget: `limit` tokens per `per`, each call costing what `cost`
/// says of its rendered request. A call goes once both the request bucket
/// and this one allow it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBudget {
    /// Tokens allowed per window (OpenAI's TPM for the model and tier).
    pub limit: NonZeroU32,
    /// Window length, e.g. `1m`.
    pub per: Dur,
    /// Expression over the rendered `request` (`request.json`, `request.body`,
    /// `request.headers`, `request.method`, `request.url`) giving the tokens
    /// one call spends, e.g. `(request.json.input | join(' ') | length) // 4`.
    /// A batched call is costed as the one request it sends.
    pub cost: String,
    /// Fraction of `limit` ferry spends (default: the `rate_limit`'s headroom, else 0.8).
    #[serde(default)]
    pub headroom: Option<f64>,
}

/// Every problem of one `tokens`, at `path`.
pub(crate) fn check(
    t: &TokenBudget,
    path: &super::diagnostic::Path,
    jinja: &super::templates::Jinja,
    r: &mut super::validate::Report<'_>,
) {
    if t.per.get().is_zero() {
        r.error(&path.key("per"), "the window must be greater than zero");
    }
    if let Some(h) = t.headroom.filter(|h| !(*h > 0.0 && *h <= 1.0)) {
        r.error(
            &path.key("headroom"),
            format!(
                "headroom is the fraction of the limit ferry spends, in (0, 1] (e.g. 0.8); got {h}"
            ),
        );
    }
    jinja.request_expression(&t.cost, &path.key("cost"), r);
}
