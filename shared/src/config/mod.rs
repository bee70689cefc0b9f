//! Configuration: the YAML format ([`model`]), loading and validation.
//!
//! [`load_file`] / [`load_str`] read a config, replace `${env:NAME}` references
//! from the environment, and check everything before anything runs: YAML
//! syntax, unknown keys, types, references between sections, step ids, URLs,
//! schedules, verification schemes, template syntax. Every problem is reported
//! at once as a [`Diagnostic`] with its path and line, inside [`ConfigErrors`].
//!
//! ```
//! let yaml = "version: 1\nconnections:\n  crm: { base_url: \"${env:CRM_URL}\" }\n";
//! let env = |name: &str| (name == "CRM_URL").then(|| "https://crm.example.com".to_owned());
//! let loaded = ferry::config::load_str(yaml, &env).unwrap();
//! assert_eq!(loaded.config.connections["crm"].base_url, "https://crm.example.com");
//! ```

pub mod alerts;
pub mod allow;
mod classify;
mod de;
mod de_error;
mod diagnostic;
pub mod duration;
mod env;
mod load;
pub mod model;
pub mod presets;
pub mod ranges;
mod rate_headers;
mod rate_tokens;
pub mod shape;
mod sources;
mod templates;
mod validate;
mod validate_alerts;
mod validate_allow;
mod validate_classify;
mod validate_oauth2;
mod validate_steps;
mod validate_sync;
mod yaml;

pub use alerts::{Alerts, Channel, Condition, Rule};
pub use classify::{Classify, Outcome, ResponseRule, StatusRule};
pub use diagnostic::{ConfigErrors, Diagnostic};
pub use duration::Dur;
pub use env::EnvLookup;
pub use load::{Loaded, json_schema, load_file, load_str};
pub use model::*;
pub use rate_headers::{FromHeaders, FromHeadersList, ResetFormat};
pub use rate_tokens::TokenBudget;
