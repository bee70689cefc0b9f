//! The config as a graph: sources → workflows → connections (one edge per
//! step, labelled with the request and the fields it reads), and syncs between
//! the connections they poll and write (both ways for a two-way sync).
//! Rendered as Graphviz DOT or as a Mermaid flowchart.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::fields::{fields_of_request, fields_of_template};
use crate::config::{Auth, Config, Poll, Step};

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NodeKind {
    /// A webhook source.
    Source,
    /// A workflow.
    Workflow,
    /// A scheduled sync.
    Sync,
    /// An outbound API.
    Connection,
}

/// A box in the drawing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// What it is.
    pub kind: NodeKind,
    /// Its name in the config.
    pub name: String,
    /// The second line: scheme, auth, schedule.
    pub detail: String,
}

/// An arrow, labelled with what moves along it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// Index of the node it leaves.
    pub from: usize,
    /// Index of the node it enters.
    pub to: usize,
    /// The label's lines.
    pub label: Vec<String>,
}

/// Sources, workflows, syncs and connections, in the config's order of names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    /// The boxes.
    pub nodes: Vec<Node>,
    /// The arrows.
    pub edges: Vec<Edge>,
}

impl Graph {
    /// The graph of `config`.
    pub fn of(config: &Config) -> Graph {
        let mut g = Graph::default();
        for (name, s) in &config.sources {
            let scheme = serde_json::to_value(s.verify.scheme)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            g.node(NodeKind::Source, name, format!("webhook, {scheme}"));
        }
        for (name, c) in &config.connections {
            g.node(NodeKind::Connection, name, connection_detail(c));
        }
        for (name, w) in &config.workflows {
            let detail = w
                .when
                .as_ref()
                .map_or(String::new(), |e| format!("when {e}"));
            let wf = g.node(NodeKind::Workflow, name, detail);
            let mut read = BTreeSet::new();
            if let Some(when) = &w.when {
                read.extend(fields_of_template(when));
            }
            for step in &w.steps {
                read.extend(step_fields(step));
            }
            let event_fields: Vec<String> = read
                .into_iter()
                .filter(|f| {
                    ["body", "headers", "query"]
                        .iter()
                        .any(|p| f.starts_with(p))
                })
                .collect();
            if let Some(src) = g.find(NodeKind::Source, &w.trigger.source) {
                g.edges.push(Edge {
                    from: src,
                    to: wf,
                    label: event_fields,
                });
            }
            for step in &w.steps {
                g.step_edge(wf, step, "");
            }
        }
        for (name, s) in &config.syncs {
            let sync = g.node(NodeKind::Sync, name, s.schedule.clone());
            for (poll, what) in [(&s.source, "poll"), (&s.tombstones, "deletions")] {
                if let Some(p) = poll {
                    g.poll_edge(sync, p, what);
                }
            }
            for step in &s.steps {
                g.step_edge(sync, step, "");
            }
            for step in &s.on_delete {
                g.step_edge(sync, step, "on delete ");
            }
            if let Some(tw) = &s.two_way {
                let fields: Vec<String> = tw
                    .fields
                    .iter()
                    .map(|(n, f)| {
                        let owner = match f.owner {
                            Some(crate::config::SideName::A) => " (a owns)",
                            Some(crate::config::SideName::B) => " (b owns)",
                            None => "",
                        };
                        format!("{n}: a.{} <-> b.{}{owner}", f.a, f.b)
                    })
                    .collect();
                for (side, label) in [(&tw.a, "a"), (&tw.b, "b")] {
                    g.poll_edge(sync, &side.source, &format!("side {label} poll"));
                    for step in &side.write {
                        g.step_edge(sync, step, &format!("side {label} write "));
                    }
                }
                if let Some(last) = g.edges.last_mut() {
                    last.label.extend(fields);
                }
            }
        }
        g
    }

    fn node(&mut self, kind: NodeKind, name: &str, detail: String) -> usize {
        self.nodes.push(Node {
            kind,
            name: name.to_owned(),
            detail,
        });
        self.nodes.len() - 1
    }

    fn find(&self, kind: NodeKind, name: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.kind == kind && n.name == name)
    }

    fn step_edge(&mut self, from: usize, step: &Step, prefix: &str) {
        let Some(to) = self.find(NodeKind::Connection, &step.connection) else {
            return;
        };
        let r = &step.request;
        let mut label = vec![format!(
            "{prefix}{}: {} {}",
            step.id,
            r.method.as_http(),
            r.path
        )];
        if let Some(b) = &step.batch {
            label.push(format!("batched: {} {}", b.method.as_http(), b.path));
        }
        label.extend(step_fields(step).into_iter().map(|f| format!("<- {f}")));
        self.edges.push(Edge { from, to, label });
    }

    fn poll_edge(&mut self, sync: usize, poll: &Poll, what: &str) {
        let Some(from) = self.find(NodeKind::Connection, &poll.connection) else {
            return;
        };
        let r = &poll.request;
        let label = vec![
            format!("{what}: {} {}", r.method.as_http(), r.path),
            format!("records {}, id {}", poll.records, poll.id),
        ];
        self.edges.push(Edge {
            from,
            to: sync,
            label,
        });
    }

    /// Graphviz DOT.
    pub fn to_dot(&self) -> String {
        let mut out = String::from(
            "digraph ferry {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=11];\n  edge [fontname=\"Helvetica\", fontsize=9];\n",
        );
        for (i, n) in self.nodes.iter().enumerate() {
            let shape = match n.kind {
                NodeKind::Source => "cds",
                NodeKind::Workflow => "box",
                NodeKind::Sync => "box3d",
                NodeKind::Connection => "cylinder",
            };
            let _ = writeln!(
                out,
                "  n{i} [shape={shape}, label=\"{}\"];",
                dot_escape(&node_lines(n).join("\n"))
            );
        }
        for e in &self.edges {
            let _ = writeln!(
                out,
                "  n{} -> n{} [label=\"{}\"];",
                e.from,
                e.to,
                dot_escape(&e.label.join("\n"))
            );
        }
        out.push_str("}\n");
        out
    }

    /// A Mermaid flowchart (renders on GitHub).
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for (i, n) in self.nodes.iter().enumerate() {
            let text = mermaid_escape(&node_lines(n).join("<br/>"));
            let _ = match n.kind {
                NodeKind::Source => writeln!(out, "  n{i}>\"{text}\"]"),
                NodeKind::Workflow => writeln!(out, "  n{i}[\"{text}\"]"),
                NodeKind::Sync => writeln!(out, "  n{i}[[\"{text}\"]]"),
                NodeKind::Connection => writeln!(out, "  n{i}[(\"{text}\")]"),
            };
        }
        for e in &self.edges {
            if e.label.is_empty() {
                let _ = writeln!(out, "  n{} --> n{}", e.from, e.to);
            } else {
                let text = mermaid_escape(&e.label.join("<br/>"));
                let _ = writeln!(out, "  n{} -->|\"{text}\"| n{}", e.from, e.to);
            }
        }
        out
    }
}

