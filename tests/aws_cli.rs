//! The `ferry` binary on the AWS store, against the emulator
//! `scripts/emulators` runs (moto's server at `FERRY_TEST_AWS_ENDPOINT`):
//! `ferry aws provision` stands the store up, `ferry dev --store aws` runs
//! events on it, and `runs`, `dlq`, `sync status` and `connections` with
//! `--store aws` answer in the same JSON shape as on the embedded store;
//! `--stack NAME` finds the same store through a stack's outputs.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Answer, Hub, Target, eventually, ferry_bin, test_log};

const CONFIG: &str = include_str!("../examples/minimal.yaml");
const SECRET: &str = "form-secret-for-tests";

/// A sync whose schedule is not due during the test; `sync run` runs it.
const SYNC: &str = r#"
syncs:
  contacts:
    schedule: cron(0 2 * * ? *)
    source:
      connection: crm
      request: { method: GET, path: /people, query: { updated_since: "{{ watermark }}" } }
      records: response.body.results
      id: record.id
      version: record.updated_at
      watermark: record.updated_at
      start: "2024-01-01T00:00:00Z"
    map:
      email: "{{ record.email }}"
    steps:
      - { id: push, connection: crm, request: { method: PUT, path: "/people/{{ body.email }}" } }
"#;

/// moto's endpoint, or `None` (a loud skip) outside `scripts/emulators run`;
/// with `FERRY_REQUIRE_AWS=1` a missing endpoint fails.
fn emulator(test: &str) -> Option<String> {
    if let Ok(e) = std::env::var("FERRY_TEST_AWS_ENDPOINT")
        && !e.trim().is_empty()
    {
        return Some(e);
    }
    assert!(
        std::env::var("FERRY_REQUIRE_AWS").as_deref() != Ok("1"),
        "{test}: FERRY_REQUIRE_AWS=1 but FERRY_TEST_AWS_ENDPOINT is not set"
    );
    eprintln!("\n*** SKIPPED {test}: run it under `scripts/emulators run -- cargo test …` ***\n");
    None
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// Run `ferry args…` with `env` added: (exit code, stdout, stderr).
fn ferry(args: &[&str], env: &[(String, String)]) -> (i32, String, String) {
    let out = Command::new(ferry_bin())
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("FERRY_LOG", test_log())
        .output()
        .expect("ferry runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ferry args… --json` that must succeed, parsed.
fn json_of(args: &[&str], env: &[(String, String)]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out, err) = ferry(&all, env);
    assert_eq!(code, 0, "ferry {all:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ferry {all:?}: {e}: {out}"))
}

/// `ferry aws provision` on the emulator; the `export NAME=VALUE` lines it prints.
fn provision(table: &str, queue: &str) -> Vec<(String, String)> {
    let (code, out, err) = ferry(
        &[
            "aws",
            "provision",
            "--table",
            table,
            "--queue",
            queue,
            "--max-receives",
            "3",
        ],
        &[],
    );
    assert_eq!(code, 0, "provision: {err}");
    out.lines()
        .map(|l| {
            let (k, v) = l
                .strip_prefix("export ")
                .and_then(|l| l.split_once('='))
                .unwrap_or_else(|| panic!("not an export line: {l:?}"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn var<'a>(env: &'a [(String, String)], name: &str) -> &'a str {
    &env.iter().find(|(k, _)| k == name).unwrap().1
}

/// The hub on `store_args`, with the config's connections at `target`.
fn start(dir: &Path, target: &Target, store_env: &[(String, String)], extra: &[&str]) -> Hub {
    let crm = format!("{}/crm", target.url());
    let chat = format!("{}/chat", target.url());
    let mut env: Vec<(&str, &str)> = vec![
        ("CRM_URL", &crm),
        ("CRM_TOKEN", "crm-token-for-tests"),
        ("CHAT_URL", &chat),
        ("FORM_SECRET", SECRET),
    ];
    env.extend(store_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    Hub::start_with(dir, &format!("{CONFIG}{SYNC}"), &env, extra)
}

/// The keys of a JSON object (of each element, for an array), recursively,
/// as paths: what "the same JSON shape" compares.
fn shape(v: &Value) -> BTreeSet<String> {
    fn walk(v: &Value, at: &str, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let p = format!("{at}.{k}");
                    out.insert(p.clone());
                    walk(v, &p, out);
                }
            }
            Value::Array(a) => {
                for v in a {
                    walk(v, &format!("{at}[]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(v, "", &mut out);
    out
}

/// What the CLI answers about one store after one good and one bad event.
struct Answers {
    runs: Value,
    good: Value,
    bad: Value,
    dlq: Value,
    sync: Value,
    connections: Value,
    status: Value,
}

/// Send one event that succeeds and one the CRM refuses (400: dead-lettered
/// at once), wait for both, then ask the CLI with `store` (`--store aws` or
/// `--data DIR`) and the hub's environment; replay the dead letter and check it is gone.
async fn exercise(hub: &Hub, store: &[&str]) -> Answers {
    let env = &hub.env;
    let (status, good) = hub.post_signed("website-form", SECRET, &lead("ok-1")).await;
    assert_eq!(status, 202, "{good}");
    let (status, bad) = hub
        .post_signed("website-form", SECRET, &lead("bad-1"))
        .await;
    assert_eq!(status, 202, "{bad}");
    let with = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(store)
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>()
    };
    let ask = |args: &[&str]| {
        let args = with(args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        json_of(&args, env)
    };
    let show = |id: &str| ask(&["runs", "show", id]);
    let good_id = good["run_id"].as_str().unwrap().to_owned();
    let bad_id = bad["run_id"].as_str().unwrap().to_owned();
    let finished = |id: String| async move {
        eventually(&format!("run {id}"), Duration::from_secs(30), || async {
            let run = show(&id);
            matches!(run["status"].as_str(), Some("succeeded" | "dead_lettered")).then_some(run)
        })
        .await
    };
    let good = finished(good_id).await;
    let bad = finished(bad_id.clone()).await;
    assert_eq!(good["status"], "succeeded", "{good}");
    assert_eq!(bad["status"], "dead_lettered", "{bad}");

    // The succeeded run, exported as a `ferry test` case, passes it: from either store.
    let case = hub.data.parent().unwrap().join("exported.ferry.yaml");
    let export = with(&[
        "runs",
        "export",
        good["id"].as_str().unwrap(),
        "--as-test",
        "--config",
        hub.config.to_str().unwrap(),
        "--output",
        case.to_str().unwrap(),
    ]);
    let export: Vec<&str> = export.iter().map(String::as_str).collect();
    let (code, out, err) = ferry(&export, env);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = ferry(&["test", case.to_str().unwrap()], env);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 passed, 0 failed"), "{out}");

    let runs = eventually(
        "both runs listed final",
        Duration::from_secs(10),
        || async {
            let runs = ask(&["runs", "list"]);
            let finals = runs
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| matches!(r["status"].as_str(), Some("succeeded" | "dead_lettered")))
                .count();
            (finals == 2).then_some(runs)
        },
    )
    .await;
    let dlq = eventually("the dead letter", Duration::from_secs(10), || async {
        let dlq = ask(&["dlq", "list", "--config", hub.config.to_str().unwrap()]);
        (dlq.as_array().unwrap().len() == 1).then_some(dlq)
    })
    .await;
    assert_eq!(dlq[0]["run_id"], bad_id.as_str(), "{dlq}");
    assert!(
        dlq[0]["reason"].as_str().unwrap().contains("HTTP 400"),
        "{dlq}"
    );
    let pass = ask(&[
        "sync",
        "run",
        "contacts",
        "--config",
        hub.config.to_str().unwrap(),
    ]);
    assert_eq!(pass["outcome"], "completed", "{pass}");
    // The filters, on the index and after it (`--where`).
    let event_ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["runs", "list"];
        all.extend_from_slice(args);
        ask(&all)
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["event_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        event_ids(&["--source", "website-form", "--event-id", "ok-1"]),
        ["ok-1"]
    );
    assert_eq!(
        event_ids(&["--workflow", "new-lead", "--status", "dead_lettered"]),
        ["bad-1"]
    );
    assert_eq!(event_ids(&["--source", "elsewhere"]), Vec::<String>::new());
    // The sync pass above is a run too.
    assert_eq!(event_ids(&["--since", "1h"]).len(), 3);
    assert_eq!(
        event_ids(&["--since", "1h", "--workflow", "new-lead"]),
        ["bad-1", "ok-1"]
    );
    assert_eq!(event_ids(&["--until", "1h"]), Vec::<String>::new());
    assert_eq!(
        event_ids(&["--where", "steps.contact.status == 'failed'"]),
        ["bad-1"]
    );
    assert_eq!(
        event_ids(&["--where", "event.id == 'ok-1'", "--limit", "1"]),
        ["ok-1"]
    );
    // The event's payload and a step's last answer, as templates see them.
    assert_eq!(
        event_ids(&["--where", "body.submission_id == 'bad-1'"]),
        ["bad-1"]
    );
    assert_eq!(
        event_ids(&["--where", "steps.contact.response.status == 400"]),
        ["bad-1"]
    );

    let sync = ask(&["sync", "status", "--config", hub.config.to_str().unwrap()]);
    assert!(sync[0]["state"]["last_run"].is_object(), "{sync}");
    let connections = ask(&["connections", "--config", hub.config.to_str().unwrap()]);
    let status = ask(&["status", "--config", hub.config.to_str().unwrap()]);
    assert_eq!(
        status["workflows"],
        json!([{ "workflow": "new-lead", "runs": { "dead_lettered": 1, "succeeded": 1 }, "truncated": false }]),
        "{status}"
    );
    assert_eq!(status["sources"][0]["source"], "website-form", "{status}");
    assert_eq!(status["sources"][0]["last_event_id"], "bad-1", "{status}");
    assert_eq!(
        status["connections"],
        json!([
            { "connection": "chat", "state": "ok", "until": null, "held": false, "auth_failing": false },
            { "connection": "crm", "state": "ok", "until": null, "held": false, "auth_failing": false }
        ]),
        "{status}"
    );
    assert_eq!(status["dlq_depth"], 1, "{status}");
    assert_eq!(status["syncs"][0]["sync"], "contacts", "{status}");
    assert_eq!(
        status["syncs"][0]["last_pass"]["outcome"], "completed",
        "{status}"
    );

    // Replay: the letter leaves the DLQ and the run runs again (the CRM now says 200).
    let letter = dlq[0]["id"].as_str().unwrap();
    let args = with(&[
        "dlq",
        "replay",
        letter,
        "--config",
        hub.config.to_str().unwrap(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = ferry(&args, env);
    assert_eq!(code, 0, "replay: {out} {err}");
    assert!(out.contains(&bad_id), "{out}");
    eventually("the replayed run", Duration::from_secs(30), || async {
        (show(&bad_id)["status"] == "succeeded").then_some(())
    })
    .await;
    let after = ask(&["dlq", "list", "--config", hub.config.to_str().unwrap()]);
    assert_eq!(after, json!([]), "replayed letters leave the DLQ");

    Answers {
        runs,
        good,
        bad,
        dlq,
        sync,
        connections,
        status,
    }
}

fn lead(id: &str) -> Value {
    json!({ "submission_id": id, "email": format!("{id}@example.com"), "first_name": "Ada", "last_name": "Lovelace" })
}

/// The CRM: it refuses a `bad-…` contact the first time (400, so that run
/// is dead-lettered at once) and takes everything else, whatever the order
/// the two runs call in; the replay of the refused one then succeeds.
fn crm(target: &Target) {
    let refused = std::sync::Mutex::new(BTreeSet::new());
    target.behave("/crm/contacts", move |req| {
        let email = req.body["email"].as_str().unwrap_or_default().to_owned();
        Some(
            if email.starts_with("bad") && refused.lock().unwrap().insert(email) {
                Answer::status(400, json!({"error": "email is invalid"}))
            } else {
                Answer::ok(json!({"id": "c-1"}))
            },
        )
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_works_on_the_aws_store_as_on_the_embedded_one() {
    let Some(_) = emulator("the_cli_works_on_the_aws_store_as_on_the_embedded_one") else {
        return;
    };
    let (table, queue) = (unique("ferry-cli"), unique("ferry-cli"));
    let aws_env = provision(&table, &queue);
    assert_eq!(var(&aws_env, "FERRY_STORE"), "aws");
    assert_eq!(var(&aws_env, "FERRY_TABLE"), table);
    assert!(var(&aws_env, "FERRY_QUEUE_URL").contains(&queue));
    assert!(var(&aws_env, "FERRY_DLQ_URL").contains(&format!("{queue}-dlq")));
    assert_eq!(
        provision(&table, &queue),
        aws_env,
        "provisioning twice is harmless"
    );

    let aws_dir = tempfile::tempdir().unwrap();
    let aws_target = Target::start().await;
    crm(&aws_target);
    aws_target.respond("/crm/people", 200, json!({ "results": [] }));
    let aws_hub = start(aws_dir.path(), &aws_target, &aws_env, &["--store", "aws"]);
    let on_aws = exercise(&aws_hub, &["--store", "aws"]).await;
    assert!(
        !aws_hub.data.join("ferry.db").exists(),
        "ferry dev --store aws keeps nothing in --data"
    );

    let local_dir = tempfile::tempdir().unwrap();
    let local_target = Target::start().await;
    crm(&local_target);
    local_target.respond("/crm/people", 200, json!({ "results": [] }));
    let local_hub = start(local_dir.path(), &local_target, &[], &[]);
    let data = local_hub.data.to_str().unwrap().to_owned();
    let local = exercise(&local_hub, &["--data", &data]).await;

    for (what, aws, local) in [
        ("runs list", &on_aws.runs, &local.runs),
        ("runs show (succeeded)", &on_aws.good, &local.good),
        ("runs show (dead-lettered)", &on_aws.bad, &local.bad),
        ("dlq list", &on_aws.dlq, &local.dlq),
        ("sync status", &on_aws.sync, &local.sync),
        ("connections", &on_aws.connections, &local.connections),
        ("status", &on_aws.status, &local.status),
    ] {
        assert!(!shape(aws).is_empty(), "{what}: {aws}");
        assert_eq!(shape(aws), shape(local), "{what}: {aws} vs {local}");
    }
    assert_eq!(on_aws.sync[0]["sync"], "contacts");
    assert_eq!(on_aws.connections.as_array().unwrap().len(), 2);
}

#[test]
fn a_missing_variable_is_named() {
    let (code, _, err) = ferry(
        &["runs", "list", "--store", "aws"],
        &[
            ("FERRY_TABLE".into(), String::new()),
            ("FERRY_QUEUE_URL".into(), "http://127.0.0.1:1/q".into()),
            ("FERRY_DLQ_URL".into(), String::new()),
            ("AWS_REGION".into(), "us-east-1".into()),
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--store aws: FERRY_TABLE is not set; FERRY_DLQ_URL is not set"),
        "{err}"
    );
}

/// A stack on moto whose only outputs are `outputs` (literal values): what
/// DescribeStacks answers for a deployed `template.yaml`, without its resources.
async fn create_stack(name: &str, outputs: &[(&str, &str)]) {
    let outputs: serde_json::Map<String, Value> = outputs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!({ "Value": v })))
        .collect();
    let template = json!({ "Resources": {}, "Outputs": outputs });
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    aws_sdk_cloudformation::Client::new(&config)
        .create_stack()
        .stack_name(name)
        .template_body(template.to_string())
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "CreateStack {name}: {}",
                aws_sdk_cloudformation::error::DisplayErrorContext(&e)
            )
        });
}

/// The store's names as the stack outputs `template.yaml` declares.
fn stack_outputs(env: &[(String, String)]) -> [(&'static str, String); 3] {
    [
        ("TableName", var(env, "FERRY_TABLE").to_owned()),
        ("WorkQueueUrl", var(env, "FERRY_QUEUE_URL").to_owned()),
        ("DeadLetterQueueUrl", var(env, "FERRY_DLQ_URL").to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stack_reads_the_store_its_outputs_name_over_the_environment() {
    let Some(_) = emulator("stack_reads_the_store_its_outputs_name_over_the_environment") else {
        return;
    };
    let (table, queue) = (unique("ferry-stack"), unique("ferry-stack"));
    let deployed = provision(&table, &queue);
    // A second, empty store the environment names: the stack must win over it.
    let (other_table, other_queue) = (unique("ferry-other"), unique("ferry-other"));
    let other = provision(&other_table, &other_queue);
    let stack = unique("ferry-stack");
    let outputs = stack_outputs(&deployed);
    let outputs: Vec<(&str, &str)> = outputs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    create_stack(&stack, &outputs).await;

    // The hub writes a dead-lettered run on the deployed store (named by the environment).
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    target.respond("/crm/contacts", 400, json!({"error": "email is invalid"}));
    let hub = start(dir.path(), &target, &deployed, &["--store", "aws"]);
    let (status, bad) = hub
        .post_signed("website-form", SECRET, &lead("bad-1"))
        .await;
    assert_eq!(status, 202, "{bad}");
    let run_id = bad["run_id"].as_str().unwrap().to_owned();

    // The CLI with the other store in its environment, and --stack.
    let env: Vec<(String, String)> = hub
        .env
        .iter()
        .filter(|(k, _)| !k.starts_with("FERRY_"))
        .cloned()
        .chain(other.iter().cloned())
        .collect();
    let config = hub.config.to_str().unwrap();
    let runs = eventually("the run, via --stack", Duration::from_secs(30), || async {
        let runs = json_of(&["runs", "list", "--stack", &stack], &env);
        let run = runs.as_array().unwrap().first().cloned()?;
        (run["status"] == "dead_lettered").then_some(runs)
    })
    .await;
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
    assert_eq!(runs[0]["id"], run_id.as_str(), "{runs}");
    assert_eq!(runs[0]["event_id"], "bad-1", "{runs}");
    let dlq = eventually(
        "the dead letter, via --stack",
        Duration::from_secs(10),
        || async {
            let dlq = json_of(
                &["dlq", "list", "--stack", &stack, "--config", config],
                &env,
            );
            (!dlq.as_array().unwrap().is_empty()).then_some(dlq)
        },
    )
    .await;
    assert_eq!(dlq.as_array().unwrap().len(), 1, "{dlq}");
    assert_eq!(dlq[0]["run_id"], run_id.as_str(), "{dlq}");
    // `--store aws --stack` is the same; the environment alone names the empty store.
    let both = json_of(&["runs", "list", "--store", "aws", "--stack", &stack], &env);
    assert_eq!(both, runs);
    assert_eq!(
        json_of(&["runs", "list", "--store", "aws"], &env),
        json!([])
    );
}

#[tokio::test]
async fn an_unknown_stack_or_a_missing_output_is_named() {
    let Some(_) = emulator("an_unknown_stack_or_a_missing_output_is_named") else {
        return;
    };
    let missing = unique("ferry-none");
    let (code, _, err) = ferry(&["runs", "list", "--stack", &missing], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "--stack {missing}: no stack named \"{missing}\" in us-east-1"
        )),
        "{err}"
    );

    let partial = unique("ferry-partial");
    create_stack(&partial, &[("WorkQueueUrl", "http://127.0.0.1:1/q")]).await;
    let (code, _, err) = ferry(&["runs", "list", "--stack", &partial], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "--stack {partial}: stack \"{partial}\" (CREATE_COMPLETE) has no output \
             TableName (FERRY_TABLE), no output DeadLetterQueueUrl (FERRY_DLQ_URL)"
        )),
        "{err}"
    );

    let (code, _, err) = ferry(
        &["runs", "list", "--stack", &partial, "--store", "embedded"],
        &[],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--stack names an AWS store; it cannot be combined with --store embedded"),
        "{err}"
    );
}

/// `ferry connections authorize --store aws` stores the tokens (sealed) in
/// DynamoDB, nothing under --data; a hub on that store calls with them and
/// refreshes from the stored refresh token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_stores_the_tokens_in_the_aws_store() {
    use ferry::clock::{Clock, ManualClock, SystemClock};
    use support::oauth::{Authorizing, BOOKS_SECRET, OAUTH_CONFIG, call_books, finished};
    let Some(_) = emulator("authorize_stores_the_tokens_in_the_aws_store") else {
        return;
    };
    let aws_env = provision(&unique("ferry-auth"), &unique("ferry-auth"));
    let a = Authorizing::start().await;
    let (url, child, rx) = a.authorize(&aws_env).await;
    let page = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(page.contains("connection books is authorized"), "{page}");
    let (code, out, err) = tokio::task::block_in_place(|| finished(child, rx));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("(--store aws)"), "{out}");
    assert!(!a.dir.path().join("data").join("ferry.db").exists());

    let clock = ManualClock::at(SystemClock.now_ms());
    let env = |n: &str| {
        aws_env
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(n).ok())
    };
    let store = ferry::boot::aws_store(&env, clock.clone() as std::sync::Arc<dyn Clock>)
        .await
        .unwrap();
    let api = a.target.url();
    let vars = |n: &str| match n {
        "API" => Some(api.clone()),
        "BOOKS_SECRET" => Some(BOOKS_SECRET.to_owned()),
        _ => None,
    };
    let loaded = ferry::config::load_str(OAUTH_CONFIG, &vars).unwrap();
    let hub = ferry::hub::Hub::new(loaded.config, loaded.secrets, store.ports()).unwrap();
    assert!(call_books(&hub).await, "a run with the stored token");
    assert_eq!(a.provider.issued(), 1, "no token request");
    clock.advance(3_600_000);
    assert!(call_books(&hub).await, "a run after the refresh");
    assert_eq!(a.provider.presented(), vec!["rt-1".to_owned()]);
}
