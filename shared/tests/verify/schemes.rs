//! The same checks over every scheme: valid, tampered, wrong secret, rotation,
//! replay windows, and each kind of broken header giving its own error code.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ferry::verify::{Verifier, VerifyError};
use http::HeaderMap;

use crate::support::{NOW, check, code, to_headers, verifier, with, without};

/// A scheme under test: its YAML (`SECRET` stands for the secret list) and
/// the header carrying its signature or credentials.
struct Case {
    label: &'static str,
    yaml: &'static str,
    header: &'static str,
    /// The header carrying the timestamp, when the scheme has one.
    timestamp: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case {
        label: "hmac-sha256",
        yaml: "scheme: hmac-sha256\nheader: X-Signature\nsecret: SECRET",
        header: "x-signature",
        timestamp: None,
    },
    Case {
        label: "hmac-sha256 base64 with prefix",
        yaml: "scheme: hmac-sha256\nheader: X-Sig\nencoding: base64\nprefix: 'v1='\nsecret: SECRET",
        header: "x-sig",
        timestamp: None,
    },
    Case {
        label: "hmac-sha256 with timestamp",
        yaml: "scheme: hmac-sha256\nheader: X-Sig\ntimestamp_header: X-Ts\nsigned_content: '{timestamp}.{body}'\nsecret: SECRET",
        header: "x-sig",
        timestamp: Some("x-ts"),
    },
    Case {
        label: "github",
        yaml: "scheme: github\nsecret: SECRET",
        header: "x-hub-signature-256",
        timestamp: None,
    },
    Case {
        label: "stripe",
        yaml: "scheme: stripe\nsecret: SECRET",
        header: "stripe-signature",
        timestamp: Some("stripe-signature"),
    },
    Case {
        label: "shopify",
        yaml: "scheme: shopify\nsecret: SECRET",
        header: "x-shopify-hmac-sha256",
        timestamp: None,
    },
    Case {
        label: "slack",
        yaml: "scheme: slack\nsecret: SECRET",
        header: "x-slack-signature",
        timestamp: Some("x-slack-request-timestamp"),
    },
    Case {
        label: "standard-webhooks",
        yaml: "scheme: standard-webhooks\nsecret: SECRET",
        header: "webhook-signature",
        timestamp: Some("webhook-timestamp"),
    },
    Case {
        label: "api-key",
        yaml: "scheme: api-key\nheader: X-Token\nsecret: SECRET",
        header: "x-token",
        timestamp: None,
    },
    Case {
        label: "basic",
        yaml: "scheme: basic\nusername: ferry\nsecret: SECRET",
        header: "authorization",
        timestamp: None,
    },
];

impl Case {
    fn is_credential(&self) -> bool {
        matches!(self.label, "api-key" | "basic")
    }

    /// A secret in the form the scheme expects (`whsec_…` for standard webhooks).
    fn secret(&self, name: &str) -> String {
        match self.label {
            "standard-webhooks" => format!("whsec_{}", STANDARD.encode(name)),
            _ => name.to_string(),
        }
    }

    fn with_secrets(&self, names: &[&str]) -> Verifier {
        let list: Vec<String> = names
            .iter()
            .map(|n| format!("'{}'", self.secret(n)))
            .collect();
        verifier(
            &self
                .yaml
                .replace("SECRET", &format!("[{}]", list.join(", "))),
        )
    }

    fn with_extra(&self, extra: &str) -> Verifier {
        verifier(&format!(
            "{}\n{extra}",
            self.yaml.replace("SECRET", &self.secret("s3cret"))
        ))
    }

    fn one(&self, name: &str) -> Verifier {
        self.with_secrets(&[name])
    }

    fn invalid(&self) -> &'static str {
        if self.is_credential() {
            "invalid_credentials"
        } else {
            "invalid_signature"
        }
    }

    fn missing(&self) -> &'static str {
        if self.is_credential() {
            "missing_credentials"
        } else {
            "missing_signature"
        }
    }

    /// Signed headers for `body` at `at`.
    fn signed(&self, body: &[u8], at: i64) -> HeaderMap {
        to_headers(&self.one("s3cret").sign(body, at, Some("evt-1")))
    }
}

/// An error message must not reveal a secret or the right signature.
fn assert_discreet(err: &VerifyError, case: &Case, headers: &HeaderMap) {
    let text = err.to_string();
    for secret in ["s3cret", "old", "new", "unrelated"] {
        assert!(
            !text.contains(&case.secret(secret)),
            "{}: {text}",
            case.label
        );
    }
    if let Some(sig) = headers.get(case.header).and_then(|v| v.to_str().ok()) {
        assert!(!text.contains(sig), "{}: {text}", case.label);
    }
}

