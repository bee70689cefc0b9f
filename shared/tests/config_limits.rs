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
            e.starts_with("line 2: ") && e.contains("more than 100000 values"),
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
