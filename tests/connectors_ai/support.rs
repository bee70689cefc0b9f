//! A hub on a virtual clock beside the OpenAI fake, and calls through the
//! one call path.

use std::sync::Arc;
use std::time::Duration;

use ferry::call::{Called, call};
use ferry::clock::{Clock, VirtualClock};
use ferry::config::RequestSpec;
use ferry::execute::{Disposition, execute};
use ferry::hub::Hub;
use ferry::retry::{Rules, Verdict};
use ferry::store::{SqliteOptions, SqliteStore};
use ferry::worker::{VISIBILITY, settle};
use ferry_testkit::vendors::openai::{Limits, OpenAi};
use serde_json::json;

/// Where the clock starts.
pub const NOW: i64 = 1_700_000_000_000;
/// The API key the fake accepts.
pub const KEY: &str = "sk-test-ferry";

pub struct Env {
    pub hub: Arc<Hub>,
    pub clock: Arc<VirtualClock>,
    pub openai: OpenAi,
    _dir: tempfile::TempDir,
}

impl Env {
    /// `yaml` loaded with `OPENAI_URL` (the fake), `OPENAI_API_KEY` and
    /// `vars`, on a fresh store at [`NOW`]; the fake enforces `limits`.
    pub async fn start(yaml: &str, limits: Limits, vars: &[(&str, String)]) -> Env {
        let clock = VirtualClock::at(NOW);
        let openai = OpenAi::start(KEY, limits, clock.clone() as Arc<dyn Clock>).await;
        let url = openai.url();
        let env = |name: &str| match name {
            "OPENAI_URL" | "OPENAI_BASE_URL" => Some(url.clone()),
            "OPENAI_API_KEY" => Some(KEY.to_owned()),
            other => vars
                .iter()
                .find(|(k, _)| *k == other)
                .map(|(_, v)| v.clone()),
        };
        let loaded = ferry::config::load_str(yaml, &env).unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(
            &dir.path().join("ferry.db"),
            SqliteOptions {
                max_receives: 5,
                clock: clock.clone() as Arc<dyn Clock>,
            },
        )
        .unwrap();
        let hub = Hub::new(loaded.config, loaded.secrets, store.ports()).unwrap();
        Env {
            hub,
            clock,
            openai,
            _dir: dir,
        }
    }
}

/// One `POST /v1/embeddings` of `inputs` on connection `openai`, as a step
/// without its own `classify`.
pub async fn embed(env: &Env, inputs: &[String]) -> Called {
    let conn = env.hub.connection("openai").unwrap();
    let spec = RequestSpec {
        method: ferry::config::Method::Post,
        path: "/v1/embeddings".into(),
        query: Default::default(),
        headers: Default::default(),
        json: Some(json!({"model": "text-embedding-3-small", "input": inputs})),
        form: None,
    };
    let ctx = ferry::template::context(&json!({}));
    let req = ferry::outbound::prepare(&env.hub.templates, conn, &spec, &ctx).unwrap();
    let rules = Rules {
        step: None,
        connection: Some(&conn.classify),
    };
    call(&env.hub, "openai", conn, &req, "key-1", rules, None).await
}

/// [`embed`] until a call goes out: a `Later` is waited out on the clock,
/// as the queue's delay would.
pub async fn embed_when_allowed(env: &Env, inputs: &[String]) -> Called {
    for _ in 0..10_000 {
        match embed(env, inputs).await {
            Called::Later(d) => env.clock.advance(ferry::clock::millis(d)),
            done => return done,
        }
    }
    panic!("the call never went out");
}

/// The last try's verdict and status.
pub fn last(called: &Called) -> (Verdict, Option<u16>) {
    match called {
        Called::Done(tries) => {
            let t = tries.last().unwrap();
            (t.verdict.clone(), t.attempt.status_code)
        }
        other => panic!("no call was made: {other:?}"),
    }
}

/// Receive, execute and settle every queued run (many at once, so batched
/// steps batch); when none is due, move the clock to the earliest wait.
pub async fn drive(env: &Env) {
    let hub = &env.hub;
    let mut due: Vec<i64> = Vec::new();
    let limit = NOW + 24 * 3_600_000;
    loop {
        let now = env.clock.now_ms();
        assert!(now < limit, "the runs had not settled after a virtual day");
        let msgs = hub
            .ports
            .queue
            .receive(100, VISIBILITY, Duration::ZERO)
            .await
            .unwrap();
        if msgs.is_empty() {
            due.retain(|t| *t > now);
            match due.iter().min() {
                Some(next) => env.clock.advance_to(*next),
                None => return,
            }
            continue;
        }
        let tasks: Vec<_> = msgs
            .into_iter()
            .map(|m| {
                let hub = hub.clone();
                tokio::spawn(async move {
                    let d = execute(&hub, &m).await;
                    let wait = match &d {
                        Disposition::RetryIn(w) | Disposition::Requeue(w) => Some(*w),
                        _ => None,
                    };
                    settle(hub.ports.queue.as_ref(), &m, d).await;
                    wait
                })
            })
            .collect();
        for t in tasks {
            if let Some(w) = t.await.unwrap() {
                due.push(ferry::clock::after(env.clock.now_ms(), w));
            }
        }
    }
}
