//! The sync examples in `docs/syncs.md` and `docs/config.md` load as written.

const SYNCS: &str = include_str!("../../../docs/syncs.md");
const CONFIG: &str = include_str!("../../../docs/config.md");

const CONNECTIONS: &str = r#"connections:
  crm: { base_url: "https://crm.example" }
  desk: { base_url: "https://desk.example" }
  warehouse: { base_url: "https://warehouse.example" }
"#;

fn yaml_blocks(doc: &str) -> Vec<String> {
    doc.split("```yaml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().to_owned())
        .collect()
}

#[test]
fn every_complete_example_loads() {
    let env = |name: &str| Some(format!("https://{}.example", name.to_lowercase()));
    let mut checked = 0;
    for block in yaml_blocks(SYNCS).into_iter().chain(yaml_blocks(CONFIG)) {
        let yaml = if block.starts_with("connections:") {
            format!("version: 1\n{block}")
        } else if block.starts_with("syncs:") {
            format!("version: 1\n{CONNECTIONS}{block}")
        } else {
            continue;
        };
        if !yaml.contains("\nsyncs:") {
            continue;
        }
        if let Err(e) = ferry::config::load_str(&yaml, &env) {
            panic!("{e}\n--- in ---\n{yaml}");
        }
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} examples checked");
}
