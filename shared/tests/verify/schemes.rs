//! Every scheme: valid, tampered, wrong secret, rotation, replay windows, and
//! each kind of broken header giving its own error code.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ferry::config::Scheme;
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
fn verified_exposes_what_was_checked() {
    let v = verifier("scheme: stripe\nsecret: s");
    let body = br#"{"id":"evt_9"}"#;
    let headers = to_headers(&v.sign(body, NOW, None));
    let ok = v.verify(&headers, body, NOW + 5_000).unwrap();
    assert_eq!(ok.scheme(), Scheme::Stripe);
    assert_eq!(ok.body(), body);
    assert_eq!(ok.timestamp(), Some(NOW / 1000));
    assert!(ok.headers().contains_key("stripe-signature"));
    let debug = format!("{ok:?}");
    assert!(debug.contains("evt_9") && !debug.contains("v1="), "{debug}");
}

#[test]
fn github_needs_its_prefix_and_accepts_either_hex_case() {
    let v = verifier("scheme: github\nsecret: s");
    let signed = to_headers(&v.sign(b"{}", NOW, None));
    let value = signed["x-hub-signature-256"].to_str().unwrap().to_string();
    let hex = value.strip_prefix("sha256=").unwrap();
    let upper = with(
        signed.clone(),
        "x-hub-signature-256",
        &format!("SHA256={}", hex.to_uppercase()),
    );
    assert!(v.verify(&upper, b"{}", NOW).is_ok());
    for bad in [
        hex.to_string(),
        format!("sha1={hex}"),
        format!("sha256={}", &hex[1..]),
        format!("sha256={hex}00"),
    ] {
        let err = v
            .verify(
                &with(signed.clone(), "x-hub-signature-256", &bad),
                b"{}",
                NOW,
            )
            .unwrap_err();
        assert_eq!(err.code(), "malformed_signature", "{bad}: {err}");
    }
}

#[test]
fn hmac_sha256_strips_a_prefix_when_present_and_decodes_hex_case_insensitively() {
    let plain = verifier("scheme: hmac-sha256\nheader: X-Signature\nsecret: s");
    let signed = to_headers(&plain.sign(b"body", NOW, None));
    let hex = signed["x-signature"].to_str().unwrap().to_string();
    assert!(!hex.contains('='), "no prefix configured: none emitted");
    for ok in [
        hex.clone(),
        hex.to_uppercase(),
        format!("sha256={hex}"),
        format!("SHA256={hex}"),
    ] {
        assert!(
            plain
                .verify(&with(signed.clone(), "x-signature", &ok), b"body", NOW)
                .is_ok(),
            "{ok}"
        );
    }
    let odd = &hex[..63];
    assert_eq!(
        code(plain.verify(&with(signed.clone(), "x-signature", odd), b"body", NOW)),
        "malformed_signature"
    );
    let wrong = format!("sha1={hex}");
    assert_eq!(
        code(plain.verify(&with(signed.clone(), "x-signature", &wrong), b"body", NOW)),
        "malformed_signature"
    );

    let prefixed =
        verifier("scheme: hmac-sha256\nheader: X-Sig\nencoding: base64\nprefix: 'v1='\nsecret: s");
    let signed = to_headers(&prefixed.sign(b"body", NOW, None));
    let value = signed["x-sig"].to_str().unwrap().to_string();
    let b64 = value
        .strip_prefix("v1=")
        .expect("configured prefix is emitted");
    assert!(
        prefixed
            .verify(&with(signed.clone(), "x-sig", b64), b"body", NOW)
            .is_ok(),
        "prefix optional on input"
    );
    let unpadded = format!("v1={}", b64.trim_end_matches('='));
    assert!(
        prefixed
            .verify(&with(signed.clone(), "x-sig", &unpadded), b"body", NOW)
            .is_ok()
    );
    assert_eq!(
        code(prefixed.verify(&with(signed, "x-sig", "v1=!!notbase64"), b"body", NOW)),
        "malformed_signature"
    );
}

#[test]
fn hmac_sha256_signs_its_template() {
    let v = verifier(
        "scheme: hmac-sha256\nheader: X-Sig\ntimestamp_header: X-Ts\nsigned_content: 'ts={timestamp};{body}'\nsecret: k",
    );
    let signed = v.sign(b"hello", NOW, None);
    assert_eq!(signed[0], ("X-Ts".to_string(), (NOW / 1000).to_string()));
    // The same key without a timestamp signs the rendered template as a body.
    let same = verifier("scheme: hmac-sha256\nheader: X-Sig\nsecret: k");
    let content = format!("ts={};hello", NOW / 1000);
    let plain = to_headers(&same.sign(content.as_bytes(), NOW, None));
    assert_eq!(
        plain["x-sig"].to_str().unwrap(),
        signed[1].1,
        "signature is over the rendered template"
    );
    // The default template is `{timestamp}.{body}`.
    let default = verifier("scheme: hmac-sha256\nheader: X-Sig\ntimestamp_header: X-Ts\nsecret: k");
    let content = format!("{}.hello", NOW / 1000);
    let plain = to_headers(&same.sign(content.as_bytes(), NOW, None));
    assert_eq!(
        plain["x-sig"].to_str().unwrap(),
        default.sign(b"hello", NOW, None)[1].1
    );
}

