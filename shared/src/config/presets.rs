//! Presets: what ferry knows about a named system (`preset: stripe`), written
//! as a fragment of config and merged under the user's entry before anything
//! else reads it.
//!
//! A preset is a YAML file in `shared/presets/` with up to three parts —
//! `connection`, `source` and `poll` — each in exactly the format of that
//! config section. An entry with `preset: NAME` gets the matching part merged
//! underneath it: mappings merge key by key, and whatever the user wrote (a
//! scalar or a whole list) replaces the preset's value. So every field stays
//! overridable, the result is checked like any hand-written config, and a
//! problem in a preset-supplied value is reported on the `preset:` line.
//!
//! Presets never carry secrets or secret references: the user's file says
//! where each credential comes from.

use super::diagnostic::{Diagnostic, Path, closest};
use super::yaml::{self, Entry, Node, Value};

/// The built-in presets: name and file text (alphabetical).
const PRESETS: &[(&str, &str)] = &[
    ("github", include_str!("../../presets/github.yaml")),
    ("hubspot", include_str!("../../presets/hubspot.yaml")),
    ("openai", include_str!("../../presets/openai.yaml")),
    ("quickbooks", include_str!("../../presets/quickbooks.yaml")),
    ("salesforce", include_str!("../../presets/salesforce.yaml")),
    ("shopify", include_str!("../../presets/shopify.yaml")),
    ("slack", include_str!("../../presets/slack.yaml")),
    ("stripe", include_str!("../../presets/stripe.yaml")),
    ("zendesk", include_str!("../../presets/zendesk.yaml")),
];

/// Which part of a preset an entry takes, by where the entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Connection,
    Source,
    Poll,
}

impl Part {
    fn key(self) -> &'static str {
        match self {
            Part::Connection => "connection",
            Part::Source => "source",
            Part::Poll => "poll",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Part::Connection => "a connection",
            Part::Source => "a webhook source",
            Part::Poll => "a sync poll",
        }
    }
}

const PARTS: [Part; 3] = [Part::Connection, Part::Source, Part::Poll];

/// One built-in preset, for `ferry presets`.
#[derive(Debug, Clone)]
pub struct Preset {
    /// Its name, as written after `preset:`.
    pub name: &'static str,
    /// The first comment line of its file: what it is for.
    pub title: &'static str,
    /// The whole file, comments (with the vendor documents cited) included.
    pub text: &'static str,
    /// Which parts it has: `connection`, `source`, `poll`.
    pub parts: Vec<&'static str>,
}

/// Every built-in preset, in name order.
pub fn presets() -> Vec<Preset> {
    PRESETS
        .iter()
        .map(|&(name, text)| Preset {
            name,
            title: text
                .lines()
                .find_map(|l| l.strip_prefix('#'))
                .map_or("", str::trim),
            text,
            parts: parts_of(text),
        })
        .collect()
}

fn parts_of(text: &str) -> Vec<&'static str> {
    let has = |p: &Part| {
        text.lines()
            .any(|l| l.strip_prefix(p.key()).is_some_and(|r| r.starts_with(':')))
    };
    PARTS.iter().filter(|p| has(p)).map(|p| p.key()).collect()
}

/// Merge the named presets into every entry of `root` that asks for one.
pub(crate) fn apply(root: &mut Node, errors: &mut Vec<Diagnostic>) {
    apply_from(root, PRESETS, errors);
}

fn apply_from(root: &mut Node, table: &[(&str, &str)], errors: &mut Vec<Diagnostic>) {
    let top = Path::root();
    for_each_entry(root, "connections", |name, node| {
        merge_preset(
            node,
            Part::Connection,
            &top.key("connections").key(name),
            table,
            errors,
        )
    });
    for_each_entry(root, "sources", |name, node| {
        merge_preset(
            node,
            Part::Source,
            &top.key("sources").key(name),
            table,
            errors,
        )
    });
    for_each_entry(root, "syncs", |name, sync| {
        let at = top.key("syncs").key(name);
        for key in ["source", "tombstones"] {
            if let Some(poll) = child(sync, key) {
                merge_preset(poll, Part::Poll, &at.key(key), table, errors);
            }
        }
        if let Some(two_way) = child(sync, "two_way") {
            for side in ["a", "b"] {
                if let Some(poll) = child(two_way, side).and_then(|s| child(s, "source")) {
                    let path = at.key("two_way").key(side).key("source");
                    merge_preset(poll, Part::Poll, &path, table, errors);
                }
            }
        }
    });
}

fn for_each_entry(root: &mut Node, section: &str, mut f: impl FnMut(&str, &mut Node)) {
    if let Some(Value::Map(entries)) = child(root, section).map(|n| &mut n.value) {
        for e in entries {
            f(&e.key, &mut e.value);
        }
    }
}

fn child<'a>(node: &'a mut Node, key: &str) -> Option<&'a mut Node> {
    match &mut node.value {
        Value::Map(entries) => entries
            .iter_mut()
            .find(|e| e.key == key)
            .map(|e| &mut e.value),
        _ => None,
    }
}

