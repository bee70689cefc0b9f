//! Checking a case's [`Outcome`] against its [`Expect`]: every mismatch is
//! one readable message; a request that differs is shown field by field,
//! then expected and actual in full.

use serde_json::Value;

use super::file::{Expect, IngestExpect, RequestExpect, duration};
use super::mock::Received;
use super::run::Outcome;
use crate::template::{Templates, context};

/// Every way `out` misses `want` (empty: the case passed).
pub fn check(want: &Expect, out: &Outcome) -> Vec<String> {
    let mut fails = Vec::new();
    if let Some(e) = &out.error {
        fails.push(e.clone());
        if out.ingest.status == 0 {
            // Nothing was delivered: the rest would only repeat it.
            return fails;
        }
    }
    let mut seen: Vec<&String> = Vec::new();
    for call in &out.unmocked {
        if !seen.contains(&call) {
            seen.push(call);
            fails.push(format!(
                "a call no mock answers (add a mock for its step): {call}"
            ));
        }
    }
    if want.within_rate_limits != Some(false) {
        for call in &out.over_limit {
            fails.push(format!(
                "a call over the documented rate limit (answered 429): {call}"
            ));
        }
    }
    if let Some(i) = &want.ingest {
        let (status, body) = match i {
            IngestExpect::Status(s) => (*s, None),
            IngestExpect::Full { status, body } => (*status, body.as_ref()),
        };
        if out.ingest.status != status {
            fails.push(format!(
                "ingest answered {} {}, expected {status}",
                out.ingest.status, out.ingest.body
            ));
        }
        if let Some(b) = body {
            let mut diffs = Vec::new();
            subset("body", b, &out.ingest.body, &mut diffs);
            for d in diffs {
                fails.push(format!("ingest answer: {d}"));
            }
        }
    }
    let started = || {
        format!(
            "no run was started (ingest answered {} {})",
            out.ingest.status, out.ingest.body
        )
    };
    if let Some(s) = &want.status {
        if out.runs.is_empty() {
            fails.push(format!("expected status {s}: {}", started()));
        }
        for r in out.runs.iter().filter(|r| r.status.as_str() != s) {
            let why = r
                .error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            fails.push(format!(
                "run {} ended {}, expected {s}{why}",
                r.id,
                r.status.as_str()
            ));
        }
    }
    if let Some(f) = &want.failure {
        if out.runs.is_empty() {
            fails.push(format!("expected failure {f}: {}", started()));
        }
        for r in &out.runs {
            let got = r
                .failure
                .map(|f| serde_json::to_value(f).unwrap_or_default());
            let got = got.as_ref().and_then(Value::as_str).unwrap_or("none");
            if got != f {
                fails.push(format!("run {} failed as {got}, expected {f}", r.id));
            }
        }
    }
    if let Some(text) = &want.dead_letter {
        let found = out
            .dead_letters
            .iter()
            .any(|d| d.reason.contains(text.as_str()));
        if !found {
            let reasons: Vec<&str> = out.dead_letters.iter().map(|d| d.reason.as_str()).collect();
            fails.push(format!(
                "no dead letter says {text:?}; dead letters: {}",
                if reasons.is_empty() {
                    "none".to_owned()
                } else {
                    format!("{reasons:?}")
                }
            ));
        }
    }
    if let Some(min) = &want.min_duration {
        match duration(min) {
            Ok(min) if out.virtual_elapsed < min => fails.push(format!(
                "took {} of virtual time, expected at least {}",
                humantime::format_duration(out.virtual_elapsed),
                humantime::format_duration(min)
            )),
            Ok(_) => {}
            Err(e) => fails.push(format!("min_duration: {e}")),
        }
    }
    if let Some(a) = &want.alert {
        fails.extend(super::alerts::check(a, out.alerts.as_deref()));
    }
    let templates = Templates::new();
    let ctx = context(&serde_json::json!({ "body": out.payload }));
    for (step, se) in &want.steps {
        let calls: Vec<&Received> = out.received.iter().filter(|r| &r.step == step).collect();
        if let Some(n) = se.calls
            && calls.len() != n
        {
            fails.push(format!(
                "step {step} was called {} times, expected {n}",
                calls.len()
            ));
        }
        if let Some(req) = &se.request {
            match calls.first() {
                None => fails.push(format!(
                    "step {step} was never called; expected {}",
                    show_expected(req)
                )),
                Some(got) => {
                    let req = rendered(&templates, &ctx, req);
                    let diffs = request_diffs(&req, got);
                    if !diffs.is_empty() {
                        fails.push(format!(
                            "step {step}: the request differs\n{}\n  expected: {}\n  actual:   {}",
                            diffs
                                .iter()
                                .map(|d| format!("    {d}"))
                                .collect::<Vec<_>>()
                                .join("\n"),
                            show_expected(&req),
                            show_actual(got)
                        ));
                    }
                }
            }
        }
    }
    fails
}

