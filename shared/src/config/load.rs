//! Loading: YAML text → a tree with line numbers → `${env:NAME}` resolved →
//! typed sections, each entry (and each step) read on its own so one mistake
//! does not hide the next → semantic checks → a [`Config`] or every problem.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path as FsPath;

use serde::de::DeserializeOwned;

use super::alerts::Alerts;
use super::de::from_node;
use super::de_error::unknown_key;
use super::diagnostic::{ConfigErrors, Diagnostic, Path, closest};
use super::duration::Dur;
use super::env::{self, EnvLookup};
use super::model::{Config, Connection, Source, Step, SyncDef, Workflow};
use super::presets;
use super::validate;
use super::yaml::{self, Index, Node, Value};

/// A config that passed every check.
pub struct Loaded {
    /// The typed config, with `${env:NAME}` references resolved.
    pub config: Config,
    /// Things that work but deserve a look (e.g. a source with `scheme: none`).
    pub warnings: Vec<Diagnostic>,
    /// Every value that came from the environment in a secret field (and any
    /// other field except a `base_url`), for redacting logs.
    pub secrets: Vec<String>,
}

impl fmt::Debug for Loaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loaded")
            .field("config", &self.config)
            .field("warnings", &self.warnings)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .finish()
    }
}

/// Load and validate the config file at `path`; `env` looks up `${env:NAME}`
/// references (`&|n| std::env::var(n).ok()` in production). A file that cannot
/// be read is reported like any other problem, with the file name.
pub fn load_file(path: &FsPath, env: EnvLookup<'_>) -> Result<Loaded, ConfigErrors> {
    let with_file = |errors| ConfigErrors {
        file: Some(path.to_owned()),
        errors,
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        with_file(vec![Diagnostic {
            path: String::new(),
            line: None,
            message: format!("cannot read the file: {e}"),
        }])
    })?;
    load_str(&text, env).map_err(|e| with_file(e.errors))
}

/// Load and validate a config from YAML text. Every problem is reported at
/// once, each with its path and line, sorted by line.
pub fn load_str(yaml: &str, env: EnvLookup<'_>) -> Result<Loaded, ConfigErrors> {
    let fail = |errors| ConfigErrors { file: None, errors };
    let mut root = yaml::parse(yaml).map_err(fail)?;
    let mut early = Vec::new();
    presets::apply(&mut root, &mut early);
    let mut resolved = env::resolve(&mut root, env);
    early.append(&mut resolved.errors);
    let index = Index::of(&root);
    let mut report = validate::Report::new(&index, early);
    let parsed = read_sections(&root, &mut report.errors);
    validate::check(&parsed, &mut report);
    let validate::Report {
        mut errors,
        mut warnings,
        ..
    } = report;

    // Belt and braces: whatever a message quotes, a secret value is not shown.
    for d in errors.iter_mut().chain(warnings.iter_mut()) {
        redact(&mut d.message, &resolved.secrets);
    }
    if !errors.is_empty() {
        let mut seen = std::collections::HashSet::new();
        errors.retain(|d| seen.insert(d.clone()));
        errors.sort_by_key(|d| d.line.unwrap_or(usize::MAX));
        return Err(fail(errors));
    }
    warnings.sort_by_key(|d| d.line.unwrap_or(usize::MAX));
    Ok(Loaded {
        config: parsed.into_config(),
        warnings,
        secrets: resolved.secrets,
    })
}

/// The JSON Schema of the config format (for `ferry schema` and editors).
pub fn json_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(Config).to_value();
    presets::patch_schema(&mut schema);
    schema
}

fn redact(message: &mut String, secrets: &[String]) {
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        if message.contains(s.as_str()) {
            *message = message.replace(s.as_str(), "[redacted]");
        }
    }
}

const TOP_LEVEL: &[&str] = &[
    "version",
    "connections",
    "sources",
    "workflows",
    "syncs",
    "retention",
    "alerts",
];