#[test]
fn a_signed_request_verifies() {
    for case in CASES {
        let v = case.one("s3cret");
        assert!(
            check(&v, &v, b"{\"a\":1}", NOW, NOW).is_ok(),
            "{}",
            case.label
        );
        assert!(
            check(&v, &v, b"", NOW, NOW).is_ok(),
            "{} (empty body)",
            case.label
        );
    }
}

#[test]
fn a_tampered_body_fails() {
    for case in CASES.iter().filter(|c| !c.is_credential()) {
        let headers = case.signed(b"{\"amount\":100}", NOW);
        let err = case
            .one("s3cret")
            .verify(&headers, b"{\"amount\":900}", NOW)
            .unwrap_err();
        assert_eq!(err.code(), "invalid_signature", "{}", case.label);
        assert_discreet(&err, case, &headers);
    }
}

#[test]
fn the_wrong_secret_fails() {
    for case in CASES {
        let err = check(&case.one("s3cret"), &case.one("other"), b"{}", NOW, NOW).unwrap_err();
        assert_eq!(err.code(), case.invalid(), "{}", case.label);
        assert_discreet(&err, case, &case.signed(b"{}", NOW));
    }
}

#[test]
fn rotated_secrets_accept_old_and_new_only() {
    for case in CASES {
        let rotating = case.with_secrets(&["old", "new"]);
        assert!(
            check(&case.one("old"), &rotating, b"{}", NOW, NOW).is_ok(),
            "{} old",
            case.label
        );
        assert!(
            check(&case.one("new"), &rotating, b"{}", NOW, NOW).is_ok(),
            "{} new",
            case.label
        );
        let err = check(&case.one("unrelated"), &rotating, b"{}", NOW, NOW).unwrap_err();
        assert_eq!(err.code(), case.invalid(), "{}", case.label);
        // Signing uses the first secret.
        assert!(
            check(&rotating, &case.one("old"), b"{}", NOW, NOW).is_ok(),
            "{}",
            case.label
        );
    }
}

#[test]
fn a_missing_or_empty_header_is_missing() {
    for case in CASES {
        let v = case.one("s3cret");
        let signed = case.signed(b"{}", NOW);
        assert_eq!(
            code(v.verify(&without(signed.clone(), case.header), b"{}", NOW)),
            case.missing(),
            "{}",
            case.label
        );
        assert_eq!(
            code(v.verify(&with(signed.clone(), case.header, ""), b"{}", NOW)),
            case.missing(),
            "{}",
            case.label
        );
        assert_eq!(
            code(v.verify(&HeaderMap::new(), b"{}", NOW)),
            case.missing(),
            "{}",
            case.label
        );
        let err = v
            .verify(&with(signed, case.header, "   "), b"{}", NOW)
            .unwrap_err();
        assert_eq!(err.code(), case.missing(), "{}", case.label);
        assert!(
            err.to_string().to_ascii_lowercase().contains(case.header),
            "{err}"
        );
    }
}

#[test]
fn garbage_is_malformed() {
    for case in CASES {
        let v = case.one("s3cret");
        let signed = case.signed(b"{}", NOW);
        for garbage in [
            "garbage", "=", ",", "t=,v1=", "v1,", "sha256=", "v0=", "Basic", "ñ",
        ] {
            let headers = match http::HeaderValue::from_str(garbage) {
                Ok(_) => with(signed.clone(), case.header, garbage),
                Err(_) => continue,
            };
            let err = v.verify(&headers, b"{}", NOW).unwrap_err();
            let expected: &[&str] = match case.label {
                "api-key" => &["invalid_credentials"],
                "basic" => &["malformed_credentials"],
                _ => &["malformed_signature", "missing_timestamp"],
            };
            assert!(
                expected.contains(&err.code()),
                "{} {garbage:?}: {err}",
                case.label
            );
            assert_discreet(&err, case, &signed);
        }
        // Bytes that are not visible ASCII never panic and never pass.
        let mut headers = signed.clone();
        headers.insert(
            case.header,
            http::HeaderValue::from_bytes(&[0xff, 0xfe, b'a']).unwrap(),
        );
        assert!(v.verify(&headers, b"{}", NOW).is_err(), "{}", case.label);
    }
}

