//! The config loader at its edges: documents that are too big, too deep or
//! expand too far are refused with a line, never a crash; durations and counts
//! outside their ranges are refused at load, with path and line.

use ferry::config::shape::{MAX_BYTES, MAX_DEPTH, MAX_VALUES};
use ferry::config::{ConfigErrors, Loaded, load_str};
use proptest::prelude::*;

fn load(yaml: &str) -> Result<Loaded, ConfigErrors> {
    load_str(yaml, &|_| None)
}

/// The single error of a config that must not load.
fn only_error(yaml: &str) -> String {
    match load(yaml) {
        Ok(_) => panic!("expected an error, the config loaded"),
        Err(e) => {
            assert_eq!(e.errors.len(), 1, "{e}");
            e.lines().remove(0)
        }
    }
}

/// A list or mapping nested `n` deep under the key `x`, in flow or block style.
fn nested(n: usize, map: bool, flow: bool) -> String {
    let mut s = String::from("version: 1\nx:\n");
    match (map, flow) {
        (false, true) => s.push_str(&format!("  {}{}\n", "[".repeat(n), "]".repeat(n))),
        (true, true) => s.push_str(&format!("  {}1{}\n", "{a: ".repeat(n), "}".repeat(n))),
        (false, false) => s.push_str(&format!("  {}1\n", "- ".repeat(n))),
        (true, false) => {
            for i in 0..n {
                s.push_str(&" ".repeat(i + 1));
                s.push_str("a:\n");
            }
        }
    }
    s
}

mod config_limits {
    use super::*;

    #[test]
    fn nesting_20000_deep_is_an_error_with_its_line_not_a_crash() {
        // Block maps need one more space per level: 1 400 levels fill 1 MiB.
        for (map, flow, n) in [
            (false, true, 20_000),
            (true, true, 20_000),
            (false, false, 20_000),
            (true, false, 1_400),
        ] {
            let e = only_error(&nested(n, map, flow));
            assert!(
                e.starts_with("line ")
                    && (e.contains(&format!("nested more than {MAX_DEPTH} levels"))
                        || e.contains("recursion limit exceeded")),
                "map={map} flow={flow}: {e}"
            );
        }
        // Just deep enough fails on the depth, at the line where it happens.
        let e = only_error(&nested(MAX_DEPTH, true, false));
        assert!(
            e.starts_with(&format!("line {}: ", MAX_DEPTH + 2))
                && e.contains("nested more than 64 levels"),
            "{e}"
        );
    }

    #[test]
    fn nesting_within_the_limit_is_read_as_usual() {
        // The root mapping and `x` make two levels; the rest may nest to the limit.
        let e = only_error(&nested(MAX_DEPTH - 1, false, false));
        assert!(e.contains("unknown key \"x\""), "{e}");
        let e = only_error(&nested(MAX_DEPTH - 1, true, true));
        assert!(e.contains("unknown key \"x\""), "{e}");
    }

    /// The shape that took 5.8 s and 2.9 GB: a list 10 000 deep in 20 KB.
    /// The work each value costs grew with its depth; now it stops at the limit.
    #[test]
    fn the_quadratic_input_is_refused_at_the_depth_limit() {
        let yaml = nested(10_000, false, false);
        assert!(yaml.len() < 22 * 1024);
        let e = only_error(&yaml);
        assert!(e.contains("nested more than 64 levels"), "{e}");
    }

    #[test]
    fn a_file_over_one_mib_is_refused() {
        let mut yaml = String::from("version: 1\n# ");
        yaml.push_str(&"x".repeat(MAX_BYTES));
        let e = only_error(&yaml);
        assert!(e.contains("a config may be at most 1048576 bytes"), "{e}");
    }

    #[test]
    fn too_many_values_are_refused() {
        let yaml = format!("version: 1\nx: [{}]\n", vec!["1"; MAX_VALUES].join(","));
        assert!(yaml.len() < MAX_BYTES);
        let e = only_error(&yaml);
        assert!(
            e.starts_with("line 2: ") && e.contains("more than 50000 values"),
            "{e}"
        );
    }

