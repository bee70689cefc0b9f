//! What the sender of a webhook gets on the wire: ingest's [`Reply`], or —
//! for an accepted event (new or a duplicate) on a source with `respond` —
//! the status and body that source asks for. Slack, say, wants a plain
//! `200` within 3 s for a slash command (an empty body acknowledges it
//! without posting anything), where ingest's own answer is a `202` with a
//! JSON body Slack would try to read as a message.
//!
//! Ingest itself (its metrics, `ferry test`, the run ids) still sees the
//! full [`Reply`]; only the front ends (`ferry dev`, the ingest Lambda)
//! call [`serve`].

use serde_json::{Value, json};

use crate::hub::Hub;
use crate::ingest::{Inbound, Reply, ingest, parse_body, parse_query, visible_headers};
use crate::template::context;

/// The answer as it is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Wire {
    /// HTTP status.
    pub status: u16,
    /// The JSON body; `None`: an empty body (no content type).
    pub body: Option<Value>,
}

impl From<Reply> for Wire {
    fn from(r: Reply) -> Self {
        Wire {
            status: r.status,
            body: Some(r.body),
        }
    }
}

/// Ingest `req`, then answer as its source's `respond` says when the event
/// was accepted; every other answer (errors, the Slack challenge) is ingest's.
pub async fn serve(hub: &Hub, req: Inbound) -> Wire {
    let Some(respond) = hub
        .config
        .sources
        .get(&req.source)
        .and_then(|s| s.respond.as_ref())
    else {
        // Nothing to render afterwards: the request is not kept.
        return ingest(hub, req).await.into();
    };
    let kept = (
        req.source.clone(),
        req.headers.clone(),
        req.query.clone(),
        req.body.clone(),
    );
    let reply = ingest(hub, req).await;
    let (source, headers, query, raw) = kept;
    if !accepted(&reply) {
        return reply.into();
    }
    let Some(template) = &respond.body else {
        return Wire {
            status: respond.status,
            body: None,
        };
    };
    let verifier = hub.verifier(&source).expect("every source has a verifier");
    let ctx = context(&json!({
        "body": parse_body(&headers, &raw).unwrap_or(Value::Null),
        "headers": visible_headers(&headers, verifier),
        "query": parse_query(query.as_deref()),
        "event": { "id": reply.body["event_id"], "source": source },
    }));
    let body = match hub.templates.render_json(template, &ctx) {
        Ok(body) => Some(body),
        Err(e) => {
            // The work is queued already: answer the status the sender
            // expects, with an empty body, and say why in the log.
            tracing::warn!(source, error = %e, "respond.body could not be rendered; answering with an empty body");
            None
        }
    };
    Wire {
        status: respond.status,
        body,
    }
}

/// A new event (`202`) or a duplicate of an accepted one.
fn accepted(reply: &Reply) -> bool {
    reply.status == 202 || (reply.status == 200 && reply.body["status"] == "duplicate")
}
