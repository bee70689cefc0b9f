//! Checks on webhook sources: what each verification scheme needs and accepts,
//! the event-id template, and limits.
//!
//! The scheme table agrees with the verifier's (`verify::build`): a config the
//! loader accepts is one the verifier can build.

use super::diagnostic::Path;
use super::model::{Scheme, Secrets, Source, Verify};
use super::templates::{Jinja, Scope};
use super::validate::{Report, header};

pub(crate) fn check(s: &Source, path: &Path, jinja: &Jinja, r: &mut Report<'_>) {
    verify(&s.verify, &path.key("verify"), r);
    if let Some(id) = &s.event_id {
        jinja.template(id, &path.key("event_id"), &Scope::NO_STEPS, r);
    }
    if let Some(respond) = &s.respond {
        let rp = path.key("respond");
        if !(200..=299).contains(&respond.status) {
            r.error(
                &rp.key("status"),
                format!(
                    "respond.status answers an accepted event, so it must be a 2xx (the sender would retry anything else); got {}",
                    respond.status
                ),
            );
        }
        if let Some(body) = &respond.body {
            jinja.json(body, &rp.key("body"), &Scope::NO_STEPS, r);
        }
    }
    if s.dedupe_window.is_some_and(|d| d.get().is_zero()) {
        r.error(
            &path.key("dedupe_window"),
            "dedupe_window must be greater than zero",
        );
    }
    if s.max_body_bytes == Some(0) {
        r.error(
            &path.key("max_body_bytes"),
            "max_body_bytes must be greater than zero",
        );
    }
}

fn verify(v: &Verify, path: &Path, r: &mut Report<'_>) {
    let scheme = v.scheme.as_str();
    for field in v.settings_not_read() {
        r.error(
            &path.key(field),
            format!("`{field}` does not apply to scheme {scheme}"),
        );
    }

    match (v.scheme, &v.secret) {
        (Scheme::None, _) => r.warn(
            &path.key("scheme"),
            "scheme none: this source accepts unsigned requests, so anyone who knows its URL can start its workflows",
        ),
        (Scheme::Basic, None) => r.error(&path.key("secret"), "scheme basic needs a `secret` (the password, as ${env:NAME})"),
        (_, None) => r.error(&path.key("secret"), format!("scheme {scheme} needs a `secret`, as ${{env:NAME}}")),
        (_, Some(Secrets::Many(list))) if list.is_empty() => {
            r.error(&path.key("secret"), "the list of secrets is empty; give at least one");
        }
        _ => {}
    }
    if matches!(v.scheme, Scheme::HmacSha256 | Scheme::ApiKey) && v.header.is_none() {
        r.error(&path.key("header"), format!("scheme {scheme} needs a `header`: the request header that carries the signature or key"));
    }
    if let Some(h) = &v.header {
        header(h, None, &path.key("header"), r);
    }
    if v.scheme == Scheme::Basic {
        match v.username.as_deref() {
            None => r.error(&path.key("username"), "scheme basic needs a `username`"),
            Some(u) if u.is_empty() || u.contains(':') => {
                r.error(
                    &path.key("username"),
                    "username must be non-empty and must not contain `:`",
                );
            }
            Some(_) => {}
        }
    }
    if v.tolerance.is_some_and(|t| t.get().is_zero()) {
        r.error(
            &path.key("tolerance"),
            "tolerance must be greater than zero",
        );
    }
    if v.scheme == Scheme::HmacSha256 {
        stamped(v, path, r);
    }
}

/// `hmac-sha256` replay protection: `signed_content` needs a `timestamp_header`;
/// a `timestamp_header` alone signs `{timestamp}.{body}` (as the verifier does).
fn stamped(v: &Verify, path: &Path, r: &mut Report<'_>) {
    match (&v.timestamp_header, &v.signed_content) {
        (Some(h), Some(content)) => {
            header(h, None, &path.key("timestamp_header"), r);
            if let Err(e) = signed_content(content) {
                r.error(&path.key("signed_content"), e);
            }
        }
        (Some(h), None) => header(h, None, &path.key("timestamp_header"), r),
        (None, Some(_)) => r.error(
            &path.key("timestamp_header"),
            "`signed_content` needs `timestamp_header`, the header that carries the timestamp",
        ),
        (None, None) => {
            if v.tolerance.is_some() {
                r.error(&path.key("tolerance"), "`tolerance` needs `timestamp_header` (without a timestamp there is no replay window)");
            }
        }
    }
    if v.timestamp_unit.is_some() && v.timestamp_header.is_none() {
        r.error(
            &path.key("timestamp_unit"),
            "`timestamp_unit` needs `timestamp_header`, the header whose unit it names",
        );
    }
    if v.prefix.as_deref() == Some("") {
        r.error(&path.key("prefix"), "prefix is empty; leave it out instead");
    }
}

/// Only `{timestamp}` and `{body}`, each exactly once (as the verifier reads it).
fn signed_content(text: &str) -> Result<(), String> {
    let mut rest = text;
    let (mut bodies, mut stamps) = (0, 0);
    while let Some(i) = rest.find(['{', '}']) {
        rest = &rest[i..];
        if let Some(after) = rest.strip_prefix("{timestamp}") {
            stamps += 1;
            rest = after;
        } else if let Some(after) = rest.strip_prefix("{body}") {
            bodies += 1;
            rest = after;
        } else {
            return Err(format!(
                "only the placeholders {{timestamp}} and {{body}} are known (in {text:?})"
            ));
        }
    }
    if bodies != 1 || stamps != 1 {
        return Err(format!(
            "must contain {{body}} and {{timestamp}} exactly once each (in {text:?})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_content_needs_body_and_timestamp_once() {
        assert!(signed_content("{timestamp}.{body}").is_ok());
        assert!(signed_content("v0:{timestamp}:{body}").is_ok());
        assert!(
            signed_content("{timestamp}")
                .unwrap_err()
                .contains("{body}")
        );
        assert!(signed_content("{body}{body}{timestamp}").is_err());
        assert!(
            signed_content("{id}.{timestamp}.{body}")
                .unwrap_err()
                .contains("only the placeholders")
        );
    }

    #[test]
    fn scheme_names_are_as_written_in_config() {
        use Scheme::*;
        for s in [
            HmacSha256,
            Github,
            Stripe,
            Shopify,
            Slack,
            StandardWebhooks,
            ApiKey,
            Basic,
            None,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str(), "{s:?}");
        }
    }
}
