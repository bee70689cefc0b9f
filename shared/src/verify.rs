//! TEMPORARY stub until the verify branch lands.
use crate::config::{Scheme, Verify};
pub struct Verifier;
pub struct Verified {
    pub event_id: Option<String>,
}
#[derive(Debug, thiserror::Error)]
#[error("invalid signature")]
pub struct VerifyError;
impl VerifyError {
    pub fn code(&self) -> &'static str {
        "invalid_signature"
    }
}
impl Verifier {
    pub fn from_config(_: &Verify) -> Result<Self, String> {
        Ok(Verifier)
    }
    pub fn verify(&self, _: &http::HeaderMap, _: &[u8], _: i64) -> Result<Verified, VerifyError> {
        Ok(Verified { event_id: None })
    }
}
pub fn slack_challenge(_: Scheme, _: &serde_json::Value) -> Option<String> {
    None
}
