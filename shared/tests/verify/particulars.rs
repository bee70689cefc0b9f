//! What is particular to each scheme: prefixes, encodings, multi-signature
//! headers, Slack's handshake, credentials, and what a `Verified` exposes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ferry::config::Scheme;
use http::HeaderMap;

use crate::support::{NOW, code, to_headers, verifier, with, without};

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
fn a_configured_header_replaces_the_scheme_default() {
    let v = verifier("scheme: github\nheader: X-Hub-Signature-256-Staging\nsecret: s");
    let signed = v.sign(b"{}", NOW, None);
    assert_eq!(signed[0].0, "X-Hub-Signature-256-Staging");
    assert!(v.verify(&to_headers(&signed), b"{}", NOW).is_ok());
}

/// Zendesk signs `base64(HMAC-SHA256(secret, timestamp + body))` and sends
/// the timestamp as ISO-8601 in `X-Zendesk-Webhook-Signature-Timestamp`
/// (https://developer.zendesk.com/documentation/webhooks/verifying/). The
/// signature here is computed independently of ferry's signer.
#[test]
fn zendesk_iso_8601_timestamps_verify_and_their_window_is_checked() {
    use hmac::{Hmac, KeyInit, Mac};
    let v = verifier(
        "scheme: hmac-sha256\nheader: X-Zendesk-Webhook-Signature\nencoding: base64\ntimestamp_header: X-Zendesk-Webhook-Signature-Timestamp\nsigned_content: '{timestamp}{body}'\nsecret: zendesk-secret",
    );
    let body = br#"{"type":"zen:event-type:ticket.created","id":"01H"}"#;
    // NOW is 2023-11-14T22:13:20Z.
    let sign = |ts: &str| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"zendesk-secret").unwrap();
        mac.update(ts.as_bytes());
        mac.update(body);
        let sig = STANDARD.encode(mac.finalize().into_bytes());
        let h = with(HeaderMap::new(), "x-zendesk-webhook-signature", &sig);
        with(h, "x-zendesk-webhook-signature-timestamp", ts)
    };
    let utc = sign("2023-11-14T22:13:20Z");
    let ok = v.verify(&utc, body, NOW + 3_000);
    assert_eq!(ok.map(|v| v.timestamp()).unwrap(), Some(NOW / 1000));
    // An offset is honoured: the same instant written in +02:00.
    let plus2 = sign("2023-11-15T00:13:20+02:00");
    let ok = v.verify(&plus2, body, NOW);
    assert_eq!(ok.map(|v| v.timestamp()).unwrap(), Some(NOW / 1000));
    // The replay window applies to ISO-8601 stamps as to Unix seconds.
    assert_eq!(
        code(v.verify(&sign("2023-11-14T21:13:20Z"), body, NOW)),
        "timestamp_too_old"
    );
    // A tampered body or a stamp that is neither form is refused.
    let signed = sign("2023-11-14T22:13:20Z");
    assert_eq!(code(v.verify(&signed, b"{}", NOW)), "invalid_signature");
    assert_eq!(
        code(v.verify(&sign("14 Nov 2023 22:13"), body, NOW)),
        "malformed_timestamp"
    );
    // Unix seconds still work.
    assert!(
        v.verify(&sign(&(NOW / 1000).to_string()), body, NOW)
            .is_ok()
    );
}

#[test]
fn hubspot_v3_signs_method_uri_body_and_a_millisecond_timestamp() {
    use hmac::{Hmac, KeyInit, Mac};
    // HubSpot, *Validating requests* (v3): base64(HMAC-SHA256(client secret,
    // method + URI + body + timestamp)), the timestamp in Unix milliseconds.
    let uri = "https://hooks.example.com/hooks/hubspot";
    let v = verifier(&format!(
        "scheme: hmac-sha256\nheader: X-HubSpot-Signature-v3\nencoding: base64\ntimestamp_header: X-HubSpot-Request-Timestamp\ntimestamp_unit: milliseconds\nsigned_content: 'POST{uri}{{body}}{{timestamp}}'\nsecret: hubspot-client-secret",
    ));
    let body = br#"[{"eventId":1,"subscriptionType":"contact.creation","objectId":42}]"#;
    let sign = |ts: &str, body: &[u8]| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"hubspot-client-secret").unwrap();
        mac.update(format!("POST{uri}").as_bytes());
        mac.update(body);
        mac.update(ts.as_bytes());
        let sig = STANDARD.encode(mac.finalize().into_bytes());
        let h = with(HeaderMap::new(), "x-hubspot-signature-v3", &sig);
        with(h, "x-hubspot-request-timestamp", ts)
    };
    let ms = (NOW + 1_234).to_string();
    let signed = sign(&ms, body);
    let ok = v.verify(&signed, body, NOW + 60_000);
    assert_eq!(ok.map(|v| v.timestamp()).unwrap(), Some(NOW / 1000 + 1));
    // Five minutes is the window: read as milliseconds, not seconds.
    assert_eq!(
        code(v.verify(&sign(&ms, body), body, NOW + 301_235)),
        "timestamp_too_old"
    );
    // The same bytes signed for another URI, or a tampered body, are refused.
    let other = verifier(
        "scheme: hmac-sha256\nheader: X-HubSpot-Signature-v3\nencoding: base64\ntimestamp_header: X-HubSpot-Request-Timestamp\ntimestamp_unit: milliseconds\nsigned_content: 'POSThttps://elsewhere.example/hooks/hubspot{body}{timestamp}'\nsecret: hubspot-client-secret",
    );
    assert_eq!(
        code(other.verify(&sign(&ms, body), body, NOW)),
        "invalid_signature"
    );
    assert_eq!(
        code(v.verify(&sign(&ms, body), b"[]", NOW)),
        "invalid_signature"
    );
    assert_eq!(
        code(v.verify(&sign("2023-11-14T22:13:20Z", body), body, NOW)),
        "malformed_timestamp"
    );
    // ferry's own signer (ferry send) writes milliseconds, and verifies.
    let signed = to_headers(&v.sign(body, NOW, None));
    assert_eq!(
        signed["x-hubspot-request-timestamp"],
        NOW.to_string().as_str()
    );
    assert!(v.verify(&signed, body, NOW).is_ok());
}

#[test]
fn timestamp_unit_needs_a_timestamp_header_and_hmac_sha256() {
    let errs = ferry::verify::Verifier::from_config(&crate::support::settings(
        "scheme: hmac-sha256\nheader: X-S\ntimestamp_unit: milliseconds\nsecret: s",
    ))
    .unwrap_err();
    assert!(
        errs.to_string()
            .contains("timestamp_unit: needs timestamp_header"),
        "{errs}"
    );
    let errs = ferry::verify::Verifier::from_config(&crate::support::settings(
        "scheme: github\ntimestamp_unit: milliseconds\nsecret: s",
    ))
    .unwrap_err();
    assert!(
        errs.to_string()
            .contains("timestamp_unit: does not apply to scheme github"),
        "{errs}"
    );
}
