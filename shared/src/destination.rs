//! Where an outbound request may go: the one rule that steps, batch calls,
//! sync polls (and the next-page URLs their APIs give) and token requests share.
//!
//! - A value substituted into a path template is exactly one path segment:
//!   everything but `A–Z a–z 0–9 - . _ ~` is percent-encoded (so `/`, `\`,
//!   `?`, `#` and `%` cannot reshape the URL), and a value that is a
//!   dot-segment (`.` or `..`) is refused. The literal parts of a template,
//!   written by the config's author, keep their slashes.
//! - The final URL, parsed and normalised, must stay on the connection's
//!   origin (scheme, host, port) and under its base path.
//! - Redirects are followed only within the origin of the first request of
//!   the chain, at most [`MAX_REDIRECTS`] times, and no `Referer` is ever sent:
//!   credentials stay with their connection.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Url;

/// What a path value may keep unencoded: RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Redirects followed at most (within the first request's origin).
pub const MAX_REDIRECTS: usize = 5;

/// Why a URL was refused. Every variant is a mapping error: trying again cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// A path value that would move the path instead of naming one thing.
    #[error(
        "the path value {0:?} is a dot-segment; a value in a path must name one segment, not move the path"
    )]
    DotSegment(String),
    /// The URL does not parse.
    #[error("{url:?} is not a valid URL: {why}")]
    Invalid {
        /// What was parsed.
        url: String,
        /// The parser's reason.
        why: String,
    },
    /// The URL leaves the connection's base URL.
    #[error(
        "{url} is outside the connection's base URL {base}; ferry does not send the connection's credentials there"
    )]
    Outside {
        /// The offending URL (origin and path only: a query may hold a secret).
        url: String,
        /// The connection's base URL.
        base: String,
    },
}

/// `value` as one path segment, or an error when it is `.` or `..`.
pub fn segment(value: &str) -> Result<String, UrlError> {
    if value == "." || value == ".." {
        return Err(UrlError::DotSegment(value.to_owned()));
    }
    Ok(utf8_percent_encode(value, SEGMENT).to_string())
}

/// Parse `url`.
pub fn parse(url: &str) -> Result<Url, UrlError> {
    Url::parse(url).map_err(|e| UrlError::Invalid {
        url: url.to_owned(),
        why: e.to_string(),
    })
}

/// `path` (already rendered, its values encoded) appended to `base_url`,
/// checked to stay under it.
pub fn join(base_url: &str, path: &str) -> Result<Url, UrlError> {
    join_parsed(base_url, &parse(base_url), path)
}

/// [`join`] with `base_url` parsed once beforehand (`base`: [`parse`]'s
/// answer, kept by the connection): one URL parsed per request, not two.
pub fn join_parsed(
    base_url: &str,
    base: &Result<Url, UrlError>,
    path: &str,
) -> Result<Url, UrlError> {
    let url = format!(
        "{}/{}",
        base_url.trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    let url = parse(&url)?;
    within(&url, base.as_ref().map_err(Clone::clone)?, base_url)?;
    Ok(url)
}

/// Whether `url` stays on `base_url`'s origin and under its path.
pub fn check_within(url: &Url, base_url: &str) -> Result<(), UrlError> {
    within(url, &parse(base_url)?, base_url)
}

/// [`check_within`], `base` being `base_url` parsed.
fn within(url: &Url, base: &Url, base_url: &str) -> Result<(), UrlError> {
    let prefix = base.path().trim_end_matches('/');
    let path = url.path();
    let under = path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'));
    if same_origin(url, base) && under {
        Ok(())
    } else {
        Err(UrlError::Outside {
            url: format!("{}{}", origin(url), path),
            base: base_url.to_owned(),
        })
    }
}

/// Same scheme, host and port.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// `scheme://host[:port]`.
pub fn origin(u: &Url) -> String {
    u.origin().ascii_serialization()
}

/// Why a redirect was not followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectRefused {
    /// To another origin.
    #[error(
        "redirected ({status}) to another origin {origin} (not followed: credentials stay with their connection)"
    )]
    OtherOrigin {
        /// The redirect's status.
        status: u16,
        /// Where it pointed (origin only).
        origin: String,
    },
    /// Too many in a row.
    #[error("redirected ({status}) more than {MAX_REDIRECTS} times")]
    TooMany {
        /// The last redirect's status.
        status: u16,
    },
}

