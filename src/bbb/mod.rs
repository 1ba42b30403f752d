//! The BigBlueButton wire API: checksums, query strings, XML responses and the HTTP client.

pub mod checksum;
pub mod query;

pub use checksum::ChecksumAlgorithm;
pub use query::Query;
