//! The browser harness (`ferry_testkit::browser`) proven on a tiny site served
//! by the testkit's target: a form, a link, a cookie the server sets
//! (HttpOnly, SameSite=Strict), and a reflected value rendered by minijinja
//! both escaped (`/reflect`) and deliberately unescaped (`/reflect-raw`, the
//! `safe` filter): the XSS detectors pass the first and flag the second.
//!
//! Skipped (with a printed reason) where no ChromeDriver is installed, unless
//! FERRY_REQUIRE_BROWSER=1 (scripts/test), where that fails instead.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_testkit::browser::xss::{Finding, MARKER, PAYLOADS};
use ferry_testkit::browser::{
    Availability, Browser, By, PNG_SIGNATURE, Tools, availability, screenshot_dir,
};
use ferry_testkit::target::{Answer, Seen, Target};
use minijinja::{Environment, context};

const LAYOUT: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ferry harness</title>
<style>body { font: 16px sans-serif; margin: 2em; } p { color: #123; }</style></head>
<body><h1 data-test="title">ferry harness</h1>{% block body %}{% endblock %}</body></html>"#;

const HOME: &str = r#"{% extends "layout.html" %}{% block body %}
<form data-test="greet-form" method="post" action="/greet">
  <label for="name">Name</label> <input id="name" name="name">
  <button type="submit">Greet</button>
</form>
<p><a data-test="next" href="/next">to the next page</a></p>
{% endblock %}"#;

const GREET: &str = r#"{% extends "layout.html" %}{% block body %}
<p data-test="greeting">Hello, {{ name }}</p>{% endblock %}"#;

const NEXT: &str = r#"{% extends "layout.html" %}{% block body %}
<p data-test="where">the next page</p>{% endblock %}"#;

const REFLECT: &str = r#"{% extends "layout.html" %}{% block body %}
<p data-test="reflected">You searched for {{ q }}</p>
<input data-test="again" value="{{ q }}">{% endblock %}"#;

// The flaw the detectors must catch: `safe` turns escaping off.
const REFLECT_RAW: &str = r#"{% extends "layout.html" %}{% block body %}
<p data-test="reflected">You searched for {{ q | safe }}</p>
<input data-test="again" value="{{ q | safe }}">{% endblock %}"#;

/// The site, on the target: `.html` templates are escaped by minijinja.
async fn site() -> Target {
    let mut env = Environment::new();
    for (name, src) in [
        ("layout.html", LAYOUT),
        ("home.html", HOME),
        ("greet.html", GREET),
        ("next.html", NEXT),
        ("reflect.html", REFLECT),
        ("reflect_raw.html", REFLECT_RAW),
    ] {
        env.add_template(name, src).unwrap();
    }
    let env = Arc::new(env);
    let target = Target::start().await;
    target.behave("/", move |seen: &Seen| {
        let render = |name: &str, ctx| env.get_template(name).unwrap().render(ctx).unwrap();
        let page = match (seen.method.as_str(), seen.path.as_str()) {
            ("GET", "/") => {
                return Some(
                    Answer::html(render("home.html", context! {}))
                        .header(
                            "set-cookie",
                            "ferry_session=s3cr3t; Path=/; HttpOnly; SameSite=Strict",
                        )
                        .header("set-cookie", "ferry_plain=visible; Path=/"),
                );
            }
            ("POST", "/greet") => render("greet.html", context! { name => seen.form("name") }),
            ("GET", "/next") => render("next.html", context! {}),
            ("GET", "/reflect") => render("reflect.html", context! { q => seen.param("q") }),
            ("GET", "/reflect-raw") => {
                render("reflect_raw.html", context! { q => seen.param("q") })
            }
            _ => return Some(Answer::text(404, "text/plain", "not found")),
        };
        Some(Answer::html(page))
    });
    target
}

fn reflect_url(site: &Target, path: &str, q: &str) -> String {
    let query = serde_urlencoded::to_string([("q", q)]).unwrap();
    format!("{}{path}?{query}", site.url())
}

#[tokio::test]
async fn form_link_cookie_and_screenshot() {
    let Some(browser) = Browser::launch("browser_harness::form_link_cookie_and_screenshot").await
    else {
        return;
    };
    let site = site().await;
    let home = format!("{}/", site.url());
    browser.goto(&home).await;
    assert_eq!(browser.text(By::test("title")).await, "ferry harness");

    // The server's cookie, with the attributes the browser kept.
    let session = browser
        .cookie("ferry_session")
        .await
        .expect("ferry_session");
    assert_eq!(session.value(), "s3cr3t");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(
        session.same_site().map(|s| s.to_string()).as_deref(),
        Some("Strict")
    );
    let plain = browser.cookie("ferry_plain").await.expect("ferry_plain");
    assert_ne!(plain.http_only(), Some(true));
    // HttpOnly seen from the page: its scripts read the plain cookie only.
    let visible = browser.script("return document.cookie;").await;
    assert_eq!(visible.as_str(), Some("ferry_plain=visible"));

    let shot = browser.screenshot("home").await;
    assert!(shot.starts_with(screenshot_dir()), "{}", shot.display());
    assert!(
        shot.ends_with("browser_harness__form_link_cookie_and_screenshot/home.png"),
        "{}",
        shot.display()
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.len() > 1000 && png.starts_with(&PNG_SIGNATURE),
        "{} bytes",
        png.len()
    );

    // The form, filled and submitted as a person does; the answer is escaped.
    browser.fill(By::id("name"), "Ada <b>Lovelace</b>").await;
    browser.submit(By::test("greet-form")).await;
    let greeting = browser.wait_for_text(By::test("greeting"), "Hello").await;
    assert_eq!(greeting, "Hello, Ada <b>Lovelace</b>");
    assert!(!browser.exists("[data-test=greeting] b").await);
    assert!(browser.current_url().await.ends_with("/greet"));
    let posted = site.seen_at("/greet");
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].method, "POST");
    assert_eq!(
        posted[0].form("name").as_deref(),
        Some("Ada <b>Lovelace</b>")
    );
    // A same-site form post carries the SameSite=Strict cookie.
    assert!(posted[0].header("cookie").contains("ferry_session=s3cr3t"));
    browser.assert_no_xss(&[]).await;

    // The link.
    browser.goto(&home).await;
    browser.click(By::test("next")).await;
    let url = browser.wait_for_url("/next").await;
    assert_eq!(url, format!("{}/next", site.url()));
    assert_eq!(browser.text(By::test("where")).await, "the next page");
    browser.close().await;
}