/// The field-by-field differences of `got` from `want`.
pub fn request_diffs(want: &RequestExpect, got: &Received) -> Vec<String> {
    let mut d = Vec::new();
    if let Some(m) = &want.method
        && !m.eq_ignore_ascii_case(&got.method)
    {
        d.push(format!("method: expected {m}, got {}", got.method));
    }
    if let Some(p) = &want.path
        && p != &got.path
    {
        d.push(format!("path: expected {p}, got {}", got.path));
    }
    for (k, v) in &want.headers {
        match got.headers.get(&k.to_ascii_lowercase()) {
            None => d.push(format!("headers.{k}: expected {v:?}, missing")),
            Some(g) if g != v => d.push(format!("headers.{k}: expected {v:?}, got {g:?}")),
            Some(_) => {}
        }
    }
    if let Some(b) = &want.body {
        subset("body", b, &got.body, &mut d);
    }
    d
}

/// Where `got` does not contain `want` (objects: a subset of keys; arrays
/// and scalars: equal), each as `path: expected …, got …`.
pub fn subset(path: &str, want: &Value, got: &Value, out: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                let p = format!("{path}.{k}");
                match g.get(k) {
                    Some(gv) => subset(&p, wv, gv, out),
                    None => out.push(format!("{p}: expected {wv}, missing")),
                }
            }
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => {
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                subset(&format!("{path}[{i}]"), wv, gv, out);
            }
        }
        (w, g) if w == g => {}
        // A number written in YAML compares with the same number sent as text, and back.
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n))
            if n.to_string() == *s => {}
        (w, g) => out.push(format!("{path}: expected {w}, got {g}")),
    }
}

fn rendered(t: &Templates, ctx: &minijinja::Value, req: &RequestExpect) -> RequestExpect {
    let r = |s: &str| {
        if s.contains("{{") {
            t.render(s, ctx)
                .unwrap_or_else(|e| format!("<{}>", e.message))
        } else {
            s.to_owned()
        }
    };
    RequestExpect {
        method: req.method.clone(),
        path: req.path.as_deref().map(r),
        headers: req.headers.iter().map(|(k, v)| (k.clone(), r(v))).collect(),
        body: req.body.as_ref().map(|b| render_json(b, &r)),
    }
}

fn render_json(v: &Value, r: &dyn Fn(&str) -> String) -> Value {
    match v {
        Value::String(s) => Value::String(r(s)),
        Value::Array(a) => Value::Array(a.iter().map(|i| render_json(i, r)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, i)| (k.clone(), render_json(i, r)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn show_expected(r: &RequestExpect) -> String {
    let mut s = format!(
        "{} {}",
        r.method.as_deref().unwrap_or("*"),
        r.path.as_deref().unwrap_or("*")
    );
    if !r.headers.is_empty() {
        s.push_str(&format!(
            " headers {}",
            serde_json::to_string(&r.headers).unwrap_or_default()
        ));
    }
    if let Some(b) = &r.body {
        s.push_str(&format!(" body {b}"));
    }
    s
}

fn show_actual(r: &Received) -> String {
    let shown: std::collections::BTreeMap<&String, &String> = r
        .headers
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "authorization" | "host" | "content-length" | "accept" | "idempotency-key"
            )
        })
        .collect();
    format!(
        "{} {} headers {} body {}",
        r.method,
        r.path,
        serde_json::to_string(&shown).unwrap_or_default(),
        r.body
    )
}
