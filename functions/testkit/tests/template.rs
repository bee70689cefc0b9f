//! `template.yaml` agrees with the config it deploys and with the functions:
//! what cfn-lint cannot know.

use std::collections::BTreeSet;

use ferry::config::load_file;
use ferry_testkit::repo_root;
use serde_yaml_ng::Value;

fn template() -> Value {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).expect("template.yaml parses")
}

fn deploy_config_text() -> String {
    std::fs::read_to_string(repo_root().join("deploy/config/ferry.yaml")).unwrap()
}

/// Every NAME of `${env:NAME}` in `text`, comments aside.
fn env_refs(text: &str) -> BTreeSet<String> {
    let code: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    code.join("\n")
        .split("${env:")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
        .collect()
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("a string, not {v:?}"))
}

#[test]
fn every_variable_the_deployed_config_uses_is_set_on_the_functions() {
    let t = template();
    let vars = t["Globals"]["Function"]["Environment"]["Variables"]
        .as_mapping()
        .expect("Globals sets the functions' variables");
    let set: BTreeSet<String> = vars.keys().map(|k| str_of(k).to_owned()).collect();
    let used = env_refs(&deploy_config_text());
    assert!(!used.is_empty());
    let missing: Vec<&String> = used.difference(&set).collect();
    assert!(missing.is_empty(), "not set in template.yaml: {missing:?}");

    // Secrets come from Secrets Manager by dynamic reference, never literals.
    for name in ["CRM_TOKEN", "MAIL_API_KEY", "FORM_SECRET"] {
        let Value::Tagged(sub) = &vars[name] else {
            panic!("{name} is not a !Sub dynamic reference")
        };
        assert!(
            str_of(&sub.value).starts_with("{{resolve:secretsmanager:"),
            "{name}: {:?}",
            sub.value
        );
    }
}

/// A value of the right shape for the deployed config's `${env:NAME}`.
fn test_value(name: &str) -> String {
    if name.ends_with("_URL") {
        "https://api.example.com".to_owned()
    } else if name.ends_with("_ARN") {
        "arn:aws:sns:us-east-1:123456789012:ferry-alarms".to_owned()
    } else {
        "a-test-value".to_owned()
    }
}

#[test]
fn the_deployed_config_loads_and_ships_in_the_config_layer() {
    let used = env_refs(&deploy_config_text());
    let env = |name: &str| used.contains(name).then(|| test_value(name));
    let path = repo_root().join("deploy/config/ferry.yaml");
    load_file(&path, &env).unwrap_or_else(|e| panic!("deploy/config/ferry.yaml:\n{e}"));

    let t = template();
    let layer = &t["Resources"]["ConfigLayer"];
    assert_eq!(layer["Type"], "AWS::Serverless::LayerVersion");
    let dir = str_of(&layer["Properties"]["ContentUri"]);
    assert!(
        repo_root().join(dir).join("ferry.yaml").is_file(),
        "{dir}ferry.yaml"
    );
    // A layer's files are under /opt.
    assert_eq!(
        t["Globals"]["Function"]["Environment"]["Variables"]["FERRY_CONFIG"],
        "/opt/ferry.yaml"
    );
}

#[test]
fn every_sync_has_a_schedule_that_names_it() {
    let used = env_refs(&deploy_config_text());
    let env = |name: &str| used.contains(name).then(|| test_value(name));
    let loaded = load_file(&repo_root().join("deploy/config/ferry.yaml"), &env).unwrap();
    assert!(!loaded.config.syncs.is_empty());

    let t = template();
    let events = t["Resources"]["SyncFunction"]["Properties"]["Events"]
        .as_mapping()
        .unwrap();
    let schedules: Vec<(String, serde_json::Value)> = events
        .values()
        .filter(|e| e["Type"] == "Schedule")
        .map(|e| {
            let p = &e["Properties"];
            (
                str_of(&p["Schedule"]).to_owned(),
                serde_json::from_str(str_of(&p["Input"])).expect("the input is JSON"),
            )
        })
        .collect();
    for (name, sync) in &loaded.config.syncs {
        let want = (sync.schedule.clone(), serde_json::json!({ "sync": name }));
        assert!(
            schedules.contains(&want),
            "no schedule {want:?} in {schedules:?}"
        );
    }
    assert_eq!(
        schedules.len(),
        loaded.config.syncs.len(),
        "a schedule for a sync that is gone"
    );
}

#[test]
fn functions_are_built_by_cargo_lambda_for_arm64_on_al2023() {
    let t = template();
    let g = &t["Globals"]["Function"];
    assert_eq!(g["Runtime"], "provided.al2023");
    assert_eq!(g["Architectures"][0], "arm64");
    for (name, bin) in [
        ("IngestFunction", "ferry-ingest"),
        ("ExecuteFunction", "ferry-execute"),
        ("SyncFunction", "ferry-sync"),
        ("WatchFunction", "ferry-watch"),
        ("ConsoleFunction", "ferry-console"),
    ] {
        let f = &t["Resources"][name];
        assert_eq!(f["Metadata"]["BuildMethod"], "rust-cargolambda", "{name}");
        assert_eq!(f["Metadata"]["BuildProperties"]["Binary"], bin, "{name}");
        let manifest = repo_root()
            .join(str_of(&f["Properties"]["CodeUri"]))
            .join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        assert!(
            text.contains(&format!("name = \"{bin}\"")),
            "{name}: {bin} is not in {manifest:?}"
        );
    }
}

#[test]
fn the_queue_outlasts_the_execute_function_and_redrives_to_the_dlq() {
    let t = template();
    let r = &t["Resources"];
    let timeout = r["ExecuteFunction"]["Properties"]["Timeout"]
        .as_u64()
        .unwrap();
    let q = &r["WorkQueue"]["Properties"];
    let visibility = q["VisibilityTimeout"].as_u64().unwrap();
    assert!(
        visibility >= 6 * timeout,
        "visibility {visibility} < 6 × {timeout}"
    );
    let Value::Tagged(max) = &q["RedrivePolicy"]["maxReceiveCount"] else {
        panic!("maxReceiveCount is a parameter")
    };
    assert_eq!(max.value, "MaxReceiveCount");
    let sqs = &r["ExecuteFunction"]["Properties"]["Events"]["Work"]["Properties"];
    assert_eq!(sqs["FunctionResponseTypes"][0], "ReportBatchItemFailures");
}

#[test]
fn each_function_has_its_own_role_without_wildcard_actions() {
    let t = template();
    let r = &t["Resources"];
    let mut roles = BTreeSet::new();
    for name in [
        "IngestFunction",
        "ExecuteFunction",
        "SyncFunction",
        "WatchFunction",
        "ConsoleFunction",
    ] {
        let Value::Tagged(role) = &r[name]["Properties"]["Role"] else {
            panic!("{name} has no role of its own")
        };
        let role = str_of(&role.value).trim_end_matches(".Arn").to_owned();
        assert!(roles.insert(role.clone()), "{name} shares {role}");
        let statements =
            r[role.as_str()]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
                .as_sequence()
                .unwrap();
        for s in statements {
            let actions: Vec<&str> = match &s["Action"] {
                Value::Sequence(a) => a.iter().map(str_of).collect(),
                one => vec![str_of(one)],
            };
            for a in actions {
                assert!(!a.contains('*'), "{role}: wildcard action {a}");
            }
            assert!(
                !matches!(&s["Resource"], Value::String(x) if x.contains('*')),
                "{role}: wildcard resource"
            );
        }
    }
}
