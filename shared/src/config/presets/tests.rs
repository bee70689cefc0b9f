use super::*;

const DEMO: &str = "\
# Demo: a made-up vendor for these tests
connection:
  base_url: https://api.demo.test/v1
  auth: { type: bearer }
  headers: { x-demo-version: '2026-01-01', accept: application/json }
  rate_limit: { requests: 100, per: 1s }
  classify:
    - { when: \"response.body.ok == false\", outcome: retry }
source:
  verify: { scheme: github }
  event_id: \"{{ headers['x-demo-delivery'] }}\"
poll:
  records: response.body.data
  id: record.id
";

const TABLE: &[(&str, &str)] = &[
    ("demo", DEMO),
    (
        "other",
        "# Other\nconnection:\n  base_url: https://o.test\n",
    ),
];

fn run(config: &str) -> (Node, Vec<Diagnostic>) {
    let mut root = yaml::parse(config).unwrap();
    let mut errors = Vec::new();
    apply_from(&mut root, TABLE, &mut errors);
    (root, errors)
}

fn scalar<'a>(node: &'a Node, path: &[&str]) -> Option<&'a str> {
    let mut n = node;
    for k in path {
        n = n.get(k)?;
    }
    n.scalar().map(|s| s.text.as_str())
}

#[test]
fn a_connection_gets_the_preset_underneath_and_the_users_keys_win() {
    let (root, errors) = run("\
version: 1
connections:
  d:
    preset: demo
    auth: { token: \"${env:T}\" }
    headers: { accept: text/plain }
    rate_limit: { requests: 25 }
");
    assert!(errors.is_empty(), "{errors:?}");
    let d = root.get("connections").unwrap().get("d").unwrap();
    assert!(d.get("preset").is_none(), "preset is consumed");
    assert_eq!(scalar(d, &["base_url"]), Some("https://api.demo.test/v1"));
    // Maps merge key by key.
    assert_eq!(scalar(d, &["auth", "type"]), Some("bearer"));
    assert_eq!(scalar(d, &["auth", "token"]), Some("${env:T}"));
    assert_eq!(scalar(d, &["headers", "accept"]), Some("text/plain"));
    assert_eq!(
        scalar(d, &["headers", "x-demo-version"]),
        Some("2026-01-01")
    );
    assert_eq!(scalar(d, &["rate_limit", "requests"]), Some("25"));
    assert_eq!(scalar(d, &["rate_limit", "per"]), Some("1s"));
    // Preset-supplied values are reported on the `preset:` line; the user's keep theirs.
    assert_eq!(d.get("base_url").unwrap().line, 4);
    assert_eq!(d.get("auth").unwrap().get("token").unwrap().line, 5);
}

#[test]
fn a_list_the_user_writes_replaces_the_presets_whole() {
    let (root, errors) = run("\
version: 1
connections:
  d:
    preset: demo
    classify:
      - { when: \"response.status == 409\", outcome: ok }
");
    assert!(errors.is_empty(), "{errors:?}");
    let rules = root
        .get("connections")
        .unwrap()
        .get("d")
        .unwrap()
        .get("classify")
        .unwrap();
    assert_eq!(rules.items().len(), 1);
    assert_eq!(scalar(&rules.items()[0], &["outcome"]), Some("ok"));
}

#[test]
fn sources_and_every_kind_of_poll_take_their_own_part() {
    let (root, errors) = run("\
version: 1
sources:
  s: { preset: demo, verify: { secret: \"${env:S}\" } }
syncs:
  one:
    source: { preset: demo, connection: d }
    tombstones: { preset: demo, connection: d, id: record.gone }
  two:
    two_way:
      a: { source: { preset: demo, connection: d } }
      b: { source: { preset: other, connection: o } }
");
    let s = root.get("sources").unwrap().get("s").unwrap();
    assert_eq!(scalar(s, &["verify", "scheme"]), Some("github"));
    assert_eq!(scalar(s, &["verify", "secret"]), Some("${env:S}"));
    let one = root.get("syncs").unwrap().get("one").unwrap();
    assert_eq!(
        scalar(one, &["source", "records"]),
        Some("response.body.data")
    );
    assert_eq!(scalar(one, &["tombstones", "id"]), Some("record.gone"));
    let two = root.get("syncs").unwrap().get("two").unwrap();
    assert_eq!(
        scalar(two, &["two_way", "a", "source", "id"]),
        Some("record.id")
    );
    // `other` has no poll part: a precise message at the line of `preset:`.
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, "syncs.two.two_way.b.source.preset");
    assert_eq!(errors[0].line, Some(11));
    assert!(
        errors[0].message.contains("preset \"other\" has no part for a sync poll (it covers: connection); presets for a sync poll: demo"),
        "{}",
        errors[0].message
    );
}

#[test]
fn an_unknown_name_suggests_the_closest_and_lists_the_rest() {
    let (_, errors) =
        run("version: 1\nconnections:\n  d: { preset: dmeo }\n  e: { preset: [demo] }\n");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].path, "connections.d.preset");
    assert_eq!(
        errors[0].message,
        "unknown preset \"dmeo\"; did you mean \"demo\"? presets for a connection: demo, other (`ferry presets` lists them)"
    );
    assert_eq!(errors[1].line, Some(4));
    assert!(
        errors[1].message.contains("found a list"),
        "{}",
        errors[1].message
    );
}

#[test]
fn an_entry_without_a_preset_is_left_alone() {
    let text = "version: 1\nconnections:\n  d: { base_url: https://x.test }\n";
    let (root, errors) = run(text);
    assert!(errors.is_empty());
    let d = root.get("connections").unwrap().get("d").unwrap();
    assert_eq!(d.entries().len(), 1);
}

#[test]
fn every_built_in_preset_reads_and_carries_no_secret() {
    for p in presets() {
        let file = yaml::parse(p.text).unwrap_or_else(|e| panic!("{}: {e:?}", p.name));
        assert!(
            !p.title.is_empty(),
            "{}: start the file with a `# title` line",
            p.name
        );
        for e in file.entries() {
            assert!(
                PARTS.iter().any(|part| part.key() == e.key),
                "{}: unknown part `{}` (connection, source, poll)",
                p.name,
                e.key
            );
        }
        assert!(
            !holds_reference(&file),
            "{}: presets carry no references",
            p.name
        );
        assert_eq!(p.parts.len(), file.entries().len(), "{}", p.name);
    }
}

#[test]
fn the_schema_offers_preset_and_relaxes_what_presets_supply() {
    let mut schema = serde_json::json!({"$defs": {"Connection": {
        "properties": {"base_url": {}}, "required": ["base_url"]
    }}});
    patch_schema(&mut schema);
    let c = &schema["$defs"]["Connection"];
    assert!(c["properties"]["preset"]["enum"].is_array());
    let supplied = supplied_keys(Part::Connection).contains(&"base_url".to_owned());
    assert_eq!(c["required"].as_array().unwrap().is_empty(), supplied);
}

/// Whether any value in the tree holds a `${…}` reference (comments may show one).
fn holds_reference(node: &Node) -> bool {
    match &node.value {
        Value::Scalar(s) => s.text.contains("${"),
        Value::Seq(items) => items.iter().any(holds_reference),
        Value::Map(entries) => entries.iter().any(|e| holds_reference(&e.value)),
        Value::Null => false,
    }
}
