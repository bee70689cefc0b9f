//! One request to an OAuth 2.0 token endpoint (RFC 6749 §3.2): the grant's
//! form, the client authenticated in the body or by HTTP Basic (§2.3.1), and
//! the answer read into a token or a precise failure. Used by the refresh
//! path ([`auth`](crate::auth)) and by the authorization-code exchange
//! ([`authorize`](crate::authorize)).

use std::time::Duration;

use crate::config::{Auth, ClientAuth};
use crate::hub::Conn;

/// A token endpoint's answer without `expires_in` is used this long.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// A token the endpoint issued.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    /// The access token.
    pub access_token: String,
    /// How long it lives (`expires_in`, or [`DEFAULT_LIFETIME`]).
    pub lifetime: Duration,
    /// A refresh token, when the endpoint sent one (new, or rotated).
    pub refresh_token: Option<String>,
    /// The scope granted, when the endpoint says.
    pub scope: Option<String>,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("lifetime", &self.lifetime)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| ".."))
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Why the endpoint gave no token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A 4xx other than 408/429: the client, grant or code was refused.
    Refused(String),
    /// The request was redirected elsewhere: refused, but a fixed
    /// `token_url` takes effect at once (nothing to hold).
    Redirected(String),
    /// Unreachable, a timeout, a 5xx, 408 or 429, or an answer without a token.
    Unavailable(String),
}

/// POST `form` (the grant's fields) to connection `name`'s token endpoint,
/// with the client's credentials as `client_auth` says. `grant` names the
/// grant in messages. No message carries a token or a secret.
pub async fn request(
    http: &reqwest::Client,
    name: &str,
    conn: &Conn,
    grant: &str,
    mut form: Vec<(&str, String)>,
) -> Result<Issued, Failure> {
    let Some(Auth::OAuth2 {
        token_url,
        client_id,
        client_secret,
        client_auth,
        ..
    }) = &conn.auth
    else {
        return Err(Failure::Refused(format!(
            "connection {name} is not an oauth2 connection"
        )));
    };
    let mut request = http
        .post(token_url)
        .timeout(conn.call_timeout)
        .header(http::header::ACCEPT, "application/json");
    match client_auth {
        ClientAuth::Body => {
            form.push(("client_id", client_id.clone()));
            form.push(("client_secret", client_secret.clone()));
        }
        ClientAuth::Basic => {
            request = request.header(
                http::header::AUTHORIZATION,
                basic_client_auth(client_id, client_secret),
            );
        }
    }
    let resp = match request.form(&form).send().await {
        Ok(r) => r,
        Err(e) => {
            if let Some(r) = crate::destination::RedirectRefused::find(&e) {
                return Err(Failure::Redirected(format!(
                    "connection {name}: token endpoint {token_url}: {r}"
                )));
            }
            return Err(Failure::Unavailable(format!(
                "connection {name}: token endpoint {token_url}: {}",
                crate::outbound::describe_error(&e)
            )));
        }
    };
    let status = resp.status().as_u16();
    let body = resp.bytes().await.unwrap_or_default();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let token = json.get("access_token").and_then(|v| v.as_str());
    let Some(token) = token.filter(|_| (200..300).contains(&status)) else {
        let code = json
            .get("error")
            .and_then(|e| e.as_str())
            .map_or(String::new(), |e| format!(" {e}"));
        let what = format!(
            "connection {name}: the token endpoint answered HTTP {status}{code} to the {grant} grant"
        );
        if (400..500).contains(&status) && status != 408 && status != 429 {
            return Err(Failure::Refused(what));
        }
        return Err(Failure::Unavailable(what));
    };
    let lifetime = json
        .get("expires_in")
        .and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()))
        .filter(|s| *s > 0.0)
        .map_or(DEFAULT_LIFETIME, |s| {
            Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX)
        });
    let text = |key: &str| {
        json.get(key)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Ok(Issued {
        access_token: token.to_owned(),
        lifetime,
        refresh_token: text("refresh_token"),
        scope: text("scope"),
    })
}

/// `Basic base64(urlencode(id):urlencode(secret))`: RFC 6749 §2.3.1 has the
/// client id and secret form-encoded before they are joined.
fn basic_client_auth(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    let enc = |s: &str| serde_urlencoded::to_string([("", s)]).unwrap_or_default()[1..].to_owned();
    let pair = format!("{}:{}", enc(id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}
