//! Recipe 1, `examples/recipes/lead-chain.yaml`, end to end: a signed
//! website form → HubSpot contact → HubSpot task → welcome e-mail
//! (Postmark-like) → Slack, against the fakes, on a virtual clock.

use ferry::model::{Failure, RunStatus};
use ferry_testkit::vendors::hubspot::HubSpot;
use ferry_testkit::vendors::postmark::Postmark;
use ferry_testkit::vendors::slack::{self, Message, Slack};
use serde_json::{Value, json};

use crate::support::{self, Bench, T0, errors, form_signed, recipe, recipe_env};

const SLUG: &str = "lead-chain";

struct Chain {
    bench: Bench,
    hubspot: HubSpot,
    postmark: Postmark,
    slack: Slack,
    secret: String,
}

/// The recipe with its `.env` values, the URLs pointed at fresh fakes.
async fn chain() -> Chain {
    let env = recipe_env(SLUG);
    let get = |k: &str| {
        env.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let hubspot = HubSpot::start(&get("HUBSPOT_TOKEN")).await;
    let postmark = Postmark::start(&get("POSTMARK_SERVER_TOKEN")).await;
    let slack = Slack::start().await;
    // The recipe posts to the channel by name, as chat.postMessage allows.
    slack.add_channel("#sales", true);
    let mut vars: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    for (k, v) in vars.iter_mut() {
        match *k {
            "HUBSPOT_API_URL" => *v = hubspot.url(),
            "POSTMARK_API_URL" => *v = postmark.url(),
            "SLACK_API_URL" => *v = slack.url(),
            // The fake accepts one bot token.
            "SLACK_BOT_TOKEN" => *v = slack::TOKEN.to_owned(),
            _ => {}
        }
    }
    let bench = support::start(&recipe(SLUG), &vars);
    Chain {
        bench,
        hubspot,
        postmark,
        slack,
        secret: get("FORM_SECRET"),
    }
}

fn form(submission: &str, email: &str) -> Value {
    json!({
        "submission_id": submission,
        "email": email,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "interest": "analytical engines",
    })
}

impl Chain {
    async fn submit(&self, body: &Value) -> ferry::ingest::Reply {
        let raw = body.to_string();
        self.bench
            .post(
                "website-form",
                &form_signed(&self.secret, raw.as_bytes()),
                raw.as_bytes(),
            )
            .await
    }

    async fn submit_and_finish(&self, body: &Value) -> ferry::model::RunRecord {
        let reply = self.submit(body).await;
        assert_eq!(reply.status, 202, "{:?}", reply.body);
        self.bench
            .drive(reply.body["run_id"].as_str().unwrap())
            .await
    }

    /// Every message the Slack fake took, in any channel.
    fn slack_messages(&self) -> Vec<Message> {
        self.slack.messages()
    }
}

#[tokio::test]
async fn a_lead_becomes_a_contact_a_task_an_email_and_a_slack_message() {
    let c = chain().await;
    let run = c
        .submit_and_finish(&form("sub-1", " Ada@Example.com "))
        .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", errors(&run));
    let contacts = c.hubspot.contacts();
    let contact = &contacts["ada@example.com"];
    assert_eq!(contact.properties["firstname"], "Ada");
    assert_eq!(contact.properties["lifecyclestage"], "lead");
    let tasks = c.hubspot.tasks();
    assert_eq!(tasks.len(), 1);
    assert_eq!(
        tasks[0].properties["hs_task_subject"],
        "Call Ada Lovelace about analytical engines"
    );
    assert_eq!(tasks[0].properties["hubspot_owner_id"], "52550153");
    let task_call = &c.hubspot.target.seen_at("/crm/v3/objects/tasks")[0];
    assert_eq!(
        task_call.body["associations"][0]["to"]["id"],
        contact.id.as_str()
    );
    let sent = c.postmark.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["To"], "ada@example.com");
    let slack = c.slack_messages();
    assert_eq!(slack.len(), 1);
    assert_eq!(slack[0].channel, "#sales");
    let text = slack[0].text.as_str();
    assert!(
        text.contains(&format!("HubSpot contact {}", contact.id))
            && text.contains(&format!("task {}", tasks[0].id)),
        "{text}"
    );
    assert!(
        text.starts_with("New lead Ada Lovelace <Ada@Example.com>: "),
        "{text}"
    );
    assert_eq!(
        c.slack.calls("chat.postMessage")[0].header("authorization"),
        format!("Bearer {}", slack::TOKEN)
    );
}

