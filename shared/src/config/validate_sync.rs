//! Checks of `syncs:`: the schedule, the poll (its request, pagination and
//! record paths) and the steps run per record or per side.

use super::diagnostic::Path;
use super::model::{Pagination, Poll, SyncDef};
use super::templates::{Jinja, Scope};
use super::validate::Report;
use super::validate_steps::{retry_policy, step_list};

pub(super) fn sync(name: &str, s: &SyncDef, path: &Path, jinja: &Jinja, r: &mut Report<'_>) {
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        r.error(path, "a sync name is part of its cursor and run names; use only letters, digits, `-` and `_`");
    }
    if let Err(e) = crate::schedule::Schedule::parse(&s.schedule) {
        r.error(&path.key("schedule"), e);
    }
    if s.budget.is_some_and(|b| b.get().is_zero()) {
        r.error(&path.key("budget"), "budget must be greater than zero");
    }
    if let Some(retry) = &s.retry {
        retry_policy(retry, &path.key("retry"), r);
    }
    match (&s.source, &s.two_way) {
        (Some(_), Some(_)) => r.error(
            path,
            "a sync has a `source` (one-way) or `two_way`, not both",
        ),
        (None, None) => r.error(
            path,
            "missing `source` (where a one-way sync reads records) or `two_way`",
        ),
        (Some(src), None) => {
            poll(src, &path.key("source"), jinja, r);
            if let Some(t) = &s.tombstones {
                poll(t, &path.key("tombstones"), jinja, r);
            }
            if let Some(map) = &s.map {
                jinja.json(map, &path.key("map"), &Scope::NO_STEPS, r);
            }
            let deletes = s.tombstones.is_some() || src.deleted.is_some();
            if deletes && s.on_delete.is_empty() {
                r.error(
                    &path.key("on_delete"),
                    "deleted records need steps to run: add `on_delete` (e.g. a DELETE or an archive call)",
                );
            }
            if !deletes && !s.on_delete.is_empty() {
                r.error(
                    &path.key("on_delete"),
                    "nothing marks records as deleted: set `source.deleted` or `tombstones`",
                );
            }
            step_list(&s.on_delete, &path.key("on_delete"), jinja, r);
        }
        (None, Some(tw)) => {
            let tp = path.key("two_way");
            for (key, set) in [
                ("tombstones", s.tombstones.is_some()),
                ("map", s.map.is_some()),
                ("steps", !s.steps.is_empty()),
                ("on_delete", !s.on_delete.is_empty()),
            ] {
                if set {
                    r.error(
                        &path.key(key),
                        format!("`{key}` is for one-way syncs; a two-way sync writes with `two_way.a.write` and `two_way.b.write`"),
                    );
                }
            }
            if tw.fields.is_empty() {
                r.error(&tp.key("fields"), "list at least one field to keep in step");
            }
            for (field, f) in &tw.fields {
                let fp = tp.key("fields").key(field);
                jinja.expression(&f.a, &fp.key("a"), &Scope::NO_STEPS, r);
                jinja.expression(&f.b, &fp.key("b"), &Scope::NO_STEPS, r);
            }
            for (key, side) in [("a", &tw.a), ("b", &tw.b)] {
                let sp = tp.key(key);
                poll(&side.source, &sp.key("source"), jinja, r);
                if side.source.watermark.is_none() {
                    r.error(
                        &sp.key("source").key("watermark"),
                        "a two-way side needs `watermark` (the record's update time): it drives both the incremental poll and the `newest` rule",
                    );
                }
                if side.write.is_empty() {
                    r.error(&sp.key("write"), "there are no steps; add at least one");
                }
                step_list(&side.write, &sp.key("write"), jinja, r);
            }
        }
    }
}

/// A poll: its request, pagination and record expressions.
fn poll(p: &Poll, path: &Path, jinja: &Jinja, r: &mut Report<'_>) {
    jinja.request(&p.request, &path.key("request"), &Scope::NO_STEPS, r);
    let exprs = [
        ("records", Some(&p.records)),
        ("id", Some(&p.id)),
        ("version", p.version.as_ref()),
        ("watermark", p.watermark.as_ref()),
        ("deleted", p.deleted.as_ref()),
        ("total", p.total.as_ref()),
    ];
    for (key, expr) in exprs {
        if let Some(expr) = expr {
            jinja.expression(expr, &path.key(key), &Scope::NO_STEPS, r);
        }
    }
    let pp = path.key("pagination");
    match &p.pagination {
        Some(Pagination::Cursor { token, param }) => {
            jinja.expression(token, &pp.key("token"), &Scope::NO_STEPS, r);
            if param.is_empty() {
                r.error(
                    &pp.key("param"),
                    "name the query parameter that carries the token",
                );
            }
        }
        Some(Pagination::NextUrl { next }) => {
            jinja.expression(next, &pp.key("next"), &Scope::NO_STEPS, r);
        }
        Some(Pagination::Page { param, .. }) if param.is_empty() => {
            r.error(
                &pp.key("param"),
                "name the query parameter of the page number",
            );
        }
        Some(Pagination::Offset {
            param, limit_param, ..
        }) if param.is_empty() || limit_param.is_empty() => {
            r.error(&pp, "name both query parameters, `param` and `limit_param`");
        }
        _ => {}
    }
    if p.start.is_some() && p.watermark.is_none() {
        r.error(
            &path.key("start"),
            "`start` is a first watermark, but there is no `watermark` expression",
        );
    }
}
