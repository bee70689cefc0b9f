//! The `github` preset against the fake GitHub
//! (`ferry_testkit::vendors::github`): the token and version headers, the
//! primary limit learned from headers and its `403` shape, secondary
//! limits, `Link` pagination in a poll, signed deliveries.

use ferry::model::RunStatus;
use ferry_testkit::target::Target;
use ferry_testkit::vendors::github::{self, GitHub};
use serde_json::json;

use crate::support::{self, Bench, run_id, step};

const SECRET: &str = "It's a Secret to Everybody";

const CONFIG: &str = r#"
version: 1
connections:
  github:
    preset: github
    base_url: "${env:GITHUB_URL}"
    auth: { token: "${env:GITHUB_TOKEN}" }
  sink: { base_url: "${env:SINK_URL}" }
sources:
  github:
    preset: github
    verify: { secret: "${env:GITHUB_WEBHOOK_SECRET}" }
workflows:
  thank:
    trigger: { source: github }
    when: "headers['x-github-event'] == 'issues' and body.action == 'opened'"
    steps:
      - id: comment
        connection: github
        request:
          method: POST
          path: "/repos/{{ body.repository.owner.login }}/{{ body.repository.name }}/issues/{{ body.issue.number }}/comments"
          json: { body: "Thanks for #{{ body.issue.number }}" }
syncs:
  issues:
    schedule: rate(5 minutes)
    source:
      preset: github
      connection: github
      request: { method: GET, path: /repos/acme/app/issues, query: { per_page: "2" } }
      records: response.body
      id: record.number
    steps:
      - id: copy
        connection: sink
        request: { method: POST, path: /issues, json: { number: "{{ body.number }}" } }
"#;

async fn bench(token: &str) -> (Bench, GitHub, Target) {
    let fake = GitHub::start().await;
    let sink = Target::start().await;
    let bench = support::start(
        CONFIG,
        &[
            ("GITHUB_URL", fake.url()),
            ("GITHUB_TOKEN", token.to_owned()),
            ("GITHUB_WEBHOOK_SECRET", SECRET.to_owned()),
            ("SINK_URL", sink.url()),
        ],
    );
    fake.add_issue("acme/app", 1, "First");
    fake.add_issue("acme/app", 2, "Second");
    (bench, fake, sink)
}

/// An `issues` / `opened` delivery for issue `number`, signed like GitHub.
async fn deliver(bench: &Bench, number: u64, delivery: &str, secret: &str) -> ferry::respond::Wire {
    let body = json!({
        "action": "opened",
        "issue": { "number": number, "title": "Crash", "html_url": format!("https://github.com/acme/app/issues/{number}") },
        "repository": { "name": "app", "full_name": "acme/app", "owner": { "login": "acme" } },
        "sender": { "login": "octocat" },
    })
    .to_string();
    let headers = github::sign(secret, "issues", delivery, body.as_bytes());
    bench.post_wire("github", &headers, body.as_bytes()).await
}

/// The comment goes out with the token, GitHub's media type and the pinned
/// API version. With one call left in the window, ferry pauses after it
/// (`x-ratelimit-remaining: 0`) until `x-ratelimit-reset`, so the next
/// comment waits for the reset and GitHub never refuses a call.
#[tokio::test]
async fn the_preset_comments_with_the_api_version_and_pauses_at_zero_remaining() {
    let (bench, fake, _sink) = bench(github::TOKEN).await;
    let reset = bench.now_secs() + 120;
    fake.budget(1, reset);
    let first = run_id(&deliver(&bench, 1, "d-1", SECRET).await);
    let second = run_id(&deliver(&bench, 2, "d-2", SECRET).await);
    let first = bench.drive(&first).await;
    let second = bench.drive(&second).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");
    assert_eq!(second.status, RunStatus::Succeeded, "{second:?}");
    let calls = fake.target.seen_under("/repos/");
    assert_eq!(calls.len(), 2, "no call was refused");
    assert!(calls.iter().all(|c| c.status == 201));
    let call = &calls[0];
    assert_eq!(
        call.header("authorization"),
        format!("Bearer {}", github::TOKEN)
    );
    assert_eq!(call.header("x-github-api-version"), github::API_VERSION);
    assert_eq!(call.header("accept"), "application/vnd.github+json");
    let at = step(&second, "comment").attempts[0].started_at;
    assert!(
        at >= reset * 1000,
        "the second comment did not wait for the reset: {at}"
    );
    assert_eq!(
        fake.comments("acme/app", 2)[0]["body"],
        json!("Thanks for #2")
    );
}

