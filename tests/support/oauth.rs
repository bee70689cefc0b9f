//! `ferry connections authorize` from a test that plays the browser, against
//! the testkit's strict OAuth 2.0 provider.

/// An authorization-code connection to the testkit's strict provider
/// (HTTP Basic client auth, PKCE required, refresh tokens that rotate).
pub const OAUTH_CONFIG: &str = r#"version: 1
connections:
  books:
    base_url: "${env:API}/api"
    auth:
      type: oauth2
      grant: authorization_code
      authorize_url: "${env:API}/oauth/authorize?prompt=consent"
      token_url: "${env:API}/oauth/token"
      client_id: ferry
      client_secret: "${env:BOOKS_SECRET}"
      client_auth: basic
      scope: com.intuit.quickbooks.accounting
      redirect_port: 0
"#;
pub const BOOKS_SECRET: &str = "books-client-secret-0123";

pub struct Authorizing {
    pub dir: tempfile::TempDir,
    pub target: ferry_testkit::target::Target,
    pub provider: ferry_testkit::oauth::Provider,
}

impl Authorizing {
    /// The provider on a fresh target, and the config and env files in a temporary directory.
    pub async fn start() -> Self {
        use ferry_testkit::oauth::{ClientAuth, Provider, Setup};
        let dir = tempfile::tempdir().unwrap();
        let target = ferry_testkit::target::Target::start().await;
        let provider = Provider::install(
            &target,
            "/oauth",
            Setup {
                client_id: "ferry".into(),
                client_secret: BOOKS_SECRET.into(),
                client_auth: ClientAuth::Basic,
                require_pkce: true,
                rotate: true,
                lifetime: 3600,
            },
        );
        provider.api(&target, "/api");
        std::fs::write(dir.path().join("ferry.yaml"), OAUTH_CONFIG).unwrap();
        std::fs::write(
            dir.path().join("ferry.env"),
            format!("API={}\nBOOKS_SECRET={BOOKS_SECRET}\n", target.url()),
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        Authorizing {
            dir,
            target,
            provider,
        }
    }

    /// Start `ferry connections authorize books` (on the AWS store `env`
    /// names, when not empty); the URL it prints, and the process.
    pub async fn authorize(
        &self,
        env: &[(String, String)],
    ) -> (
        String,
        std::process::Child,
        std::sync::mpsc::Receiver<String>,
    ) {
        use std::io::BufRead;
        let p = |f: &str| self.dir.path().join(f).to_str().unwrap().to_owned();
        let mut child = std::process::Command::new(super::ferry_bin())
            .args([
                "connections",
                "authorize",
                "books",
                "--config",
                &p("ferry.yaml"),
            ])
            .args(["--env-file", &p("ferry.env"), "--data", &p("data")])
            .args(if env.is_empty() {
                &[][..]
            } else {
                &["--store", "aws"][..]
            })
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(["--timeout", "60s"])
            .env("FERRY_LOG", super::test_log())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let url = tokio::task::block_in_place(|| {
            loop {
                let line = rx
                    .recv_timeout(std::time::Duration::from_secs(30))
                    .expect("ferry prints the URL to open");
                if let Some(url) = line.trim().strip_prefix("http") {
                    break format!("http{url}");
                }
            }
        });
        (url, child, rx)
    }
}

/// The exit code, what's left of the output, and the errors.
pub fn finished(
    mut child: std::process::Child,
    rx: std::sync::mpsc::Receiver<String>,
) -> (i32, String, String) {
    use std::io::Read;
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let out: Vec<String> = rx.iter().collect();
    (status.code().unwrap_or(-1), out.join("\n"), err)
}

/// One `POST /call` on `books`: whether it succeeded.
pub async fn call_books(hub: &ferry::hub::Hub) -> bool {
    let conn = hub.connection("books").unwrap();
    let spec = ferry::config::RequestSpec {
        method: ferry::config::Method::Post,
        path: "/call".into(),
        query: Default::default(),
        headers: Default::default(),
        json: Some(serde_json::json!({"n": 1})),
        form: None,
    };
    let ctx = ferry::template::context(&serde_json::json!({}));
    let req = ferry::outbound::prepare(&hub.templates, conn, &spec, &ctx).unwrap();
    let rules = ferry::retry::Rules {
        step: None,
        connection: Some(&conn.classify),
    };
    match ferry::call::call(hub, "books", conn, &req, "key-1", rules, None).await {
        ferry::call::Called::Done(tries) => {
            tries.last().unwrap().verdict == ferry::retry::Verdict::Success
        }
        other => panic!("{other:?}"),
    }
}
