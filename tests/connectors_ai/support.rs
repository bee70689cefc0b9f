//! A hub on a virtual clock beside the OpenAI fake, and calls through the
//! one call path.

use std::sync::Arc;
use std::time::Duration;

use ferry::call::Called;
use ferry::clock::{Clock, VirtualClock};
use ferry::config::Method;
use ferry::execute::{Disposition, execute};
use ferry::hub::Hub;
use ferry::worker::{VISIBILITY, settle};
pub use ferry_testkit::bench::last;
use ferry_testkit::bench::{Bench, request};
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
    bench: Bench,
}

impl Env {
    /// `yaml` loaded with `OPENAI_URL` (the fake), `OPENAI_API_KEY` and
    /// `vars`, on a fresh store at [`NOW`]; the fake enforces `limits`.
    pub async fn start(yaml: &str, limits: Limits, vars: &[(&str, String)]) -> Env {
        let clock = VirtualClock::at(NOW);
        let openai = OpenAi::start(KEY, limits, clock.clone() as Arc<dyn Clock>).await;
        let mut vars = vars.to_vec();
        vars.push(("OPENAI_URL", openai.url()));
        vars.push(("OPENAI_BASE_URL", openai.url()));
        vars.push(("OPENAI_API_KEY", KEY.to_owned()));
        let bench = Bench::start(yaml, &vars, clock);
        Env {
            hub: bench.hub.clone(),
            clock: bench.clock.clone(),
            openai,
            bench,
        }
    }
}

/// One `POST /v1/embeddings` of `inputs` on connection `openai`, as a step
/// without its own `classify`.
pub async fn embed(env: &Env, inputs: &[String]) -> Called {
    let mut spec = request(Method::Post, "/v1/embeddings");
    spec.json = Some(json!({"model": "text-embedding-3-small", "input": inputs}));
    env.bench.call("openai", spec, "key-1").await
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