/// GitHub's primary limit is a `403` with `x-ratelimit-remaining: 0`: the
/// call waits until `x-ratelimit-reset` and then succeeds. On a ferry
/// without the preset's rule the `403` is `permission_denied`, final.
#[tokio::test]
async fn a_403_with_no_calls_left_waits_for_the_reset_instead_of_failing() {
    let (bench, fake, _sink) = bench(github::TOKEN).await;
    let reset = bench.now_secs() + 120;
    fake.exhaust_next(1, reset);
    let id = run_id(&deliver(&bench, 1, "d-1", SECRET).await);
    let run = bench.drive(&id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let attempts = &step(&run, "comment").attempts;
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].status_code, Some(403));
    assert!(
        attempts[1].started_at >= reset * 1000,
        "retried before the reset"
    );
    assert_eq!(fake.comments("acme/app", 1).len(), 1);
}

/// A secondary limit with `retry-after` (as `429` or `403`) pauses the
/// connection that long; one without it is retried on the backoff.
#[tokio::test]
async fn a_secondary_limit_with_retry_after_pauses_that_long() {
    for (status, retry_after) in [(429, Some(60)), (403, Some(60)), (403, None)] {
        let (bench, fake, _sink) = bench(github::TOKEN).await;
        fake.secondary_next(1, status, retry_after);
        let id = run_id(&deliver(&bench, 1, "d-1", SECRET).await);
        let run = bench.drive(&id).await;
        let what = format!("{status} retry-after {retry_after:?}");
        assert_eq!(run.status, RunStatus::Succeeded, "{what}: {run:?}");
        let attempts = &step(&run, "comment").attempts;
        assert_eq!(attempts.len(), 2, "{what}");
        if let Some(s) = retry_after {
            let waited = attempts[1].started_at - attempts[0].started_at;
            assert!(waited >= (s * 1000) as i64, "{what}: waited {waited} ms");
        }
        assert_eq!(fake.comments("acme/app", 1).len(), 1, "{what}");
    }
}

/// `401 Bad credentials` fails the run as `auth_failed`, after one call.
#[tokio::test]
async fn a_bad_token_is_auth_failed() {
    let (bench, fake, _sink) = bench("ghp_wrong").await;
    let id = run_id(&deliver(&bench, 1, "d-1", SECRET).await);
    let run = bench.drive(&id).await;
    assert_eq!(run.status, RunStatus::AuthFailed, "{run:?}");
    assert_eq!(fake.target.seen_under("/repos/").len(), 1);
}

/// A delivery signed like GitHub runs once: its redelivery (same
/// `X-GitHub-Delivery`) is a duplicate; another secret's signature is `401`.
#[tokio::test]
async fn a_signed_delivery_runs_once_and_a_bad_signature_is_401() {
    let (bench, fake, _sink) = bench(github::TOKEN).await;
    let first = deliver(&bench, 1, "72d3162e-cc78-11e3-81ab-4c9367dc0958", SECRET).await;
    assert_eq!(first.status, 202);
    let again = deliver(&bench, 1, "72d3162e-cc78-11e3-81ab-4c9367dc0958", SECRET).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body.as_ref().unwrap()["status"], json!("duplicate"));
    let forged = deliver(&bench, 1, "another", "not the secret").await;
    assert_eq!(forged.status, 401);
    bench.drain(5).await;
    assert_eq!(fake.comments("acme/app", 1).len(), 1);
}

/// The poll follows GitHub's `Link: <…>; rel="next"` page by page.
#[tokio::test]
async fn a_poll_follows_the_link_header() {
    let (bench, fake, sink) = bench(github::TOKEN).await;
    for n in 3..=5 {
        fake.add_issue("acme/app", n, "More");
    }
    let report = ferry::sync::run_sync(&bench.hub, "issues").await.unwrap();
    assert_eq!(report.pages, 3, "{report:?}");
    let pages: Vec<Option<String>> = fake
        .target
        .seen_at("/repos/acme/app/issues")
        .iter()
        .map(|s| s.param("page"))
        .collect();
    assert_eq!(pages, [None, Some("2".into()), Some("3".into())]);
    bench.drain(5).await;
    let mut got: Vec<u64> = sink
        .seen_at("/issues")
        .iter()
        .map(|s| s.body["number"].as_u64().unwrap())
        .collect();
    got.sort_unstable();
    assert_eq!(got, [1, 2, 3, 4, 5]);
}
