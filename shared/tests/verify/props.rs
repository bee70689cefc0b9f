//! Properties over arbitrary input: nothing panics, garbage never verifies,
//! and whatever `sign` produces, `verify` accepts (and rejects once tampered).

use std::sync::LazyLock;

use ferry::config::Scheme;
use ferry::verify::{
    Verifier, VerifyError, default_event_id, slack_event_id, slack_url_verification,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::string::string_regex;

use crate::support::{to_headers, verifier};

const SETTINGS: &[&str] = &[
    "scheme: hmac-sha256\nheader: X-Signature\nsecret: [s3cret, other]",
    "scheme: hmac-sha256\nheader: X-Sig\nencoding: base64\nprefix: 'v1='\nsecret: s3cret",
    "scheme: hmac-sha256\nheader: X-Sig\ntimestamp_header: X-Ts\nsecret: s3cret",
    "scheme: github\nsecret: s3cret",
    "scheme: stripe\nsecret: [s3cret, other]",
    "scheme: shopify\nsecret: s3cret",
    "scheme: slack\nsecret: s3cret",
    "scheme: standard-webhooks\nsecret: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, whsec_c2VjcmV0]",
    "scheme: api-key\nsecret: s3cret",
    "scheme: basic\nusername: ferry\nsecret: s3cret",
    "scheme: none",
];

static VERIFIERS: LazyLock<Vec<Verifier>> =
    LazyLock::new(|| SETTINGS.iter().map(|s| verifier(s)).collect());

const ALL_SCHEMES: [Scheme; 9] = [
    Scheme::HmacSha256,
    Scheme::Github,
    Scheme::Stripe,
    Scheme::Shopify,
    Scheme::Slack,
    Scheme::StandardWebhooks,
    Scheme::ApiKey,
    Scheme::Basic,
    Scheme::None,
];

/// Every header any scheme reads.
const HEADER_NAMES: &[&str] = &[
    "x-signature",
    "x-sig",
    "x-ts",
    "x-hub-signature-256",
    "x-github-delivery",
    "stripe-signature",
    "x-shopify-hmac-sha256",
    "x-shopify-webhook-id",
    "x-slack-signature",
    "x-slack-request-timestamp",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "x-api-key",
    "authorization",
];

/// Any byte string a header value may hold (control bytes replaced).
fn raw_value() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..96).prop_map(|bytes| {
        bytes
            .into_iter()
            .map(|b| {
                if (b < 0x20 && b != b'\t') || b == 0x7f {
                    b'?'
                } else {
                    b
                }
            })
            .collect()
    })
}

/// Values built from the pieces the parsers look for, to reach deep paths.
fn shaped_value() -> impl Strategy<Value = Vec<u8>> {
    string_regex(
        "(t=-?[0-9]{0,12}|v1=[0-9a-fA-F]{0,66}|v0=[0-9a-fA-F]{0,66}|v1,[A-Za-z0-9+/=]{0,46}|v1a,[a-z]{0,4}\
         |sha256=[0-9a-fA-F]{0,66}|Basic [A-Za-z0-9+/=]{0,24}|[A-Za-z0-9+/]{43}=|-?[0-9]{1,20}|[,= ]|é){0,6}",
    )
    .unwrap()
    .prop_map(String::into_bytes)
}

fn headers() -> impl Strategy<Value = HeaderMap> {
    vec(
        (
            0..HEADER_NAMES.len(),
            prop_oneof![raw_value(), shaped_value()],
        ),
        0..10,
    )
    .prop_map(|pairs| {
        let mut map = HeaderMap::new();
        for (i, value) in pairs {
            let value = HeaderValue::from_bytes(&value).expect("sanitised header value");
            map.append(HeaderName::from_static(HEADER_NAMES[i]), value);
        }
        map
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..512),
        string_regex(r#"\{("(id|event_id|type|challenge|trigger_id)":"[a-z_.]{0,12}",?){0,4}\}"#)
            .unwrap()
            .prop_map(String::into_bytes),
        string_regex("((payload|trigger_id|command)=[%A-Za-z0-9.{}:\"]{0,30}&?){0,4}")
            .unwrap()
            .prop_map(String::into_bytes),
    ]
}

fn assert_well_formed(err: &VerifyError) {
    assert!(VerifyError::CODES.contains(&err.code()), "{err:?}");
    assert!(!err.to_string().is_empty());
}

proptest! {
    #[test]
    fn arbitrary_requests_never_panic_and_never_verify(headers in headers(), body in body(), now in any::<i64>()) {
        for v in VERIFIERS.iter() {
            match v.verify(&headers, &body, now) {
                Ok(ok) => prop_assert_eq!(ok.scheme(), Scheme::None, "garbage verified"),
                Err(e) => assert_well_formed(&e),
            }
        }
        for scheme in ALL_SCHEMES {
            let _ = default_event_id(scheme, &headers, &body);
        }
        prop_assert!(slack_event_id(&body).len() <= body.len().max(71));
        let _ = slack_url_verification(&body);
    }

    #[test]
    fn signed_requests_verify(
        body in vec(any::<u8>(), 0..1024),
        now in -1_000_000_000_000i64..4_102_444_800_000,
        // Timestamps are whole seconds: up to 999 ms of `now` is cut off when signing.
        skew in -299_000i64..=299_000,
        id in "[A-Za-z0-9_.-]{1,40}",
    ) {
        for v in VERIFIERS.iter() {
            let headers = to_headers(&v.sign(&body, now, Some(&id)));
            let ok = v.verify(&headers, &body, now + skew);
            prop_assert!(ok.is_ok(), "{:?}: {:?}", v.scheme(), ok.unwrap_err());
            let ok = ok.unwrap();
            prop_assert_eq!(ok.body(), &body[..]);
            if matches!(v.scheme(), Scheme::Github | Scheme::Shopify | Scheme::StandardWebhooks) {
                prop_assert_eq!(ok.event_id(), Some(id.as_str()));
            }
        }
    }

    #[test]
    fn tampered_bodies_fail(body in vec(any::<u8>(), 1..512), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut tampered = body.clone();
        tampered[at.index(body.len())] ^= 1 << bit;
        for v in VERIFIERS.iter().filter(|v| !matches!(v.scheme(), Scheme::ApiKey | Scheme::Basic | Scheme::None)) {
            let headers = to_headers(&v.sign(&body, 0, None));
            let err = v.verify(&headers, &tampered, 0).unwrap_err();
            prop_assert_eq!(err.code(), "invalid_signature");
        }
    }

    #[test]
    fn mangled_signed_headers_never_panic(
        body in vec(any::<u8>(), 0..64),
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        insert in "[ -~]{0,8}",
    ) {
        for v in VERIFIERS.iter() {
            let signed = v.sign(&body, 0, Some("id"));
            if signed.is_empty() {
                continue;
            }
            let mut pairs = signed.clone();
            let (_, value) = &mut pairs[which.index(signed.len())];
            let mut pos = at.index(value.len() + 1);
            while !value.is_char_boundary(pos) {
                pos -= 1;
            }
            value.insert_str(pos, &insert);
            match v.verify(&to_headers(&pairs), &body, 0) {
                Ok(_) => {}
                Err(e) => assert_well_formed(&e),
            }
        }
    }
}
