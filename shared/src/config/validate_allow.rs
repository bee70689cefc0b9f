//! Checks of connections' `allow:` lists: every rule parses, and every step,
//! batch call and poll on a connection with a list stays inside it (a
//! template part of a path is matched only by a `*`). See [`super::allow`].

use std::collections::BTreeMap;

use super::allow::{self, AllowRule};
use super::diagnostic::Path;
use super::load::Parsed;
use super::model::{Method, Poll, Step};
use super::validate::Report;

/// Runs the checks.
pub(crate) fn check(p: &Parsed, r: &mut Report<'_>) {
    let mut lists: BTreeMap<&str, Vec<AllowRule>> = BTreeMap::new();
    for (name, c) in &p.connections {
        let Some(list) = c.as_ref().and_then(|c| c.allow.as_ref()) else {
            continue;
        };
        let path = Path::root().key("connections").key(name).key("allow");
        if list.is_empty() {
            r.error(
                &path,
                "an empty allow list allows no request; list the requests the connection may make (e.g. \"GET /contacts*\"), or remove `allow`",
            );
        }
        let mut rules = Vec::new();
        for (i, rule) in list.iter().enumerate() {
            match AllowRule::parse(rule) {
                Ok(rule) => rules.push(rule),
                Err(e) => r.error(&path.index(i), e),
            }
        }
        lists.insert(name, rules);
    }
    if lists.is_empty() {
        return;
    }
    let root = Path::root();
    for (name, f) in &p.workflows {
        let sp = root.key("workflows").key(name).key("steps");
        steps(f.steps.iter().flatten().enumerate(), &sp, &lists, r);
    }
    for (name, f) in &p.syncs {
        let path = root.key("syncs").key(name);
        steps(
            f.steps.iter().flatten().enumerate(),
            &path.key("steps"),
            &lists,
            r,
        );
        let Some(s) = &f.def else { continue };
        for (key, p) in [("source", &s.source), ("tombstones", &s.tombstones)] {
            if let Some(p) = p {
                poll(p, &path.key(key), &lists, r);
            }
        }
        steps(
            s.on_delete.iter().enumerate(),
            &path.key("on_delete"),
            &lists,
            r,
        );
        if let Some(tw) = &s.two_way {
            for (key, side) in [("a", &tw.a), ("b", &tw.b)] {
                let sp = path.key("two_way").key(key);
                poll(&side.source, &sp.key("source"), &lists, r);
                steps(side.write.iter().enumerate(), &sp.key("write"), &lists, r);
            }
        }
    }
}

fn steps<'s>(
    list: impl Iterator<Item = (usize, &'s Step)>,
    path: &Path,
    lists: &BTreeMap<&str, Vec<AllowRule>>,
    r: &mut Report<'_>,
) {
    for (i, s) in list {
        let Some(rules) = lists.get(s.connection.as_str()) else {
            continue;
        };
        let sp = path.index(i);
        match &s.batch {
            Some(b) => request(rules, b.method, &b.path, &sp.key("batch").key("path"), r),
            None => request(
                rules,
                s.request.method,
                &s.request.path,
                &sp.key("request").key("path"),
                r,
            ),
        }
    }
}

fn poll(p: &Poll, path: &Path, lists: &BTreeMap<&str, Vec<AllowRule>>, r: &mut Report<'_>) {
    if let Some(rules) = lists.get(p.connection.as_str()) {
        let at = path.key("request").key("path");
        request(rules, p.request.method, &p.request.path, &at, r);
    }
}

fn request(rules: &[AllowRule], method: Method, template: &str, at: &Path, r: &mut Report<'_>) {
    let path = allow::opaque_path(template);
    let method = method.as_http();
    if let Some(why) = allow::refusal(rules, method.as_str(), &path) {
        r.error(
            at,
            format!("{why}; add a rule for it or change the request"),
        );
    }
}
