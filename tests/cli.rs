//! The `ferry` command line: validate, schema, send.

mod support;

use serde_json::{Value, json};
use support::{Hub, Target, ferry};

#[test]
fn validate_reports_every_mistake_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.yaml");
    std::fs::write(
        &path,
        r#"version: 1
connections:
  crm:
    base_url: "${env:FERRY_TEST_CRM_URL}"
    auth: { type: bearer, token: "hunter2-literal" }
    rate_limit: { requests: 100, per: 10 parsecs }
  chat:
    base_url: "http://127.0.0.1:9/chat"
sources:
  website-form:
    verify: { scheme: hmac-sha256, header: X-Signature, secret: "${env:FERRY_TEST_UNSET_SECRET}" }
workflows:
  new-lead:
    trigger: { source: website-from }
    steps:
      - id: contact
        connection: crm
        request: { method: POST, path: /contacts, json: { name: "{{ body.name " } }
      - id: notify
        connection: chatt
        reqest: { path: /messages }
"#,
    )
    .unwrap();
    let (code, out, err) = ferry(&["validate", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
    for expected in [
        "FERRY_TEST_CRM_URL",
        "hunter2",
        "connections.crm.rate_limit.per",
        "FERRY_TEST_UNSET_SECRET",
        "workflows.new-lead.trigger.source",
        "workflows.new-lead.steps[0].request.json.name",
        "workflows.new-lead.steps[1].connection: unknown connection \"chatt\"; did you mean \"chat\"?",
        "reqest",
    ] {
        if expected == "hunter2" {
            assert!(
                !err.contains(expected),
                "a literal secret is never echoed:\n{err}"
            );
        } else {
            assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
        }
    }
    assert!(err.contains("line 21"), "errors carry line numbers:\n{err}");
}

#[test]
fn validate_accepts_the_examples() {
    let (code, out, err) = ferry(&[
        "validate",
        "--config",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/new-lead.yaml"),
    ]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn schema_is_json_schema_for_the_format() {
    let (code, out, _) = ferry(&["schema"]);
    assert_eq!(code, 0);
    let schema: Value = serde_json::from_str(&out).unwrap();
    for key in ["version", "connections", "sources", "workflows", "syncs"] {
        assert!(schema["properties"].get(key).is_some(), "{key} missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn send_signs_like_the_provider() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let crm = format!("{}/crm", target.url());
    let chat = format!("{}/chat", target.url());
    let env = [
        ("CRM_URL", crm.as_str()),
        ("CRM_TOKEN", "t0ken-for-send"),
        ("CHAT_URL", chat.as_str()),
        ("FORM_SECRET", "send-secret"),
    ];
    let hub = Hub::start(dir.path(), include_str!("../examples/minimal.yaml"), &env);
    let payload = dir.path().join("lead.json");
    std::fs::write(
        &payload,
        json!({"submission_id": "via-send", "email": "x@y.z", "first_name": "X", "last_name": "Y"})
            .to_string(),
    )
    .unwrap();
    let out = std::process::Command::new(support::ferry_bin())
        .args([
            "send",
            "website-form",
            "--config",
            hub.config.to_str().unwrap(),
            "--file",
            payload.to_str().unwrap(),
            "--url",
            &hub.url(""),
        ])
        .envs(env)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("202"), "{stdout}");
    let reply: Value = serde_json::from_str(stdout.lines().nth(1).unwrap()).unwrap();
    let run = hub.finished(reply["run_id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{run}");
}

/// `ferry graph` is deterministic: every example config's drawing, in both
/// formats, is the committed one in docs/graphs/ (regenerate with the command
/// the failure prints), and a config change makes `--check` fail.
#[test]
fn graph_of_every_example_matches_its_committed_drawing() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    for entry in std::fs::read_dir(root.join("examples")).unwrap() {
        let config = entry.unwrap().path();
        if config.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let stem = config.file_stem().unwrap().to_str().unwrap().to_owned();
        for (format, ext) in [("mermaid", "mmd"), ("dot", "dot")] {
            let golden = root.join(format!("docs/graphs/{stem}.{ext}"));
            let (code, out, err) = ferry(&[
                "graph",
                "--config",
                config.to_str().unwrap(),
                "--format",
                format,
                "--check",
                golden.to_str().unwrap(),
            ]);
            assert_eq!(code, 0, "{stem}.{ext}: {out}{err}");
            checked += 1;
        }
    }
    assert!(checked >= 4, "examples found: {checked}");

    // A renamed field is a different drawing.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root.join("examples/minimal.yaml")).unwrap();
    let changed = dir.path().join("minimal.yaml");
    std::fs::write(&changed, text.replace("body.first_name", "body.given_name")).unwrap();
    let golden = root.join("docs/graphs/minimal.mmd");
    let (code, _, err) = ferry(&[
        "graph",
        "--config",
        changed.to_str().unwrap(),
        "--check",
        golden.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("differs"), "{err}");
    let (code, out, _) = ferry(&["graph", "--config", changed.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        out.contains("body.given_name") && !out.contains("body.first_name"),
        "{out}"
    );
}

/// `ferry … | head`: when the reader of stdout has gone, a command ends
/// quietly with status 0 instead of panicking on the broken pipe. The pipe's
/// read end is closed before the command starts, so its first write fails,
/// every time.
#[test]
fn every_command_exits_quietly_when_its_reader_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/new-lead.yaml");
    let commands: &[&[&str]] = &[
        &["schema"],
        &["graph", "--config", config],
        &["validate", "--config", config],
        &["runs", "list", "--json", "--data", data],
        &["runs", "list", "--data", data],
        &["connections", "--json", "--config", config, "--data", data],
        &["connections", "--config", config, "--data", data],
        &["status", "--json", "--config", config, "--data", data],
        &["status", "--config", config, "--data", data],
        &["dlq", "list", "--json", "--config", config, "--data", data],
        &[
            "sync", "status", "--json", "--config", config, "--data", data,
        ],
    ];
    for args in commands {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(support::ferry_bin())
            .args(*args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("ferry runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "ferry {args:?} panicked:\n{err}");
        assert_eq!(out.status.code(), Some(0), "ferry {args:?}: {err}");
        assert!(err.is_empty(), "ferry {args:?} ends quietly: {err}");
    }
}
