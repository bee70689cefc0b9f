//! Properties over arbitrary path and header values: a path value always
//! lands as exactly one segment under the base path and round-trips; a header
//! value is either sent verbatim or refused as a mapping error before any
//! call (never a transport error).

use std::sync::LazyLock;

use ferry::config::{Connection, RequestSpec};
use ferry::hub::Conn;
use ferry::outbound::{PrepareError, prepare};
use ferry::template::{Templates, context};
use percent_encoding::percent_decode_str;
use proptest::prelude::*;
use serde_json::json;

const BASE: &str = "http://127.0.0.1:9/base/v1";

/// One client for every case (building one loads the TLS roots).
static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(reqwest::Client::new);

fn conn() -> Conn {
    let config: Connection = serde_yaml_ng::from_str(&format!("base_url: {BASE}")).unwrap();
    Conn::new("crm", config)
}

fn spec(yaml: &str) -> RequestSpec {
    serde_yaml_ng::from_str(yaml).unwrap()
}

/// Strings rich in what reshapes URLs: separators, dots, escapes, controls, non-ASCII.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(
            prop_oneof![
                Just("/".to_owned()),
                Just("\\".to_owned()),
                Just("..".to_owned()),
                Just(".".to_owned()),
                Just("%2e".to_owned()),
                Just("%2F".to_owned()),
                Just("?".to_owned()),
                Just("#".to_owned()),
                Just("%".to_owned()),
                Just("@".to_owned()),
                Just(":".to_owned()),
                Just("\r\n".to_owned()),
                Just("\0".to_owned()),
                Just("é".to_owned()),
                "[a-z]{1,3}".prop_map(|s| s),
            ],
            0..8,
        )
        .prop_map(|parts| parts.concat()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_path_value_is_one_segment_under_the_base(v in hostile()) {
        let t = Templates::new();
        let ctx = context(&json!({ "body": { "id": v } }));
        let out = prepare(&t, &conn(), &spec("path: /contacts/{{ body.id }}/notes"), &ctx);
        if v == "." || v == ".." {
            let e = out.unwrap_err();
            prop_assert!(e.to_string().contains("dot-segment"), "{}", e);
            return Ok(());
        }
        let p = out.unwrap();
        let url = p.url.clone();
        prop_assert_eq!(url.origin().ascii_serialization(), "http://127.0.0.1:9");
        prop_assert_eq!(url.query(), None);
        prop_assert_eq!(url.fragment(), None);
        let segs: Vec<&str> = url.path().split('/').collect();
        prop_assert_eq!(segs.len(), 6, "{}", url);
        prop_assert_eq!(&segs[..4], &["", "base", "v1", "contacts"][..]);
        prop_assert_eq!(segs[5], "notes");
        prop_assert_eq!(percent_decode_str(segs[4]).decode_utf8().unwrap(), v.as_str());
        // What reqwest sends is that URL, unchanged.
        let sent = CLIENT.get(url.clone()).build().unwrap();
        prop_assert_eq!(sent.url(), &url);
    }

    #[test]
    fn a_header_value_is_sent_verbatim_or_refused_before_sending(v in hostile()) {
        let t = Templates::new();
        let ctx = context(&json!({ "body": { "v": v } }));
        let s = spec("path: /x\nheaders: { X-Value: \"{{ body.v }}\" }");
        match prepare(&t, &conn(), &s, &ctx) {
            Ok(p) => {
                let (_, sent) = p.headers.iter().find(|(k, _)| k == "X-Value").unwrap();
                prop_assert_eq!(sent, &v);
                // reqwest accepts it as is: no transport (builder) error.
                let req = CLIENT.get(p.url.clone()).header("X-Value", sent).build();
                let req = req.unwrap();
                prop_assert_eq!(req.headers()["x-value"].as_bytes(), v.as_bytes());
            }
            Err(PrepareError::Header { name, why }) => {
                prop_assert_eq!(name, "X-Value");
                prop_assert!(v.chars().any(|c| c.is_ascii_control() && c != '\t'), "{:?}", v);
                prop_assert!(why.contains("control character") || why.contains("(CR)")
                    || why.contains("(LF)") || why.contains("NUL"), "{}", why);
                prop_assert!(CLIENT.get(BASE).header("X-Value", v.as_str()).build().is_err());
            }
            Err(other) => prop_assert!(false, "unexpected error {}", other),
        }
    }
}
