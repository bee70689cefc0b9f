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

/// `ferry describe` is deterministic: every example config's description,
/// Markdown and JSON, is the committed one in docs/describe/ (regenerate with
/// the command the failure prints); a renamed field makes `--check` fail with
/// a diff naming it.
#[test]
fn describe_of_every_example_matches_its_committed_document() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    for entry in std::fs::read_dir(root.join("examples")).unwrap() {
        let config = entry.unwrap().path();
        if config.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let stem = config.file_stem().unwrap().to_str().unwrap().to_owned();
        for (format, ext) in [("markdown", "md"), ("json", "json")] {
            let golden = root.join(format!("docs/describe/{stem}.{ext}"));
            let (code, out, err) = ferry(&[
                "describe",
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

    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root.join("examples/new-lead.yaml")).unwrap();
    let changed = dir.path().join("new-lead.yaml");
    std::fs::write(&changed, text.replace("body.interest", "body.topic")).unwrap();
    let golden = root.join("docs/describe/new-lead.md");
    let (code, _, err) = ferry(&[
        "describe",
        "--config",
        changed.to_str().unwrap(),
        "--check",
        golden.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("differs from the config"), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with('-') && l.contains("body.interest"))
            && err
                .lines()
                .any(|l| l.starts_with('+') && l.contains("body.topic")),
        "a diff naming the field: {err}"
    );
}

/// What `ferry describe` says about a config with an `allow` list, OAuth
/// scopes, a two-way sync and alert rules: the requests per connection, the
/// scopes, the source of truth per field, and who is alerted (or nobody).
#[test]
fn describe_states_permissions_truth_and_who_is_alerted() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.yaml");
    std::fs::write(&config, DESCRIBED).unwrap();
    let (code, out, err) = ferry(&[
        "describe",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let d: Value = serde_json::from_str(&out).unwrap();
    let crm = &d["connections"][0];
    assert_eq!(crm["name"], "crm");
    assert_eq!(
        crm["scopes"],
        serde_json::json!(["contacts.read", "contacts.write"])
    );
    assert_eq!(
        crm["allow"],
        serde_json::json!(["GET /contacts*", "PUT /contacts/*"])
    );
    let requests: Vec<String> = crm["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} by {}",
                r["method"].as_str().unwrap(),
                r["path"].as_str().unwrap(),
                r["by"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        requests,
        [
            "GET /contacts by sync people, side a poll",
            "PUT /contacts/{{ body.key }} by sync people, side a write put",
        ]
    );
    let fields = &d["syncs"][0]["fields"];
    assert_eq!(fields[0]["name"], "email");
    assert_eq!(
        fields[0]["source_of_truth"],
        "a (b's edits are overwritten)"
    );
    assert_eq!(
        fields[1]["source_of_truth"],
        "the side that changed it; when both did, the one changed last"
    );
    let alerts = &d["workflows"][0]["alerts"];
    assert_eq!(alerts[0]["condition"], "run_failed");
    assert_eq!(alerts[0]["channels"], serde_json::json!(["pager"]));
    assert_eq!(alerts[1]["condition"], "error_rate");
    assert_eq!(
        alerts[1]["channels"],
        serde_json::json!([]),
        "error_rate needs a rule: nobody"
    );
    let (_, md, _) = ferry(&["describe", "--config", config.to_str().unwrap()]);
    assert!(
        md.contains("when too many of its runs fail (`error_rate`): nobody"),
        "{md}"
    );
    assert!(
        md.contains("only `GET /contacts*`, `PUT /contacts/*`"),
        "{md}"
    );
    assert!(
        md.contains("**OAuth scopes:** `contacts.read`, `contacts.write`"),
        "{md}"
    );
    assert!(
        !md.contains("/env/") && !out.contains("/env/"),
        "no stand-in for an ${{env:…}} value reaches the document"
    );
}

const DESCRIBED: &str = r#"version: 1
connections:
  crm:
    base_url: https://crm.example.com/v1
    auth: { type: oauth2, token_url: https://crm.example.com/token, client_id: ferry, client_secret: "${env:CRM_SECRET}", scope: "contacts.read contacts.write" }
    allow: ["GET /contacts*", "PUT /contacts/*"]
  sheet: { base_url: https://sheet.example.com }
sources:
  form: { verify: { scheme: api-key, header: X-Key, secret: "${env:KEY}" }, event_id: "{{ body.id }}" }
workflows:
  lead:
    trigger: { source: form }
    steps:
      - { id: row, connection: sheet, request: { path: /rows, json: { email: "{{ body.email }}" } } }
syncs:
  people:
    schedule: rate(5 minutes)
    two_way:
      fields:
        email: { a: record.email, b: record.Email, owner: a }
        name: { a: record.name, b: record.Name }
      a:
        source: { connection: crm, request: { method: GET, path: /contacts }, records: response.body.items, id: record.id, watermark: record.updated_at }
        write: [{ id: put, connection: crm, request: { method: PUT, path: "/contacts/{{ body.key }}", json: { email: "{{ body.fields.email }}" } } }]
      b:
        source: { connection: sheet, request: { method: GET, path: /people }, records: response.body.rows, id: record.id, watermark: record.modified }
        write: [{ id: upsert, connection: sheet, request: { method: POST, path: /people, json: { Email: "{{ body.fields.email }}" } } }]
alerts:
  channels:
    pager: { type: slack, webhook_url: "${env:PAGER_URL}" }
  rules:
    - { on: run_failed, workflows: [lead], channels: [pager] }
"#;

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
