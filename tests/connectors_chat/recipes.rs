//! Recipes 5 and 6 (examples/recipes/), loaded from their files with their
//! `.env` (the fakes' URLs winning) and run end to end: a webhook signed
//! like the vendor signs → the workflow → calls on the fakes; the fakes'
//! final state and the run record are checked.

use ferry::clock::Clock;
use ferry::model::RunStatus;
use ferry_testkit::vendors::github::{self, GitHub};
use ferry_testkit::vendors::hubspot::HubSpot;
use ferry_testkit::vendors::slack::{self, Slack};
use ferry_testkit::vendors::zendesk::{self, Zendesk};
use serde_json::json;

use crate::support::{self, Bench, run_id, step};

const GITHUB_SECRET: &str = "recipe-6-webhook-secret";
const ZENDESK_SECRET: &str = "recipe-5-webhook-secret";

async fn recipe_6() -> (Bench, GitHub, Slack) {
    let gh = GitHub::start().await;
    let slack = Slack::start().await;
    let bench = support::recipe(
        "github-issue-to-slack",
        &[
            ("GITHUB_API_URL", gh.url()),
            ("GITHUB_TOKEN", github::TOKEN.to_owned()),
            ("GITHUB_WEBHOOK_SECRET", GITHUB_SECRET.to_owned()),
            ("SLACK_API_URL", slack.url()),
            ("SLACK_BOT_TOKEN", slack::TOKEN.to_owned()),
            ("SLACK_CHANNEL", "C0ALERTS".to_owned()),
        ],
    );
    (bench, gh, slack)
}

/// GitHub's `issues` delivery for issue `number` with `action`.
async fn issue_event(bench: &Bench, event: &str, action: &str, number: u64) -> String {
    let body = json!({
        "action": action,
        "issue": { "number": number, "title": format!("Bug {number}"), "html_url": format!("https://github.com/acme/app/issues/{number}") },
        "repository": { "name": "app", "full_name": "acme/app", "owner": { "login": "acme" } },
        "sender": { "login": "octocat" },
    })
    .to_string();
    let delivery = format!("{event}-{action}-{number}");
    let headers = github::sign(GITHUB_SECRET, event, &delivery, body.as_bytes());
    let wire = bench.post_wire("github", &headers, body.as_bytes()).await;
    assert_eq!(wire.status, 202, "{:?}", wire.body);
    run_id(&wire)
}

/// Three issues opened at once: three messages in the channel, at least a
/// second apart (Slack's per-channel limit, kept by ferry, so Slack never
/// answers `ratelimited`), and each issue commented with its message's ts.
#[tokio::test]
async fn recipe_6_issues_opened_reach_slack_one_per_second_and_are_linked_back() {
    let (bench, gh, slack) = recipe_6().await;
    let mut ids = vec![];
    for n in 1..=3 {
        gh.add_issue("acme/app", n, &format!("Bug {n}"));
        ids.push(issue_event(&bench, "issues", "opened", n).await);
    }
    bench.drain(5).await;
    let mut posted_at = vec![];
    for (i, id) in ids.iter().enumerate() {
        let run = bench.run(id).await.unwrap();
        assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
        posted_at.push(step(&run, "announce").attempts[0].started_at);
        let ts = step(&run, "announce").attempts[0]
            .response
            .as_ref()
            .unwrap()
            .body["ts"]
            .clone();
        let n = i as u64 + 1;
        let comments = gh.comments("acme/app", n);
        assert_eq!(comments.len(), 1, "issue {n}");
        assert_eq!(
            comments[0]["body"],
            json!(format!(
                "Announced in Slack (message {}).",
                ts.as_str().unwrap()
            ))
        );
    }
    posted_at.sort_unstable();
    for pair in posted_at.windows(2) {
        assert!(
            pair[1] - pair[0] >= 1_000,
            "two messages within a second: {posted_at:?}"
        );
    }
    let messages = slack.messages_in("C0ALERTS");
    assert_eq!(messages.len(), 3);
    assert!(
        messages[0]
            .text
            .contains("<https://github.com/acme/app/issues/1|#1 Bug 1> by octocat"),
        "{}",
        messages[0].text
    );
    assert_eq!(
        slack.calls("chat.postMessage").len(),
        3,
        "Slack never had to refuse one"
    );
}

/// Other events (a push, an issue closed) are skipped: nothing is posted.
#[tokio::test]
async fn recipe_6_other_events_are_skipped() {
    let (bench, gh, slack) = recipe_6().await;
    gh.add_issue("acme/app", 1, "Bug 1");
    let push = issue_event(&bench, "push", "opened", 1).await;
    let closed = issue_event(&bench, "issues", "closed", 1).await;
    for id in [push, closed] {
        assert_eq!(bench.drive(&id).await.status, RunStatus::Skipped);
    }
    assert!(slack.messages().is_empty());
    assert!(gh.comments("acme/app", 1).is_empty());
}

