//! Published, externally authored examples (`tests/fixtures/webhook-vectors.json`):
//! each verifies at its `now`, and changing any one byte of body, secret or
//! signature makes it fail.

use std::ops::Range;

use ferry::config::Verify;
use ferry::verify::{Verifier, VerifyError};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

const VECTORS: &str = include_str!("../fixtures/webhook-vectors.json");

#[derive(Debug, Deserialize)]
struct File {
    vectors: Vec<Vector>,
}

#[derive(Debug, Deserialize)]
struct Vector {
    name: String,
    scheme: String,
    secret: String,
    headers: Vec<(String, String)>,
    now: Option<i64>,
    body_utf8: String,
    body_hex: String,
    expect: String,
}

fn vectors() -> Vec<Vector> {
    // `headers` is an object in the file; keep its order as pairs.
    let raw: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
    let mut file = raw.clone();
    for v in file["vectors"].as_array_mut().unwrap() {
        let pairs: Vec<(String, String)> = v["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        v["headers"] = serde_json::to_value(pairs).unwrap();
    }
    let file: File = serde_json::from_value(file).unwrap();
    assert_eq!(file.vectors.len(), 5, "every published vector is loaded");
    file.vectors
}

impl Vector {
    fn body(&self) -> Vec<u8> {
        hex::decode(&self.body_hex).unwrap()
    }

    fn now_ms(&self) -> i64 {
        // Schemes without a timestamp ignore the clock; any value will do.
        self.now.map_or(0, |s| s * 1000)
    }

    fn verifier(&self, secret: &str) -> Result<Verifier, String> {
        let settings: Verify =
            serde_json::from_value(serde_json::json!({ "scheme": self.scheme, "secret": secret }))
                .unwrap();
        Verifier::from_config(&settings).map_err(|e| e.to_string())
    }

    fn headers(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in &self.headers {
            map.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn verify(&self, secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
        let v = self.verifier(secret)?;
        v.verify(headers, body, self.now_ms())
            .map(|_| ())
            .map_err(|e| e.code().to_string())
    }

    /// The header carrying the signature and the byte range of the signature
    /// itself inside its value (prefixes, timestamps, `v0` and padding excluded).
    fn signature(&self) -> (String, Range<usize>) {
        let (header, start) = match self.scheme.as_str() {
            "github" => ("X-Hub-Signature-256", "sha256=".len()),
            "stripe" => ("Stripe-Signature", usize::MAX),
            "standard-webhooks" => ("webhook-signature", "v1,".len()),
            "slack" => ("X-Slack-Signature", "v0=".len()),
            "shopify" => ("X-Shopify-Hmac-Sha256", 0),
            other => panic!("no signature location for {other}"),
        };
        let value = &self.headers.iter().find(|(k, _)| k == header).unwrap().1;
        let start = if start == usize::MAX {
            value.find("v1=").unwrap() + 3
        } else {
            start
        };
        let rest = &value[start..];
        let len = rest.find([',', '=']).unwrap_or(rest.len());
        (header.to_string(), start..start + len)
    }
}

/// A different character of the same kind (hex digit, base64, other).
fn flip_char(c: u8) -> u8 {
    match c {
        b'0' => b'1',
        b'A' => b'B',
        b'1'..=b'9' | b'a'..=b'f' | b'B'..=b'F' => b'0',
        c if c.is_ascii_alphanumeric() || c == b'+' || c == b'/' => b'A',
        c => c ^ 1,
    }
}

#[test]
fn every_vector_verifies_at_its_now() {
    for v in vectors() {
        assert_eq!(v.expect, "valid", "{}", v.name);
        assert_eq!(
            v.body(),
            v.body_utf8.as_bytes(),
            "{}: body_hex and body_utf8 agree",
            v.name
        );
        assert_eq!(
            v.verify(&v.secret, &v.headers(), &v.body()),
            Ok(()),
            "{}",
            v.name
        );
    }
}

#[test]
fn every_vector_yields_the_documented_event_id() {
    for v in vectors() {
        let expected = match v.name.as_str() {
            "github-docs" => None, // the example has no X-GitHub-Delivery header
            "stripe-dotnet" => Some("evt_123"),
            "standard-webhooks" => Some("msg_p5jXN8AQM9LWM0D4loKWxJek"),
            "slack-docs" => Some("398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"),
            "shopify" => Some("123456789"),
            other => panic!("unexpected vector {other}"),
        };
        let verifier = v.verifier(&v.secret).unwrap();
        let (headers, body) = (v.headers(), v.body());
        let verified = verifier.verify(&headers, &body, v.now_ms()).unwrap();
        assert_eq!(verified.event_id(), expected, "{}", v.name);
    }
}

#[test]
fn flipping_any_body_byte_fails() {
    for v in vectors() {
        let headers = v.headers();
        let body = v.body();
        for i in 0..body.len() {
            let mut tampered = body.clone();
            tampered[i] ^= 0x01;
            assert_eq!(
                v.verify(&v.secret, &headers, &tampered),
                Err("invalid_signature".into()),
                "{} byte {i}",
                v.name
            );
        }
    }
}

#[test]
fn flipping_any_secret_byte_fails() {
    for v in vectors() {
        let (headers, body) = (v.headers(), v.body());
        for i in 0..v.secret.len() {
            let mut secret = v.secret.clone().into_bytes();
            secret[i] = flip_char(secret[i]);
            let secret = String::from_utf8(secret).unwrap();
            // A standard-webhooks secret may stop being `whsec_<base64>`: then it
            // does not even build, which is a failure too.
            let result = v.verify(&secret, &headers, &body);
            assert!(result.is_err(), "{} secret byte {i}: {secret:?}", v.name);
        }
    }
}

#[test]
fn flipping_any_signature_byte_fails() {
    for v in vectors() {
        let (header, range) = v.signature();
        assert!(range.len() >= 43, "{}: signature found ({range:?})", v.name);
        let value = v
            .headers()
            .get(&header)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let body = v.body();
        for i in range {
            let mut flipped = value.clone().into_bytes();
            flipped[i] = flip_char(flipped[i]);
            let mut headers = v.headers();
            headers.insert(
                HeaderName::from_bytes(header.as_bytes()).unwrap(),
                HeaderValue::from_bytes(&flipped).unwrap(),
            );
            let code = v.verify(&v.secret, &headers, &body).unwrap_err();
            assert!(
                ["invalid_signature", "malformed_signature"].contains(&code.as_str()),
                "{} signature byte {i}: {code}",
                v.name
            );
        }
    }
}

#[test]
fn timestamped_vectors_expire() {
    for v in vectors().into_iter().filter(|v| v.now.is_some()) {
        let verifier = v.verifier(&v.secret).unwrap();
        let (headers, body) = (v.headers(), v.body());
        let signed_at = match v.scheme.as_str() {
            "stripe" => 1_533_204_620,
            _ => v.now.unwrap(),
        };
        // stripe-dotnet: valid at t+100 (the vector's now), rejected at t+400.
        let late = verifier
            .verify(&headers, &body, (signed_at + 400) * 1000)
            .unwrap_err();
        assert_eq!(
            late,
            VerifyError::TimestampTooOld {
                age_secs: 400,
                tolerance_secs: 300
            },
            "{}",
            v.name
        );
        let early = verifier
            .verify(&headers, &body, (signed_at - 400) * 1000)
            .unwrap_err();
        assert_eq!(early.code(), "timestamp_in_future", "{}", v.name);
    }
}
