//! Unit tests of the test runner: the file format, the subset match, the
//! generated cases' expectations, and cases run on the virtual clock.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::file::{Answer, Mock, RequestExpect, TestFile};
use super::mock::Received;
use super::{Runner, expect, standard};

#[test]
fn a_mock_sequence_mixes_bare_statuses_and_full_answers_and_its_last_repeats() {
    let file: TestFile = serde_yaml_ng::from_str(
        "cases:\n  - name: x\n    event: { source: s }\n    mocks:\n      task: [500, { status: 429, retry_after: 3 }, 200]\n      one: { status: 201, body: { id: 1 } }\n",
    )
    .unwrap();
    let mocks = &file.cases[0].mocks;
    let task = &mocks["task"];
    assert_eq!(task.nth(0), &Answer::Status(500));
    let second = task.nth(1).reply();
    assert_eq!((second.status, second.retry_after), (Some(429), Some(3)));
    assert_eq!(task.nth(2), &Answer::Status(200));
    assert_eq!(task.nth(9), &Answer::Status(200), "the last repeats");
    assert!(matches!(mocks["one"], Mock::One(_)));
    assert_eq!(mocks["one"].nth(5).reply().body, Some(json!({ "id": 1 })));
}

#[test]
fn an_unknown_key_in_a_test_file_is_an_error_naming_it() {
    let err = serde_yaml_ng::from_str::<TestFile>(
        "cases:\n  - name: x\n    event: { source: s }\n    expect: { stauts: succeeded }\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("stauts"), "{err}");
}

#[test]
fn the_subset_match_names_each_difference_by_path() {
    let want = json!({ "a": { "b": 1, "c": "x" }, "list": [1, 2], "n": 5 });
    let got = json!({ "a": { "b": 2 }, "list": [1, 3], "n": "5", "extra": true });
    let mut diffs = Vec::new();
    expect::subset("body", &want, &got, &mut diffs);
    assert_eq!(
        diffs,
        [
            "body.a.b: expected 1, got 2",
            "body.a.c: expected \"x\", missing",
            "body.list[1]: expected 2, got 3",
        ]
    );
}

#[test]
fn request_headers_match_whatever_their_case() {
    let got = Received {
        step: "s".into(),
        method: "POST".into(),
        path: "/contacts".into(),
        headers: BTreeMap::from([("x-mail-key".to_owned(), "k".to_owned())]),
        body: json!({}),
        status: 200,
    };
    let mut want = RequestExpect {
        method: Some("post".into()),
        path: Some("/contacts".into()),
        headers: BTreeMap::from([("X-Mail-Key".to_owned(), "k".to_owned())]),
        body: None,
    };
    assert!(expect::request_diffs(&want, &got).is_empty());
    want.headers.insert("X-Other".into(), "v".into());
    want.path = Some("/tasks".into());
    assert_eq!(
        expect::request_diffs(&want, &got),
        [
            "path: expected /tasks, got /contacts",
            "headers.X-Other: expected \"v\", missing"
        ]
    );
}

fn examples_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples"))
}

/// Each missing field gets the outcome the config implies: the event id's
/// field is refused at ingest, the `when` field skips, a defaulted field
/// still succeeds, any other is a mapping failure naming it.
#[tokio::test]
async fn a_missing_field_is_expected_to_end_as_the_config_says() {
    let runner = Runner::new(&examples_dir().join("new-lead.yaml"), &BTreeMap::new())
        .await
        .unwrap();
    let example: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(examples_dir().join("website-form.json")).unwrap(),
    )
    .unwrap();
    let cases = standard::cases(
        runner.config(),
        &BTreeMap::from([("website-form".to_owned(), example)]),
        5,
    );
    let find = |name: &str| {
        cases
            .iter()
            .find(|c| c.name == format!("new-lead: {name}"))
            .unwrap_or_else(|| panic!("no case {name:?}"))
    };
    let ingest = |name: &str| find(name).expect.ingest.clone();
    assert_eq!(
        ingest("body.submission_id missing"),
        Some(super::file::IngestExpect::Status(400))
    );
    assert_eq!(
        find("body.email missing").expect.status.as_deref(),
        Some("skipped")
    );
    assert_eq!(
        find("body.interest missing").expect.status.as_deref(),
        Some("succeeded")
    );
    let first = &find("body.first_name missing").expect;
    assert_eq!(
        (
            first.status.as_deref(),
            first.failure.as_deref(),
            first.dead_letter.as_deref()
        ),
        (
            Some("dead_lettered"),
            Some("mapping"),
            Some("body.first_name")
        )
    );
    // chat allows 1 request per second: 5 calls need at least 4 s.
    assert_eq!(
        find("high volume (5 events)")
            .expect
            .min_duration
            .as_deref(),
        Some("4000ms")
    );
}

