//! `ferry test` end to end: the example's test file passes, a broken config
//! fails it with a readable diff, the generated cases cover the seven kinds
//! and pass, JUnit output is XML, and a real run exported with
//! `ferry runs export --as-test` passes as a case.

mod support;

use std::path::{Path, PathBuf};

use serde_json::json;
use support::{Hub, Target, ferry};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn the_example_test_file_passes_and_is_found_beside_the_config() {
    let file = root().join("examples/tests/new-lead.ferry.yaml");
    let (code, out, err) = ferry(&["test", path(&file)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\n6 passed, 0 failed"), "{out}");
    assert_eq!(out.matches("\nok ").count(), 6, "one line per case: {out}");

    // No path: tests/*.ferry.yaml beside --config.
    let config = root().join("examples/new-lead.yaml");
    let (code, out, err) = ferry(&["test", "--config", path(&config)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("new-lead.ferry.yaml (6 cases)"), "{out}");
}

/// A renamed field, a wrong path and a missing header each show in the diff.
#[test]
fn a_broken_config_fails_the_example_cases_with_a_readable_diff() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(root().join("examples/new-lead.yaml")).unwrap();
    let broken = good
        .replace(
            "            email: \"{{ body.email | lower | trim }}\"",
            "            e_mail: \"{{ body.email | lower | trim }}\"",
        )
        .replace("path: /contacts", "path: /contact")
        .replace("header: X-Mail-Key", "header: X-Api-Key")
        // The CRM's allow list would refuse the wrong path at load; widen it
        // so the wrong path reaches the mocks and shows in the diff.
        .replace("\"POST /contacts\"", "\"POST /contact*\"");
    assert!(
        broken.contains("\"POST /contact*\""),
        "the allow list was widened"
    );
    assert_ne!(good, broken);
    let config = dir.path().join("new-lead.yaml");
    std::fs::write(&config, broken).unwrap();
    let file = root().join("examples/tests/new-lead.ferry.yaml");
    let (code, out, _) = ferry(&["test", path(&file), "--config", path(&config)]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "FAILED  a new lead becomes a contact, a task, a welcome e-mail and a chat message"
        ),
        "{out}"
    );
    for line in [
        "step contact: the request differs",
        "path: expected /contacts, got /contact",
        "body.email: expected \"ada.lovelace@example.com\", missing",
        "step welcome: the request differs",
        "headers.X-Mail-Key: expected \"test-mail-key\", missing",
        "actual:   POST /contact headers",
        "\"e_mail\":\"ada.lovelace@example.com\"",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    assert!(out.contains("\n5 passed, 1 failed"), "{out}");
}

/// The seven kinds, generated from examples/website-form.json, all pass;
/// the high-volume case needs 19 s of virtual time for the chat connection's
/// 1 request per second.
#[test]
fn standard_cases_cover_the_seven_kinds_and_pass() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let config = root().join("examples/new-lead.yaml");
    let (code, out, err) = ferry(&[
        "test",
        "--config",
        path(&config),
        "--standard",
        "--junit",
        path(&junit),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    for kind in [
        "ok      new-lead: normal data",
        "ok      new-lead: body.first_name missing",
        "ok      new-lead: body.email missing",
        "ok      new-lead: duplicate delivery",
        "ok      new-lead: stale signature",
        "ok      new-lead: forged signature",
        "ok      new-lead: expired credentials on crm (401)",
        "ok      new-lead: permission error on crm (403)",
        "ok      new-lead: high volume (20 events)",
    ] {
        assert!(out.contains(kind), "missing {kind:?} in:\n{out}");
    }
    assert!(out.contains(" passed, 0 failed"), "{out}");

    // The JUnit report is XML, with a testcase per case and no failure.
    let xml = std::fs::read_to_string(&junit).unwrap();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut cases, mut failures) = (0, 0);
    loop {
        match reader.read_event().expect("well-formed JUnit XML") {
            quick_xml::events::Event::Eof => break,
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                match e.name().as_ref() {
                    "testcase" => cases += 1,
                    "failure" => failures += 1,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let passed: usize = out
        .lines()
        .last()
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert_eq!((cases, failures), (passed, 0), "{xml}");

    // --generate writes the same cases to a file that runs on its own.
    let generated = dir.path().join("generated.ferry.yaml");
    let (code, out, err) = ferry(&[
        "test",
        "--config",
        path(&config),
        "--generate",
        path(&generated),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let text = std::fs::read_to_string(&generated).unwrap();
    assert!(text.contains("min_duration: 19000ms"), "{text}");
    let (code, out, err) = ferry(&["test", path(&generated)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("high volume (20 events)"), "{out}");
}

#[test]
fn a_failing_case_writes_its_failure_into_the_junit_report() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.ferry.yaml");
    let config = root().join("examples/new-lead.yaml");
    std::fs::write(
        &file,
        format!(
            "config: {}\ncases:\n  - name: nothing is mocked\n    event:\n      source: website-form\n      payload: {{ submission_id: s1, email: a@b.c, first_name: A, last_name: B }}\n    expect: {{ status: succeeded }}\n",
            config.display()
        ),
    )
    .unwrap();
    let junit = dir.path().join("junit.xml");
    let (code, out, _) = ferry(&["test", path(&file), "--junit", path(&junit)]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "a call no mock answers (add a mock for its step): POST /contacts (step contact)"
        ),
        "{out}"
    );
    assert!(out.contains("0 passed, 1 failed"), "{out}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<failure message=\"a call no mock answers"),
        "{xml}"
    );
}

/// A real run of `ferry dev` (a retried step included), exported as a test
/// case, passes `ferry test`: same payload, same answers, same requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_real_run_exported_as_a_test_passes() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    target.script(
        "/crm/tasks",
        [(503, json!({"error": "busy"})), (201, json!({"id": "t_1"}))],
    );
    let (crm, mail, chat) = (
        format!("{}/crm", target.url()),
        format!("{}/mail", target.url()),
        format!("{}/chat", target.url()),
    );
    let alerts = format!("{}/alerts", target.url());
    let env = [
        ("CRM_URL", crm.as_str()),
        ("CRM_TOKEN", "real-crm-token"),
        ("MAIL_URL", mail.as_str()),
        ("MAIL_API_KEY", "real-mail-key"),
        ("CHAT_URL", chat.as_str()),
        ("FORM_SECRET", "real-form-secret"),
        ("ALERTS_SLACK_URL", alerts.as_str()),
    ];
    let config = std::fs::read_to_string(root().join("examples/new-lead.yaml")).unwrap();
    let hub = Hub::start(dir.path(), &config, &env);
    let payload: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/website-form.json")).unwrap(),
    )
    .unwrap();
    let (status, reply) = hub
        .post_signed("website-form", "real-form-secret", &payload)
        .await;
    assert_eq!(status, 202, "{reply}");
    let run = hub.finished(reply["run_id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{run}");

    let exported = dir.path().join("tests").join("run.ferry.yaml");
    std::fs::create_dir_all(exported.parent().unwrap()).unwrap();
    let (code, out, err) = hub.ferry(&[
        "runs",
        "export",
        reply["run_id"].as_str().unwrap(),
        "--as-test",
        "--output",
        path(&exported),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(text.contains("config: ../ferry.yaml"), "{text}");
    assert!(
        text.contains("path: /tasks"),
        "paths after the base URL: {text}"
    );
    assert!(
        text.contains("status: 503"),
        "the answers it got, in order: {text}"
    );
    assert!(
        !text.contains("real-crm-token"),
        "no credential in a test file: {text}"
    );

    let (code, out, err) = ferry(&["test", path(&exported)]);
    assert_eq!(code, 0, "{text}\n{out}{err}");
    assert!(out.contains("1 passed, 0 failed"), "{out}");
}

/// Every example config ships a test file that passes, and finds only its
/// own beside it; a broken variant of the minimal one (a renamed field, a
/// wrong path) fails with the diff.
#[test]
fn the_minimal_example_passes_and_a_broken_variant_fails_readably() {
    let config = root().join("examples/minimal.yaml");
    let (code, out, err) = ferry(&["test", "--config", path(&config)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("minimal.ferry.yaml (3 cases)"), "{out}");
    assert!(
        !out.contains("new-lead.ferry.yaml"),
        "only its own file: {out}"
    );
    assert!(out.contains("\n3 passed, 0 failed"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(&config).unwrap();
    let broken = good
        .replace(
            "            email: \"{{ body.email | lower | trim }}\"",
            "            mail: \"{{ body.email | lower | trim }}\"",
        )
        .replace("path: /messages", "path: /message");
    assert_ne!(good, broken);
    let changed = dir.path().join("minimal.yaml");
    std::fs::write(&changed, broken).unwrap();
    let file = root().join("examples/tests/minimal.ferry.yaml");
    let (code, out, _) = ferry(&["test", path(&file), "--config", path(&changed)]);
    assert_eq!(code, 1, "{out}");
    for line in [
        "FAILED  a lead becomes a contact and a chat message",
        "body.email: expected \"ada@example.com\", missing",
        "path: expected /messages, got /message",
        "2 passed, 1 failed",
    ] {
        assert!(out.contains(line), "{line:?} in:\n{out}");
    }
}