fn node_lines(n: &Node) -> Vec<String> {
    let kind = match n.kind {
        NodeKind::Source => "source",
        NodeKind::Workflow => "workflow",
        NodeKind::Sync => "sync",
        NodeKind::Connection => "connection",
    };
    let mut lines = vec![format!("{kind} {}", n.name)];
    if !n.detail.is_empty() {
        lines.push(n.detail.clone());
    }
    lines
}

fn step_fields(step: &Step) -> BTreeSet<String> {
    let mut read = fields_of_request(&step.request);
    if let Some(when) = &step.when {
        read.extend(fields_of_template(when));
    }
    read
}

fn connection_detail(c: &crate::config::Connection) -> String {
    let auth = match &c.auth {
        None => "no auth",
        Some(Auth::Bearer { .. }) => "bearer token",
        Some(Auth::Basic { .. }) => "basic auth",
        Some(Auth::ApiKey { .. }) => "api key",
        Some(Auth::OAuth2 { .. }) => "oauth2",
    };
    match &c.rate_limit {
        Some(rl) => format!("{auth}, {} req / {}", rl.requests, rl.per),
        None => auth.to_owned(),
    }
}

/// A DOT double-quoted string: backslash and quote escaped, newlines as `\n`.
fn dot_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Mermaid quoted text: quotes and the characters Mermaid reads as markup as entities.
fn mermaid_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    // `<br/>` is ours (line breaks); every other `<`/`>` is text.
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("<br/>") {
            out.push_str("<br/>");
            rest = after;
            continue;
        }
        let c = rest.chars().next().expect("not empty");
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '|' => out.push_str("#124;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let text = r#"version: 1
connections:
  crm: { base_url: "http://127.0.0.1:9/crm", rate_limit: { requests: 100, per: 10s } }
  chat: { base_url: "http://127.0.0.1:9/chat" }
sources:
  form: { verify: { scheme: api-key, header: X-Key, secret: "${env:KEY}" }, event_id: "{{ body.id }}" }
workflows:
  lead:
    trigger: { source: form }
    when: "body.email is defined"
    steps:
      - { id: contact, connection: crm, request: { path: /contacts, json: { email: "{{ body.email }}", note: "say \"hi\"" } } }
      - { id: notify, connection: chat, request: { path: /messages, json: { text: "New: {{ steps.contact.response.body.id }}" } } }
"#;
        crate::config::load_str(text, &|_| Some("k".into()))
            .unwrap()
            .config
    }

    #[test]
    fn a_workflow_is_a_source_a_workflow_and_one_edge_per_step() {
        let g = Graph::of(&config());
        let names: Vec<_> = g.nodes.iter().map(|n| (n.kind, n.name.as_str())).collect();
        assert_eq!(
            names,
            [
                (NodeKind::Source, "form"),
                (NodeKind::Connection, "chat"),
                (NodeKind::Connection, "crm"),
                (NodeKind::Workflow, "lead"),
            ]
        );
        assert_eq!(g.edges.len(), 3);
        assert_eq!(g.edges[0].label, ["body.email"], "source -> workflow");
        assert_eq!(
            g.edges[1].label,
            ["contact: POST /contacts", "<- body.email"]
        );
        assert_eq!(
            g.edges[2].label,
            [
                "notify: POST /messages",
                "<- steps.contact.response.body.id"
            ]
        );
    }

    #[test]
    fn renderings_escape_what_their_syntax_reserves() {
        assert_eq!(dot_escape("a \"b\" \\ c\nd"), "a \\\"b\\\" \\\\ c\\nd");
        assert_eq!(
            mermaid_escape("x<br/>\"<y>\" | z"),
            "x<br/>#quot;#lt;y#gt;#quot; #124; z"
        );
        let dot = Graph::of(&config()).to_dot();
        assert!(dot.starts_with("digraph ferry {"), "{dot}");
        assert!(dot.contains("n0 -> n3 [label=\"body.email\"];"), "{dot}");
        let mermaid = Graph::of(&config()).to_mermaid();
        assert!(
            mermaid.contains("n3 -->|\"contact: POST /contacts<br/>#lt;- body.email\"| n2"),
            "{mermaid}"
        );
    }
}
