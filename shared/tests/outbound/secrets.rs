//! A target that echoes the credential it was sent in a 2xx answer: the
//! step's output is stored redacted, as the run log is. The whole SQLite
//! store (every file of it, byte by byte) is scanned for the secrets.

use base64::Engine;
use ferry::model::RunStatus;
use serde_json::json;

use crate::support::{SOURCE, Server, drain, hub, post, runs};

const TOKEN: &str = "tok-SECRET-bearer-1";
const PASSWORD: &str = "pw-SECRET-basic-2";
const MAIL_KEY: &str = "mk-SECRET-header-3";
const QUERY_KEY: &str = "qk SECRET/query+4";

#[tokio::test]
async fn echoed_credentials_never_reach_the_store() {
    // Echo every header and the raw query back in a 200.
    let target = Server::start(|req| {
        (
            200,
            vec![],
            json!({ "marker": "echo-marker-0", "headers": req.headers, "query": req.query }),
        )
    })
    .await;
    let conns = [
        ("bearer", r#"{ type: bearer, token: "${env:TOKEN}" }"#),
        (
            "basic",
            r#"{ type: basic, username: ferry, password: "${env:PASSWORD}" }"#,
        ),
        (
            "header",
            r#"{ type: api_key, header: X-Mail-Key, key: "${env:MAIL_KEY}" }"#,
        ),
        (
            "query",
            r#"{ type: api_key, query: api_key, key: "${env:QUERY_KEY}" }"#,
        ),
    ];
    let mut y = String::from("version: 1\nconnections:\n");
    for (name, auth) in conns {
        y += &format!("  {name}: {{ base_url: \"${{env:T}}\", auth: {auth} }}\n");
    }
    y += SOURCE;
    y += "workflows:\n";
    for (name, _) in conns {
        // The second step sees the first's (stored) output.
        y += &format!(
            "  {name}:\n    trigger: {{ source: form }}\n    steps:\n      - {{ id: echo, connection: {name}, request: {{ method: POST, path: /echo, json: {{ n: 1 }} }} }}\n      - {{ id: next, connection: {name}, request: {{ method: POST, path: /next, json: {{ seen: \"{{{{ steps.echo.response.body.headers }}}}\" }} }} }}\n"
        );
    }
    let env = hub(
        &y,
        &[
            ("T", &target.url),
            ("TOKEN", TOKEN),
            ("PASSWORD", PASSWORD),
            ("MAIL_KEY", MAIL_KEY),
            ("QUERY_KEY", QUERY_KEY),
        ],
    );
    post(&env.hub, &json!({ "id": "e1" })).await;
    drain(&env.hub).await;
    for (wf, rs) in &runs(&env.hub).await {
        assert_eq!(rs[0].status, RunStatus::Succeeded, "{wf}: {:?}", rs[0]);
    }
    // The target did get (and echo) every credential.
    let echoed = serde_json::to_string(
        &target
            .seen()
            .iter()
            .filter(|s| s.path == "/echo")
            .map(|s| (&s.headers, &s.query))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("ferry:{PASSWORD}"));
    let query_encoded = "qk+SECRET%2Fquery%2B4";
    for s in [TOKEN, &basic, MAIL_KEY, query_encoded] {
        assert!(echoed.contains(s), "the target saw {s}: {echoed}");
    }

    // Nothing of it in any file of the store (the database, its WAL, …).
    let mut store = Vec::new();
    for entry in std::fs::read_dir(env.dir.path()).unwrap() {
        store.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let has = |needle: &str| store.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(has("echo-marker-0"), "step outputs are in the store");
    assert!(has("[redacted]"), "and redacted there");
    for s in [TOKEN, PASSWORD, &basic, MAIL_KEY, QUERY_KEY, query_encoded] {
        assert!(!has(s), "{s} is in the store");
    }
    // Later steps see the redacted output too (the same as after a resume).
    for s in target.seen().iter().filter(|s| s.path == "/next") {
        let body = s.body.to_string();
        assert!(!body.contains(MAIL_KEY) && !body.contains(TOKEN), "{body}");
    }
}
