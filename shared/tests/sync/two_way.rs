//! Two-way: a CRM (A) and a helpdesk (B) with different field names, edits on
//! both sides, a field owned by A, a true conflict, and ferry's own writes
//! coming back as echoes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use ferry::sync::run_sync;
use serde_json::{Value, json};

use crate::api::{Api, ts};
use crate::support::{drain, hub};

const CONFIG: &str = r#"version: 1
connections:
  crm: { base_url: "${env:A_URL}" }
  desk: { base_url: "${env:B_URL}" }
syncs:
  people:
    schedule: rate(5 minutes)
    two_way:
      conflict: newest
      fields:
        name: { a: record.name, b: record.full_name }
        phone: { a: record.phone, b: record.phone_number }
        tier: { a: record.tier, b: record.tier, owner: a }
      a:
        source:
          connection: crm
          request: { method: GET, path: /cursor, query: { updated_since: "{{ watermark }}" } }
          pagination: { style: cursor, token: response.body.next_cursor, param: cursor }
          records: response.body.results
          id: record.id
          watermark: record.updated_at
        write:
          - id: put
            connection: crm
            request:
              method: PUT
              path: "/records/{{ body.key }}"
              json: { name: "{{ body.fields.name }}", phone: "{{ body.fields.phone }}", tier: "{{ body.fields.tier }}" }
      b:
        source:
          connection: desk
          request: { method: GET, path: /link, query: { updated_since: "{{ watermark }}", limit: "2" } }
          pagination: { style: link_header }
          records: response.body
          id: record.id
          watermark: record.updated_at
        write:
          - id: put
            connection: desk
            request:
              method: PUT
              path: "/records/{{ body.key }}"
              json: { full_name: "{{ body.fields.name }}", phone_number: "{{ body.fields.phone }}", tier: "{{ body.fields.tier }}" }
"#;

/// Each side's view of every key, in the common field names.
fn view(api: &Api, a_side: bool, ids: &[&str]) -> BTreeMap<String, Value> {
    ids.iter()
        .map(|id| {
            let r = api.record(id);
            let v = if a_side {
                json!({ "name": r["name"], "phone": r["phone"], "tier": r["tier"] })
            } else {
                json!({ "name": r["full_name"], "phone": r["phone_number"], "tier": r["tier"] })
            };
            ((*id).to_owned(), v)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_on_both_sides_converge_without_echoes() {
    let tick = Arc::new(AtomicI64::new(0));
    let a = Api::start_with_tick(tick.clone()).await;
    let b = Api::start_with_tick(tick.clone()).await;
    a.put_record(
        json!({ "id": "p1", "name": "Ada", "phone": "100", "tier": "gold", "updated_at": a.now() }),
    );
    a.put_record(json!({ "id": "p2", "name": "Bob", "phone": "200", "tier": "silver", "updated_at": a.now() }));
    b.put_record(json!({ "id": "p3", "full_name": "Cy", "phone_number": "300", "tier": "bronze", "updated_at": b.now() }));
    let env = hub(CONFIG, &[("A_URL", &a.url), ("B_URL", &b.url)], None);
    let h = &env.hub;
    let ids = ["p1", "p2", "p3"];

    // First run: each side's records are created on the other.
    let r1 = run_sync(h, "people").await.unwrap();
    assert_eq!((r1.counts.sent, r1.counts.conflicts), (3, 0), "{r1:?}");
    drain(h).await;
    assert_eq!(view(&a, true, &ids), view(&b, false, &ids));

    // Second run: ferry's own writes come back from both sides; none is synced back.
    let r2 = run_sync(h, "people").await.unwrap();
    // The three writes are read back (and, at the inclusive watermarks, the last records before them).
    assert!(r2.counts.seen >= 3, "{r2:?}");
    assert_eq!(
        (r2.counts.sent, r2.counts.skipped),
        (0, r2.counts.seen),
        "{r2:?}"
    );
    assert_eq!(drain(h).await, 0);

    // Edits: different fields on both sides (merge), the same field on both
    // sides (a true conflict: B's edit is newer), and B edits A's field.
    a.edit("p1", json!({ "phone": "101" }));
    b.edit("p1", json!({ "full_name": "Ada Lovelace" }));
    a.edit("p2", json!({ "name": "Bobby" }));
    b.edit("p2", json!({ "full_name": "Robert" }));
    b.edit("p3", json!({ "tier": "platinum" }));

    let r3 = run_sync(h, "people").await.unwrap();
    assert_eq!(r3.counts.conflicts, 1, "{r3:?}");
    // p1 both ways, p2 into A only, p3 back into B (tier is A's).
    assert_eq!(r3.counts.sent, 4, "{r3:?}");
    let c = &r3.conflict_log[0];
    assert!(
        c.contains("p2.name")
            && c.contains("Bobby")
            && c.contains("Robert")
            && c.contains("kept b's"),
        "{c}"
    );
    drain(h).await;

    // Converged by the rules, and the next run has nothing to do.
    let r4 = run_sync(h, "people").await.unwrap();
    assert_eq!((r4.counts.sent, r4.counts.conflicts), (0, 0), "{r4:?}");
    assert_eq!(drain(h).await, 0);
    let both = view(&a, true, &ids);
    assert_eq!(both, view(&b, false, &ids));
    assert_eq!(
        both,
        BTreeMap::from([
            (
                "p1".into(),
                json!({ "name": "Ada Lovelace", "phone": "101", "tier": "gold" })
            ),
            (
                "p2".into(),
                json!({ "name": "Robert", "phone": "200", "tier": "silver" })
            ),
            (
                "p3".into(),
                json!({ "name": "Cy", "phone": "300", "tier": "bronze" })
            ),
        ])
    );

    // The conflict is in the run log, on the sync run's record.
    let run = h.ports.runs.get(&r3.run_id).await.unwrap().unwrap();
    assert_eq!(run.workflow, "sync:people");
    let noted: Vec<&str> = run
        .steps
        .iter()
        .filter(|s| s.id.starts_with("conflict"))
        .filter_map(|s| s.last_error.as_deref())
        .collect();
    assert_eq!(noted, [c.as_str()]);
    let _ = ts(0);
}
