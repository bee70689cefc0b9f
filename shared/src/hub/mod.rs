//! The hub: a loaded config with everything built once at start (verifiers,
//! templates, the HTTP client, the ports), shared by ingest, execute and sync.

use std::collections::HashMap;
use std::sync::Arc;

use crate::auth::Tokens;
use crate::batch::Batcher;
use crate::breaker::Circuits;
use crate::config::SideName as Side;
use crate::config::{Config, RetryPolicy, Step};
use crate::flow::FlowName;
use crate::limits::Limiter;
use crate::outbound::Outbound;
use crate::ports::Ports;
use crate::template::Templates;
use crate::verify::Verifier;

mod conn;
mod redact;
pub use conn::{Conn, step_lease};
use redact::{Secrets, redact_json_with};

/// Steps to run for a run's `workflow` name: a workflow, or a sync's per-record steps.
#[derive(Debug, Clone, Copy)]
pub struct Flow<'a> {
    /// Workflow name (`sync:<name>` for syncs).
    pub name: &'a str,
    /// The workflow's `when`.
    pub when: Option<&'a str>,
    /// Steps in order.
    pub steps: &'a [Step],
    /// The flow-level retry policy.
    pub retry: Option<&'a RetryPolicy>,
}

/// Everything built once per process from the config.
pub struct Hub {
    /// The validated config (secrets resolved).
    pub config: Config,
    /// Storage.
    pub ports: Ports,
    /// Template engine.
    pub templates: Templates,
    /// Outbound HTTP client.
    pub http: Outbound,
    /// Rate-limit fairness in this process.
    pub limiter: Limiter,
    /// Circuit breakers: this process's windows and copy of the store's state.
    pub circuits: Circuits,
    /// Pauses: this process's copy of the store's.
    pub pauses: crate::pause::Pauses,
    /// OAuth 2.0 tokens.
    pub tokens: Tokens,
    /// Open batches.
    pub batcher: Batcher,
    /// What this process counted (see [`crate::metrics`]).
    pub metrics: crate::metrics::Metrics,
    verifiers: HashMap<String, Verifier>,
    connections: HashMap<String, Conn>,
    triggers: HashMap<String, Vec<String>>,
    secrets: Secrets,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("sources", &self.verifiers.keys())
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// Build the hub. `secrets` are the resolved secret values (for redaction).
    pub fn new(config: Config, secrets: Vec<String>, ports: Ports) -> Result<Arc<Self>, String> {
        let mut verifiers = HashMap::new();
        for (name, source) in &config.sources {
            let v = Verifier::from_config(&source.verify)
                .map_err(|e| format!("sources.{name}.verify: {e}"))?;
            verifiers.insert(name.clone(), v);
        }
        let mut triggers: HashMap<String, Vec<String>> = HashMap::new();
        for (name, wf) in &config.workflows {
            triggers
                .entry(wf.trigger.source.clone())
                .or_default()
                .push(name.clone());
        }
        let connections = config
            .connections
            .iter()
            .map(|(name, c)| (name.clone(), Conn::new(name, c.clone())))
            .collect();
        let mut secrets = with_derived(&config, secrets);
        // Longest first, so a secret that contains another is redacted whole.
        secrets.retain(|s| s.len() >= 4);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Ok(Arc::new(Hub {
            config,
            ports,
            templates: Templates::new(),
            http: Outbound::new(),
            limiter: Limiter::default(),
            circuits: Circuits::default(),
            pauses: crate::pause::Pauses::default(),
            tokens: Tokens::default(),
            batcher: Batcher::default(),
            metrics: crate::metrics::Metrics::new(),
            verifiers,
            connections,
            triggers,
            secrets: Secrets::new(secrets),
        }))
    }

    /// The verifier of source `name`.
    pub fn verifier(&self, name: &str) -> Option<&Verifier> {
        self.verifiers.get(name)
    }