#[test]
fn timestamps_outside_the_default_window_fail_saying_which_side() {
    for case in CASES.iter().filter(|c| c.timestamp.is_some()) {
        let v = case.one("s3cret");
        assert!(
            check(&v, &v, b"{}", NOW - 300_000, NOW).is_ok(),
            "{} edge old",
            case.label
        );
        assert!(
            check(&v, &v, b"{}", NOW + 300_000, NOW).is_ok(),
            "{} edge future",
            case.label
        );
        let old = check(&v, &v, b"{}", NOW - 301_000, NOW).unwrap_err();
        assert_eq!(
            old,
            VerifyError::TimestampTooOld {
                age_secs: 301,
                tolerance_secs: 300
            },
            "{}",
            case.label
        );
        let future = check(&v, &v, b"{}", NOW + 301_000, NOW).unwrap_err();
        assert_eq!(
            future,
            VerifyError::TimestampInFuture {
                ahead_secs: 301,
                tolerance_secs: 300
            },
            "{}",
            case.label
        );
        assert_eq!(code(check(&v, &v, b"{}", 0, NOW)), "timestamp_too_old");
    }
}

#[test]
fn the_tolerance_is_configurable() {
    for case in CASES.iter().filter(|c| c.timestamp.is_some()) {
        let wide = case.with_extra("tolerance: 10m");
        assert!(
            check(&wide, &wide, b"{}", NOW - 400_000, NOW).is_ok(),
            "{}",
            case.label
        );
        assert_eq!(
            code(check(&wide, &wide, b"{}", NOW - 601_000, NOW)),
            "timestamp_too_old",
            "{}",
            case.label
        );
        let narrow = case.with_extra("tolerance: 1m");
        assert!(
            check(&narrow, &narrow, b"{}", NOW + 60_000, NOW).is_ok(),
            "{}",
            case.label
        );
        assert_eq!(
            code(check(&narrow, &narrow, b"{}", NOW + 61_000, NOW)),
            "timestamp_in_future",
            "{}",
            case.label
        );
    }
}

#[test]
fn a_missing_garbled_or_altered_timestamp_fails() {
    for case in CASES.iter().filter(|c| c.timestamp.is_some()) {
        let v = case.one("s3cret");
        let signed = case.signed(b"{}", NOW);
        let ts = (NOW / 1000).to_string();
        let later = (NOW / 1000 + 1).to_string();
        let (missing, garbled, altered) = match case.timestamp {
            Some("stripe-signature") => {
                let value = signed["stripe-signature"].to_str().unwrap().to_string();
                let v1 = value.split(',').nth(1).unwrap().to_string();
                (
                    with(signed.clone(), "stripe-signature", &v1),
                    with(
                        signed.clone(),
                        "stripe-signature",
                        &value.replace(&ts, "soon"),
                    ),
                    with(
                        signed.clone(),
                        "stripe-signature",
                        &value.replace(&ts, &later),
                    ),
                )
            }
            Some(h) => (
                without(signed.clone(), h),
                with(signed.clone(), h, "soon"),
                with(signed.clone(), h, &later),
            ),
            None => unreachable!(),
        };
        assert_eq!(
            code(v.verify(&missing, b"{}", NOW)),
            "missing_timestamp",
            "{}",
            case.label
        );
        assert_eq!(
            code(v.verify(&garbled, b"{}", NOW)),
            "malformed_timestamp",
            "{}",
            case.label
        );
        assert_eq!(
            code(v.verify(&altered, b"{}", NOW)),
            "invalid_signature",
            "{}",
            case.label
        );
    }
}

#[test]
fn verified_requests_carry_the_scheme_default_event_id() {
    let expected = |label: &str| match label {
        "github" | "shopify" | "standard-webhooks" => Some("evt-1".to_string()),
        _ => None,
    };
    for case in CASES
        .iter()
        .filter(|c| !matches!(c.label, "slack" | "stripe"))
    {
        let v = case.one("s3cret");
        assert_eq!(
            check(&v, &v, b"{}", NOW, NOW).unwrap(),
            expected(case.label),
            "{}",
            case.label
        );
    }
    let stripe = verifier("scheme: stripe\nsecret: s");
    let body = br#"{"id":"evt_9","object":"event"}"#;
    assert_eq!(
        check(&stripe, &stripe, body, NOW, NOW).unwrap().as_deref(),
        Some("evt_9")
    );
    let slack = verifier("scheme: slack\nsecret: s");
    let body = br#"{"type":"event_callback","event_id":"Ev42"}"#;
    assert_eq!(
        check(&slack, &slack, body, NOW, NOW).unwrap().as_deref(),
        Some("Ev42")
    );
}

#[test]
fn debug_output_never_shows_a_secret() {
    for case in CASES {
        let v = case.one("s3cret");
        let debug = format!("{v:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains(&case.secret("s3cret")),
            "{}: {debug}",
            case.label
        );
    }
}