impl RedirectRefused {
    /// The status of the redirect that was refused.
    pub fn status(&self) -> u16 {
        match self {
            Self::OtherOrigin { status, .. } | Self::TooMany { status } => *status,
        }
    }

    /// The refusal inside a reqwest error, if that is what it is.
    pub fn find(e: &reqwest::Error) -> Option<Self> {
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            if let Some(r) = s.downcast_ref::<Self>() {
                return Some(r.clone());
            }
            src = s.source();
        }
        None
    }
}

/// Follow a redirect only within the first request's origin, at most
/// [`MAX_REDIRECTS`] times.
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let status = attempt.status().as_u16();
        let first = attempt.previous().first().cloned();
        match first {
            Some(first) if !same_origin(&first, attempt.url()) => {
                let origin = origin(attempt.url());
                attempt.error(RedirectRefused::OtherOrigin { status, origin })
            }
            _ if attempt.previous().len() > MAX_REDIRECTS => {
                attempt.error(RedirectRefused::TooMany { status })
            }
            _ => attempt.follow(),
        }
    })
}

/// Every HTTP client ferry builds starts here: the redirect rule above and no `Referer`.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(redirect_policy())
        .referer(false)
        .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_one_segment() {
        assert_eq!(segment("a/b").unwrap(), "a%2Fb");
        assert_eq!(segment(r"..\..\admin").unwrap(), "..%5C..%5Cadmin");
        assert_eq!(segment("%2e%2e").unwrap(), "%252e%252e");
        assert_eq!(segment("x?admin=1#f").unwrap(), "x%3Fadmin%3D1%23f");
        assert_eq!(segment("Zoë 1").unwrap(), "Zo%C3%AB%201");
        assert_eq!(segment("a.b-c_d~").unwrap(), "a.b-c_d~");
        assert!(matches!(segment(".."), Err(UrlError::DotSegment(_))));
        assert!(matches!(segment("."), Err(UrlError::DotSegment(_))));
        assert_eq!(segment("...").unwrap(), "...");
    }

    #[test]
    fn join_stays_under_the_base() {
        let base = "http://host/base/v1";
        let ok = join(base, "/contacts/a%2Fb").unwrap();
        assert_eq!(ok.as_str(), "http://host/base/v1/contacts/a%2Fb");
        assert_eq!(join(base, "").unwrap().as_str(), "http://host/base/v1/");
        assert_eq!(
            join("http://host/", "/x").unwrap().as_str(),
            "http://host/x"
        );
        for bad in ["/../admin", "/x/../../admin", "/%2e%2e/admin", "/..\\admin"] {
            let e = join(base, bad).unwrap_err();
            assert!(matches!(e, UrlError::Outside { .. }), "{bad}: {e}");
        }
        // A sibling whose name starts like the base path is not under it.
        assert!(join("http://host/base", "/../base2").is_err());
    }

    #[test]
    fn within_checks_origin_and_path() {
        let base = "https://api.example.com/v2";
        let ok = |u: &str| check_within(&parse(u).unwrap(), base).is_ok();
        assert!(ok("https://api.example.com/v2/items?page=2"));
        assert!(ok("https://api.example.com:443/v2"));
        assert!(!ok("http://api.example.com/v2/items"));
        assert!(!ok("https://api.example.com:8443/v2/items"));
        assert!(!ok("https://evil.example.com/v2/items"));
        assert!(!ok("https://api.example.com/v3/items"));
        let e =
            check_within(&parse("https://evil.example/v2?key=s3cret").unwrap(), base).unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
}