    /// Workflows triggered by `source`, in name order.
    pub fn workflows_for(&self, source: &str) -> &[String] {
        self.triggers.get(source).map_or(&[], Vec::as_slice)
    }

    /// The flow named `name` (see [`FlowName`]): a workflow, or a sync's steps.
    pub fn flow<'a>(&'a self, name: &'a str) -> Option<Flow<'a>> {
        let sync = |s: &str| self.config.syncs.get(s);
        let (steps, s) = match FlowName::parse(name)? {
            FlowName::Workflow(_) => return self.workflow_flow(name),
            FlowName::SyncRecords(s) => sync(s)
                .filter(|s| s.two_way.is_none())
                .map(|s| (&s.steps, s))?,
            FlowName::SyncDeletes(s) => sync(s)
                .filter(|s| s.two_way.is_none())
                .map(|s| (&s.on_delete, s))?,
            FlowName::SyncWrite(s, side) => {
                let s = sync(s)?;
                let tw = s.two_way.as_ref()?;
                let side = match side {
                    Side::A => &tw.a,
                    Side::B => &tw.b,
                };
                (&side.write, s)
            }
        };
        Some(Flow {
            name,
            when: None,
            steps,
            retry: s.retry.as_ref(),
        })
    }

    fn workflow_flow<'a>(&'a self, name: &'a str) -> Option<Flow<'a>> {
        let wf = self.config.workflows.get(name)?;
        Some(Flow {
            name,
            when: wf.when.as_deref(),
            steps: &wf.steps,
            retry: wf.retry.as_ref(),
        })
    }

    /// Connection `name`.
    pub fn connection(&self, name: &str) -> Option<&Conn> {
        self.connections.get(name)
    }

    /// How long runs are kept after they last changed (`retention`).
    pub fn retention(&self) -> std::time::Duration {
        self.config
            .retention
            .map_or(crate::runlog::DEFAULT_RETENTION, |d| d.get())
    }

    /// Set `run`'s expiry from its last change: call before every write.
    pub fn keep(&self, run: &mut crate::model::RunRecord) {
        run.expires_at = Some(crate::runlog::expiry(run.updated_at, self.retention()));
    }

    /// Replace every known secret value in `text` with `[redacted]`: the
    /// config's secrets and every access token obtained since the start.
    pub fn redact(&self, text: &str) -> String {
        self.secrets.redact(text, &self.tokens.secrets())
    }

    /// [`Hub::redact`] applied to every string and key of a JSON value: a
    /// step's output is stored (and handed to later steps) redacted, exactly
    /// as the run log is.
    pub fn redact_json(&self, v: &serde_json::Value) -> serde_json::Value {
        redact_json_with(v, &self.redactor())
    }

    /// [`Hub::redact`] with the tokens read once: for redacting many strings
    /// (a record's headers) without taking the tokens' lock for each.
    pub fn redactor(&self) -> impl Fn(&str) -> String + '_ {
        let tokens = self.tokens.secrets();
        move |text| self.secrets.redact(text, &tokens)
    }
}

/// The configured secrets, plus the forms a target may echo them in: each
/// connection's credential header value (`Basic <base64>` holds neither the
/// user nor the password literally) and each secret as a query string encodes it.
fn with_derived(config: &Config, mut secrets: Vec<String>) -> Vec<String> {
    for conn in config.connections.values() {
        if let crate::auth::Credential::Header(_, value) = crate::auth::static_credential(conn) {
            if let Some((_, encoded)) = value.split_once("Basic ") {
                secrets.push(encoded.to_owned());
            }
            secrets.push(value);
        }
    }
    let encoded: Vec<String> = secrets
        .iter()
        .filter_map(|s| {
            let e = serde_urlencoded::to_string([("", s)]).ok()?;
            let e = e.strip_prefix('=')?.to_owned();
            (e != *s).then_some(e)
        })
        .collect();
    secrets.extend(encoded);
    secrets
}