#[test]
fn stripe_accepts_any_v1_and_ignores_v0() {
    let v = verifier("scheme: stripe\nsecret: s");
    let signed = to_headers(&v.sign(b"{}", NOW, None));
    let value = signed["stripe-signature"].to_str().unwrap().to_string();
    let (t, v1) = value.split_once(',').unwrap();
    let junk = "v1=".to_string() + &"0".repeat(64);
    for ok in [
        format!("{t},{junk},{v1}"),
        format!("{t},{v1},{junk}"),
        format!("{t},v0=abc,{v1}"),
        format!("{v1},{t}"),
        format!("{t}, {v1}"),
        format!("{t},v1=zz,{v1}"),
    ] {
        assert!(
            v.verify(&with(signed.clone(), "stripe-signature", &ok), b"{}", NOW)
                .is_ok(),
            "{ok}"
        );
    }
    let cases = [
        (format!("{t},{junk}"), "invalid_signature"),
        (format!("{t},v0={}", &v1[3..]), "malformed_signature"),
        (format!("{t},v1=abc"), "malformed_signature"),
        (t.to_string(), "malformed_signature"),
        (v1.to_string(), "missing_timestamp"),
        (format!("t=,{v1}"), "missing_timestamp"),
        (format!("{t},{t},{v1}"), "malformed_timestamp"),
        (format!("t=1.5,{v1}"), "malformed_timestamp"),
    ];
    for (bad, expected) in cases {
        assert_eq!(
            code(v.verify(&with(signed.clone(), "stripe-signature", &bad), b"{}", NOW)),
            expected,
            "{bad}"
        );
    }
}

