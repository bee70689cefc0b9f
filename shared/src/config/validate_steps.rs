//! Checks of a flow's steps: ids, references between them, their requests,
//! batching and retry policies.

use std::collections::HashMap;

use super::diagnostic::Path;
use super::load::Flow;
use super::model::{Batch, RetryPolicy, Step};
use super::templates::{Jinja, Scope};
use super::validate::{Report, is_identifier};

/// A list of steps outside the loader's step-by-step reading (`on_delete`, `write`).
pub(super) fn step_list(list: &[Step], path: &Path, jinja: &Jinja, r: &mut Report<'_>) {
    let ids: Vec<Option<String>> = list.iter().map(|s| Some(s.id.clone())).collect();
    let f = Flow::<()> {
        def: None,
        steps: list.iter().cloned().map(Some).collect(),
        step_ids: ids,
    };
    steps(&f, path, jinja, r);
}

/// The steps of a workflow or sync: ids, connections, templates, retries.
pub(super) fn steps<T>(f: &Flow<T>, steps_path: &Path, jinja: &Jinja, r: &mut Report<'_>) {
    let steps_path = steps_path.clone();
    if f.def.is_some() && f.steps.is_empty() {
        r.error(&steps_path, "there are no steps; add at least one");
    }
    let mut first_use: HashMap<&str, usize> = HashMap::new();
    for (i, id) in f.step_ids.iter().enumerate() {
        let Some(id) = id else { continue };
        let id_path = steps_path.index(i).key("id");
        if let Some(earlier) = first_use.get(id.as_str()) {
            r.error(&id_path, format!("duplicate step id {id:?} (also steps[{earlier}]); ids must be unique in a workflow"));
        } else {
            first_use.insert(id, i);
        }
        if !is_identifier(id) {
            let fixed: String = id
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            r.error(
                &id_path,
                format!(
                    "step id {id:?} cannot be written as steps.{id} in a later template; use letters, digits and `_`, not starting with a digit (e.g. {:?})",
                    if fixed.starts_with(|c: char| c.is_ascii_digit()) { format!("_{fixed}") } else { fixed }
                ),
            );
        }
    }
    for (i, step) in f.steps.iter().enumerate() {
        let Some(step) = step else { continue };
        let sp = steps_path.index(i);
        self::step(
            step,
            &sp,
            &Scope {
                ids: &f.step_ids,
                current: Some(i),
            },
            jinja,
            r,
        );
    }
}

fn step(s: &Step, path: &Path, scope: &Scope<'_>, jinja: &Jinja, r: &mut Report<'_>) {
    if let Some(when) = &s.when {
        jinja.expression(when, &path.key("when"), scope, r);
    }
    jinja.request(&s.request, &path.key("request"), scope, r);
    if let Some(retry) = &s.retry {
        retry_policy(retry, &path.key("retry"), r);
    }
    super::validate_classify::check(&s.classify, &path.key("classify"), jinja, r);
    if let Some(b) = &s.batch {
        batch(b, s, path, jinja, r);
    }
}

pub(super) fn retry_policy(p: &RetryPolicy, path: &Path, r: &mut Report<'_>) {
    if p.max_age.is_some_and(|a| a.get().is_zero()) {
        r.error(&path.key("max_age"), "max_age must be greater than zero");
    }
    if p.initial_backoff.is_some_and(|b| b.get().is_zero()) {
        r.error(
            &path.key("initial_backoff"),
            "initial_backoff must be greater than zero",
        );
    }
    if let (Some(i), Some(m)) = (p.initial_backoff, p.max_backoff)
        && i > m
    {
        r.error(
            &path.key("max_backoff"),
            format!("max_backoff ({m}) is shorter than initial_backoff ({i})"),
        );
    }
}

fn batch(b: &Batch, s: &Step, path: &Path, jinja: &Jinja, r: &mut Report<'_>) {
    if s.request.json.is_none() {
        r.error(
            &path.key("request").key("json"),
            "a batched step needs a `request.json`: it is each run's item in the batch",
        );
    }
    let scope = Scope::NO_STEPS;
    jinja.template(&b.path, &path.key("batch").key("path"), &scope, r);
    if let Some(json) = &b.json {
        let body = crate::config::RequestSpec {
            method: b.method,
            path: String::new(),
            query: Default::default(),
            headers: Default::default(),
            json: Some(json.clone()),
            form: None,
        };
        jinja.request(&body, &path.key("batch"), &scope, r);
    }
    for (key, expr) in [("results", &b.results), ("item_status", &b.item_status)] {
        if let Some(expr) = expr {
            jinja.expression(expr, &path.key("batch").key(key), &scope, r);
        }
    }
    for (key, expr) in [
        ("item_id", &b.item_id),
        ("result_id", &b.result_id),
        ("result_index", &b.result_index),
        ("errors", &b.errors),
        ("error_ids", &b.error_ids),
        ("error_index", &b.error_index),
        ("error_status", &b.error_status),
    ] {
        if let Some(expr) = expr {
            jinja.expression(expr, &path.key("batch").key(key), &scope, r);
        }
    }
    if b.result_id.is_some() && b.result_index.is_some() {
        r.error(
            &path.key("batch").key("result_index"),
            "match results by id (`result_id`) or by index (`result_index`), not both",
        );
    }
    if b.item_id.is_some() != b.result_id.is_some()
        && !(b.item_id.is_some() && b.result_index.is_some())
    {
        r.error(
            &path.key("batch"),
            "results matched by id need both `item_id` (an item's id) and `result_id` (the id a result is for)",
        );
    }
    for (key, set) in [
        ("result_id", b.result_id.is_some()),
        ("result_index", b.result_index.is_some()),
    ] {
        if set && b.results.is_none() {
            r.error(
                &path.key("batch").key(key),
                format!("`{key}` reads each `result`; set `results` to say where the results are"),
            );
        }
    }
    let keyed = b.result_id.is_some() || b.result_index.is_some();
    if (b.errors.is_some()
        || b.error_ids.is_some()
        || b.error_index.is_some()
        || b.error_status.is_some())
        && (b.errors.is_none() || (b.error_ids.is_none() && b.error_index.is_none()) || !keyed)
    {
        r.error(
            &path.key("batch").key("errors"),
            "per-item errors need `errors` (where they are), `error_ids` or `error_index` (what each names) and results matched by id or index (`item_id` + `result_id`, or `result_index`)",
        );
    }
    if b.error_ids.is_some() && b.item_id.is_none() {
        r.error(
            &path.key("batch").key("error_ids"),
            "`error_ids` names items by id; set `item_id` to say where an item's id is",
        );
    }
    if b.item_status.is_some() && b.results.is_none() {
        r.error(
            &path.key("batch").key("item_status"),
            "`item_status` reads each item's `result`; set `results` to say where the results are",
        );
    }
}
