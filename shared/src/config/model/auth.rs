//! Connection authentication: API keys, basic, bearer and OAuth 2.0 (secrets by reference).

use super::*;

/// Connection authentication. Secret fields must be references such as `${env:NAME}`.
/// `Debug` shows secrets as `[redacted]`.
#[derive(Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token (a secret reference).
        token: String,
    },
    /// HTTP basic authentication.
    Basic {
        /// User name.
        username: String,
        /// Password (a secret reference).
        password: String,
    },
    /// An API key in a header or a query parameter.
    ApiKey {
        /// Header name (default `X-API-Key`) unless `query` is set.
        #[serde(default)]
        header: Option<String>,
        /// Query parameter name; when set the key goes in the query string.
        #[serde(default)]
        query: Option<String>,
        /// The key (a secret reference).
        key: String,
    },
    /// OAuth 2.0: an access token from `token_url`, cached in the store across
    /// invocations, refreshed before it expires and once after a `401`.
    #[serde(rename = "oauth2")]
    OAuth2 {
        /// The token endpoint, e.g. `https://auth.example.com/oauth/token`.
        token_url: String,
        /// `client_credentials` (default) or `refresh_token`.
        #[serde(default)]
        grant: Grant,
        /// The client id.
        client_id: String,
        /// The client secret (a secret reference).
        client_secret: String,
        /// The refresh token for the `refresh_token` grant (a secret reference).
        #[serde(default)]
        refresh_token: Option<String>,
        /// Space-separated scopes to ask for.
        #[serde(default)]
        scope: Option<String>,
        /// Extra form fields for the token request (e.g. `audience`).
        #[serde(default)]
        params: BTreeMap<String, String>,
        /// How the client authenticates at the token endpoint: `body`
        /// (default: `client_id` and `client_secret` as form fields) or
        /// `basic` (HTTP Basic, as QuickBooks requires).
        #[serde(default)]
        client_auth: ClientAuth,
        /// The provider's authorization endpoint, where a person approves
        /// ferry (`grant: authorization_code`, used by `ferry connections
        /// authorize`), e.g. `https://auth.example.com/oauth/authorize`.
        #[serde(default)]
        authorize_url: Option<String>,
        /// The loopback port `ferry connections authorize` listens on for the
        /// redirect (`http://127.0.0.1:<port>/callback`); `0` or absent: any
        /// free port (RFC 8252 §7.3). Use the port registered with the provider.
        #[serde(default)]
        redirect_port: Option<u16>,
        /// Whether the authorization request carries a PKCE S256 challenge
        /// (RFC 7636); default `true`. Turn off only for a provider that
        /// rejects it.
        #[serde(default = "pkce_default")]
        pkce: bool,
    },
}

fn pkce_default() -> bool {
    true
}

/// How an OAuth 2.0 client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body.
    #[default]
    Body,
    /// `Authorization: Basic base64(urlencode(client_id):urlencode(client_secret))`.
    Basic,
}

/// OAuth 2.0 grant types ferry can use on its own (no user in the loop).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    /// Client credentials: the client id and secret buy an access token.
    #[default]
    ClientCredentials,
    /// Refresh token: a long-lived refresh token buys access tokens.
    RefreshToken,
    /// Authorization code: a person approves ferry once (`ferry connections
    /// authorize NAME`); the refresh token it yields is kept in the store
    /// (sealed) and buys access tokens from then on.
    AuthorizationCode,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Bearer { .. } => f.debug_struct("Bearer").field("token", &REDACTED).finish(),
            Auth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &REDACTED)
                .finish(),
            Auth::ApiKey { header, query, .. } => f
                .debug_struct("ApiKey")
                .field("header", header)
                .field("query", query)
                .field("key", &REDACTED)
                .finish(),
            Auth::OAuth2 {
                token_url,
                grant,
                client_id,
                refresh_token,
                scope,
                params,
                client_auth,
                authorize_url,
                redirect_port,
                pkce,
                ..
            } => f
                .debug_struct("OAuth2")
                .field("token_url", token_url)
                .field("grant", grant)
                .field("client_id", client_id)
                .field("client_secret", &REDACTED)
                .field("refresh_token", &refresh_token.as_ref().map(|_| REDACTED))
                .field("scope", scope)
                .field("params", params)
                .field("client_auth", client_auth)
                .field("authorize_url", authorize_url)
                .field("redirect_port", redirect_port)
                .field("pkce", pkce)
                .finish(),
        }
    }
}
