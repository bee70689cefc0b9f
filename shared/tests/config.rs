//! The config loader from the outside: load, report every problem with its
//! path and line, warn, resolve secrets, describe the format.

use std::time::Duration;

use ferry::config::{
    Auth, ConfigErrors, Loaded, Method, Scheme, Secrets, json_schema, load_file, load_str,
};

const FIXTURE: &str = include_str!("fixtures/issue-example.yaml");

fn env(name: &str) -> Option<String> {
    let v = match name {
        "CRM_URL" => "https://crm.example.com/v2",
        "CRM_TOKEN" => "crm-token-0123456789",
        "CHAT_URL" => "https://chat.example.com",
        "FORM_SECRET" => "form-secret-abcdef",
        _ => return None,
    };
    Some(v.to_owned())
}

fn load(yaml: &str) -> Result<Loaded, ConfigErrors> {
    load_str(yaml, &env)
}

/// The displayed errors (`line N: path: message`).
fn errors(yaml: &str) -> Vec<String> {
    match load(yaml) {
        Ok(_) => panic!("expected errors, the config loaded"),
        Err(e) => e.lines(),
    }
}

/// Named `config` so that `cargo test -p ferry-shared config` runs these too.
mod config {
    use super::*;

    #[test]
    fn the_issue_example_loads_with_its_values() {
        let loaded = load(FIXTURE).unwrap();
        let c = &loaded.config;
        assert_eq!(c.version, 1);

        let crm = &c.connections["crm"];
        assert_eq!(crm.base_url, "https://crm.example.com/v2");
        assert!(
            matches!(&crm.auth, Some(Auth::Bearer { token }) if token == "crm-token-0123456789")
        );
        let rl = crm.rate_limit.as_ref().unwrap();
        assert_eq!(
            (rl.requests.get(), rl.per.get()),
            (100, Duration::from_secs(10))
        );
        let chat = &c.connections["chat"];
        assert_eq!(chat.base_url, "https://chat.example.com");
        assert!(chat.auth.is_none());
        let rl = chat.rate_limit.as_ref().unwrap();
        assert_eq!(
            (rl.requests.get(), rl.per.get()),
            (1, Duration::from_secs(1))
        );

        let form = &c.sources["website-form"];
        assert_eq!(form.verify.scheme, Scheme::HmacSha256);
        assert_eq!(form.verify.header.as_deref(), Some("X-Signature"));
        assert!(matches!(&form.verify.secret, Some(Secrets::One(s)) if s == "form-secret-abcdef"));
        assert_eq!(form.event_id.as_deref(), Some("{{ body.submission_id }}"));

        let wf = &c.workflows["new-lead"];
        assert_eq!(wf.trigger.source, "website-form");
        assert_eq!(wf.when.as_deref(), Some("body.email is defined"));
        let ids: Vec<&str> = wf.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["contact", "notify"]);
        let notify = &wf.steps[1];
        assert_eq!(
            (
                notify.connection.as_str(),
                notify.request.method,
                notify.request.path.as_str()
            ),
            ("chat", Method::Post, "/messages")
        );
        assert_eq!(
            notify.request.json.as_ref().unwrap()["text"],
            "New lead {{ body.email }} is contact {{ steps.contact.response.body.id }}"
        );
        assert_eq!(
            wf.steps[0].request.json.as_ref().unwrap()["email"],
            "{{ body.email | lower | trim }}"
        );

        // Secrets are collected for redaction; URLs are not secrets.
        let mut secrets = loaded.secrets.clone();
        secrets.sort();
        assert_eq!(secrets, ["crm-token-0123456789", "form-secret-abcdef"]);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        // Debug output never shows them either.
        let debug = format!("{loaded:?}");
        assert!(
            !debug.contains("crm-token-0123456789") && !debug.contains("form-secret-abcdef"),
            "{debug}"
        );
    }

    #[test]
    fn the_issue_example_without_its_environment_names_each_missing_variable() {
        let errs = load_str(FIXTURE, &|_| None).unwrap_err().lines();
        assert_eq!(
            errs,
            [
                "line 4: connections.crm.base_url: environment variable CRM_URL is not set",
                "line 5: connections.crm.auth.token: environment variable CRM_TOKEN is not set",
                "line 8: connections.chat.base_url: environment variable CHAT_URL is not set",
                "line 12: sources.website-form.verify.secret: environment variable FORM_SECRET is not set",
            ]
        );
    }

    const MANY_MISTAKES: &str = r#"version: 1
