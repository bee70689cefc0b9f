//! The OAuth 2.0 token cache sealed with KMS data keys on the AWS store
//! (moto's server on loopback: DynamoDB, SQS and KMS), as the functions do
//! when `FERRY_TOKEN_KMS_KEY` names a key. Run with
//!
//! ```sh
//! scripts/emulators run -- cargo test --workspace --locked --test aws_token_kms
//! ```
//!
//! Without the emulator (and without `FERRY_REQUIRE_AWS`) it skips loudly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ferry::auth::Credential;
use ferry::clock::{Clock, ManualClock};
use ferry::contract::aws::AwsBackend;
use ferry::hub::Hub;
use ferry::ports::DataKeys;
use ferry::store::aws::AwsStore;
use ferry::store::aws::kms::KmsDataKeys;
use ferry::token_envelope::{CONTEXT_CONNECTION, CONTEXT_CURSOR};
use ferry_testkit::target::{Answer, Target};
use serde_json::json;

const CONFIG: &str = r#"
version: 1
connections:
  crm:
    base_url: "${env:API}/crm"
    auth: &oauth
      type: oauth2
      grant: client_credentials
      token_url: "${env:API}/oauth/token"
      client_id: ferry
      client_secret: "${env:SECRET}"
  erp:
    base_url: "${env:API}/erp"
    auth: *oauth
"#;
const SECRET: &str = "client-secret-kms-test-41";
const T0: i64 = 1_800_000_000_000;

struct Bench {
    backend: Arc<AwsBackend>,
    target: Target,
    issued: Arc<AtomicU32>,
    key_id: String,
    clock: Arc<ManualClock>,
    /// The store without data keys (as before KMS was switched on).
    plain: Arc<AwsStore>,
}

impl Bench {
    async fn new(test: &str) -> Option<Bench> {
        let backend = AwsBackend::new(test, 3).await?;
        let kms = aws_sdk_kms::Client::new(&backend.dynamo_config);
        let key = kms.create_key().send().await.expect("creating a KMS key");
        let key_id = key.key_metadata().unwrap().key_id().to_owned();
        let target = Target::start().await;
        let issued = Arc::new(AtomicU32::new(0));
        let n = issued.clone();
        target.behave("/oauth/token", move |_| {
            let i = n.fetch_add(1, Ordering::SeqCst) + 1;
            Some(Answer::ok(json!({
                "access_token": format!("tok-secret-{i}"),
                "token_type": "bearer",
                "expires_in": 3600,
            })))
        });
        let clock = ManualClock::at(T0);
        let plain = backend.store(clock.clone() as Arc<dyn Clock>).await;
        Some(Bench {
            backend,
            target,
            issued,
            key_id,
            clock,
            plain,
        })
    }

    /// Data keys under the test's key, with a cache of their own (another instance).
    fn keys(&self) -> Arc<KmsDataKeys> {
        Arc::new(KmsDataKeys::new(
            &self.backend.dynamo_config,
            &self.key_id,
            self.clock.clone(),
        ))
    }

    /// A hub on the store (another instance each time), with KMS or without.
    fn hub(&self, kms: bool) -> Arc<Hub> {
        let store = if kms {
            self.plain.clone().with_data_keys(self.keys())
        } else {
            self.plain.clone()
        };
        let api = self.target.url();
        let vars = |n: &str| match n {
            "API" => Some(api.clone()),
            "SECRET" => Some(SECRET.to_owned()),
            _ => None,
        };
        let loaded = ferry::config::load_str(CONFIG, &vars).unwrap();
        Hub::new(loaded.config, loaded.secrets, store.ports()).unwrap()
    }

    fn issued(&self) -> u32 {
        self.issued.load(Ordering::SeqCst)
    }

    /// The cached value of `connection` as the table holds it.
    async fn cached(&self, connection: &str) -> String {
        let cursor = ferry::keys::oauth2_token(connection);
        let c = self.plain.ports().cursors.get(&cursor).await.unwrap();
        c.expect("a cached token").value
    }

