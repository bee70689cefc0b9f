//! `ferry sync run NAME` and `ferry sync status` with the real binary, against
//! a source on 127.0.0.1.

mod support;

use serde_json::{Value, json};
use support::{Answer, Target, ferry};

const CONFIG: &str = r#"version: 1
connections:
  api: { base_url: "${env:API_URL}" }
syncs:
  contacts:
    schedule: cron(0 2 * * ? *)
    source:
      connection: api
      request: { method: GET, path: /contacts, query: { updated_since: "{{ watermark }}" } }
      records: response.body.results
      id: record.id
      version: record.updated_at
      watermark: record.updated_at
      start: "2024-01-01T00:00:00Z"
    map:
      email: "{{ record.email }}"
    steps:
      - { id: push, connection: api, request: { method: PUT, path: "/people/{{ body.email }}" } }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_run_then_status() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let records = json!({ "results": [
        { "id": 1, "updated_at": "2024-02-01T00:00:00Z", "email": "a@x.example" },
        { "id": 2, "updated_at": "2024-02-02T00:00:00Z" },
        { "id": 3, "updated_at": "2024-02-03T00:00:00Z", "email": "c@x.example" },
    ]});
    target.script("/contacts", vec![Answer::status(200, records)]);
    let config = dir.path().join("ferry.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    std::fs::write(
        dir.path().join("ferry.env"),
        format!("API_URL={}\n", target.url()),
    )
    .unwrap();
    let data = dir.path().join("data");
    let (cfg, data) = (config.to_str().unwrap(), data.to_str().unwrap());

    let (code, out, err) = ferry(&[
        "sync", "run", "contacts", "--config", cfg, "--data", data, "--json",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["outcome"], "completed");
    assert_eq!(
        (
            report["seen"].as_u64(),
            report["sent"].as_u64(),
            report["failed"].as_u64()
        ),
        (Some(3), Some(2), Some(1))
    );
    assert!(
        report["failures"][0]
            .as_str()
            .unwrap()
            .contains("record 2: map: missing field `record.email`"),
        "{report}"
    );
    // The first request started from `start`.
    let seen = target.seen_at("/contacts");
    assert_eq!(seen.len(), 1);

    let (code, out, err) = ferry(&["sync", "status", "--config", cfg, "--data", data]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("contacts  (cron(0 2 * * ? *))"), "{out}");
    assert!(
        out.contains("cursor    source: 2024-02-03T00:00:00Z"),
        "{out}"
    );
    assert!(
        out.contains("completed (1 pages: seen 3, sent 2, skipped 0, failed 1)"),
        "{out}"
    );

    let (code, out, _) = ferry(&["sync", "status", "--config", cfg, "--data", data, "--json"]);
    assert_eq!(code, 0);
    let st: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(st[0]["state"]["totals"]["sent"], 2);

    let (code, _, err) = ferry(&["sync", "run", "nope", "--config", cfg, "--data", data]);
    assert_eq!(code, 1);
    assert!(err.contains("no sync named \"nope\""), "{err}");
}