#[tokio::test]
async fn the_detectors_pass_an_escaped_reflection() {
    let Some(browser) =
        Browser::launch("browser_harness::the_detectors_pass_an_escaped_reflection").await
    else {
        return;
    };
    let site = site().await;
    for payload in PAYLOADS.iter().chain(&["<b id=\"ferry-bold\">bold</b>"]) {
        browser.goto(&reflect_url(&site, "/reflect", payload)).await;
        // The payload is shown, as text, in the element and in the attribute.
        let shown = browser.text(By::test("reflected")).await;
        assert_eq!(shown, format!("You searched for {payload}"));
        let value = browser.attr(By::test("again"), "value").await;
        assert_eq!(value.as_deref(), Some(*payload));
        assert_eq!(
            browser.xss_findings(&["#ferry-bold"]).await,
            vec![],
            "{payload}"
        );
        browser.assert_no_xss(&["#ferry-bold"]).await;
    }
    browser.screenshot("escaped").await;
    browser.close().await;
}

#[tokio::test]
async fn the_detectors_flag_an_unescaped_reflection() {
    let Some(browser) =
        Browser::launch("browser_harness::the_detectors_flag_an_unescaped_reflection").await
    else {
        return;
    };
    let site = site().await;
    for payload in PAYLOADS {
        browser
            .goto(&reflect_url(&site, "/reflect-raw", payload))
            .await;
        let found = browser.xss_findings(&[]).await;
        let dialogs = found
            .iter()
            .filter(|f| matches!(f, Finding::Dialog(t) if t.starts_with("ferry-xss-")))
            .count();
        assert!(dialogs >= 1, "no dialog for {payload}: {found:?}");
        assert!(
            found.iter().any(|f| matches!(f, Finding::Canary(_))),
            "no canary for {payload}: {found:?}"
        );
        let injected = found
            .iter()
            .any(|f| matches!(f, Finding::Injected { selector, .. } if selector == MARKER));
        assert_eq!(
            injected,
            payload.contains("data-ferry-xss"),
            "{payload}: {found:?}"
        );
        // Every dialog was dismissed: the page answers again.
        assert_eq!(browser.open_dialog().await, None);
    }
    browser.screenshot("unescaped").await;

    // An injected element alone (no script): found by the selector given.
    let bold = "<b id=\"ferry-bold\">bold</b>";
    browser
        .goto(&reflect_url(&site, "/reflect-raw", bold))
        .await;
    let found = browser.xss_findings(&["#ferry-bold"]).await;
    assert_eq!(
        found,
        vec![Finding::Injected {
            selector: "#ferry-bold".to_owned(),
            html: vec![bold.to_owned(); 1],
        }]
    );
    browser.close().await;
}

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

