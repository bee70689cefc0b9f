//! `Verifier::from_config`: what builds, and every problem reported at once.

use ferry::verify::Verifier;

use crate::support::settings;

fn problems(yaml: &str) -> Vec<String> {
    match Verifier::from_config(&settings(yaml)) {
        Ok(v) => panic!("{yaml:?} should not build, got {v:?}"),
        Err(e) => e.0,
    }
}

#[test]
fn minimal_settings_build_for_every_scheme() {
    for yaml in [
        "scheme: hmac-sha256\nheader: X-Signature\nsecret: s",
        "scheme: github\nsecret: s",
        "scheme: stripe\nsecret: whsec_abc",
        "scheme: shopify\nsecret: s",
        "scheme: slack\nsecret: s",
        "scheme: standard-webhooks\nsecret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "scheme: api-key\nsecret: s",
        "scheme: basic\nusername: u\nsecret: s",
        "scheme: none",
    ] {
        let v = Verifier::from_config(&settings(yaml));
        assert!(v.is_ok(), "{yaml}: {}", v.unwrap_err());
    }
}

#[test]
fn a_missing_secret_is_named() {
    for scheme in [
        "hmac-sha256\nheader: X",
        "github",
        "stripe",
        "shopify",
        "slack",
        "standard-webhooks",
        "api-key",
    ] {
        let p = problems(&format!("scheme: {scheme}"));
        assert!(
            p.iter()
                .any(|p| p.starts_with("secret: required by scheme")),
            "{scheme}: {p:?}"
        );
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let p = problems("scheme: hmac-sha256\nprefix: ''\nsigned_content: '{body}'\nusername: u");
    assert_eq!(
        p,
        [
            "username: does not apply to scheme hmac-sha256",
            "secret: required by scheme hmac-sha256",
            "header: required by scheme hmac-sha256",
            "prefix: is empty; leave it out instead",
            "signed_content: needs timestamp_header",
        ]
    );
    let joined = Verifier::from_config(&settings("scheme: github"))
        .unwrap_err()
        .to_string();
    assert_eq!(joined, "secret: required by scheme github");
}

#[test]
fn fields_a_scheme_does_not_read_are_refused() {
    let p = problems(
        "scheme: stripe\nsecret: s\nprefix: 'v1='\nencoding: base64\ntimestamp_header: X-Ts",
    );
    assert_eq!(
        p,
        [
            "encoding: does not apply to scheme stripe",
            "prefix: does not apply to scheme stripe",
            "timestamp_header: does not apply to scheme stripe",
        ]
    );
    assert_eq!(
        problems("scheme: none\nsecret: s"),
        ["secret: does not apply to scheme none"]
    );
    assert_eq!(
        problems("scheme: github\nsecret: s\ntolerance: 5m"),
        ["tolerance: does not apply to scheme github"]
    );
    assert_eq!(
        problems("scheme: standard-webhooks\nheader: X\nsecret: whsec_c2VjcmV0"),
        ["header: does not apply to scheme standard-webhooks"]
    );
}

#[test]
fn secrets_must_be_non_empty() {
    assert_eq!(
        problems("scheme: github\nsecret: ''"),
        ["secret: is empty (is its environment variable set?)"]
    );
    assert_eq!(
        problems("scheme: github\nsecret: [a, '']"),
        ["secret[1]: is empty (is its environment variable set?)"]
    );
    assert_eq!(
        problems("scheme: github\nsecret: []"),
        ["secret: the list is empty; give at least one secret"]
    );
}

#[test]
fn standard_webhooks_secrets_must_be_base64() {
    assert_eq!(
        problems("scheme: standard-webhooks\nsecret: [whsec_c2VjcmV0, 'whsec_not base64!']"),
        ["secret[1]: must be `whsec_` followed by base64"]
    );
    assert_eq!(
        problems("scheme: standard-webhooks\nsecret: whsec_"),
        ["secret: is empty after `whsec_`"]
    );
}

#[test]
fn header_names_and_templates_are_checked() {
    assert_eq!(
        problems("scheme: hmac-sha256\nheader: 'X Sig'\nsecret: s"),
        ["header: \"X Sig\" is not a valid HTTP header name"]
    );
    let p = problems(
        "scheme: hmac-sha256\nheader: X\nsecret: s\ntimestamp_header: 'X:Ts'\nsigned_content: '{id}.{body}'",
    );
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[0].starts_with("timestamp_header: "), "{p:?}");
    assert!(
        p[1].starts_with("signed_content: only the placeholders"),
        "{p:?}"
    );
    let p = problems(
        "scheme: hmac-sha256\nheader: X\nsecret: s\ntimestamp_header: X-Ts\nsigned_content: '{body}'",
    );
    assert!(
        p[0].starts_with("signed_content: must contain {timestamp} and {body} exactly once"),
        "{p:?}"
    );
}

#[test]
fn tolerance_must_be_positive_and_needs_a_timestamp() {
    assert_eq!(
        problems("scheme: slack\nsecret: s\ntolerance: 0s"),
        ["tolerance: must be greater than zero"]
    );
    assert_eq!(
        problems("scheme: hmac-sha256\nheader: X\nsecret: s\ntolerance: 1m"),
        ["tolerance: needs timestamp_header"]
    );
}

#[test]
fn basic_needs_a_plain_username() {
    assert_eq!(
        problems("scheme: basic\nsecret: s"),
        ["username: required by scheme basic"]
    );
    assert_eq!(
        problems("scheme: basic\nusername: 'a:b'\nsecret: s"),
        ["username: must be non-empty and must not contain `:`"]
    );
    assert_eq!(
        problems("scheme: basic\nusername: ''\nsecret: s"),
        ["username: must be non-empty and must not contain `:`"]
    );
}

#[test]
fn problems_never_quote_a_secret() {
    let p = problems("scheme: standard-webhooks\nsecret: 'whsec_hunter2!!'");
    assert!(p.iter().all(|p| !p.contains("hunter2")), "{p:?}");
}
