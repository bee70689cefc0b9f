//! The one-step workflow several execution tests drive: a source `form`
//! (no verification, the body's `id` as event id) whose workflow `one`
//! posts `{"id": …}` to `/send` on the connection `crm` at `target`.

use std::sync::Arc;

use ferry::hub::Hub;
use ferry::ingest::Inbound;
use ferry::ports::Ports;

const CONFIG: &str = r#"version: 1
connections:
  crm: { base_url: "${env:TARGET}" }
sources:
  form: { verify: { scheme: none }, event_id: "{{ body.id }}" }
workflows:
  one:
    trigger: { source: form }
    steps:
      - { id: send, connection: crm, request: { path: /send, json: { id: "{{ body.id }}" } } }
"#;

/// The hub of [`CONFIG`] on `ports`, its connection pointing at `target`.
pub fn hub(target: &str, ports: Ports) -> Arc<Hub> {
    let url = target.to_owned();
    let loaded = ferry::config::load_str(CONFIG, &|_| Some(url.clone())).unwrap();
    Hub::new(loaded.config, loaded.secrets, ports).unwrap()
}

/// A webhook for `form` with event id `id`.
pub fn request(id: &str) -> Inbound {
    let body = format!(r#"{{"id": "{id}"}}"#);
    ferry_testkit::bench::inbound::<&str, &str>("form", &[], body.as_bytes())
}