fn executable(dir: &Path, name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, "#!/bin/sh\nexit 1\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn without_chromedriver_scripts_test_fails_and_a_developer_skips() {
    let empty = tempfile::tempdir().unwrap();
    let path = empty.path().to_str().unwrap();
    // Under scripts/test (FERRY_REQUIRE_BROWSER=1): unset is a failure that says so.
    let under_test = availability(env_of(&[("FERRY_REQUIRE_BROWSER", "1"), ("PATH", path)]));
    let Availability::Fail(why) = under_test else {
        panic!("not a failure: {under_test:?}");
    };
    assert!(why.contains("FERRY_CHROMEDRIVER is not set"), "{why}");
    assert!(why.contains("scripts/check-browser"), "{why}");
    // Elsewhere: a skip with the reason.
    let Availability::Skip(why) = availability(env_of(&[("PATH", path)])) else {
        panic!("not a skip");
    };
    assert!(why.contains("chromedriver is not on PATH"), "{why}");

    // A set path must be a program, required or not.
    let missing = empty.path().join("nope");
    let bad = availability(env_of(&[("FERRY_CHROMEDRIVER", missing.to_str().unwrap())]));
    assert!(
        matches!(&bad, Availability::Fail(w) if w.contains("not an executable")),
        "{bad:?}"
    );

    // Found on PATH when not required; the variables win over PATH.
    let bin = tempfile::tempdir().unwrap();
    let driver = executable(bin.path(), "chromedriver");
    let chromium = executable(bin.path(), "chromium");
    let bin_path = bin.path().to_str().unwrap();
    assert_eq!(
        availability(env_of(&[("PATH", bin_path)])),
        Availability::Ready(Tools {
            chromedriver: driver.clone(),
            chromium: Some(chromium.clone()),
        })
    );
    let other = executable(empty.path(), "my-chromium");
    let set = availability(env_of(&[
        ("FERRY_REQUIRE_BROWSER", "1"),
        ("FERRY_CHROMEDRIVER", driver.to_str().unwrap()),
        ("FERRY_CHROMIUM", other.to_str().unwrap()),
        ("PATH", bin_path),
    ]));
    assert_eq!(
        set,
        Availability::Ready(Tools {
            chromedriver: driver,
            chromium: Some(other),
        })
    );
}

/// The processes whose command line mentions `needle` (from /proc).
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline).contains(needle) && pid != std::process::id() {
            pids.push(pid);
        }
    }
    pids
}

/// Run by `dropping_the_last_browser_stops_chromedriver_and_chromium` in a
/// process of its own (so no other test shares its ChromeDriver): starts a
/// browser, says where its profile is, drops it without closing it.
#[tokio::test]
#[ignore = "run by dropping_the_last_browser_stops_chromedriver_and_chromium"]
async fn a_browser_dropped_unclosed() {
    let Some(browser) = Browser::launch("browser_harness::a_browser_dropped_unclosed").await else {
        return;
    };
    browser.goto("about:blank").await;
    let profile = browser.profile_dir().display().to_string();
    let driver = Path::new("/proc").join(browser.driver_pid().to_string());
    assert!(driver.exists(), "no ChromeDriver process");
    assert!(
        !processes_mentioning(&profile).is_empty(),
        "no Chromium for {profile}"
    );
    println!("PROFILE={profile}");
    drop(browser);
    // The test process lives on: only the drop may have stopped them.
    assert!(!driver.exists(), "ChromeDriver outlived the last browser");
    let started = Instant::now();
    while !processes_mentioning(&profile).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "Chromium outlived its browser"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("STOPPED");
}

#[test]
fn dropping_the_last_browser_stops_chromedriver_and_chromium() {
    if matches!(
        availability(|n| std::env::var(n).ok()),
        Availability::Skip(_)
    ) {
        eprintln!("skipped: no ChromeDriver (scripts/check-browser installs it)");
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_browser_dropped_unclosed",
            "--ignored",
            "--nocapture",
        ])
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    let profile = said
        .lines()
        .find_map(|l| l.strip_prefix("PROFILE="))
        .unwrap_or_else(|| panic!("no profile said:\n{said}"));
    assert!(said.contains("STOPPED"), "{said}");
    // And nothing of it is left once that process is gone, either.
    assert_eq!(processes_mentioning(profile), Vec::<u32>::new());
}
