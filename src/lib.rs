//! eventyay-bbb: the BigBlueButton front door of the eventyay platform.
//!
//! Data flows one way: `api` → `meetings`/`recordings` → `fleet` → `bbb`. `bbb` speaks the BBB
//! wire API; `sim` is an emulated BBB server for tests, benchmarks and first runs.

pub mod api;
pub mod app;
pub mod batching;
pub mod bbb;
pub mod bench;
pub mod calendar;
pub mod callback;
pub mod cli;
pub mod config;
pub mod domain;
pub mod fleet;
pub mod meetings;
pub mod operators;
pub mod recordings;
pub mod secret;
pub mod sim;
pub mod store;
pub mod telemetry;
pub mod tls;

/// Code generated from `proto/`.
pub mod proto {
    tonic::include_proto!("eventyay.bbb.v1");

    /// The encoded descriptor set of `proto/`, served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));
}
