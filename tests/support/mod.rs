//! Helpers for the end-to-end tests: the real `ferry` binary, the testkit's
//! target HTTP server (it can misbehave on purpose), signing, polling.
#![allow(dead_code)]

pub mod oauth;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use serde_json::Value;

/// Log filter for the `ferry` processes tests start: errors only, unless
/// `FERRY_TEST_LOG` says otherwise (e.g. `FERRY_TEST_LOG=info` when debugging).
pub fn test_log() -> String {
    std::env::var("FERRY_TEST_LOG").unwrap_or_else(|_| "error".into())
}

/// The `ferry` binary under test: cargo's, or `FERRY_BIN` when set (a copy
/// that a concurrent build in a shared target directory cannot replace mid-run).
pub fn ferry_bin() -> String {
    std::env::var("FERRY_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ferry").to_owned())
}

/// Run `ferry args…` to completion: (exit code, stdout, stderr).
pub fn ferry(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(ferry_bin())
        .args(args)
        .output()
        .expect("ferry runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// HMAC-SHA256 of `body` with `secret`, hex — computed here, independently of ferry.
pub fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Poll `f` until it returns `Some`, or panic after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

// ------------------------------------------------------------------ target

/// The target that stands in for a CRM, a chat tool…: the testkit's.
#[allow(unused_imports)]
pub use ferry_testkit::target::{Answer, Behaviour, Seen, Target};

// ------------------------------------------------------------------ the hub

/// A running `ferry dev` process on its own data directory.
pub struct Hub {
    pub child: Child,
    pub addr: SocketAddr,
    pub config: PathBuf,
    pub data: PathBuf,
    pub env: Vec<(String, String)>,
    pub http: reqwest::Client,
}

impl Hub {
    /// Write `config` into `dir` and start `ferry dev` on it with `env`.
    pub fn start(dir: &Path, config: &str, env: &[(&str, &str)]) -> Hub {
        Self::start_with(dir, config, env, &[])
    }

    pub fn start_with(dir: &Path, config: &str, env: &[(&str, &str)], extra: &[&str]) -> Hub {
        Self::start_listening(dir, config, env, "127.0.0.1:0", extra)
    }

    /// [`Hub::start_with`] on `--listen listen`. A hub bound to an
    /// unspecified address (`0.0.0.0:0`) is reached through 127.0.0.1.
    pub fn start_listening(
        dir: &Path,
        config: &str,
        env: &[(&str, &str)],
        listen: &str,
        extra: &[&str],
    ) -> Hub {
        let config_path = dir.join("ferry.yaml");
        std::fs::write(&config_path, config).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let data = dir.join("data");
        let mut args = vec!["--listen", listen];
        args.extend_from_slice(extra);
        let (child, addr) = Self::spawn(&config_path, &data, &env, &args);
        Hub {
            child,
            addr,
            config: config_path,
            data,
            env,
            http: reqwest::Client::new(),
        }
    }

    fn spawn(
        config: &Path,
        data: &Path,
        env: &[(String, String)],
        extra: &[&str],
    ) -> (Child, SocketAddr) {
        let mut cmd = Command::new(ferry_bin());
        cmd.args([
            "dev",
            "--config",
            config.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ])
        .args(extra)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("FERRY_LOG", test_log())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("ferry dev starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut addr: SocketAddr = loop {
            let line = lines.next().expect("ferry dev printed its banner").unwrap();
            if let Some(rest) = line.split("running on http://").nth(1) {
                break rest.trim().parse().unwrap();
            }
        };
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        (child, addr)
    }

    /// Start a fresh `ferry dev` on the same config and data (after a stop or a kill).
    pub fn restart(&mut self, extra: &[&str]) {
        let _ = self.child.wait();
        let mut args = vec!["--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let (child, addr) = Self::spawn(&self.config, &self.data, &self.env, &args);
        self.child = child;
        self.addr = addr;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POST raw `body` to `/hooks/<source>` with `headers`.
    pub async fn post(&self, source: &str, body: &[u8], headers: &[(&str, &str)]) -> (u16, Value) {
        let mut req = self
            .http
            .post(self.url(&format!("/hooks/{source}")))
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// POST `body` signed with hmac-sha256 in `X-Signature`.
    pub async fn post_signed(&self, source: &str, secret: &str, body: &Value) -> (u16, Value) {
        let raw = serde_json::to_vec(body).unwrap();
        let sig = hmac_hex(secret, &raw);
        self.post(
            source,
            &raw,
            &[("content-type", "application/json"), ("x-signature", &sig)],
        )
        .await
    }

    /// Run `ferry args…` with this hub's environment, `--config` and `--data` appended.
    pub fn ferry(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(ferry_bin())
            .args(args)
            .args([
                "--config",
                self.config.to_str().unwrap(),
                "--data",
                self.data.to_str().unwrap(),
            ])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("FERRY_LOG", test_log())
            .output()
            .expect("ferry runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `ferry runs list --json` on this hub's data.
    pub fn runs(&self) -> Vec<Value> {
        let (code, out, err) = ferry(&[
            "runs",
            "list",
            "--json",
            "--limit",
            "1000",
            "--data",
            self.data.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "ferry runs list failed: {err}");
        serde_json::from_str(&out).unwrap()
    }

    /// `ferry runs show ID --json`.
    pub fn run(&self, id: &str) -> Value {
        let (code, out, err) = ferry(&[
            "runs",
            "show",
            id,
            "--json",
            "--data",
            self.data.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "ferry runs show failed: {err}");
        serde_json::from_str(&out).unwrap()
    }

    /// Wait until run `id` reaches a final status; return it.
    pub async fn finished(&self, id: &str) -> Value {
        eventually(
            &format!("run {id} to finish"),
            Duration::from_secs(20),
            || async {
                let run = self.run(id);
                matches!(
                    run["status"].as_str(),
                    Some("succeeded" | "skipped" | "dead_lettered" | "auth_failed")
                )
                .then_some(run)
            },
        )
        .await
    }

    /// Wait until `n` runs exist and every one has a final status; return them.
    pub async fn all_finished(&self, n: usize, timeout: Duration) -> Vec<Value> {
        eventually(&format!("{n} runs to finish"), timeout, || async {
            let runs = self.runs();
            (runs.len() >= n
                && runs.iter().all(|r| {
                    matches!(
                        r["status"].as_str(),
                        Some("succeeded" | "skipped" | "dead_lettered" | "auth_failed")
                    )
                }))
            .then_some(runs)
        })
        .await
    }

    /// POST each body signed (hmac-sha256 in `X-Signature`) to `/hooks/<source>`,
    /// `concurrency` at a time; every one must be accepted (202).
    pub async fn post_many(
        &self,
        source: &str,
        secret: &str,
        bodies: Vec<Value>,
        concurrency: usize,
    ) {
        let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        for body in bodies {
            let permit = sem.clone().acquire_owned().await.unwrap();
            let http = self.http.clone();
            let url = self.url(&format!("/hooks/{source}"));
            let secret = secret.to_owned();
            tasks.spawn(async move {
                let raw = serde_json::to_vec(&body).unwrap();
                let sig = hmac_hex(&secret, &raw);
                let resp = http
                    .post(url)
                    .header("content-type", "application/json")
                    .header("x-signature", sig)
                    .body(raw)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status().as_u16(), 202, "{:?}", resp.text().await);
                drop(permit);
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
    }

    /// Stop with SIGTERM (clean shutdown) and wait.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().unwrap()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every value of every column of every row of every table in the store
/// under `data`, as text, one per line.
pub fn dump_store(data: &std::path::Path) -> String {
    let mut out = String::new();
    let mut dbs = 0;
    for entry in std::fs::read_dir(data).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "db") {
            continue;
        }
        dbs += 1;
        let conn = rusqlite::Connection::open(&path).unwrap();
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(tables.len() >= 5, "{tables:?}");
        for table in tables {
            let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
            let cols = stmt.column_count();
            let mut rows = stmt.query([]).unwrap();
            while let Some(row) = rows.next().unwrap() {
                for i in 0..cols {
                    let v: rusqlite::types::Value = row.get(i).unwrap();
                    let text = match v {
                        rusqlite::types::Value::Text(t) => t,
                        rusqlite::types::Value::Blob(b) => String::from_utf8_lossy(&b).into_owned(),
                        other => format!("{other:?}"),
                    };
                    out.push_str(&text);
                    out.push('\n');
                }
            }
        }
    }
    assert_eq!(dbs, 1, "one store file under {}", data.display());
    out
}
