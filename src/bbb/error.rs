//! What can go wrong when talking to a BBB server, typed so callers can tell a dead server from a
//! refusal. Messages never carry a URL: BBB URLs hold checksums, and a checksum over a short
//! query is a foothold for guessing the secret.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BbbError {
    /// No HTTP answer: connection refused or reset, DNS or TLS failure.
    #[error("BBB server unreachable ({0})")]
    Unreachable(&'static str),
    /// The call did not finish within its deadline.
    #[error("BBB call timed out after {0:?}")]
    Timeout(Duration),
    /// An HTTP status other than 200.
    #[error("BBB answered HTTP {0}")]
    HttpStatus(u16),
    /// A body that is not the XML BBB sends.
    #[error("BBB answered malformed XML: {0}")]
    BadXml(String),
    /// `returncode` FAILED, with BBB's messageKey (branch on `key`, never on `message`).
    #[error("BBB refused the call: {key}")]
    Api { key: String, message: String },
}

impl BbbError {
    /// A low-cardinality name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "unreachable",
            Self::Timeout(_) => "timeout",
            Self::HttpStatus(_) => "http_status",
            Self::BadXml(_) => "bad_xml",
            Self::Api { .. } => "api",
        }
    }

    /// BBB's messageKey, when BBB refused the call.
    pub fn message_key(&self) -> Option<&str> {
        match self {
            Self::Api { key, .. } => Some(key),
            _ => None,
        }
    }
}
