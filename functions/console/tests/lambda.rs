//! The console Lambda against the emulator (moto's server, started by
//! `scripts/emulators run -- …`): its token read from a Secrets Manager
//! secret, its store DynamoDB + SQS, and the stored API Gateway events in
//! `functions/console/tests/events/` (API Gateway v2 shapes from `sam local generate-event apigateway http-api-proxy`; kept beside the test, not in the generated `events/`) — a page without a session is redirected to the login
//! (an action is 401), a wrong token is 401, the right one sets the session
//! cookie, the run list is served, and a dead letter is replayed by POST
//! with the session's CSRF token. Run ad hoc without the emulator, it skips
//! loudly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use ferry::clock::{Clock, SystemClock};
use ferry::contract::aws::{emulator, fresh};
use ferry::hub::Hub;
use ferry::model::{Event, Job, RunJob, RunRecord, RunStatus};
use ferry::store::AwsStore;
use ferry::store::aws::provision::QueueSpec;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

const CONFIG: &str = r#"version: 1
connections:
  crm: { base_url: "http://127.0.0.1:9" }
sources:
  form: { verify: { scheme: none } }
workflows:
  bad: { trigger: { source: form }, steps: [ { id: b, connection: crm, request: { path: /bad } } ] }
"#;
const TOKEN: &str = "console-token-from-secrets-manager";

struct Got {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

/// Replay stored event `name`, after `edit` fills in what the test knows.
async fn send(app: &Router, name: &str, edit: impl FnOnce(&mut Value)) -> Got {
    let path = format!("{}/tests/events/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut event);
    let req = lambda_http::request::from_str(&event.to_string()).expect("an HTTP API v2 event");
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    // minijinja's HTML escaping writes `/` as `&#x2f;` (browsers read it back).
    let body = String::from_utf8_lossy(&body).replace("&#x2f;", "/");
    Got {
        status,
        headers,
        body,
    }
}

fn set_body(event: &mut Value, form: &[(&str, &str)]) {
    use base64::Engine as _;
    let body = serde_urlencoded::to_string(form).unwrap();
    event["body"] = base64::engine::general_purpose::STANDARD
        .encode(body)
        .into();
}

/// A dead-lettered run of `bad` on the emulator's queues.
async fn dead_letter(hub: &Hub) -> RunRecord {
    let now = hub.ports.clock.now_ms();
    let run = RunRecord {
        id: ferry::model::new_run_id(),
        workflow: "bad".into(),
        source: "form".into(),
        event_id: "evt-1".into(),
        status: RunStatus::DeadLettered,
        attempts: 1,
        created_at: now,
        updated_at: now,
        error: Some("step b: HTTP 400".into()),
        failure: Some(ferry::model::Failure::Rejected),
        steps: Vec::new(),
        rerun_of: None,
        reruns: Vec::new(),
        event: None,
        expires_at: None,
    };
    hub.ports.runs.put(&run).await.unwrap();
    let job = Job::Run(RunJob {
        run_id: run.id.clone(),
        workflow: "bad".into(),
        source: "form".into(),
        event_id: "evt-1".into(),
        event: Event::default(),
    });
    hub.ports
        .queue
        .send(&job.encode(), Duration::ZERO)
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the message never arrived"
        );
        let got = hub
            .ports
            .queue
            .receive(1, Duration::from_secs(30), Duration::from_secs(1))
            .await
            .unwrap();
        if let Some(m) = got.first() {
            hub.ports
                .queue
                .dead_letter(&m.receipt, "step b: HTTP 400")
                .await
                .unwrap();
            return run;
        }
    }
}

