//! An in-process hub on the embedded store and a virtual clock (a manual
//! clock that also moves by whatever a run waits for in-process, such as a
//! rate-limit token): webhooks are ingested as `ferry dev` would, the queue
//! is driven by hand and the clock moved between rounds — so no test waits
//! out a backoff, a pause or a rate-limit window in real time.

use base64::Engine as _;
use ferry::clock::VirtualClock;
use ferry::model::RunRecord;
pub use ferry_testkit::bench::Bench;
use ferry_testkit::bench::{env_file, recipe_text};
use hmac::{KeyInit, Mac};

/// When the manual clock starts: 2026-11-30T00:00:00Z.
pub const T0: i64 = 1_795_996_800_000;

/// A hub for `yaml` with the `${env:…}` values in `vars`, on a fresh store at
/// [`T0`]; the clock moves 500 ms a round and a message goes to the dead
/// letters after 50 receives.
pub fn start(yaml: &str, vars: &[(&str, String)]) -> Bench {
    let loaded = ferry::config::load_str(yaml, &|n: &str| {
        vars.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let mut bench = Bench::on(loaded, VirtualClock::at(T0), 50);
    bench.tick = 500;
    bench
}

/// A recipe's YAML from `examples/recipes/`.
pub fn recipe(slug: &str) -> String {
    recipe_text(&format!("{slug}.yaml"))
}

/// The `${env:…}` names a recipe's `.env` file lists, with its values.
pub fn recipe_env(slug: &str) -> Vec<(String, String)> {
    let path = ferry_testkit::repo_root().join(format!("examples/recipes/{slug}.env"));
    env_file(&path).into_iter().collect()
}

/// HMAC-SHA256 of `parts` with `secret` — computed here, independently of ferry.
pub fn hmac(secret: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// The headers HubSpot sends with a v3-signed webhook to `uri` at `ts_ms`.
pub fn hubspot_signed(secret: &str, uri: &str, body: &[u8], ts_ms: i64) -> Vec<(String, String)> {
    let ts = ts_ms.to_string();
    let sig = hmac(secret, &[b"POST", uri.as_bytes(), body, ts.as_bytes()]);
    vec![
        (
            "x-hubspot-signature-v3".into(),
            base64::engine::general_purpose::STANDARD.encode(sig),
        ),
        ("x-hubspot-request-timestamp".into(), ts),
    ]
}

/// The website form's signature: hex HMAC-SHA256 of the body in `X-Signature`.
pub fn form_signed(secret: &str, body: &[u8]) -> Vec<(String, String)> {
    vec![("x-signature".into(), hex::encode(hmac(secret, &[body])))]
}

/// The errors of every attempt of `run`, joined.
pub fn errors(run: &RunRecord) -> String {
    let mut out: Vec<String> = run.error.iter().cloned().collect();
    for s in &run.steps {
        out.extend(s.attempts.iter().filter_map(|a| a.error.clone()));
    }
    out.join("\n")
}
