//! The gRPC layer: authentication, health, reflection and the services. Only this module knows
//! tonic; below it are plain Rust types.

mod auth;
mod bbb_service;
pub mod error;
mod fleet_service;
mod observe;
mod tls;
mod validate;

pub use bbb_service::BbbApi;
pub use fleet_service::FleetApi;

use crate::{proto, secret::Secret};
use auth::BearerAuth;
use std::{future::Future, sync::Arc, time::Duration};
use tokio::net::TcpListener;
use tonic::transport::{Server, server::TcpIncoming};
use tonic_health::{ServingStatus, server::HealthReporter};

/// Health names: `""` and the BbbService name report readiness (the database answers);
/// `liveness` only that the process runs, so a database outage never restarts pods.
pub const BBB_SERVICE_NAME: &str = "eventyay.bbb.v1.BbbService";
pub const LIVENESS: &str = "liveness";

/// The largest request message of BbbService and FleetService: a CreateCall of 1,000
/// members of 128-character ids is about 130 KiB.
const MAX_MESSAGE: usize = 1024 * 1024;
/// The largest request of health checks and reflection, which anyone may call.
const MAX_OPEN_MESSAGE: usize = 16 * 1024;
/// Streams one connection may have open. A backend process multiplexes a whole burst of joins
/// over a connection or two, so this must not throttle a burst (fewer made a 1,000-join burst
/// outlive the single-flight's trust and create twice); with the message limits it still
/// bounds what one anonymous connection can hold (256 × 16 KiB).
const MAX_STREAMS: u32 = 256;
/// Request headers (a bearer token, a traceparent, gRPC's own) fit in a few KiB.
const MAX_HEADERS: u32 = 16 * 1024;

/// Sets readiness on every name that reports it.
pub async fn set_ready(reporter: &HealthReporter, ready: bool) {
    let status = if ready {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    for name in ["", BBB_SERVICE_NAME] {
        reporter.set_service_status(name, status).await;
    }
}

/// Serves gRPC on `listener` (over TLS only, with `tls`) until `shutdown` resolves, then lets
/// running calls finish.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    bbb: BbbApi,
    fleet: FleetApi,
    api_tokens: Vec<Secret>,
    admin_tokens: Vec<Secret>,
    reporter: HealthReporter,
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    reporter
        .set_service_status(LIVENESS, ServingStatus::Serving)
        .await;
    let rpc_timeout = bbb.rpc_timeout;
    // The token is checked on the headers, before a byte of the message is read.
    let bbb = tonic::service::interceptor::InterceptedService::new(
        proto::bbb_service_server::BbbServiceServer::new(bbb)
            .max_decoding_message_size(MAX_MESSAGE),
        BearerAuth::new(api_tokens),
    );
    let fleet = tonic::service::interceptor::InterceptedService::new(
        proto::fleet_service_server::FleetServiceServer::new(fleet)
            .max_decoding_message_size(MAX_MESSAGE),
        BearerAuth::new(admin_tokens),
    );
    // Health and reflection need no token, so their requests may be tiny and nothing more.
    let health = health.max_decoding_message_size(MAX_OPEN_MESSAGE);
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .expect("the embedded descriptor sets are valid")
        .max_decoding_message_size(MAX_OPEN_MESSAGE);
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .expect("the embedded descriptor sets are valid")
        .max_decoding_message_size(MAX_OPEN_MESSAGE);
    let router = Server::builder()
        // Every call, body included, ends by the longest an RPC may take.
        .timeout(rpc_timeout + Duration::from_secs(1))
        // What one connection may hold: an open stream is a call being served.
        .max_concurrent_streams(MAX_STREAMS)
        .http2_max_header_list_size(MAX_HEADERS)
        .http2_max_pending_accept_reset_streams(Some(MAX_STREAMS as usize))
        // Clients reconnect now and then, so calls spread over replicas behind an L4 Service.
        .max_connection_age(Duration::from_secs(300))
        .max_connection_age_grace(Duration::from_secs(30))
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .layer(observe::ObserveLayer)
        .add_service(health)
        .add_service(bbb)
        .add_service(fleet)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    match tls {
        // The builder's tcp_nodelay applies only to listeners it binds itself: set it on ours, or
        // Nagle's algorithm meets the client's delayed ACK and every reply waits ~40 ms.
        None => {
            router
                .serve_with_incoming_shutdown(
                    TcpIncoming::from(listener).with_nodelay(Some(true)),
                    shutdown,
                )
                .await
        }
        Some(config) => {
            router
                .serve_with_incoming_shutdown(tls::TlsIncoming::new(listener, config), shutdown)
                .await
        }
    }
}

/// Serves only the health checks, in plaintext, on `listener`, until the task is dropped: for
/// probes that cannot speak TLS (Kubernetes' own gRPC probes cannot), beside a TLS port. It
/// outlives the main port's drain, so probes read NOT_SERVING meanwhile instead of failing.
pub async fn serve_health(
    listener: TcpListener,
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
) -> Result<(), tonic::transport::Error> {
    Server::builder()
        .timeout(Duration::from_secs(5))
        // A probe makes one call at a time; a few streams are plenty.
        .max_concurrent_streams(16)
        .http2_max_header_list_size(MAX_HEADERS)
        .add_service(health.max_decoding_message_size(MAX_OPEN_MESSAGE))
        .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true)))
        .await
}
