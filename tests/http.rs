//! The HTTP surface of `ferry dev`: every answer is JSON, requests that do not
//! arrive in time are closed, the sandbox is off unless asked for.
//!
//! The time bounds are set low here (`--header-timeout`, `--body-timeout`) so
//! the tests wait for EOF, never for a fixed time.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Hub;

const CONFIG: &str = r#"version: 1
connections:
  target:
    base_url: "http://127.0.0.1:9/nowhere"
sources:
  open: { verify: { scheme: none } }
workflows:
  keep:
    trigger: { source: open }
    steps:
      - id: post
        connection: target
        request: { path: /x, json: { n: "{{ body.n }}" } }
"#;

/// Generous: a bound of 300 ms must close well within it, even on a busy machine.
const EOF_WITHIN: Duration = Duration::from_secs(20);

fn start(dir: &std::path::Path, extra: &[&str]) -> Hub {
    Hub::start_with(dir, CONFIG, &[], extra)
}

fn connect(hub: &Hub) -> TcpStream {
    let s = TcpStream::connect(hub.addr).unwrap();
    s.set_read_timeout(Some(EOF_WITHIN)).unwrap();
    s
}

/// Read until the server closes the connection; panics if it is still open
/// after [`EOF_WITHIN`]. Returns what arrived and how long it took.
fn read_to_eof(mut s: TcpStream) -> (String, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "the connection is still open after {:?} ({e}); got {:?}",
                start.elapsed(),
                String::from_utf8_lossy(&got)
            ),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), start.elapsed())
}

/// Status and JSON body of a raw HTTP/1.1 response.
fn parse(raw: &str) -> (u16, Value) {
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_and_idle_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start(
        dir.path(),
        &["--header-timeout", "300ms", "--body-timeout", "300ms"],
    );
    tokio::task::spawn_blocking(move || {
        // Headers that never end: closed without an answer.
        let mut s = connect(&hub);
        s.write_all(b"POST /hooks/open HTTP/1.1\r\nHost: x\r\nContent-Type: appl")
            .unwrap();
        let (got, _) = read_to_eof(s);
        assert_eq!(got, "", "no answer to half a head");

        // A body that never ends: 408 in JSON, then closed.
        let mut s = connect(&hub);
        s.write_all(
            b"POST /hooks/open HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"n\": 1",
        )
        .unwrap();
        let (got, _) = read_to_eof(s);
        let (status, body) = parse(&got);
        assert_eq!((status, body["error"].as_str()), (408, Some("request_timeout")), "{got}");

        // An idle keep-alive connection, after a complete exchange: closed.
        let mut s = connect(&hub);
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let (got, _) = read_to_eof(s);
        assert!(got.starts_with("HTTP/1.1 200"), "{got}");

        // A connection that never sends anything: closed.
        let (got, _) = read_to_eof(connect(&hub));
        assert_eq!(got, "");
        drop(hub);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_json() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start(dir.path(), &[]);
    let http = reqwest::Client::new();
    let big_header = "h".repeat(40 * 1024);
    let long_path = format!("/hooks/{}", "a".repeat(9 * 1024));
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "unknown route",
            http.get(hub.url("/nope")),
            404,
            "not_found",
        ),
        ("no source", http.post(hub.url("/hooks/")), 404, "not_found"),
        (
            "two segments",
            http.post(hub.url("/hooks/a/b")),
            404,
            "not_found",
        ),
        (
            "bad path",
            http.post(hub.url("/hooks/%FF")),
            400,
            "bad_path",
        ),
        (
            "healthz POST",
            http.post(hub.url("/healthz")),
            405,
            "method_not_allowed",
        ),
        (
            "over 2 MiB",
            http.post(hub.url("/hooks/open"))
                .body(vec![b'x'; 2 * 1024 * 1024 + 1]),
            413,
            "payload_too_large",
        ),
        (
            "long URI",
            http.post(hub.url(&long_path)),
            414,
            "uri_too_long",
        ),
        (
            "large header",
            http.post(hub.url("/hooks/open"))
                .header("x-big", &big_header),
            431,
            "headers_too_large",
        ),
        (
            "sandbox off",
            http.get(hub.url("/_sandbox/crm/_requests")),
            404,
            "sandbox_off",
        ),
    ];
    for (what, req, status, code) in cases {
        let resp = req.send().await.unwrap();
        let got = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(code)),
            "{what}: {body}"
        );
        assert_eq!(ctype.as_deref(), Some("application/json"), "{what}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {body}"
        );
    }

    // Too many headers: JSON up to hyper's own wall.
    let mut req = http.post(hub.url("/hooks/open"));
    for i in 0..120 {
        req = req.header(format!("x-h{i}"), "v");
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 431);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "headers_too_large");

    // Past hyper's wall (a 70 KiB head), hyper answers by itself: 431, empty, closed.
    let mut s = connect(&hub);
    let head = format!(
        "POST /hooks/open HTTP/1.1\r\nHost: x\r\nX-Huge: {}\r\n\r\n",
        "h".repeat(70 * 1024)
    );
    let _ = s.write_all(head.as_bytes());
    let (got, _) = tokio::task::spawn_blocking(move || read_to_eof(s))
        .await
        .unwrap();
    // The part of the head hyper never read can turn its close into a reset
    // that overtakes the answer: either way the connection ends.
    assert!(got.is_empty() || got.starts_with("HTTP/1.1 431"), "{got}");

    // And what ingest itself answers is unchanged.
    let (status, body) = hub
        .post(
            "open",
            br#"{"n": 1}"#,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(
        (status, body["status"].clone()),
        (202, json!("accepted")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_keeps_a_bounded_record() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start(dir.path(), &["--sandbox"]);
    let http = reqwest::Client::new();
    let big = "x".repeat(1024 * 1024);
    for _ in 0..120 {
        let resp = http
            .post(hub.url("/_sandbox/crm/contacts"))
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }
    let seen: Value = http
        .get(hub.url("/_sandbox/crm/_requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seen = seen.as_array().unwrap();
    assert!(seen.len() <= 100, "{} requests kept", seen.len());
    let last = seen.last().unwrap();
    assert_eq!(last["n"], 120, "the newest is kept");
    assert_eq!(last["body_truncated"], true);
    assert_eq!(last["body_bytes"], big.len());
    assert!(last["body"].as_str().unwrap().len() <= 64 * 1024);

    for n in 0..40 {
        let resp = http
            .post(hub.url(&format!("/_sandbox/bin{n}/x")))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        if status != 200 {
            let body: Value = resp.json().await.unwrap();
            assert_eq!(
                (status, body["error"].as_str()),
                (507, Some("sandbox_full"))
            );
            return;
        }
    }
    panic!("the number of bins is not bounded");
}
