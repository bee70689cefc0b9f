//! The grant-specific checks of an `oauth2` connection: which keys each grant
//! needs and which it does not take.

use super::diagnostic::Path;
use super::model::{Auth, Grant};
use super::validate::Report;

/// Check `auth` (an `oauth2` block at `path`) against its `grant`.
pub(crate) fn grant(auth: &Auth, path: &Path, r: &mut Report<'_>) {
    let Auth::OAuth2 {
        grant,
        refresh_token,
        authorize_url,
        redirect_port,
        pkce,
        ..
    } = auth
    else {
        return;
    };
    match (grant, refresh_token) {
        (Grant::RefreshToken, None) => r.error(
            &path.key("refresh_token"),
            "grant refresh_token needs a `refresh_token` (a secret reference such as ${env:NAME})",
        ),
        (Grant::ClientCredentials, Some(_)) => r.error(
            &path.key("refresh_token"),
            "`refresh_token` only applies to `grant: refresh_token`",
        ),
        (Grant::AuthorizationCode, Some(_)) => r.error(
            &path.key("refresh_token"),
            "grant authorization_code keeps its refresh token in the store (`ferry connections authorize`); remove `refresh_token` from the config",
        ),
        _ => {}
    }
    if *grant != Grant::AuthorizationCode {
        let only = |key: &str| {
            format!(
                "`{key}` only applies to `grant: authorization_code` (`ferry connections authorize`)"
            )
        };
        if authorize_url.is_some() {
            r.error(&path.key("authorize_url"), only("authorize_url"));
        }
        if redirect_port.is_some() {
            r.error(&path.key("redirect_port"), only("redirect_port"));
        }
        if !pkce {
            r.error(&path.key("pkce"), only("pkce"));
        }
        return;
    }
    let url_path = path.key("authorize_url");
    match authorize_url {
        None => r.error(
            &url_path,
            "grant authorization_code needs an `authorize_url`: the provider's authorization endpoint, such as \"https://auth.example.com/oauth/authorize\"",
        ),
        Some(url) if !r.has_error_at(&url_path) => {
            let ok = reqwest::Url::parse(url).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some_and(|h| !h.is_empty())
                    && u.fragment().is_none()
            });
            if !ok {
                let shown = r.shown(&url_path, url).to_owned();
                r.error(
                    &url_path,
                    format!("authorize_url {shown:?} is not an absolute http(s) URL without a fragment, such as \"https://auth.example.com/oauth/authorize\""),
                );
            }
        }
        Some(_) => {}
    }
}
