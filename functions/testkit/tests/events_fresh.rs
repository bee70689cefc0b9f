//! The committed `events/` are exactly what the generator makes: regenerate
//! with `cargo run -p ferry-testkit --example events` after changing it,
//! the shapes or `events/ferry.yaml` / `events/ferry.env`.

use ferry_testkit::events::{committed, generate};
use ferry_testkit::{SIGNED_AT_MS, events_dir};

#[test]
fn the_committed_events_are_up_to_date() {
    let files = generate(SIGNED_AT_MS);
    let mut stale = Vec::new();
    for f in &files {
        let path = events_dir().join(&f.path);
        match std::fs::read_to_string(&path) {
            Ok(text) if text == f.text() => {}
            Ok(_) => stale.push(format!("events/{} differs", f.path)),
            Err(_) => stale.push(format!("events/{} is missing", f.path)),
        }
    }
    let mut made: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    made.sort_unstable();
    for path in committed() {
        if !made.contains(&path.as_str()) {
            stale.push(format!("events/{path} is not made by the generator"));
        }
    }
    assert!(
        stale.is_empty(),
        "{}\nregenerate: cargo run -p ferry-testkit --example events",
        stale.join("\n")
    );
}