/// GitHub refuses the comment with its primary-limit `403`: the comment
/// waits for `x-ratelimit-reset` and goes through; the Slack message, done
/// before, is not sent again.
#[tokio::test]
async fn recipe_6_a_github_rate_limit_pauses_the_comment_until_reset() {
    let (bench, gh, slack) = recipe_6().await;
    gh.add_issue("acme/app", 1, "Bug 1");
    let reset = bench.now_secs() + 120;
    gh.exhaust_next(1, reset);
    let run = bench
        .drive(&issue_event(&bench, "issues", "opened", 1).await)
        .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let comment = &step(&run, "link_back").attempts;
    assert_eq!(comment[0].status_code, Some(403));
    assert!(comment[1].started_at >= reset * 1000);
    assert_eq!(slack.messages().len(), 1);
    assert_eq!(gh.comments("acme/app", 1).len(), 1);
}

const HUBSPOT_TOKEN: &str = "pat-na1-ferry-test";

/// Recipe 5 against the Zendesk and HubSpot fakes; HubSpot holds Acme
/// (`acme.example`) and an unrelated company; the id of Acme.
async fn recipe_5() -> (Bench, Zendesk, HubSpot, String) {
    let zd = Zendesk::start().await;
    let crm = HubSpot::start(HUBSPOT_TOKEN).await;
    let acme = crm.put_company(json!({ "name": "Acme", "domain": "acme.example" }));
    crm.put_company(json!({ "name": "Globex", "domain": "globex.example" }));
    let bench = support::recipe(
        "zendesk-ticket-to-crm-note",
        &[
            ("ZENDESK_URL", zd.url()),
            ("ZENDESK_EMAIL", zendesk::EMAIL.to_owned()),
            ("ZENDESK_API_TOKEN", zendesk::API_TOKEN.to_owned()),
            ("ZENDESK_WEBHOOK_SECRET", ZENDESK_SECRET.to_owned()),
            ("HUBSPOT_URL", crm.url()),
            ("HUBSPOT_TOKEN", HUBSPOT_TOKEN.to_owned()),
        ],
    );
    zd.add_user(7, "Ada Lovelace", "Ada@Acme.example", None);
    zd.add_user(8, "Bob", "bob@nowhere.example", None);
    zd.add_ticket(35436, "Printer on fire", 7, 1_796_000_000);
    zd.add_ticket(35437, "Where is my order", 8, 1_796_000_000);
    (bench, zd, crm, acme)
}

/// Zendesk's `ticket.created` event for `ticket`, requested by `requester`.
async fn ticket_created(bench: &Bench, ticket: u64, requester: u64) -> String {
    let now = bench.clock.now_ms();
    let body = json!({
        "type": "zen:event-type:ticket.created",
        "id": format!("evt-{ticket}"),
        "time": zendesk::iso(now),
        "subject": format!("zen:ticket:{ticket}"),
        "detail": { "id": ticket.to_string(), "subject": "Printer on fire", "requester_id": requester.to_string() },
    })
    .to_string();
    let headers = zendesk::sign(
        ZENDESK_SECRET,
        &zendesk::iso(now),
        &format!("inv-{ticket}"),
        body.as_bytes(),
    );
    let wire = bench.post_wire("zendesk", &headers, body.as_bytes()).await;
    assert_eq!(wire.status, 202, "{:?}", wire.body);
    run_id(&wire)
}

/// A new ticket from someone at Acme: a note on Acme's company record
/// (associated by type 190, note → company), and a private comment on the
/// ticket naming it.
#[tokio::test]
async fn recipe_5_zendesk_ticket_becomes_a_note_on_the_crm_account() {
    let (bench, zd, crm, acme) = recipe_5().await;
    let run = bench.drive(&ticket_created(&bench, 35436, 7).await).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let notes = crm.notes();
    assert_eq!(notes.len(), 1);
    let note = &notes[0];
    assert_eq!(note.associations[0]["to"]["id"], json!(acme));
    assert_eq!(
        note.associations[0]["types"][0]["associationTypeId"],
        json!(190)
    );
    assert_eq!(
        note.object.properties["hs_note_body"],
        json!("Zendesk ticket #35436 opened by Ada Lovelace: Printer on fire")
    );
    assert!(note.object.properties.contains_key("hs_timestamp"));
    let ticket = zd.ticket(35436).unwrap();
    assert_eq!(
        ticket["comments"][0],
        json!({ "body": format!("Logged on the CRM account Acme (note {}).", note.object.id), "public": false })
    );
}

/// A requester whose domain matches no company: no note, and the ticket
/// says so.
#[tokio::test]
async fn recipe_5_without_a_matching_account_comments_and_skips_the_note() {
    let (bench, zd, crm, _) = recipe_5().await;
    let run = bench.drive(&ticket_created(&bench, 35437, 8).await).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert!(crm.notes().is_empty());
    assert_eq!(crm.target.count("/crm/v3/objects/companies/search"), 1);
    let comment = &zd.ticket(35437).unwrap()["comments"][0];
    assert_eq!(
        comment["body"],
        json!("No CRM account matches the requester's domain; nothing logged.")
    );
}
