//! Who may use the console: the session cookie, the login with the console
//! token, and the CSRF token every state-changing POST carries.
//!
//! A session is a cookie `v1.<expires ms>.<nonce>.<mac>`: an HMAC-SHA256
//! over its expiry and a random nonce, keyed by a key derived from the
//! console token (so every instance of the Lambda accepts the sessions of
//! the others), or by a random per-process key when the console is open (a
//! loopback `ferry dev`). Its CSRF token is an HMAC of the nonce under the
//! same key: one per session, checked in constant time (`verify_slice`).
//! The console token itself is compared as SHA-256 digests with `subtle`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock::Millis;

type HmacSha256 = Hmac<Sha256>;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "ferry_console";
/// How long a session lasts.
pub const SESSION_TTL_MS: Millis = 12 * 60 * 60 * 1000;
/// The form field (or `x-csrf-token` header) holding the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// How the console is entered.
#[derive(Clone)]
pub enum Access {
    /// No login (a `ferry dev` on a loopback listener). Sessions (and their
    /// CSRF tokens) are still issued, without asking.
    Open,
    /// A login with this console token is required.
    Token(String),
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Access::Open => f.write_str("Open"),
            Access::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

/// The console token named by `reference`, which must be a reference
/// (`${env:NAME}`), never the token itself, looked up with `env`.
pub fn resolve_token(
    reference: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let name = reference
        .trim()
        .strip_prefix("${env:")
        .and_then(|r| r.strip_suffix('}'))
        .filter(|n| {
            !n.is_empty()
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !n.starts_with(|c: char| c.is_ascii_digit())
        })
        .ok_or_else(|| {
            "the console token must be a reference such as ${env:FERRY_CONSOLE_SECRET}, \
             not the token itself"
                .to_owned()
        })?;
    let token = env(name).ok_or_else(|| format!("the console token ${{env:{name}}} is not set"))?;
    if token.len() < 16 {
        return Err(format!(
            "the console token in ${{env:{name}}} is {} characters; use at least 16",
            token.len()
        ));
    }
    Ok(token)
}

/// A session, once its cookie is checked (or issued).
#[derive(Debug, Clone)]
pub struct Session {
    /// The CSRF token of this session, for forms.
    pub csrf: String,
    /// The cookie to set, when this session was just issued.
    pub issued: Option<String>,
}

/// The keys and rules of sessions.
pub struct Keys {
    key: [u8; 32],
    token_digest: Option<[u8; 32]>,
}

impl Keys {
    /// Keys for `access`.
    pub fn new(access: &Access) -> Keys {
        match access {
            Access::Open => Keys {
                key: rand::random(),
                token_digest: None,
            },
            Access::Token(token) => {
                let mut mac = HmacSha256::new_from_slice(token.as_bytes())
                    .expect("HMAC takes keys of any length");
                mac.update(b"ferry.console.session.v1");
                Keys {
                    key: mac.finalize().into_bytes().into(),
                    token_digest: Some(Sha256::digest(token.as_bytes()).into()),
                }
            }
        }
    }

    /// Whether a login is required.
    pub fn needs_login(&self) -> bool {
        self.token_digest.is_some()
    }

    fn mac(&self, parts: &[&[u8]]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        mac
    }

    /// Whether `given` is the console token (constant time).
    pub fn token_matches(&self, given: &str) -> bool {
        let Some(want) = &self.token_digest else {
            return false;
        };
        let got: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        bool::from(got.ct_eq(want))
    }

    /// A new session cookie value, expiring `SESSION_TTL_MS` after `now`.
    pub fn issue(&self, now: Millis) -> (String, Session) {
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let expires = (now + SESSION_TTL_MS).to_string();
        let tag = self
            .mac(&[b"session", expires.as_bytes(), nonce.as_bytes()])
            .finalize()
            .into_bytes();
        let value = format!("v1.{expires}.{nonce}.{}", hex::encode(tag));
        let session = Session {
            csrf: self.csrf_of(&nonce),
            issued: Some(value.clone()),
        };
        (value, session)
    }

    /// The session of cookie `value`, if its MAC holds and it has not expired at `now`.
    pub fn check(&self, value: &str, now: Millis) -> Option<Session> {
        let mut parts = value.split('.');
        let (Some("v1"), Some(expires), Some(nonce), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let tag = hex::decode(tag).ok()?;
        self.mac(&[b"session", expires.as_bytes(), nonce.as_bytes()])
            .verify_slice(&tag)
            .ok()?;
        if expires.parse::<Millis>().ok()? <= now {
            return None;
        }
        Some(Session {
            csrf: self.csrf_of(nonce),
            issued: None,
        })
    }

    fn csrf_of(&self, nonce: &str) -> String {
        hex::encode(
            self.mac(&[b"csrf", nonce.as_bytes()])
                .finalize()
                .into_bytes(),
        )
    }

    /// Whether `given` is the CSRF token of the session whose token is
    /// `expected` (constant time).
    pub fn csrf_matches(expected: &str, given: &str) -> bool {
        let (Ok(a), Ok(b)) = (hex::decode(expected), hex::decode(given)) else {
            return false;
        };
        a.len() == b.len() && bool::from(a.ct_eq(&b))
    }
}

/// The `Set-Cookie` value of session `value` under `path`; `Secure` unless
/// `secure` is off (plain-http loopback `ferry dev`).
pub fn set_cookie(value: &str, path: &str, secure: bool) -> String {
    let max_age = SESSION_TTL_MS / 1000;
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    )
}

/// The `Set-Cookie` value that ends the session.
pub fn clear_cookie(path: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}=; Path={path}; Max-Age=0; HttpOnly; SameSite=Strict{secure}")
}

/// The session cookie's value in a `Cookie` header.
pub fn cookie_value(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_signed_and_expire() {
        let keys = Keys::new(&Access::Token("correct horse battery".into()));
        let (value, s) = keys.issue(1_000);
        let back = keys.check(&value, 2_000).expect("valid");
        assert_eq!(back.csrf, s.csrf);
        assert!(
            keys.check(&value, 1_000 + SESSION_TTL_MS).is_none(),
            "expired"
        );
        let forged = value.replacen("v1.", "v1.9", 1);
        assert!(keys.check(&forged, 2_000).is_none(), "expiry is signed");
        let other = Keys::new(&Access::Token("another token entirely".into()));
        assert!(other.check(&value, 2_000).is_none(), "key is the token's");
        assert!(Keys::csrf_matches(&s.csrf, &s.csrf));
        assert!(!Keys::csrf_matches(&s.csrf, &"0".repeat(64)));
        assert!(keys.token_matches("correct horse battery"));
        assert!(!keys.token_matches("correct horse"));
    }

    #[test]
    fn the_token_is_a_reference() {
        let env = |n: &str| (n == "T").then(|| "0123456789abcdef".to_owned());
        assert_eq!(resolve_token("${env:T}", &env).unwrap(), "0123456789abcdef");
        assert!(
            resolve_token("0123456789abcdef", &env)
                .unwrap_err()
                .contains("reference")
        );
        assert!(
            resolve_token("${env:NOPE}", &env)
                .unwrap_err()
                .contains("not set")
        );
        let short = |_: &str| Some("short".to_owned());
        assert!(
            resolve_token("${env:T}", &short)
                .unwrap_err()
                .contains("at least 16")
        );
    }
}