#[tokio::test]
async fn login_list_and_replay_through_api_gateway_events() {
    let Some(config) = emulator("console_handler").await else {
        return;
    };
    // The token, as the function reads it at cold start.
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let name = format!("ferry-console-{}", uuid::Uuid::now_v7());
    let created = secrets
        .create_secret()
        .name(&name)
        .secret_string(TOKEN)
        .send()
        .await
        .expect("a secret on the emulator");
    let arn = created.arn().unwrap().to_owned();
    let env = |n: &str| (n == ferry_console::SECRET_VAR).then(|| arn.clone());
    let token = ferry_console::token_from_env(&secrets, &env).await.unwrap();
    assert_eq!(token, TOKEN);
    let none = ferry_console::token_from_env(&secrets, &|_| None)
        .await
        .unwrap_err();
    assert!(
        none.contains("FERRY_CONSOLE_SECRET_ARN is not set"),
        "{none}"
    );

    let names = fresh(
        &config,
        QueueSpec {
            max_receives: 3,
            visibility: Duration::from_secs(30),
        },
    )
    .await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ports = AwsStore::new(&config, names, clock).ports();
    let loaded = ferry::config::load_str(CONFIG, &|_| None).unwrap();
    let hub = Hub::new(loaded.config, loaded.secrets, ports).unwrap();
    let run = dead_letter(&hub).await;
    let app = ferry_console::app(hub.clone(), token);

    // Without a session: a page goes to the login, an action is refused.
    let page = send(&app, "get-runs.json", |_| {}).await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.headers["location"],
        "/console/login?next=%2Fconsole%2Fruns%3Fworkflow%3Dbad"
    );
    let action = send(&app, "replay.json", |_| {}).await;
    assert_eq!(action.status, 401, "{}", action.body);

    // A wrong token, then the right one.
    let wrong = send(&app, "login.json", |e| {
        set_body(e, &[("token", "not-the-token"), ("next", "/console/runs")])
    })
    .await;
    assert_eq!(wrong.status, 401);
    let login = send(&app, "login.json", |e| {
        set_body(e, &[("token", TOKEN), ("next", "/console/runs")])
    })
    .await;
    assert_eq!(login.status, 303, "{}", login.body);
    assert_eq!(login.headers["location"], "/console/runs");
    let set = login.headers["set-cookie"].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/console"] {
        assert!(
            set.split("; ").any(|a| a == attr),
            "{attr} missing from {set}"
        );
    }
    let cookie = set.split(';').next().unwrap().to_owned();

    // The run list, with the session.
    let list = send(&app, "get-runs.json", |e| {
        e["cookies"] = vec![cookie.clone()].into()
    })
    .await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains(&format!("data-run-id=\"{}\"", run.id)));
    assert!(
        list.body
            .contains(&format!("href=\"/console/runs/{}\"", run.id))
    );

    // Replay the dead letter from its run's page: without the CSRF token
    // refused, with it the run is queued again.
    let detail = send(&app, "get-runs.json", |e| {
        e["cookies"] = vec![cookie.clone()].into();
        let path = format!("/console/runs/{}", run.id);
        e["rawPath"] = path.clone().into();
        e["rawQueryString"] = "".into();
        e["requestContext"]["http"]["path"] = path.into();
        e.as_object_mut().unwrap().remove("queryStringParameters");
    })
    .await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    let at = detail.body.find("/console/dlq/").expect("a replay button");
    let dlq_id = detail.body[at + "/console/dlq/".len()..]
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let csrf_at =
        detail.body.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    let csrf = detail.body[csrf_at..].split('"').next().unwrap().to_owned();
    let replay = |form: Vec<(&'static str, String)>| {
        let (cookie, dlq_id) = (cookie.clone(), dlq_id.clone());
        move |e: &mut Value| {
            e["cookies"] = vec![cookie].into();
            let path = format!("/console/dlq/{dlq_id}/replay");
            e["rawPath"] = path.clone().into();
            e["requestContext"]["http"]["path"] = path.into();
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            set_body(e, &form);
        }
    };
    let refused = send(&app, "replay.json", replay(vec![])).await;
    assert_eq!(refused.status, 403);
    let done = send(&app, "replay.json", replay(vec![("csrf", csrf)])).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.headers["location"],
        format!("/console/runs/{}?replayed=1", run.id).as_str()
    );
    let again = hub.ports.runs.get(&run.id).await.unwrap().unwrap();
    assert_eq!(again.status, RunStatus::Queued);
}
