//! What the AWS tests of the execute Lambda share.

use serde_json::json;

/// An HTTP API (payload v2) event for `POST /hooks/forms` carrying `body`,
/// authenticated by the `forms` source's shared `token`.
pub fn form_webhook(body: String, token: &str) -> lambda_http::Request {
    let event = json!({
        "version": "2.0", "routeKey": "POST /hooks/{source}", "rawPath": "/hooks/forms", "rawQueryString": "",
        "headers": { "content-type": "application/json", "x-webhook-token": token },
        "pathParameters": { "source": "forms" },
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example", "domainPrefix": "api",
            "http": { "method": "POST", "path": "/hooks/forms", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "FormTool" },
            "requestId": "req", "routeKey": "POST /hooks/{source}", "stage": "$default", "time": "14/Nov/2023:22:13:20 +0000", "timeEpoch": 1700000000000u64
        },
        "body": body, "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).expect("an HTTP API v2 event")
}
