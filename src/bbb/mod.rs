//! The BigBlueButton wire API: checksums, query strings, XML answers and the HTTP client.
//! Nothing above this module speaks HTTP or XML.

pub mod checksum;
mod client;
mod endpoint;
mod error;
pub mod query;
mod response;
pub mod xml;

pub use checksum::ChecksumAlgorithm;
pub use client::{BbbClient, Ended, Timeouts, install_crypto_provider};
pub use endpoint::{BadBaseUrl, Endpoint, Tls};
pub use error::{BbbError, Verdict};
pub use query::Query;
pub use response::{Created, Meeting, PlaybackFormat, Recording, RecordingsPage, Version};

/// Parses any BBB answer into its typed form; exposed for fuzzing and property tests, which
/// must reach exactly the code that handles server bytes.
pub mod parse {
    pub use super::response::{created, meeting_info, meetings, recordings, running, version};
}