/// The config as far as it could be read: failed entries are `None`, so the
/// checks still know their names and a reference to them is not "unknown".
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub version: Option<u32>,
    pub connections: BTreeMap<String, Option<Connection>>,
    pub sources: BTreeMap<String, Option<Source>>,
    pub workflows: BTreeMap<String, Flow<Workflow>>,
    pub syncs: BTreeMap<String, Flow<SyncDef>>,
    pub retention: Option<Dur>,
    pub alerts: Option<Alerts>,
    /// Every name that refers to another section, as written.
    pub references: Vec<Reference>,
}

/// A name that must be defined elsewhere: a step's `connection`, a trigger's `source`.
#[derive(Debug)]
pub(crate) struct Reference {
    pub path: Path,
    pub target: Target,
    pub name: String,
}

/// The section a [`Reference`] points into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Target {
    Connection,
    Source,
}

/// A workflow or sync read in parts: its own fields, then each step.
#[derive(Debug)]
pub(crate) struct Flow<T> {
    /// The definition with its steps left out (`None` when its own fields failed).
    pub def: Option<T>,
    /// Each step, in order (`None` when that step failed).
    pub steps: Vec<Option<Step>>,
    /// Each step's id as written, even for a step that failed otherwise.
    pub step_ids: Vec<Option<String>>,
}

/// Workflows and syncs: the two kinds of definitions that hold steps.
trait HasSteps: DeserializeOwned {
    fn set_steps(&mut self, steps: Vec<Step>);
}

impl HasSteps for Workflow {
    fn set_steps(&mut self, steps: Vec<Step>) {
        self.steps = steps;
    }
}

impl HasSteps for SyncDef {
    fn set_steps(&mut self, steps: Vec<Step>) {
        self.steps = steps;
    }
}

impl Parsed {
    /// The finished config; only called when nothing failed.
    fn into_config(self) -> Config {
        Config {
            version: self.version.unwrap_or(1),
            connections: self
                .connections
                .into_iter()
                .filter_map(|(k, v)| Some((k, v?)))
                .collect(),
            sources: self
                .sources
                .into_iter()
                .filter_map(|(k, v)| Some((k, v?)))
                .collect(),
            workflows: finish(self.workflows),
            syncs: finish(self.syncs),
            retention: self.retention,
            alerts: self.alerts,
        }
    }
}

fn finish<T: HasSteps>(flows: BTreeMap<String, Flow<T>>) -> BTreeMap<String, T> {
    flows
        .into_iter()
        .filter_map(|(name, f)| {
            let mut def = f.def?;
            def.set_steps(f.steps.into_iter().flatten().collect());
            Some((name, def))
        })
        .collect()
}

fn read_sections(root: &Node, errors: &mut Vec<Diagnostic>) -> Parsed {
    let mut parsed = Parsed::default();
    let Value::Map(entries) = &root.value else {
        errors.push(Diagnostic {
            path: String::new(),
            line: Some(root.line),
            message: format!(
                "the top level must be a mapping with the keys {}; found {}",
                TOP_LEVEL.join(", "),
                root.describe()
            ),
        });
        return parsed;
    };
    let top = Path::root();
    for e in entries {
        let path = top.key(&e.key);
        match e.key.as_str() {
            "version" => parsed.version = from_node(&e.value, &path, e.line, errors),
            "connections" => parsed.connections = entries_of(&e.value, &path, errors, from_node),
            "sources" => parsed.sources = entries_of(&e.value, &path, errors, from_node),
            "workflows" => parsed.workflows = entries_of(&e.value, &path, errors, flow),
            "syncs" => parsed.syncs = entries_of(&e.value, &path, errors, flow),
            "retention" => parsed.retention = from_node(&e.value, &path, e.line, errors),
            "alerts" => parsed.alerts = from_node(&e.value, &path, e.line, errors),
            other => errors.push(Diagnostic {
                path: path.to_string(),
                line: Some(e.line),
                message: unknown_key(other, TOP_LEVEL),
            }),
        }
    }
    let typo_of_version = entries
        .iter()
        .any(|e| closest(&e.key, TOP_LEVEL.iter().copied()) == Some("version"));
    parsed.references = references(root);
    if root.get("version").is_none() && !typo_of_version {
        errors.push(Diagnostic {
            path: String::new(),
            line: Some(root.line),
            message: "missing required key \"version\"; start the file with `version: 1`".into(),
        });
    }
    parsed
}

