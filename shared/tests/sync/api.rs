//! A paginated API on 127.0.0.1 that acts like the real ones: records with
//! ids and `updated_at`, an inclusive `updated_since` filter, every pagination
//! style, edits, an upsert endpoint (two-way) and a target that counts what
//! the executed runs deliver.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use ferry_testkit::target::{Answer, Seen, Target};
use serde_json::{Value, json};

/// Seconds after 2024-01-01T00:00:00Z, as the API writes times.
pub fn ts(secs: i64) -> String {
    chrono::DateTime::from_timestamp(1_704_067_200 + secs, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

type Hook = Arc<dyn Fn(&str) + Send + Sync>;

#[derive(Default)]
struct Inner {
    records: BTreeMap<String, Value>,
    tombstones: Vec<Value>,
    on_get: Option<Hook>,
    /// GETs (by number, from 1) answered with (status, Retry-After seconds) instead of a page.
    fail_at: BTreeMap<usize, (u16, Option<u64>)>,
}

/// The fake API, on the testkit's target (which records every request).
#[derive(Clone)]
pub struct Api {
    pub url: String,
    target: Target,
    inner: Arc<Mutex<Inner>>,
    /// Seconds since the base time; every edit moves it on (shared between two APIs for two-way).
    pub tick: Arc<AtomicI64>,
}

/// A list request: a GET of `/{style}`.
fn is_list(s: &Seen) -> bool {
    s.method == "GET" && s.path.rfind('/') == Some(0)
}

/// A request as the API saw it: path?query.
fn uri(s: &Seen) -> String {
    match &s.query {
        Some(q) => format!("{}?{q}", s.path),
        None => s.path.clone(),
    }
}

impl Api {
    pub async fn start() -> Api {
        Self::start_with_tick(Arc::new(AtomicI64::new(1_000_000))).await
    }

    pub async fn start_with_tick(tick: Arc<AtomicI64>) -> Api {
        let target = Target::start().await;
        let api = Api {
            url: target.url(),
            target: target.clone(),
            inner: Arc::default(),
            tick,
        };
        let a = api.clone();
        target.behave("/records/", move |s| {
            (s.method == "PUT").then(|| upsert(&a, s))
        });
        target.behave("/warehouse/", |s| {
            let id = s.path.trim_start_matches("/warehouse/");
            Some(Answer::ok(json!({ "id": id })))
        });
        let a = api.clone();
        target.behave("/", move |s| Some(list(&a, s)));
        api
    }

    /// `n` records `r00000`…, `per_group` of them sharing each `updated_at`.
    pub fn seed(&self, n: usize, per_group: usize) {
        let mut st = self.inner.lock().unwrap();
        for i in 0..n {
            let id = format!("r{i:05}");
            let rec = json!({
                "id": id, "updated_at": ts((i / per_group) as i64),
                "first": "Ada", "last": format!("L{i}"), "email": format!("{id}@example.com"),
                "status": "active", "deleted": false,
            });
            st.records.insert(id, rec);
        }
    }

    pub fn put_record(&self, rec: Value) {
        let id = rec["id"].as_str().unwrap().to_owned();
        self.inner.lock().unwrap().records.insert(id, rec);
    }

    pub fn record(&self, id: &str) -> Value {
        self.inner.lock().unwrap().records[id].clone()
    }

    pub fn now(&self) -> String {
        ts(self.tick.fetch_add(1, Ordering::SeqCst) + 1)
    }

    /// Change `fields` of record `id`; it gets a new `updated_at`.
    pub fn edit(&self, id: &str, fields: Value) {
        let at = self.now();
        let mut st = self.inner.lock().unwrap();
        let rec = st.records.get_mut(id).unwrap();
        for (k, v) in fields.as_object().unwrap() {
            rec[k] = v.clone();
        }
        rec["updated_at"] = json!(at);
    }

    pub fn tombstone(&self, id: &str) {
        let at = self.now();
        let mut st = self.inner.lock().unwrap();
        st.records.remove(id);
        st.tombstones.push(json!({ "id": id, "deleted_at": at }));
    }

    pub fn on_get(&self, hook: impl Fn(&str) + Send + Sync + 'static) {
        self.inner.lock().unwrap().on_get = Some(Arc::new(hook));
    }

    /// The `n`-th GET (from 1) is answered `status` (with `Retry-After: secs`), not with a page.
    pub fn fail_at(&self, n: usize, status: u16, retry_after: Option<u64>) {
        self.inner
            .lock()
            .unwrap()
            .fail_at
            .insert(n, (status, retry_after));
    }

    /// When each GET arrived, in order.
    pub fn get_times(&self) -> Vec<std::time::Instant> {
        self.target
            .seen()
            .iter()
            .filter(|s| is_list(s))
            .map(|s| s.at)
            .collect()
    }

    pub fn gets(&self) -> Vec<String> {
        self.target
            .seen()
            .iter()
            .filter(|s| is_list(s))
            .map(uri)
            .collect()
    }

    /// What the target received: (method, id, body) of the upserts and the warehouse calls.
    pub fn received(&self) -> Vec<(String, String, Value)> {
        self.target
            .seen()
            .into_iter()
            .filter_map(|s| {
                let id = s
                    .path
                    .strip_prefix("/warehouse/")
                    .or_else(|| {
                        s.path
                            .strip_prefix("/records/")
                            .filter(|_| s.method == "PUT")
                    })?
                    .to_owned();
                Some((s.method, id, s.body))
            })
            .collect()
    }

    /// How many times the target received each id (PUTs).
    pub fn deliveries(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for (m, id, _) in self.received() {
            if m == "PUT" {
                *out.entry(id).or_insert(0) += 1;
            }
        }
        out
    }
}

fn list(api: &Api, req: &Seen) -> Answer {
    let n = api.target.count_where(|s| is_list(s) && s.n <= req.n);
    let (hook, fail) = {
        let mut st = api.inner.lock().unwrap();
        (st.on_get.clone(), st.fail_at.remove(&n))
    };
    if let Some((status, retry_after)) = fail {
        let mut a = Answer::status(status, json!({ "error": "slow down" }));
        if let Some(secs) = retry_after {
            a = a.header("retry-after", &secs.to_string());
        }
        return a;
    }
    if let Some(h) = hook {
        h(&uri(req));
    }
    let style = req.path.trim_start_matches('/');
    let q: BTreeMap<String, String> = req
        .query
        .as_deref()
        .map(|q| serde_urlencoded::from_str(q).unwrap())
        .unwrap_or_default();
    let since = q.get("updated_since").cloned().unwrap_or_default();
    let st = api.inner.lock().unwrap();
    let source: Vec<Value> = if style == "tombstones" {
        st.tombstones.clone()
    } else {
        st.records.values().cloned().collect()
    };
    drop(st);
    let time = |r: &Value| {
        r.get("updated_at")
            .or_else(|| r.get("deleted_at"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    // Inclusive filter, stable order: (updated_at, id).
    let mut all: Vec<Value> = source.into_iter().filter(|r| time(r) >= since).collect();
    all.sort_by_key(|r| (time(r), r["id"].as_str().unwrap_or("").to_owned()));
    let total = all.len();
    let num = |k: &str, d: usize| q.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
    let limit = num("limit", num("per_page", 100));
    let start = match style {
        "cursor" => q
            .get("cursor")
            .map_or(0, |c| c.trim_start_matches("tok-").parse().unwrap()),
        "next" | "link" => num("after", 0),
        "page" => (num("page", 1) - 1) * limit,
        _ => num("offset", 0),
    };
    let page: Vec<Value> = all.iter().skip(start).take(limit).cloned().collect();
    let end = start + page.len();
    let more = end < total;
    let next_url = format!(
        "{}/{style}?updated_since={}&limit={limit}&after={end}",
        api.url,
        urlencode(&since)
    );
    match style {
        "cursor" | "tombstones" => Answer::ok(
            json!({ "results": page, "next_cursor": more.then(|| format!("tok-{end}")) }),
        ),
        "next" => Answer::ok(json!({ "results": page, "next": more.then_some(next_url) })),
        "link" => {
            let a = Answer::ok(json!(page));
            if more {
                let v = format!(
                    "<{next_url}>; rel=\"next\", <{}/link>; rel=\"first\"",
                    api.url
                );
                return a.header("link", &v);
            }
            a
        }
        "page" => Answer::ok(json!({ "results": page, "total": total })),
        "offset" => Answer::ok(json!({ "data": page, "meta": { "total": total } })),
        _ => Answer::status(404, Value::Null),
    }
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

fn upsert(api: &Api, req: &Seen) -> Answer {
    let id = req.path.trim_start_matches("/records/").to_owned();
    let at = api.now();
    let mut st = api.inner.lock().unwrap();
    let rec = st
        .records
        .entry(id.clone())
        .or_insert_with(|| json!({ "id": id }));
    for (k, v) in req.body.as_object().unwrap() {
        rec[k] = v.clone();
    }
    rec["updated_at"] = json!(at);
    Answer::ok(rec.clone())
}