/// HubSpot refuses the address (`400 VALIDATION_ERROR`): the run ends
/// `rejected` with HubSpot's sentence; no task, e-mail or Slack message.
#[tokio::test]
async fn a_bad_email_is_rejected_cleanly_and_nothing_else_is_sent() {
    let c = chain().await;
    let run = c.submit_and_finish(&form("sub-1", "ada-at-example")).await;
    assert_eq!(run.status, RunStatus::DeadLettered);
    assert_eq!(run.failure, Some(Failure::Rejected));
    let why = errors(&run);
    assert!(
        why.contains("400") && why.contains("Email address ada-at-example is invalid"),
        "{why}"
    );
    assert_eq!(
        run.steps[0].attempts.len(),
        1,
        "a final answer is not retried"
    );
    assert!(c.hubspot.contacts().is_empty());
    assert!(c.hubspot.tasks().is_empty());
    assert!(c.postmark.sent().is_empty());
    assert!(c.slack_messages().is_empty());
}

/// The same submission delivered twice: the second is a duplicate at the
/// door (same event id), so one contact, one task, one e-mail, one message.
#[tokio::test]
async fn a_double_submission_is_deduplicated_into_one_contact() {
    let c = chain().await;
    let body = form("sub-7", "ada@example.com");
    let first = c.submit(&body).await;
    let second = c.submit(&body).await;
    assert_eq!(first.status, 202);
    assert_eq!(second.body["status"], "duplicate", "{:?}", second.body);
    assert_eq!(second.body["run_id"], first.body["run_id"]);
    let run = c.bench.drive(first.body["run_id"].as_str().unwrap()).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", errors(&run));
    c.bench.drain(4).await;
    assert_eq!(c.hubspot.contacts().len(), 1);
    assert_eq!(c.hubspot.tasks().len(), 1);
    assert_eq!(c.postmark.sent().len(), 1);
    assert_eq!(c.slack_messages().len(), 1);
}

/// HubSpot answers `503` for a minute (by the virtual clock): the contact
/// step is retried with backoff, and once HubSpot is back the chain
/// completes — one contact, every later step once.
#[tokio::test]
async fn the_crm_down_for_a_minute_is_ridden_out() {
    let c = chain().await;
    c.hubspot.set_down(true);
    let reply = c.submit(&form("sub-1", "ada@example.com")).await;
    let id = reply.body["run_id"].as_str().unwrap().to_owned();
    let back_at = T0 + 60_000;
    c.bench
        .until("the run to finish", || async {
            use ferry::clock::Clock;
            if c.bench.clock.now_ms() >= back_at {
                c.hubspot.set_down(false);
            }
            c.bench.run(&id).await.is_some_and(|r| r.status.is_final())
        })
        .await;
    let run = c.bench.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{}", errors(&run));
    let upserts = c
        .hubspot
        .target
        .seen_at("/crm/v3/objects/contacts/batch/upsert");
    let failed = upserts.iter().filter(|s| s.status == 503).count();
    assert!(
        failed >= 2,
        "retried while down: {failed} attempts answered 503"
    );
    assert_eq!(upserts.last().unwrap().status, 200);
    assert_eq!(run.steps[0].attempts.len(), failed + 1);
    assert_eq!(c.hubspot.contacts().len(), 1);
    assert_eq!(c.postmark.sent().len(), 1);
    assert_eq!(c.slack_messages().len(), 1);
}

/// The owner the task is assigned to was deactivated: HubSpot refuses the
/// task, naming `hubspot_owner_id`. The run ends `rejected` with that
/// reason — the contact is written, no e-mail or Slack message is sent —
/// so a person reassigns the owner and replays the run.
#[tokio::test]
async fn a_deactivated_task_owner_is_a_precise_final_failure() {
    let c = chain().await;
    c.hubspot.deactivate_owner("52550153");
    let run = c.submit_and_finish(&form("sub-1", "ada@example.com")).await;
    assert_eq!(run.status, RunStatus::DeadLettered);
    assert_eq!(run.failure, Some(Failure::Rejected));
    let task = run.steps.iter().find(|s| s.id == "task").unwrap();
    let why = task.last_error.clone().unwrap_or_default();
    assert!(
        why.contains("52550153 is not a valid owner id") && why.contains("hubspot_owner_id"),
        "{why}"
    );
    assert_eq!(c.hubspot.contacts().len(), 1);
    assert!(c.hubspot.tasks().is_empty());
    assert!(c.postmark.sent().is_empty());
    assert!(c.slack_messages().is_empty());
}
