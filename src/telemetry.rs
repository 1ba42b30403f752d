//! Logs, traces and metrics.
//!
//! - Logs: `tracing` to stderr, text or JSON (`EVENTYAY_BBB_LOG_FORMAT`), level from `RUST_LOG`;
//!   inside an RPC every line carries the request's id and trace id.
//! - Traces: OpenTelemetry over OTLP/gRPC, configured by the standard `OTEL_*` variables and off
//!   unless an endpoint is set; the caller's `traceparent` is continued.
//! - Metrics: the same instruments exported over OTLP (with an endpoint) and as Prometheus text
//!   on `EVENTYAY_BBB_METRICS_LISTEN`.
//!
//! No secret reaches any of them: spans and metrics carry ids, hosts, paths and codes, never a
//! URL with its query, and errors are typed texts that hold no URL.

use opentelemetry::{
    KeyValue, global,
    metrics::{Counter, Histogram, Meter},
    trace::TracerProvider,
};
use opentelemetry_sdk::{
    Resource,
    metrics::{PeriodicReader, SdkMeterProvider},
    propagation::TraceContextPropagator,
    trace::SdkTracerProvider,
};
use std::{net::SocketAddr, sync::OnceLock};
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

/// Flushes and stops the exporters when the process ends.
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    meter: SdkMeterProvider,
    prometheus: Option<prometheus::Registry>,
}

fn otlp_endpoint_set(signal: &str) -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        &format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"),
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|e| !e.trim().is_empty()))
}

fn resource() -> Resource {
    let builder = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_ok() {
        builder.build()
    } else {
        builder.with_service_name("eventyay-bbb").build()
    }
}

/// Sets up logs, traces and metrics for the process. Call once, first thing.
pub fn init() -> Result<Telemetry, Box<dyn std::error::Error>> {
    global::set_text_map_propagator(TraceContextPropagator::new());

    let tracer = if otlp_endpoint_set("TRACES") {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()?;
        Some(
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource())
                .build(),
        )
    } else {
        None
    };

    let mut meter = SdkMeterProvider::builder().with_resource(resource());
    let otlp_metrics = otlp_endpoint_set("METRICS");
    if otlp_metrics {
        let exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .build()?;
        meter = meter.with_reader(PeriodicReader::builder(exporter).build());
    }
    let prometheus = if std::env::var("EVENTYAY_BBB_METRICS_LISTEN").is_ok() {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .build()?;
        meter = meter.with_reader(exporter);
        Some(registry)
    } else {
        None
    };
    let meter = meter.build();
    // Without a reader the SDK refuses observable gauges with an error line each; the global
    // no-op provider stays in place then, and every instrument costs nothing.
    if otlp_metrics || prometheus.is_some() {
        global::set_meter_provider(meter.clone());
    }

    // The certificate verifier logs an ERROR on every call to a server whose certificate is not
    // trusted, i.e. on every poll; the fleet already says so once, with the cause, when the
    // server turns unhealthy, and `servers list` shows it.
    let quiet_verifier = "rustls_platform_verifier=off"
        .parse()
        .expect("a valid filter directive");
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive(quiet_verifier);
    let json = std::env::var("EVENTYAY_BBB_LOG_FORMAT").is_ok_and(|f| f == "json");
    let logs = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed()
    };
    let otel = tracer.as_ref().map(|provider| {
        tracing_opentelemetry::layer().with_tracer(provider.tracer("eventyay-bbb"))
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(otel)
        .try_init()?;
    Ok(Telemetry {
        tracer,
        meter,
        prometheus,
    })
}

impl Telemetry {
    /// Serves the Prometheus text format at `/metrics` on `addr`, until the process ends.
    pub async fn serve_metrics(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let Some(registry) = self.prometheus.clone() else {
            return Err(std::io::Error::other(
                "EVENTYAY_BBB_METRICS_LISTEN is not set",
            ));
        };
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let registry = registry.clone();
                async move {
                    let mut out = String::new();
                    let encoder = prometheus::TextEncoder::new();
                    match encoder.encode_utf8(&registry.gather(), &mut out) {
                        Ok(()) => (
                            [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                            out,
                        ),
                        Err(_) => (
                            [(http::header::CONTENT_TYPE, "text/plain")],
                            "# metrics could not be encoded\n".to_owned(),
                        ),
                    }
                }
            }),
        );
        tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::error!(%err, "metrics endpoint failed");
            }
        });
        tracing::info!(addr = %bound, "serving Prometheus metrics at /metrics");
        Ok(bound)
    }

    /// Flushes what is buffered and stops the exporters.
    pub fn shutdown(self) {
        if let Some(tracer) = self.tracer
            && let Err(err) = tracer.shutdown()
        {
            eprintln!("telemetry: flushing traces failed: {err}");
        }
        if let Err(err) = self.meter.shutdown() {
            eprintln!("telemetry: flushing metrics failed: {err}");
        }
    }
}

/// The service's instruments, created once from the global meter provider.
pub struct Metrics {
    pub rpc_duration: Histogram<f64>,
    pub rpc_errors: Counter<u64>,
    pub bbb_duration: Histogram<f64>,
    pub bbb_errors: Counter<u64>,
    pub placements: Counter<u64>,
    pub shortfalls: Counter<u64>,
    pub moves: Counter<u64>,
    pub session_placements: Counter<u64>,
    pub presentations_refused: Counter<u64>,
}

pub fn meter() -> Meter {
    global::meter("eventyay-bbb")
}

/// The instruments (created at first use, after `init` installed the provider).
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let meter = meter();
        Metrics {
            rpc_duration: meter
                .f64_histogram("rpc.server.call.duration")
                .with_unit("s")
                .with_description("Duration of gRPC calls, by method and status")
                .with_boundaries(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .build(),
            rpc_errors: meter
                .u64_counter("eventyay_bbb.rpc.errors")
                .with_description("Failed gRPC calls, by method and error reason")
                .build(),
            bbb_duration: meter
                .f64_histogram("eventyay_bbb.bbb.call.duration")
                .with_unit("s")
                .with_description("Duration of BBB API calls, by server and call")
                .with_boundaries(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .build(),
            bbb_errors: meter
                .u64_counter("eventyay_bbb.bbb.call.errors")
                .with_description("Failed BBB API calls, by server, call and error type")
                .build(),
            placements: meter
                .u64_counter("eventyay_bbb.placements")
                .with_description("New meetings placed, by server and kind")
                .build(),
            shortfalls: meter
                .u64_counter("eventyay_bbb.placement.shortfalls")
                .with_description(
                    "Meetings placed on a server without room under its cap for all they expect, by server and kind",
                )
                .build(),
            moves: meter
                .u64_counter("eventyay_bbb.failovers")
                .with_description("Meetings moved to another server, by from and to")
                .build(),
            session_placements: meter
                .u64_counter("eventyay_bbb.session_moves")
                .with_description(
                    "Rooms moved to another server as a new session started, by from and to",
                )
                .build(),
            presentations_refused: meter
                .u64_counter("eventyay_bbb.presentations.refused")
                .with_description("Presentations on private addresses left out of a create")
                .build(),
        }
    })
}

/// Attribute helper: `kv("server", id)`.
pub fn kv(key: &'static str, value: impl Into<opentelemetry::Value>) -> KeyValue {
    KeyValue::new(key, value)
}