    /// Every string in the table.
    async fn table_text(&self) -> String {
        let scan = self
            .backend
            .dynamo
            .scan()
            .table_name(self.backend.table().await)
            .send()
            .await
            .unwrap();
        let mut text = String::new();
        for item in scan.items() {
            for v in item.values() {
                if let AttributeValue::S(s) = v {
                    text.push_str(s);
                    text.push('\n');
                }
            }
        }
        text
    }
}

async fn token(hub: &Hub, connection: &str) -> String {
    let conn = hub.connection(connection).unwrap();
    let cred = hub
        .tokens
        .credential(&hub.ports, hub.http.client(), connection, conn)
        .await
        .unwrap();
    let Credential::Header(_, value) = cred else {
        panic!("no bearer header: {cred:?}");
    };
    value.strip_prefix("Bearer ").unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_sealed_with_kms_read_back_and_never_stored_in_the_clear() {
    let Some(b) =
        Bench::new("tokens_are_sealed_with_kms_read_back_and_never_stored_in_the_clear").await
    else {
        return;
    };
    assert_eq!(token(&b.hub(true), "crm").await, "tok-secret-1");
    let value = b.cached("crm").await;
    assert!(value.starts_with("v2:"), "{value}");
    // Another instance (its own data-key cache: KMS Decrypt) reads it back.
    assert_eq!(token(&b.hub(true), "crm").await, "tok-secret-1");
    assert_eq!(b.issued(), 1, "read from the store, not fetched again");
    let text = b.table_text().await;
    assert!(text.contains("v2:"), "{text}");
    assert!(!text.contains("tok-secret"), "{text}");
    assert!(!text.contains(SECRET), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_token_copied_to_another_connection_does_not_open() {
    let Some(b) = Bench::new("a_sealed_token_copied_to_another_connection_does_not_open").await
    else {
        return;
    };
    assert_eq!(token(&b.hub(true), "crm").await, "tok-secret-1");
    let value = b.cached("crm").await;
    let ports = b.plain.ports();
    let erp = ferry::keys::oauth2_token("erp");
    assert_eq!(
        ports.cursors.put(&erp, &value, None).await.unwrap(),
        Some(1)
    );
    // KMS itself refuses the data key under the other connection's context…
    let wrapped = B64.decode(value.split(':').nth(1).unwrap()).unwrap();
    let keys = b.keys();
    let crm_context = [(CONTEXT_CONNECTION, "crm"), (CONTEXT_CURSOR, "oauth2:crm")];
    let erp_context = [(CONTEXT_CONNECTION, "erp"), (CONTEXT_CURSOR, erp.as_str())];
    assert!(keys.unwrap(&wrapped, &crm_context).await.unwrap().is_some());
    assert_eq!(keys.unwrap(&wrapped, &erp_context).await.unwrap(), None);
    // …so the copy is no cached token: erp fetches its own.
    assert_eq!(token(&b.hub(true), "erp").await, "tok-secret-2");
    assert_eq!(b.issued(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_sealed_the_old_way_is_read_and_rewritten_in_the_envelope() {
    let Some(b) =
        Bench::new("a_token_sealed_the_old_way_is_read_and_rewritten_in_the_envelope").await
    else {
        return;
    };
    assert_eq!(token(&b.hub(false), "crm").await, "tok-secret-1");
    let old = b.cached("crm").await;
    assert!(old.starts_with("v1:"), "{old}");
    let hub = b.hub(true);
    assert_eq!(token(&hub, "crm").await, "tok-secret-1");
    assert_eq!(b.issued(), 1, "the v1 entry was read");
    b.clock.advance(3_600_000);
    assert_eq!(token(&hub, "crm").await, "tok-secret-2");
    let new = b.cached("crm").await;
    assert!(new.starts_with("v2:"), "{new}");
    assert_eq!(token(&b.hub(true), "crm").await, "tok-secret-2");
    assert_eq!(b.issued(), 2);
}