    #[test]
    fn aliases_cannot_expand_a_config_past_its_limits() {
        // 500 KB of text, aliased 100 times: 50 MB once expanded.
        let yaml = format!(
            "version: 1\nx: &big '{}'\ny: [{}]\n",
            "x".repeat(500_000),
            vec!["*big"; 100].join(", ")
        );
        let e = only_error(&yaml);
        assert!(
            e.starts_with("line 3: ") && e.contains("with its aliases expanded"),
            "{e}"
        );
        // Billion laughs: each level aliases the one before ten times.
        let mut yaml = String::from("version: 1\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            yaml.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 10].join(", ")));
        }
        let e = only_error(&yaml);
        assert!(e.contains("with its aliases expanded"), "{e}");
        // A few aliases are fine.
        let e = load("version: 1\nbase: &b { x: 1 }\nother: *b\n").unwrap_err();
        assert!(e.lines()[0].contains("unknown key \"base\""), "{e}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any nesting of lists and mappings, in any style, loads or is refused
    /// with a line; it never panics or overflows the stack.
    #[test]
    fn random_nesting_never_panics(
        opens in proptest::collection::vec(0u8..4, 0..200),
        close_early in 0usize..200,
    ) {
        let mut yaml = String::from("version: 1\nx: ");
        let mut closers: Vec<String> = Vec::new();
        for (i, o) in opens.iter().enumerate() {
            if i == close_early && !closers.is_empty() {
                yaml.push_str(&closers.pop().unwrap_or_default());
            }
            match o {
                0 => { yaml.push('['); closers.push("]".to_owned()); }
                1 => { yaml.push_str("{k: "); closers.push("}".to_owned()); }
                2 => { yaml.push_str("&a ["); closers.push(", *a]".to_owned()); }
                _ => { yaml.push_str("[1, "); closers.push("]".to_owned()); }
            }
        }
        yaml.push('1');
        while let Some(c) = closers.pop() {
            yaml.push_str(&c);
        }
        yaml.push('\n');
        if let Err(e) = load(&yaml) {
            prop_assert!(e.errors.iter().all(|d| !d.message.is_empty()));
        }
    }

    /// Block style: every line one level deeper (or back out), any depth.
    #[test]
    fn random_block_nesting_never_panics(steps in proptest::collection::vec(0u8..3, 0..300)) {
        let mut yaml = String::from("version: 1\n");
        let mut indent = 0usize;
        for s in steps {
            match s {
                0 => { yaml.push_str(&format!("{}k{indent}:\n", " ".repeat(indent))); indent += 1; }
                1 => { yaml.push_str(&format!("{}- ", " ".repeat(indent))); yaml.push_str("- 1\n"); }
                _ => indent = indent.saturating_sub(3),
            }
        }
        let _ = load(&yaml);
    }
}

/// A config with every duration and count set to `v(field)`.
fn with_values(v: impl Fn(&str) -> &'static str) -> String {
    format!(
        r#"version: 1
connections:
  crm:
    base_url: https://crm.example.com
    timeout: {timeout}
    rate_limit: {{ requests: {requests}, per: {per} }}
sources:
  form:
    verify: {{ scheme: stripe, secret: "${{env:SECRET}}", tolerance: {tolerance} }}
    dedupe_window: {dedupe_window}
    max_body_bytes: {max_body_bytes}
workflows:
  w:
    trigger: {{ source: form }}
    retry: {{ max_attempts: {max_attempts}, initial_backoff: {initial_backoff}, max_backoff: {max_backoff}, max_age: {max_age} }}
    steps:
      - id: a
        connection: crm
        request: {{ path: /x, json: {{ a: 1 }} }}
        batch: {{ max_items: {max_items}, path: /batch, wait: {wait} }}
syncs:
  s:
    schedule: {schedule}
    budget: {budget}
    source:
      connection: crm
      request: {{ method: GET, path: /items }}
      pagination: {{ style: page, param: page, first: {first}, size: {size} }}
      records: response.body
      id: record.id
    steps:
      - id: a
        connection: crm
        request: {{ path: /x }}
retention: {retention}
"#,
        timeout = v("timeout"),
        requests = v("requests"),
        per = v("per"),
        tolerance = v("tolerance"),
        dedupe_window = v("dedupe_window"),
        max_body_bytes = v("max_body_bytes"),
        max_attempts = v("max_attempts"),
        initial_backoff = v("initial_backoff"),
        max_backoff = v("max_backoff"),
        max_age = v("max_age"),
        max_items = v("max_items"),
        wait = v("wait"),
        schedule = v("schedule"),
        budget = v("budget"),
        first = v("first"),
        size = v("size"),
        retention = v("retention"),
    )
}

fn secret(name: &str) -> Option<String> {
    (name == "SECRET").then(|| "whsec_0123456789".to_owned())
}

mod config_ranges {
    use super::*;

    /// The largest value of each field loads.
    #[test]
    fn every_duration_and_count_at_its_bound_loads() {
        let yaml = with_values(|f| match f {
            "timeout" | "budget" => "15m",
            "requests" => "1000000",
            "per" => "31d",
            "tolerance" => "1d",
            "dedupe_window" => "90d",
            "max_body_bytes" => "6291456",
            "max_attempts" => "100",
            "initial_backoff" => "1h",
            "max_backoff" => "1d",
            "max_age" => "14d",
            "max_items" | "size" => "10000",
            "wait" => "10s",
            "schedule" => "rate(365 days)",
            "first" => "1000000000",
            "retention" => "3650d",
            _ => unreachable!("{f}"),
        });
        if let Err(e) = load_str(&yaml, &secret) {
            panic!("{e}");
        }
    }

    /// One past each bound is an error with path, line and the range; the
    /// config that panicked a worker and the schedule that fired in a loop are
    /// among them.
    #[test]
    fn every_duration_and_count_past_its_bound_is_refused_with_path_and_line() {
        let yaml = with_values(|f| match f {
            "timeout" => "10000000000000000000s",
            "requests" => "1000001",
            "per" => "32d",
            "tolerance" => "25h",
            "dedupe_window" => "91d",
            "max_body_bytes" => "6291457",
            "max_attempts" => "101",
            "initial_backoff" => "61m",
            "max_backoff" => "25h",
            "max_age" => "15d",
            "max_items" | "size" => "10001",
            "wait" => "11s",
            "schedule" => "rate(18446744073709551615 days)",
            "budget" => "16m",
            "first" => "1000000001",
            "retention" => "3651d",
            _ => unreachable!("{f}"),
        });
        let lines = load_str(&yaml, &secret).unwrap_err().lines();
        let expect = [
            "line 5: connections.crm.timeout: timeout 10000000000000000000s is out of range; expected 1ms to 15m",
            "line 6: connections.crm.rate_limit.requests: requests 1000001 is too large; at most 1000000",
            "line 6: connections.crm.rate_limit.per: per 32d is out of range; expected 1ms to 31d",
            "line 9: sources.form.verify.tolerance: tolerance 25h is out of range; expected 1s to 1d",
            "line 10: sources.form.dedupe_window: dedupe_window 91d is out of range; expected 1s to 90d",
            "line 11: sources.form.max_body_bytes: max_body_bytes 6291457 is too large; at most 6291456",
            "line 15: workflows.w.retry.max_attempts: max_attempts 101 is too large; at most 100",
            "line 15: workflows.w.retry.initial_backoff: initial_backoff 61m is out of range; expected 1ms to 1h",
            "line 15: workflows.w.retry.max_backoff: max_backoff 25h is out of range; expected 1ms to 1d",
            "line 15: workflows.w.retry.max_age: max_age 15d is out of range; expected 1s to 14d",
            "line 20: workflows.w.steps[0].batch.max_items: max_items 10001 is too large; at most 10000",
            "line 20: workflows.w.steps[0].batch.wait: wait 11s is out of range; expected 1ms to 10s",
            "line 23: syncs.s.schedule: rate(18446744073709551615 days): a rate may be at most 365 days",
            "line 24: syncs.s.budget: budget 16m is out of range; expected 1s to 15m",
            "line 28: syncs.s.source.pagination.first: first 1000000001 is too large; at most 1000000000",
            "line 28: syncs.s.source.pagination.size: size 10001 is too large; at most 10000",
            "line 35: retention: retention 3651d is out of range; expected 1d to 3650d",
        ];
        for want in expect {
            assert!(
                lines.iter().any(|l| l.starts_with(want)),
                "missing {want:?} in\n{}",
                lines.join("\n")
            );
        }
        assert_eq!(lines.len(), expect.len(), "{}", lines.join("\n"));
    }

    /// Below the smallest value (but not zero, which has its own message).
    #[test]
    fn durations_below_their_range_are_refused() {
        let yaml = with_values(|f| match f {
            "timeout" | "wait" => "500us",
            "tolerance" | "dedupe_window" | "max_age" | "budget" => "999ms",
            "per" | "initial_backoff" | "max_backoff" => "1ns",
            "requests" | "max_attempts" | "max_items" | "size" | "first" => "1",
            "max_body_bytes" => "1",
            "schedule" => "rate(1 minute)",
            "retention" => "23h",
            _ => unreachable!("{f}"),
        });
        let lines = load_str(&yaml, &secret).unwrap_err().lines();
        assert_eq!(lines.len(), 10, "{}", lines.join("\n"));
        assert!(
            lines
                .iter()
                .all(|l| l.contains("is out of range; expected")),
            "{}",
            lines.join("\n")
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any duration string, however extreme, either loads within the timeout's
    /// range or is one diagnostic at the timeout; it never panics.
    #[test]
    fn any_duration_loads_in_range_or_is_a_diagnostic(
        n in prop_oneof![0u64..2_000, any::<u64>()],
        unit in prop_oneof![Just("ns"), Just("us"), Just("ms"), Just("s"), Just("m"), Just("h"), Just("d"), Just("w"), Just("y"), Just("parsecs")],
        extra in proptest::option::of((any::<u32>(), Just("s"))),
    ) {
        let mut d = format!("{n}{unit}");
        if let Some((m, u)) = extra {
            d.push_str(&format!(" {m}{u}"));
        }
        let yaml = format!(
            "version: 1\nconnections:\n  crm:\n    base_url: https://crm.example.com\n    timeout: \"{d}\"\n"
        );
        match load_str(&yaml, &secret) {
            Ok(loaded) => {
                let t = loaded.config.connections["crm"].timeout.unwrap().get();
                let (min, max) = ferry::config::ranges::TIMEOUT;
                prop_assert!(t >= min && t <= max, "{d} loaded as {t:?}");
            }
            Err(e) => {
                prop_assert_eq!(e.errors.len(), 1, "{}", e);
                prop_assert_eq!(e.errors[0].path.as_str(), "connections.crm.timeout");
                prop_assert_eq!(e.errors[0].line, Some(5));
            }
        }
    }

    /// Any rate(...) either parses to at most a year or is an error.
    #[test]
    fn any_rate_is_at_most_a_year_or_an_error(
        n in prop_oneof![0u64..1_000_000, any::<u64>()],
        unit in prop_oneof![Just("minute"), Just("minutes"), Just("hours"), Just("days")],
    ) {
        match ferry::schedule::Schedule::parse(&format!("rate({n} {unit})")) {
            Ok(ferry::schedule::Schedule::Rate(d)) => prop_assert!(d <= ferry::schedule::MAX_RATE),
            Ok(other) => prop_assert!(false, "{other:?}"),
            Err(e) => prop_assert!(e.starts_with("rate(")),
        }
    }
}

mod circuit_breaker {
    use super::*;

    fn with_breaker(breaker: &str) -> String {
        format!(
            "version: 1\nconnections:\n  crm:\n    base_url: https://crm.example.com\n    circuit_breaker: {breaker}\n"
        )
    }

    #[test]
    fn settings_in_range_load_and_every_one_can_be_left_out() {
        for b in [
            "{ failure_ratio: 1, min_calls: 1000000, window: 1d, open_for: 1d }",
            "{ failure_ratio: 0.01, min_calls: 1, window: 1s, open_for: 1s }",
            "{ enabled: false }",
            "{}",
        ] {
            let loaded = load_str(&with_breaker(b), &secret).unwrap_or_else(|e| panic!("{b}: {e}"));
            assert!(loaded.config.connections["crm"].circuit_breaker.is_some());
        }
    }

    #[test]
    fn settings_out_of_range_are_refused_with_path_and_line() {
        let yaml =
            with_breaker("{ failure_ratio: 1.5, min_calls: 1000001, window: 2d, open_for: 500ms }");
        let lines = load_str(&yaml, &secret).unwrap_err().lines();
        let expect = [
            "line 5: connections.crm.circuit_breaker.failure_ratio: failure_ratio 1.5 is out of range; expected above 0 and at most 1",
            "line 5: connections.crm.circuit_breaker.min_calls: min_calls 1000001 is too large; at most 1000000",
            "line 5: connections.crm.circuit_breaker.window: window 2d is out of range; expected 1s to 1d",
            "line 5: connections.crm.circuit_breaker.open_for: open_for 500ms is out of range; expected 1s to 1d",
        ];
        for want in expect {
            assert!(
                lines.iter().any(|l| l.starts_with(want)),
                "missing {want:?} in\n{}",
                lines.join("\n")
            );
        }
        assert_eq!(lines.len(), expect.len(), "{}", lines.join("\n"));

        let zero = load_str(&with_breaker("{ failure_ratio: 0, min_calls: 0 }"), &secret)
            .unwrap_err()
            .lines();
        assert_eq!(zero.len(), 2, "{}", zero.join("\n"));
        assert!(
            zero[0].starts_with("line 5: connections.crm.circuit_breaker."),
            "{}",
            zero.join("\n")
        );
        let typo = load_str(&with_breaker("{ open_fro: 10s }"), &secret)
            .unwrap_err()
            .lines();
        assert!(
            typo.len() == 1 && typo[0].contains("open_fro") && typo[0].contains("open_for"),
            "{}",
            typo.join("\n")
        );
    }
}
