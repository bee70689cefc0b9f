//! Finding Chromium and ChromeDriver, and running ChromeDriver on 127.0.0.1.
//!
//! One ChromeDriver serves every [`Browser`](super::Browser) of a test
//! process that is open at the same time; it is stopped (its whole process
//! group, so the Chromium it started too) when the last of them is dropped.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tempfile::TempDir;

/// How long ChromeDriver may take to listen (generous: a busy 2-core machine).
const DRIVER_START: Duration = Duration::from_secs(30);

/// The two programs a browser test runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// ChromeDriver (`FERRY_CHROMEDRIVER`, else `chromedriver` on `PATH`).
    pub chromedriver: PathBuf,
    /// Chromium (`FERRY_CHROMIUM`, else `chromium` or `chromium-browser` on
    /// `PATH`); `None` leaves the choice to ChromeDriver.
    pub chromium: Option<PathBuf>,
}

/// Whether a browser test can run here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// It can, with these programs.
    Ready(Tools),
    /// It cannot, and may be skipped: the reason, to print.
    Skip(String),
    /// It cannot, and must fail (`FERRY_REQUIRE_BROWSER=1`, or a path that
    /// does not exist): the reason.
    Fail(String),
}

/// Whether a browser test can run, from the environment as `env` reads it
/// (`std::env::var(..).ok()` in real use; a map in the harness's own tests).
///
/// With `FERRY_REQUIRE_BROWSER=1` (scripts/test sets it) `FERRY_CHROMEDRIVER`
/// must be set; without it a missing ChromeDriver is a skip, and one on
/// `PATH` is used.
pub fn availability(env: impl Fn(&str) -> Option<String>) -> Availability {
    let required = env("FERRY_REQUIRE_BROWSER").as_deref() == Some("1");
    let path = env("PATH").unwrap_or_default();
    let chromedriver = match env("FERRY_CHROMEDRIVER").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None if required => {
            return Availability::Fail(
                "FERRY_REQUIRE_BROWSER=1 but FERRY_CHROMEDRIVER is not set: scripts/test sets it \
                 from scripts/check-browser, which installs chromium and chromium-driver"
                    .to_owned(),
            );
        }
        None => match on_path(&path, &["chromedriver"]) {
            Some(p) => p,
            None => {
                return Availability::Skip(
                    "no ChromeDriver: FERRY_CHROMEDRIVER is not set and chromedriver is not on \
                     PATH (scripts/check-browser installs chromium and chromium-driver)"
                        .to_owned(),
                );
            }
        },
    };
    if !is_executable(&chromedriver) {
        return Availability::Fail(format!(
            "FERRY_CHROMEDRIVER={} is not an executable file",
            chromedriver.display()
        ));
    }
    let chromium = match env("FERRY_CHROMIUM").filter(|v| !v.is_empty()) {
        Some(p) if !is_executable(Path::new(&p)) => {
            return Availability::Fail(format!("FERRY_CHROMIUM={p} is not an executable file"));
        }
        Some(p) => Some(PathBuf::from(p)),
        None => on_path(&path, &["chromium", "chromium-browser"]),
    };
    Availability::Ready(Tools {
        chromedriver,
        chromium,
    })
}

/// The first of `names` that is an executable file in a folder of `path`.
fn on_path(path: &str, names: &[&str]) -> Option<PathBuf> {
    names.iter().find_map(|name| {
        std::env::split_paths(path)
            .map(|dir| dir.join(name))
            .find(|p| is_executable(p))
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A running ChromeDriver, in a process group of its own.
pub(super) struct Driver {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub(super) url: String,
    log: PathBuf,
    _dir: TempDir,
}

impl Driver {
    /// Its process id.
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The end of ChromeDriver's log, for an error message.
    pub(super) fn log_tail(&self) -> String {
        tail(&self.log)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group is ChromeDriver's own (process_group(0) at spawn): it and
        // every Chromium process it started, none of the test's.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The one ChromeDriver of this process while any browser holds it.
static SHARED: tokio::sync::Mutex<Weak<Driver>> = tokio::sync::Mutex::const_new(Weak::new());

/// The running ChromeDriver, started at `chromedriver` if none is.
pub(super) async fn shared(chromedriver: &Path) -> Arc<Driver> {
    let mut slot = SHARED.lock().await;
    if let Some(d) = slot.upgrade() {
        return d;
    }
    let driver = Arc::new(start(chromedriver).await);
    *slot = Arc::downgrade(&driver);
    driver
}

/// Start ChromeDriver on a free port of 127.0.0.1 and wait until it listens.
/// The port is found by binding port 0 and letting it go; should another
/// process take it first, ChromeDriver exits and the next attempt picks
/// another.
async fn start(chromedriver: &Path) -> Driver {
    let mut errors = Vec::new();
    for _ in 0..3 {
        match try_start(chromedriver).await {
            Ok(d) => return d,
            Err(e) => errors.push(e),
        }
    }
    panic!(
        "ChromeDriver ({}) did not start:\n{}",
        chromedriver.display(),
        errors.join("\n")
    );
}

async fn try_start(chromedriver: &Path) -> Result<Driver, String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))?
        .port();
    let dir = tempfile::tempdir().map_err(|e| format!("no temporary folder: {e}"))?;
    let log = dir.path().join("chromedriver.log");
    let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", chromedriver.display()))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(Driver {
                child,
                url: format!("http://{addr}"),
                log,
                _dir: dir,
            });
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("it exited ({status}); its log:\n{}", tail(&log)));
        }
        if started.elapsed() > DRIVER_START {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "not listening on {addr} after {DRIVER_START:?}; its log:\n{}",
                tail(&log)
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The last 40 lines of a log file.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