const SLOW: &str = "version: 1
connections:
  api: { base_url: \"${env:API_URL}\", timeout: 5s }
sources:
  s:
    verify: { scheme: hmac-sha256, header: X-Signature, secret: \"${env:SECRET}\" }
    event_id: \"{{ body.id }}\"
workflows:
  w:
    trigger: { source: s }
    retry: { max_attempts: 3, initial_backoff: 10m, max_backoff: 1h }
    steps:
      - { id: call, connection: api, request: { method: POST, path: \"/things/{{ body.id }}\", json: { id: \"{{ body.id }}\" } } }
";

/// A mocked delay over the timeout is a failed attempt, retried after a
/// 10-minute backoff that takes no real time; an unmocked step fails the case.
#[tokio::test]
async fn a_slow_answer_is_retried_on_the_virtual_clock() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.yaml");
    std::fs::write(&config, SLOW).unwrap();
    let runner = Runner::new(&config, &BTreeMap::new()).await.unwrap();
    let file: TestFile = serde_yaml_ng::from_str(
        "cases:\n  - name: slow then fine\n    event: { source: s, payload: { id: a1 } }\n    mocks:\n      call: [{ delay: 1m }, { delay: 2s, status: 201 }]\n    expect:\n      status: succeeded\n      min_duration: 10m\n      steps: { call: { calls: 2, request: { path: \"/things/{{ body.id }}\", body: { id: a1 } } } }\n  - name: nothing mocked\n    event: { source: s, payload: { id: a2 } }\n",
    )
    .unwrap();
    let out = runner.run(&file.cases[0]).await;
    assert_eq!(
        expect::check(&file.cases[0].expect, &out),
        Vec::<String>::new()
    );
    assert!(
        out.virtual_elapsed >= Duration::from_secs(5 + 2),
        "{:?}",
        out.virtual_elapsed
    );
    let attempts = &out.runs[0].steps[0].attempts;
    assert!(
        attempts[0].status_code.is_none(),
        "the first attempt got no answer: {attempts:?}"
    );

    let out = runner.run(&file.cases[1]).await;
    let fails = expect::check(&file.cases[1].expect, &out);
    assert_eq!(
        fails,
        [
            "a call no mock answers (add a mock for its step): POST /things/a2 (step call) {\"id\":\"a2\"}"
        ]
    );
}

const OAUTH: &str = "version: 1
connections:
  api:
    base_url: \"${env:API_URL}\"
    auth: { type: oauth2, token_url: \"${env:TOKEN_URL}\", client_id: ferry, client_secret: \"${env:CLIENT_SECRET}\" }
sources:
  hook:
    verify: { scheme: standard-webhooks, secret: \"${env:HOOK_SECRET}\" }
workflows:
  push:
    trigger: { source: hook }
    steps:
      - { id: create, connection: api, request: { method: POST, path: /items, json: { name: \"{{ body.name }}\" } } }
";

/// On an OAuth 2.0 connection the generated expired-credentials case is a
/// 401, then a token refresh the endpoint refuses; it and the stale
/// signature (this scheme signs a timestamp) pass on the real code paths.
#[tokio::test]
async fn generated_cases_pass_on_an_oauth_connection_and_a_timestamped_scheme() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.yaml");
    std::fs::write(&config, OAUTH).unwrap();
    let env = BTreeMap::from([(
        "HOOK_SECRET".to_owned(),
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
    )]);
    let runner = Runner::new(&config, &env).await.unwrap();
    let examples = BTreeMap::from([("hook".to_owned(), json!({ "name": "x" }))]);
    let cases = standard::cases(runner.config(), &examples, 3);
    let expired = cases
        .iter()
        .find(|c| c.name == "push: expired credentials on api (401)")
        .unwrap();
    assert!(expired.mocks.contains_key("api.token"), "{expired:?}");
    let stale = cases
        .iter()
        .find(|c| c.name == "push: stale signature")
        .unwrap();
    assert_eq!(
        stale.expect.ingest,
        Some(super::file::IngestExpect::Status(401))
    );
    for case in &cases {
        let out = runner.run(case).await;
        assert_eq!(
            expect::check(&case.expect, &out),
            Vec::<String>::new(),
            "{}",
            case.name
        );
    }
}

#[tokio::test]
async fn a_secret_the_scheme_cannot_take_is_one_error_naming_the_placeholder() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.yaml");
    std::fs::write(&config, OAUTH).unwrap();
    let err = Runner::new(&config, &BTreeMap::new()).await.err().unwrap();
    assert!(
        err.starts_with("sources.hook.verify: secret: must be `whsec_`"),
        "{err}"
    );
    assert!(err.contains("https://ferry-test.invalid/NAME"), "{err}");
}
