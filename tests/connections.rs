//! `ferry connections`: each connection's breaker and 429 pause, as the store
//! has them, for people and for scripts (`--json`), with secrets redacted.

mod support;

use std::sync::Arc;

use ferry::clock::{Clock, SystemClock};
use ferry::store::{SqliteOptions, SqliteStore};
use serde_json::Value;
use support::ferry;

const CONFIG: &str = r#"version: 1
connections:
  crm:
    base_url: https://crm.example.com
    auth: { type: bearer, token: "${env:CRM_TOKEN}" }
  chat:
    base_url: https://chat.example.com
  audit:
    base_url: https://audit.example.com
    circuit_breaker: { enabled: false }
"#;
const TOKEN: &str = "tok_live_0123456789";

#[tokio::test]
async fn connections_show_the_breaker_since_when_why_and_a_429_pause() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let env = dir.path().join("ferry.env");
    std::fs::write(&env, format!("CRM_TOKEN={TOKEN}\n")).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();

    // What the workers would have recorded: crm's breaker open for an hour
    // (the target echoed the token in its error), chat paused by a 429.
    let now = SystemClock.now_ms();
    {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let store = SqliteStore::open(
            &data.join("ferry.db"),
            SqliteOptions {
                max_receives: 5,
                clock,
            },
        )
        .unwrap();
        let ports = store.ports();
        let why = format!(
            "HTTP 503 Service Unavailable from POST https://crm.example.com/x: bad token {TOKEN}"
        );
        ports
            .breakers
            .open("crm", now + 3_600_000, &why)
            .await
            .unwrap();
        ports
            .limits
            .pause("conn:chat", now + 3_600_000)
            .await
            .unwrap();
    }
    let args = |json: bool| {
        let mut a = vec![
            "connections".to_owned(),
            "--config".into(),
            config.to_str().unwrap().into(),
            "--env-file".into(),
            env.to_str().unwrap().into(),
            "--data".into(),
            data.to_str().unwrap().into(),
        ];
        if json {
            a.push("--json".into());
        }
        a
    };

    let a = args(true);
    let (code, out, err) = ferry(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{err}");
    let all: Vec<Value> = serde_json::from_str(&out).unwrap();
    let by_name = |n: &str| all.iter().find(|c| c["name"] == n).unwrap().clone();
    assert_eq!(all.len(), 3, "{out}");
    let crm = by_name("crm");
    assert_eq!(crm["breaker"], "open");
    let since = crm["since"].as_i64().unwrap();
    assert!((now..now + 60_000).contains(&since), "{crm}");
    assert_eq!(crm["until"].as_i64(), Some(now + 3_600_000));
    assert_eq!(
        crm["why"],
        "HTTP 503 Service Unavailable from POST https://crm.example.com/x: bad token [redacted]"
    );
    assert_eq!(crm["paused_until"], Value::Null);
    let chat = by_name("chat");
    assert_eq!(chat["breaker"], "closed");
    assert_eq!(chat["since"], Value::Null);
    assert_eq!(chat["paused_until"].as_i64(), Some(now + 3_600_000));
    assert_eq!(by_name("audit")["breaker"], "off");

    let a = args(false);
    let (code, out, err) = ferry(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains(TOKEN), "{out}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in\n{out}"))
            .to_owned()
    };
    let crm = line("crm");
    assert!(
        crm.contains(" open ") && crm.contains("calls wait until"),
        "{out}"
    );
    assert!(out.contains("why: HTTP 503 Service Unavailable from POST https://crm.example.com/x: bad token [redacted]"), "{out}");
    let chat = line("chat");
    assert!(
        chat.contains(" closed ") && chat.contains("paused by a 429 until"),
        "{out}"
    );
    assert!(line("audit").contains(" off "), "{out}");
}
