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
    /// An answer, but not from a BBB API: an HTML page, JSON, or XML of another kind.
    #[error("not a BBB answer: {0}")]
    NotBbb(&'static str),
    /// `returncode` FAILED, with BBB's messageKey (branch on `key`, never on `message`).
    #[error("BBB refused the call: {key}")]
    Api { key: String, message: String },
}

/// What a failed call says about the server, for its health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// BBB answered properly: a refusal about one meeting says nothing against the server.
    Answered,
    /// The server answers but refuses us, so every call will fail the same way until an
    /// operator fixes our settings for it (or its own): the cause, for operators.
    Misconfigured(&'static str),
    /// No usable answer: down, overloaded or broken, maybe only for a moment.
    Failed,
}

impl BbbError {
    /// A low-cardinality name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "unreachable",
            Self::Timeout(_) => "timeout",
            Self::HttpStatus(_) => "http_status",
            Self::BadXml(_) => "bad_xml",
            Self::NotBbb(_) => "not_bbb",
            Self::Api { .. } => "api",
        }
    }

    /// What this failure says about the server.
    pub fn verdict(&self) -> Verdict {
        match self {
            Self::Api { key, .. } => match key.as_str() {
                "checksumError" => Verdict::Misconfigured(
                    "checksum refused: wrong secret, or a checksum algorithm the server does not accept",
                ),
                "apiNotEnabled" => Verdict::Misconfigured("the BBB API is disabled on the server"),
                _ => Verdict::Answered,
            },
            Self::HttpStatus(401 | 403) => {
                Verdict::Misconfigured("HTTP 401/403: the server does not let us in")
            }
            Self::HttpStatus(404) => Verdict::Misconfigured("HTTP 404: no BBB API at this URL"),
            Self::NotBbb(_) => {
                Verdict::Misconfigured("the answer is not BBB's: is the URL the BBB API?")
            }
            Self::Unreachable(_) | Self::Timeout(_) | Self::HttpStatus(_) | Self::BadXml(_) => {
                Verdict::Failed
            }
        }
    }

    /// BBB refused the checksum: the secret or the algorithm is wrong.
    pub fn is_checksum_refused(&self) -> bool {
        matches!(self, Self::Api { key, .. } if key == "checksumError")
    }

    /// BBB does not know the meeting (it never ran, or ended and was purged).
    pub fn is_unknown_meeting(&self) -> bool {
        matches!(self, Self::Api { key, .. } if key == "notFound")
    }

    /// BBB's messageKey, when BBB refused the call.
    pub fn message_key(&self) -> Option<&str> {
        match self {
            Self::Api { key, .. } => Some(key),
            _ => None,
        }
    }
}
