//! Why a mock upstream cannot be built from its flags or fault specs.

/// A mock configuration that cannot be built; each message names the bad value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MockError {
    #[error("invalid fault spec {spec:?}: {reason}")]
    InvalidFault { spec: String, reason: String },
    #[error("invalid quirk {spec:?}: {reason}")]
    InvalidQuirk { spec: String, reason: String },
    #[error("invalid --error-rate {0}: expected a share between 0 and 1")]
    InvalidErrorRate(f64),
    #[error("--api-key-env {var}: {reason}")]
    ApiKeyEnv { var: String, reason: &'static str },
    #[error("invalid --name {0:?}: use visible ASCII characters only (it is sent as a header)")]
    InvalidName(String),
    #[error("{0} only applies with --api anthropic")]
    AnthropicOnly(&'static str),
}
