//! OAuth 2.0 client authentication at the token endpoint: in the body
//! (the default) or by HTTP Basic (`client_auth: basic`, as QuickBooks asks).

use base64::Engine as _;
use ferry::retry::Verdict;
use ferry_testkit::target::Answer;
use serde_json::json;

use crate::support::{Env, last, post};

const CONFIG: &str = r#"
version: 1
connections:
  basic:
    base_url: "${env:API_URL}/api"
    auth: { type: oauth2, token_url: "${env:API_URL}/basic/token", client_id: "id:1", client_secret: "${env:TOKEN}", client_auth: basic }
  body:
    base_url: "${env:API_URL}/api"
    auth: { type: oauth2, token_url: "${env:API_URL}/body/token", client_id: "id:1", client_secret: "${env:TOKEN}" }
"#;

#[tokio::test]
async fn client_auth_basic_sends_the_client_in_the_authorization_header_only() {
    let env = Env::start(CONFIG).await;
    for path in ["/basic/token", "/body/token"] {
        env.target.respond(
            path,
            200,
            json!({"access_token": "at-1", "token_type": "bearer", "expires_in": 3600}),
        );
    }
    env.target.respond_with("/api/call", Answer::ok(json!({})));
    assert_eq!(last(&post(&env, "basic").await).0, Verdict::Success);
    assert_eq!(last(&post(&env, "body").await).0, Verdict::Success);

    let basic = &env.target.seen_at("/basic/token")[0];
    // RFC 6749 §2.3.1: the id is form-encoded before it is joined (":" → "%3A").
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("id%3A1:xoxb-test-token")
    );
    assert_eq!(basic.header("authorization"), want);
    assert_eq!(basic.form("client_secret"), None, "no secret in the body");
    assert_eq!(basic.form("client_id"), None);
    assert_eq!(
        basic.form("grant_type").as_deref(),
        Some("client_credentials")
    );

    let body = &env.target.seen_at("/body/token")[0];
    assert_eq!(body.header("authorization"), "");
    assert_eq!(body.form("client_id").as_deref(), Some("id:1"));
    assert_eq!(
        body.form("client_secret").as_deref(),
        Some("xoxb-test-token")
    );
}