connections:
  crm:
    base_url: "${env:CRM_URL}"
    auth: { type: bearer, token: "${env:CRM_TOKEN}" }
    rate_limit: { requests: 100, per: 10 parsecs }
  chat:
    base_url: "${env:CHAT_URL}"
    auth: { type: bearer, token: "xoxb-literal-token" }
    timout: 5s
sources:
  website-form:
    verify: { scheme: hmac-sha256, header: X-Signature, secret: "${env:FORM_SECRET}" }
    event_id: "{{ body.submission_id }}"
workflows:
  new-lead:
    trigger: { source: website-from }
    steps:
      - id: contact
        connection: crm
        request:
          path: /contacts/{{ body.email
          headers: { X-Api-Version: "${env:API_VERSION}" }
      - id: contact
        connection: chatt
        request: { path: /messages }
"#;

    #[test]
    fn every_mistake_is_reported_at_once_with_path_and_line() {
        let errs = errors(MANY_MISTAKES);
        let expected = [
            r#"line 6: connections.crm.rate_limit.per: invalid duration "10 parsecs" (unknown time unit "parsecs", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)); expected e.g. "500ms", "10s", "5m""#,
            "line 9: connections.chat.auth.token: secrets must be references such as ${env:NAME}; literal secrets end up in version control",
            r#"line 10: connections.chat.timout: unknown key "timout"; did you mean "timeout"?"#,
            r#"line 17: workflows.new-lead.trigger.source: unknown source "website-from"; did you mean "website-form"?"#,
            "line 22: workflows.new-lead.steps[0].request.path: template syntax error: unexpected end of input, expected end of variable block",
            "line 23: workflows.new-lead.steps[0].request.headers.X-Api-Version: environment variable API_VERSION is not set",
            r#"line 24: workflows.new-lead.steps[1].id: duplicate step id "contact" (also steps[0]); ids must be unique in a workflow"#,
            r#"line 25: workflows.new-lead.steps[1].connection: unknown connection "chatt"; did you mean "chat"?"#,
        ];
        assert_eq!(errs, expected);
        assert!(
            !errs.concat().contains("xoxb-literal-token"),
            "a literal secret was echoed"
        );
    }

    #[test]
    fn errors_display_with_the_file_name_one_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.yaml");
        std::fs::write(&path, MANY_MISTAKES).unwrap();
        let e = load_file(&path, &env).unwrap_err();
        let text = e.to_string();
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            format!("{}: 8 configuration errors", path.display())
        );
        assert_eq!(
            lines.nth(7).unwrap(),
            r#"  line 25: workflows.new-lead.steps[1].connection: unknown connection "chatt"; did you mean "chat"?"#
        );
        assert_eq!(e.file.as_deref(), Some(path.as_path()));

        let missing = load_file(&dir.path().join("nope.yaml"), &env).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("nope.yaml: 1 configuration error\n  cannot read the file:"),
            "{missing}"
        );
    }

    #[test]
    fn a_file_that_loads_from_disk_is_the_same_as_from_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.yaml");
        std::fs::write(&path, FIXTURE).unwrap();
        let loaded = load_file(&path, &env).unwrap();
        assert_eq!(loaded.config.workflows["new-lead"].steps.len(), 2);
    }

    #[test]
    fn yaml_syntax_errors_report_a_line() {
        let errs =
            errors("version: 1\nconnections:\n  crm: { base_url: \"https://x\"\n  chat: {}\n");
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with("line 4: YAML syntax error at column "),
            "{errs:?}"
        );

        let errs = errors("version: 1\nsources:\n  a: {}\n  a: {}\n");
        assert!(
            errs[0].starts_with("line 4: YAML syntax error"),
            "duplicate keys are a syntax error: {errs:?}"
        );
    }

    #[test]
    fn scheme_none_is_a_warning_not_an_error() {
        let yaml = "version: 1\nsources:\n  open:\n    verify: { scheme: none }\nconnections:\n  c: { base_url: \"https://x.example\" }\nworkflows:\n  w:\n    trigger: { source: open }\n    steps: [{ id: a, connection: c, request: { path: / } }]\n";
        let loaded = load(yaml).unwrap();
        let w: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            w,
            [
                "line 4: sources.open.verify.scheme: scheme none: this source accepts unsigned requests, so anyone who knows its URL can start its workflows"
            ]
        );
        assert_eq!(loaded.config.sources["open"].verify.scheme, Scheme::None);
    }

    #[test]
    fn json_schema_is_json_and_names_every_top_level_key() {
        let schema = json_schema();
        let text = serde_json::to_string(&schema).unwrap();
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        let props = back["properties"]
            .as_object()
            .expect("top-level properties");
        for key in ["version", "connections", "sources", "workflows", "syncs"] {
            assert!(props.contains_key(key), "schema lacks {key}");
        }
        assert_eq!(back["additionalProperties"], false);
        assert_eq!(back["required"], serde_json::json!(["version"]));
    }

    #[test]
    fn values_from_the_environment_are_shown_as_their_reference() {
        let yaml = "version: 1\nconnections:\n  crm:\n    base_url: \"${env:CRM_TOKEN}\"\n    rate_limit: { requests: \"${env:FORM_SECRET}\", per: 1s }\n";
        let errs = errors(yaml);
        assert_eq!(
            errs,
            [
                r#"line 4: connections.crm.base_url: base_url "${env:CRM_TOKEN}" is not an absolute http(s) URL such as "https://api.example.com/v2""#,
                r#"line 5: connections.crm.rate_limit.requests: expected a whole number greater than 0, found the string "${env:FORM_SECRET}""#,
            ]
        );
    }

    #[test]
    fn several_mistakes_in_one_entry_are_all_reported() {
        let yaml = "version: 1\nconnections:\n  crm:\n    base_url: https://x.example\n    rate_limit: { requests: 0, per: soon, headroom: lots }\n    timeout: [1]\n";
        let errs = errors(yaml);
        assert_eq!(
            errs,
            [
                "line 5: connections.crm.rate_limit.requests: invalid value 0: expected a whole number greater than 0",
                r#"line 5: connections.crm.rate_limit.per: invalid duration "soon" (expected number at 0); expected e.g. "500ms", "10s", "5m""#,
                r#"line 5: connections.crm.rate_limit.headroom: expected a number, found the string "lots""#,
                "line 6: connections.crm.timeout: expected a string, found a list",
            ]
        );
    }

    #[test]
    fn typos_in_keys_values_and_names_get_suggestions() {
        let yaml = r#"versoin: 1
connections:
  crm: { bas_url: "https://x.example", auth: { type: bearr, token: "${env:CRM_TOKEN}" } }
sources:
  s: { verify: { scheme: hmac-sha265, header: X-Sig, secret: "${env:FORM_SECRET}" } }
workflows:
  w:
    trigger: { source: s }
    steps:
      - { id: a, connection: crm, request: { method: post, path: / } }
"#;
        let errs = errors(yaml);
        assert_eq!(
            errs,
            [
                r#"line 1: versoin: unknown key "versoin"; did you mean "version"?"#,
                r#"line 3: connections.crm.bas_url: unknown key "bas_url"; did you mean "base_url"?"#,
                r#"line 3: connections.crm.auth.type: unknown value "bearr"; did you mean "bearer"?"#,
                r#"line 5: sources.s.verify.scheme: unknown value "hmac-sha265"; did you mean "hmac-sha256"?"#,
                r#"line 10: workflows.w.steps[0].request.method: unknown value "post"; did you mean "POST"?"#,
            ]
        );
    }

    #[test]
    fn steps_refer_only_to_earlier_steps_and_ids_must_be_identifiers() {
        let yaml = r#"version: 1
connections:
  c: { base_url: "https://x.example" }
sources:
  s: { verify: { scheme: github, secret: "${env:FORM_SECRET}" } }
workflows:
  w:
    trigger: { source: s }
    when: "steps.a.response.status == 200"
    steps:
      - id: a
        connection: c
        request: { path: "/{{ steps.b.response.body.id }}" }
      - id: b
        connection: c
        when: "steps.a.response.status == 201 and steps.b is defined"
        request: { path: /, json: { x: ["{{ steps.aa.x }}"] } }
      - id: send-mail
        connection: c
        request: { path: / }
"#;
        let errs = errors(yaml);
        assert_eq!(
            errs,
            [
                "line 9: workflows.w.when: refers to steps.a, but no step has run at this point",
                "line 13: workflows.w.steps[0].request.path: refers to steps.b, which has not run yet here; a step sees only the results of the steps before it",
                "line 16: workflows.w.steps[1].when: refers to steps.b, which is this step; a step sees only the results of the steps before it",
                r#"line 17: workflows.w.steps[1].request.json.x[0]: refers to steps.aa, but there is no step "aa"; did you mean "a"?"#,
                r#"line 18: workflows.w.steps[2].id: step id "send-mail" cannot be written as steps.send-mail in a later template; use letters, digits and `_`, not starting with a digit (e.g. "send_mail")"#,
            ]
        );
    }

    #[test]
    fn verification_schemes_get_what_they_need_and_nothing_else() {
        let yaml = r#"version: 1
sources:
  a: { verify: { scheme: hmac-sha256, secret: "${env:FORM_SECRET}" } }
  b: { verify: { scheme: basic, secret: "${env:FORM_SECRET}" } }
  c: { verify: { scheme: github, secret: "${env:FORM_SECRET}", tolerance: 5m } }
  d: { verify: { scheme: stripe } }
  e: { verify: { scheme: hmac-sha256, header: X-Sig, secret: "${env:FORM_SECRET}", timestamp_header: "X Ts" } }
  f: { verify: { scheme: hmac-sha256, header: X-Sig, secret: "${env:FORM_SECRET}", timestamp_header: X-Ts, signed_content: "{timestamp}" } }
  g: { verify: { scheme: api-key, header: "Bad Header", secret: "${env:FORM_SECRET}" } }
"#;
        let errs = errors(yaml);
        assert_eq!(
            errs,
            [
                "line 3: sources.a.verify.header: scheme hmac-sha256 needs a `header`: the request header that carries the signature or key",
                "line 4: sources.b.verify.username: scheme basic needs a `username`",
                "line 5: sources.c.verify.tolerance: `tolerance` does not apply to scheme github",
                "line 6: sources.d.verify.secret: scheme stripe needs a `secret`, as ${env:NAME}",
                r#"line 7: sources.e.verify.timestamp_header: "X Ts" is not a valid HTTP header name"#,
                r#"line 8: sources.f.verify.signed_content: must contain {body} and {timestamp} exactly once each (in "{timestamp}")"#,
                r#"line 9: sources.g.verify.header: "Bad Header" is not a valid HTTP header name"#,
            ]
        );
    }

    #[test]
    fn syncs_check_schedule_connection_and_expressions() {
        let yaml = r#"version: 1
connections:
  crm: { base_url: "https://crm.example" }
syncs:
  contacts:
    schedule: rate(1 minutes)
    source:
      connection: cmr
      request: { method: GET, path: "/changes?since={{ watermark }}" }
      records: response.body.results[
      id: record.id
      watermark: record.updated_at
    steps:
      - { id: push, connection: crm, request: { path: "/c/{{ body.id }}" } }
"#;
        let errs = errors(yaml);
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0]
                .starts_with("line 6: syncs.contacts.schedule: rate(1 minutes): use the singular"),
            "{errs:?}"
        );
        assert_eq!(
            errs[1],
            r#"line 8: syncs.contacts.source.connection: unknown connection "cmr"; did you mean "crm"?"#
        );
        assert!(
            errs[2].starts_with("line 10: syncs.contacts.source.records: expression syntax error:"),
            "{errs:?}"
        );
    }

    #[test]
    fn sync_shapes_are_checked_with_paths() {
        let yaml = r#"version: 1
connections:
  api: { base_url: "https://api.example" }
syncs:
  "bad name":
    schedule: rate(5 minutes)
    budget: 0s
    source:
      connection: api
      request: { method: GET, path: /items }
      pagination: { style: cursor, token: "response.body.next", param: "" }
      records: response.body.items
      id: record.id
      start: "2024-01-01T00:00:00Z"
      deleted: record.gone
    steps:
      - { id: push, connection: api, request: { path: "/c" } }
  both:
    schedule: rate(1 hour)
    two_way:
      fields: {}
      a:
        source: { connection: api, request: { path: /a }, records: response.body, id: record.id }
        write: []
      b:
        source: { connection: apo, request: { path: /b }, records: response.body, id: record.id, watermark: record.t }
        write:
          - { id: put, connection: api, request: { path: "/b/{{ body.key }}" } }
    steps:
      - { id: push, connection: api, request: { path: "/c" } }
"#;
        let errs = errors(yaml);
        let want = [
            "line 5: syncs[\"bad name\"]: a sync name is part of its cursor",
            "line 7: syncs[\"bad name\"].budget: budget must be greater than zero",
            "line 11: syncs[\"bad name\"].source.pagination.param: name the query parameter",
            "line 14: syncs[\"bad name\"].source.start: `start` is a first watermark",
            "syncs[\"bad name\"].on_delete: deleted records need steps to run",
            "syncs.both.two_way.fields: list at least one field",
            "syncs.both.two_way.a.source.watermark: a two-way side needs `watermark`",
            "syncs.both.two_way.a.write: there are no steps",
            "line 26: syncs.both.two_way.b.source.connection: unknown connection \"apo\"",
            "line 29: syncs.both.steps: `steps` is for one-way syncs",
        ];
        for w in want {
            assert!(
                errs.iter().any(|e| e.contains(w)),
                "missing {w:?} in {errs:#?}"
            );
        }
    }

    #[test]
    fn plain_scalars_are_kept_as_written_in_string_fields() {
        let yaml = "version: 1\nconnections:\n  c:\n    base_url: https://x.example\n    headers: { X-Version: 2.10, X-Flag: true }\n";
        let loaded = load(yaml).unwrap();
        let h = &loaded.config.connections["c"].headers;
        assert_eq!(
            (h["X-Version"].as_str(), h["X-Flag"].as_str()),
            ("2.10", "true")
        );
        // An unused connection is worth a warning.
        assert_eq!(
            loaded.warnings[0].to_string(),
            "line 3: connections.c: no step or sync uses this connection"
        );
    }

    #[test]
    fn a_step_that_does_not_parse_still_has_its_references_checked() {
        let yaml = r#"version: 1
connections:
  chat: { base_url: "https://chat.example" }
sources:
  s: { verify: { scheme: github, secret: "${env:FORM_SECRET}" } }
workflows:
  w:
    trigger: { source: s }
    steps:
      - id: notify
        connection: chatt
        reqest: { path: /messages }
"#;
        assert_eq!(
            errors(yaml),
            [
                r#"line 11: workflows.w.steps[0].connection: unknown connection "chatt"; did you mean "chat"?"#,
                r#"line 12: workflows.w.steps[0].reqest: unknown key "reqest"; did you mean "request"?"#,
            ]
        );
    }

    #[test]
    fn version_must_be_one_and_present() {
        assert_eq!(
            errors("version: 2\n"),
            ["line 1: version: unsupported version 2; this ferry reads version 1"]
        );
        assert_eq!(
            errors("connections: {}\n"),
            [r#"line 1: missing required key "version"; start the file with `version: 1`"#]
        );
        assert_eq!(
            errors(""),
            ["the file is empty; a config starts with `version: 1`"]
        );
    }

    #[test]
    fn execution_settings_load_and_their_mistakes_are_reported() {
        let ok = r#"
version: 1
connections:
  crm:
    base_url: "${env:CRM_URL}"
    classify: { "423": retry, "5xx": retry }
    auth: { type: oauth2, token_url: "https://auth.example.com/token", client_id: ferry, client_secret: "${env:CRM_TOKEN}" }
sources:
  form: { verify: { scheme: hmac-sha256, header: X-Signature, secret: "${env:FORM_SECRET}" } }
workflows:
  w:
    trigger: { source: form }
    retry: { max_age: 2h }
    steps:
      - id: upsert
        connection: crm
        classify: { "409": success }
        request: { path: /contacts, json: { email: "{{ body.email }}" } }
        batch: { max_items: 50, path: /contacts/batch, json: { records: "{{ items }}" }, results: response.body.results, item_status: result.status }
"#;
        let loaded = load(ok).unwrap();
        let step = &loaded.config.workflows["w"].steps[0];
        assert_eq!(step.batch.as_ref().unwrap().max_items.get(), 50);
        assert_eq!(
            loaded.config.workflows["w"]
                .retry
                .as_ref()
                .unwrap()
                .max_age
                .unwrap()
                .get(),
            Duration::from_secs(7200)
        );
        assert!(matches!(
            loaded.config.connections["crm"].auth,
            Some(Auth::OAuth2 { .. })
        ));
        assert!(loaded.secrets.iter().any(|s| s == "crm-token-0123456789"));
        let debug = format!("{:?}", loaded.config.connections["crm"].auth);
        assert!(!debug.contains("crm-token-0123456789"), "{debug}");

        let bad = r#"
version: 1
connections:
  crm:
    base_url: "${env:CRM_URL}"
    classify: { "6xx": retry }
    auth: { type: oauth2, grant: refresh_token, token_url: "/token", client_id: ferry, client_secret: "literal" }
sources:
  form: { verify: { scheme: hmac-sha256, header: X-Signature, secret: "${env:FORM_SECRET}" } }
workflows:
  w:
    trigger: { source: form }
    retry: { max_age: 0s }
    steps:
      - id: upsert
        connection: crm
        request: { path: /contacts }
        batch: { max_items: 5, path: /bulk, item_status: result.status }
"#;
        let all = errors(bad).join("\n");
        for expected in [
            "line 6: connections.crm.classify.6xx: \"6xx\" is not a status code",
            "connections.crm.auth.client_secret: secrets must be references",
            "connections.crm.auth.token_url: token_url \"/token\" is not an absolute http(s) URL",
            "connections.crm.auth.refresh_token: grant refresh_token needs a `refresh_token`",
            "workflows.w.retry.max_age: max_age must be greater than zero",
            "workflows.w.steps[0].request.json: a batched step needs a `request.json`",
            "workflows.w.steps[0].batch.item_status: `item_status` reads each item's `result`",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }

    #[test]
    fn authorization_code_keys_are_checked_per_grant() {
        let conn = |auth: &str| {
            format!(
                "version: 1\nconnections:\n  books:\n    base_url: https://books.example.com\n    auth: {{ type: oauth2, token_url: \"https://auth.example.com/token\", client_id: ferry, client_secret: \"${{env:CRM_TOKEN}}\", {auth} }}\n"
            )
        };
        let ok = conn(
            "grant: authorization_code, authorize_url: \"https://auth.example.com/authorize?prompt=consent\", redirect_port: 8765",
        );
        let loaded = load(&ok).unwrap_or_else(|e| panic!("{e}"));
        let Some(Auth::OAuth2 {
            grant,
            redirect_port,
            pkce,
            ..
        }) = &loaded.config.connections["books"].auth
        else {
            panic!("not oauth2");
        };
        assert_eq!(*grant, ferry::config::Grant::AuthorizationCode);
        assert_eq!(*redirect_port, Some(8765));
        assert!(*pkce, "PKCE is on by default");
        let cases = [
            (
                "grant: authorization_code",
                "connections.books.auth.authorize_url: grant authorization_code needs an `authorize_url`",
            ),
            (
                "grant: authorization_code, authorize_url: \"/authorize\"",
                "connections.books.auth.authorize_url: authorize_url \"/authorize\" is not an absolute http(s) URL without a fragment",
            ),
            (
                "grant: authorization_code, authorize_url: \"https://a.example.com/x#f\"",
                "is not an absolute http(s) URL without a fragment",
            ),
            (
                "grant: authorization_code, authorize_url: \"https://a.example.com/x\", refresh_token: \"${env:CRM_TOKEN}\"",
                "connections.books.auth.refresh_token: grant authorization_code keeps its refresh token in the store",
            ),
            (
                "authorize_url: \"https://a.example.com/x\"",
                "connections.books.auth.authorize_url: `authorize_url` only applies to `grant: authorization_code`",
            ),
            (
                "redirect_port: 8765",
                "connections.books.auth.redirect_port: `redirect_port` only applies to `grant: authorization_code`",
            ),
            (
                "grant: refresh_token, refresh_token: \"${env:CRM_TOKEN}\", pkce: false",
                "connections.books.auth.pkce: `pkce` only applies to `grant: authorization_code`",
            ),
        ];
        for (auth, expected) in cases {
            let all = errors(&conn(auth)).join("\n");
            assert!(
                all.contains(expected),
                "{auth}: missing {expected:?} in:\n{all}"
            );
        }
    }

    #[test]
    fn concurrency_loads_and_its_mistakes_are_reported() {
        let ok = r#"
version: 1
connections:
  crm: { base_url: "https://crm.example.com" }
sources:
  form: { verify: { scheme: hmac-sha256, header: X-Signature, secret: "${env:FORM_SECRET}" } }
workflows:
  per-account:
    trigger: { source: form }
    concurrency: { key: "{{ body.account_id }}", limit: 1 }
    steps:
      - { id: upsert, connection: crm, request: { path: /contacts } }
  whole:
    trigger: { source: form }
    concurrency: { limit: 100 }
    steps:
      - { id: upsert, connection: crm, request: { path: /contacts } }
"#;
        let loaded = load(ok).unwrap();
        let c = loaded.config.workflows["per-account"]
            .concurrency
            .clone()
            .unwrap();
        assert_eq!(
            (c.key.as_deref(), c.limit.get()),
            (Some("{{ body.account_id }}"), 1)
        );
        let c = loaded.config.workflows["whole"]
            .concurrency
            .clone()
            .unwrap();
        assert_eq!((c.key, c.limit.get()), (None, 100));
        let schema = json_schema().to_string();
        assert!(schema.contains("\"concurrency\""), "{schema}");

        let bad = r#"
version: 1
connections:
  crm: { base_url: "https://crm.example.com" }
sources:
  form: { verify: { scheme: hmac-sha256, header: X-Signature, secret: "${env:FORM_SECRET}" } }
workflows:
  a:
    trigger: { source: form }
    concurrency: { key: "{{ body.account_id ", limit: 1 }
    steps: [{ id: s, connection: crm, request: { path: /x } }]
  b:
    trigger: { source: form }
    concurrency: { key: "{{ steps.s.response.body.id }}", limit: 101 }
    steps: [{ id: s, connection: crm, request: { path: /x } }]
  c:
    trigger: { source: form }
    concurrency: { limit: 0 }
    steps: [{ id: s, connection: crm, request: { path: /x } }]
  d:
    trigger: { source: form }
    concurrency: { key: "{{ body.id }}" }
    steps: [{ id: s, connection: crm, request: { path: /x } }]
  e:
    trigger: { source: form }
    concurrency: { limit: 2, per: 1s }
    steps: [{ id: s, connection: crm, request: { path: /x } }]
"#;
        let all = errors(bad);
        let expect = [
            "line 10: workflows.a.concurrency.key: template syntax error: unexpected end of input, expected end of variable block",
            "line 14: workflows.b.concurrency.key: refers to steps.s, but no step has run at this point",
            "line 14: workflows.b.concurrency.limit: limit 101 is too large; at most 100",
            "line 18: workflows.c.concurrency.limit: invalid value 0: expected a whole number greater than 0",
            "line 22: workflows.d.concurrency: missing required key \"limit\"",
            "line 26: workflows.e.concurrency.per: unknown key \"per\"; expected one of: key, limit",
        ];
        for (got, want) in all.iter().zip(expect) {
            assert!(got.starts_with(want), "got {got:?}, expected {want:?}");
        }
        assert_eq!(all.len(), expect.len(), "{all:#?}");
    }
}