#[test]
fn standard_webhooks_accepts_any_v1_and_ignores_other_versions() {
    let v = verifier("scheme: standard-webhooks\nsecret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let signed = to_headers(&v.sign(b"{}", NOW, Some("msg_1")));
    let sig = signed["webhook-signature"].to_str().unwrap().to_string();
    let other = format!("v1,{}", STANDARD.encode([0u8; 32]));
    for ok in [
        format!("{other} {sig}"),
        format!("v1a,abc {sig}"),
        format!("{sig}  v2,xyz"),
    ] {
        assert!(
            v.verify(&with(signed.clone(), "webhook-signature", &ok), b"{}", NOW)
                .is_ok(),
            "{ok}"
        );
    }
    let cases = [
        (other.clone(), "invalid_signature"),
        ("v1a,abc v2,xyz".to_string(), "malformed_signature"),
        ("v1,!!!!".to_string(), "malformed_signature"),
        ("v1,abcd".to_string(), "malformed_signature"),
        (sig.replace(',', "="), "malformed_signature"),
    ];
    for (bad, expected) in cases {
        assert_eq!(
            code(v.verify(&with(signed.clone(), "webhook-signature", &bad), b"{}", NOW)),
            expected,
            "{bad}"
        );
    }
    assert_eq!(
        code(v.verify(&without(signed.clone(), "webhook-id"), b"{}", NOW)),
        "missing_header"
    );
    assert_eq!(
        code(v.verify(&with(signed.clone(), "webhook-id", "msg_2"), b"{}", NOW)),
        "invalid_signature"
    );
}

#[test]
fn standard_webhooks_reads_svix_headers_too() {
    let v = verifier("scheme: standard-webhooks\nsecret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let mut svix = HeaderMap::new();
    for (name, value) in v.sign(b"{}", NOW, Some("msg_svix")) {
        let name = name.replace("webhook-", "svix-");
        svix.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let ok = v.verify(&svix, b"{}", NOW).unwrap();
    assert_eq!(ok.event_id(), Some("msg_svix"));
}

#[test]
fn standard_webhooks_derives_an_id_when_signing_without_one() {
    let v = verifier("scheme: standard-webhooks\nsecret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let a = to_headers(&v.sign(b"{}", NOW, None));
    let b = to_headers(&v.sign(b"{}", NOW, None));
    let id = a["webhook-id"].to_str().unwrap();
    assert!(id.starts_with("msg_") && id.len() == 36, "{id}");
    assert_eq!(a["webhook-id"], b["webhook-id"], "deterministic");
    assert_ne!(
        to_headers(&v.sign(b"[]", NOW, None))["webhook-id"],
        a["webhook-id"]
    );
    assert_eq!(v.verify(&a, b"{}", NOW).unwrap().event_id(), Some(id));
}

#[test]
fn slack_answers_url_verification_only_once_verified() {
    let v = verifier("scheme: slack\nsecret: s");
    let body = br#"{"token":"x","challenge":"ch-123","type":"url_verification"}"#;
    let headers = to_headers(&v.sign(body, NOW, None));
    assert_eq!(
        v.verify(&headers, body, NOW)
            .unwrap()
            .slack_challenge()
            .as_deref(),
        Some("ch-123")
    );
    let event = br#"{"type":"event_callback","event_id":"Ev1"}"#;
    let headers = to_headers(&v.sign(event, NOW, None));
    assert_eq!(
        v.verify(&headers, event, NOW).unwrap().slack_challenge(),
        None
    );
    // Another scheme never answers a challenge.
    let gh = verifier("scheme: github\nsecret: s");
    let headers = to_headers(&gh.sign(body, NOW, None));
    assert_eq!(
        gh.verify(&headers, body, NOW).unwrap().slack_challenge(),
        None
    );
}

#[test]
fn slack_needs_v0() {
    let v = verifier("scheme: slack\nsecret: s");
    let signed = to_headers(&v.sign(b"x=1", NOW, None));
    let sig = signed["x-slack-signature"].to_str().unwrap().to_string();
    for bad in [
        sig.replacen("v0=", "v1=", 1),
        sig.replacen("v0=", "", 1),
        sig.replacen("v0=", "v0=0", 1),
    ] {
        assert_eq!(
            code(v.verify(
                &with(signed.clone(), "x-slack-signature", &bad),
                b"x=1",
                NOW
            )),
            "malformed_signature"
        );
    }
}

#[test]
fn api_key_must_match_exactly() {
    let v = verifier("scheme: api-key\nheader: X-Token\nsecret: [k-old, k-new]");
    let h = |value: &str| with(HeaderMap::new(), "x-token", value);
    assert!(v.verify(&h("k-old"), b"", NOW).is_ok());
    assert!(v.verify(&h("k-new"), b"", NOW).is_ok());
    for bad in ["k-ol", "k-old ", "K-OLD", "k-oldk-new", "x"] {
        assert_eq!(
            code(v.verify(&h(bad), b"", NOW)),
            "invalid_credentials",
            "{bad:?}"
        );
    }
    let default = verifier("scheme: api-key\nsecret: k");
    assert_eq!(
        default.sign(b"", NOW, None),
        vec![("X-API-Key".to_string(), "k".to_string())]
    );
    assert!(
        default
            .verify(&with(HeaderMap::new(), "x-api-key", "k"), b"", NOW)
            .is_ok()
    );
}

#[test]
fn basic_checks_the_whole_credential() {
    let v = verifier("scheme: basic\nusername: ferry\nsecret: pw");
    let h = |user_pass: &str| {
        with(
            HeaderMap::new(),
            "authorization",
            &format!("Basic {}", STANDARD.encode(user_pass)),
        )
    };
    assert_eq!(
        v.sign(b"", NOW, None)[0].1,
        format!("Basic {}", STANDARD.encode("ferry:pw"))
    );
    assert!(v.verify(&h("ferry:pw"), b"", NOW).is_ok());
    for bad in [
        "ferry:p",
        "ferry:pwx",
        "other:pw",
        "ferry",
        ":pw",
        "ferry:pw:",
    ] {
        assert_eq!(
            code(v.verify(&h(bad), b"", NOW)),
            "invalid_credentials",
            "{bad:?}"
        );
    }
    let lower = with(
        HeaderMap::new(),
        "authorization",
        &format!("basic {}", STANDARD.encode("ferry:pw")),
    );
    assert!(v.verify(&lower, b"", NOW).is_ok());
    for bad in ["Bearer abc", "Basic", "Basic !!!"] {
        let headers = with(HeaderMap::new(), "authorization", bad);
        assert_eq!(
            code(v.verify(&headers, b"", NOW)),
            "malformed_credentials",
            "{bad:?}"
        );
    }
}

#[test]
fn none_accepts_everything_and_signs_nothing() {
    let v = verifier("scheme: none");
    assert!(v.sign(b"x", NOW, Some("id")).is_empty());
    let empty = HeaderMap::new();
    let ok = v.verify(&empty, b"anything", i64::MIN).unwrap();
    assert_eq!((ok.event_id(), ok.timestamp()), (None, None));
    assert!(v.secret_headers().is_empty());
}

#[test]
fn secret_headers_name_where_signatures_and_credentials_are() {
    let names = |yaml: &str| {
        verifier(yaml)
            .secret_headers()
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(names("scheme: github\nsecret: s"), ["x-hub-signature-256"]);
    assert_eq!(
        names("scheme: hmac-sha256\nheader: X-Sig\nsecret: s"),
        ["x-sig"]
    );
    assert_eq!(names("scheme: stripe\nsecret: s"), ["stripe-signature"]);
    assert_eq!(
        names("scheme: basic\nusername: u\nsecret: s"),
        ["authorization"]
    );
    assert_eq!(names("scheme: api-key\nsecret: s"), ["x-api-key"]);
    assert_eq!(
        names("scheme: standard-webhooks\nsecret: whsec_c2VjcmV0"),
        ["webhook-signature", "svix-signature"]
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

#[test]
fn a_configured_header_replaces_the_scheme_default() {
    let v = verifier("scheme: github\nheader: X-Hub-Signature-256-Staging\nsecret: s");
    let signed = v.sign(b"{}", NOW, None);
    assert_eq!(signed[0].0, "X-Hub-Signature-256-Staging");
    assert!(v.verify(&to_headers(&signed), b"{}", NOW).is_ok());
}