/// Read each `name: definition` entry of a section with `read`.
fn entries_of<T>(
    section: &Node,
    path: &Path,
    errors: &mut Vec<Diagnostic>,
    read: impl Fn(&Node, &Path, usize, &mut Vec<Diagnostic>) -> T,
) -> BTreeMap<String, T> {
    match &section.value {
        Value::Null => BTreeMap::new(),
        Value::Map(entries) => entries
            .iter()
            .map(|e| {
                (
                    e.key.clone(),
                    read(&e.value, &path.key(&e.key), e.line, errors),
                )
            })
            .collect(),
        _ => {
            errors.push(Diagnostic {
                path: path.to_string(),
                line: Some(section.line),
                message: format!(
                    "expected a mapping of names to definitions, found {}",
                    section.describe()
                ),
            });
            BTreeMap::new()
        }
    }
}

/// Read a workflow or sync: each step on its own, then the rest.
fn flow<T: HasSteps>(
    node: &Node,
    path: &Path,
    line: usize,
    errors: &mut Vec<Diagnostic>,
) -> Flow<T> {
    let step_nodes = match (&node.value, node.get("steps")) {
        (
            Value::Map(_),
            Some(Node {
                value: Value::Seq(items),
                ..
            }),
        ) => items,
        // No list of steps: reading the whole thing reports what is wrong.
        _ => {
            return Flow {
                def: from_node(node, path, line, errors),
                steps: vec![],
                step_ids: vec![],
            };
        }
    };
    let steps_path = path.key("steps");
    let steps = step_nodes
        .iter()
        .enumerate()
        .map(|(i, s)| from_node(s, &steps_path.index(i), s.line, errors))
        .collect();
    let step_ids = step_nodes
        .iter()
        .map(|s| s.get("id").and_then(Node::scalar).map(|s| s.text.clone()))
        .collect();
    // The definition without its steps, which were read above.
    let mut shell = node.clone();
    if let Value::Map(entries) = &mut shell.value {
        for e in entries.iter_mut().filter(|e| e.key == "steps") {
            e.value.value = Value::Seq(Vec::new());
        }
    }
    Flow {
        def: from_node(&shell, path, line, errors),
        steps,
        step_ids,
    }
}

/// The references in the tree, whether or not their entries parsed.
fn references(root: &Node) -> Vec<Reference> {
    let mut out = Vec::new();
    let mut add = |path: Path, target, node: Option<&Node>| {
        if let Some(s) = node.and_then(Node::scalar) {
            out.push(Reference {
                path,
                target,
                name: s.text.clone(),
            });
        }
    };
    for (section, is_sync) in [("workflows", false), ("syncs", true)] {
        for flow in root.get(section).map_or(&[][..], Node::entries) {
            let path = Path::root().key(section).key(&flow.key);
            let def = &flow.value;
            if is_sync {
                for poll in ["source", "tombstones"] {
                    let conn = def.get(poll).and_then(|p| p.get("connection"));
                    add(path.key(poll).key("connection"), Target::Connection, conn);
                }
                let mut lists = vec![(path.key("on_delete"), def.get("on_delete"))];
                for side in ["a", "b"] {
                    let node = def.get("two_way").and_then(|t| t.get(side));
                    let sp = path.key("two_way").key(side);
                    let conn = node
                        .and_then(|n| n.get("source"))
                        .and_then(|p| p.get("connection"));
                    add(sp.key("source").key("connection"), Target::Connection, conn);
                    lists.push((sp.key("write"), node.and_then(|n| n.get("write"))));
                }
                for (lp, list) in lists {
                    for (i, step) in list.map_or(&[][..], Node::items).iter().enumerate() {
                        let conn = step.get("connection");
                        add(lp.index(i).key("connection"), Target::Connection, conn);
                    }
                }
            } else {
                let source = def.get("trigger").and_then(|t| t.get("source"));
                add(path.key("trigger").key("source"), Target::Source, source);
            }
            for (i, step) in def
                .get("steps")
                .map_or(&[][..], Node::items)
                .iter()
                .enumerate()
            {
                let step_path = path.key("steps").index(i).key("connection");
                add(step_path, Target::Connection, step.get("connection"));
            }
        }
    }
    out
}