/// If `node` has `preset: NAME`, put the preset's `part` underneath it.
fn merge_preset(
    node: &mut Node,
    part: Part,
    path: &Path,
    table: &[(&str, &str)],
    errors: &mut Vec<Diagnostic>,
) {
    let Value::Map(entries) = &mut node.value else {
        return;
    };
    let Some(at) = entries.iter().position(|e| e.key == "preset") else {
        return;
    };
    let entry = entries.remove(at);
    let mut error = |message: String| {
        errors.push(Diagnostic {
            path: path.key("preset").to_string(),
            line: Some(entry.line),
            message,
        })
    };
    let names = || {
        table
            .iter()
            .filter(|(_, text)| parts_of(text).contains(&part.key()))
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(name) = entry.value.scalar().map(|s| s.text.clone()) else {
        error(format!(
            "`preset` takes the name of a preset for {} (one of: {}); found {}",
            part.what(),
            names(),
            entry.value.describe()
        ));
        return;
    };
    let Some(&(_, text)) = table.iter().find(|(n, _)| *n == name) else {
        let hint = closest(&name, table.iter().map(|(n, _)| *n))
            .map(|c| format!("did you mean \"{c}\"? "))
            .unwrap_or_default();
        error(format!(
            "unknown preset \"{name}\"; {hint}presets for {}: {} (`ferry presets` lists them)",
            part.what(),
            names()
        ));
        return;
    };
    let file = match yaml::parse(text) {
        Ok(file) => file,
        Err(e) => {
            // Built-in files are checked by a unit test; this is a build defect.
            error(format!("preset \"{name}\" cannot be read: {:?}", e.first()));
            return;
        }
    };
    let Some(mut base) = file.get(part.key()).cloned() else {
        error(format!(
            "preset \"{name}\" has no part for {} (it covers: {}); presets for {}: {}",
            part.what(),
            parts_of(text).join(", "),
            part.what(),
            names()
        ));
        return;
    };
    relabel(&mut base, entry.line);
    let own = std::mem::replace(
        node,
        Node {
            line: 0,
            value: Value::Null,
        },
    );
    *node = merge(base, own);
}

/// Give every node of a preset fragment the line of the `preset:` key, so
/// messages about preset-supplied values point there.
fn relabel(node: &mut Node, line: usize) {
    node.line = line;
    match &mut node.value {
        Value::Map(entries) => {
            for e in entries {
                e.line = line;
                relabel(&mut e.value, line);
            }
        }
        Value::Seq(items) => items.iter_mut().for_each(|n| relabel(n, line)),
        Value::Null | Value::Scalar(_) => {}
    }
}

/// `over` on top of `base`: mappings merge key by key (base order first,
/// then the keys only `over` has); anything else in `over` wins whole.
fn merge(base: Node, over: Node) -> Node {
    match (base.value, over.value) {
        (Value::Map(mut into), Value::Map(from)) => {
            for Entry { key, line, value } in from {
                match into.iter_mut().find(|e| e.key == key) {
                    Some(e) => {
                        let b = std::mem::replace(
                            &mut e.value,
                            Node {
                                line: 0,
                                value: Value::Null,
                            },
                        );
                        e.value = merge(b, value);
                        e.line = line;
                    }
                    None => into.push(Entry { key, line, value }),
                }
            }
            Node {
                line: over.line,
                value: Value::Map(into),
            }
        }
        (_, value) => Node {
            line: over.line,
            value,
        },
    }
}

/// Add `preset` to the JSON Schema of each entry that takes one, and make
/// optional there the keys some preset supplies (so editors accept
/// `preset: stripe` without a `base_url`).
pub(crate) fn patch_schema(schema: &mut serde_json::Value) {
    for (def, part) in [
        ("Connection", Part::Connection),
        ("Source", Part::Source),
        ("Poll", Part::Poll),
    ] {
        let Some(d) = schema.pointer_mut(&format!("/$defs/{def}")) else {
            continue;
        };
        let names: Vec<&str> = presets()
            .iter()
            .filter(|p| p.parts.contains(&part.key()))
            .map(|p| p.name)
            .collect();
        let supplied = supplied_keys(part);
        if let Some(props) = d.get_mut("properties").and_then(|p| p.as_object_mut()) {
            props.insert(
                "preset".into(),
                serde_json::json!({
                    "description": format!("A built-in preset merged under this entry (every field stays overridable); see `ferry presets`. For {}: {}.", part.what(), names.join(", ")),
                    "type": "string",
                    "enum": names,
                }),
            );
        }
        if let Some(req) = d.get_mut("required").and_then(|r| r.as_array_mut()) {
            req.retain(|k| !k.as_str().is_some_and(|k| supplied.contains(&k.to_owned())));
        }
    }
}

fn supplied_keys(part: Part) -> Vec<String> {
    PRESETS
        .iter()
        .filter_map(|(_, text)| yaml::parse(text).ok())
        .filter_map(|f| f.get(part.key()).map(|p| p.entries().to_vec()))
        .flatten()
        .map(|e| e.key)
        .collect()
}

#[cfg(test)]
mod tests;
