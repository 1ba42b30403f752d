//! One SERVER span, one duration measurement and, on failure, one error count per RPC — as a
//! tower layer around every service, so no handler can forget it.
//!
//! Spans carry both the current OpenTelemetry RPC names (`rpc.system.name`, fully qualified
//! `rpc.method`, `rpc.response.status_code`) and the legacy ones dashboards still use
//! (`rpc.system`, `rpc.service`, `rpc.grpc.status_code`). The caller's `traceparent` is
//! continued. Health checks and reflection are left out: probes would drown the rest.

use crate::telemetry::{kv, metrics};
use opentelemetry::trace::TraceContextExt;
use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};
use tonic::Code;
use tower::{Layer, Service};
use tracing::{Instrument, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

#[derive(Debug, Clone, Copy, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
}

/// Codes that mean the server failed, as the RPC semantic conventions count errors on the
/// server side (a caller's bad input is not the server's error).
fn server_error(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

/// `(service, service/method)` for a method of `proto/`, or `None`.
fn known_method(path: &str) -> Option<(&'static str, &'static str)> {
    static METHODS: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    let methods: &'static Vec<(String, String)> = METHODS.get_or_init(|| {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET)
            .unwrap_or_default();
        let mut methods = Vec::new();
        for file in &set.file {
            for service in &file.service {
                let full = format!("{}.{}", file.package(), service.name());
                for method in &service.method {
                    methods.push((full.clone(), format!("{full}/{}", method.name())));
                }
            }
        }
        methods
    });
    methods
        .iter()
        .find(|(_, known)| known == path)
        .map(|(service, method)| (service.as_str(), method.as_str()))
}

fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

impl<S, B, R> Service<http::Request<B>> for Observe<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The clone is the one that was not polled ready: keep the ready one for this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let path = request.uri().path().trim_start_matches('/');
        if path.starts_with("grpc.health.") || path.starts_with("grpc.reflection.") {
            return Box::pin(inner.call(request));
        }
        // Labels and span names come from the contract's methods only: a caller must not mint
        // a metric series (or a span name) per path it makes up.
        let (service, method) = match known_method(path) {
            Some((service, method)) => (service.to_owned(), method.to_owned()),
            None => ("unknown".to_owned(), "unknown".to_owned()),
        };
        let parent = opentelemetry::global::get_text_map_propagator(|p| {
            p.extract(&opentelemetry_http::HeaderExtractor(request.headers()))
        });
        let span = tracing::info_span!(
            "rpc",
            otel.name = %method,
            otel.kind = "server",
            otel.status_code = Empty,
            rpc.system = "grpc",
            rpc.system.name = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = Empty,
            rpc.response.status_code = Empty,
            error.type = Empty,
            eventyay.reason = Empty,
            request_id = %uuid::Uuid::new_v4(),
            trace_id = Empty,
        );
        let _ = span.set_parent(parent);
        let trace_id = span.context().span().span_context().trace_id();
        if trace_id != opentelemetry::trace::TraceId::INVALID {
            span.record("trace_id", tracing::field::display(trace_id));
        }
        let started = Instant::now();
        let call = inner.call(request).instrument(span.clone());
        Box::pin(async move {
            let cause = std::cell::Cell::new(None);
            let (result, cause) = super::error::CAUSE
                .scope(cause, async {
                    let result = call.await;
                    (result, super::error::CAUSE.with(std::cell::Cell::get))
                })
                .await;
            // Errors travel as trailers-only responses: the status is in the headers. A
            // response without one is a success whose status follows in the trailers.
            let status = result
                .as_ref()
                .ok()
                .and_then(|r| tonic::Status::from_header_map(r.headers()));
            let code = status.as_ref().map_or(Code::Ok, tonic::Status::code);
            span.record("rpc.grpc.status_code", code as i32);
            span.record("rpc.response.status_code", code_name(code));
            let mut attributes = vec![
                kv("rpc.system.name", "grpc"),
                kv("rpc.method", method.clone()),
                kv("rpc.response.status_code", code_name(code)),
            ];
            if let Some(status) = &status {
                use tonic_types::StatusExt;
                let reason = status
                    .get_details_error_info()
                    .map_or_else(|| code_name(code).to_owned(), |info| info.reason);
                span.record("eventyay.reason", reason.as_str());
                if server_error(code) {
                    span.record("otel.status_code", "ERROR");
                    span.record("error.type", code_name(code));
                    attributes.push(kv("error.type", code_name(code)));
                }
                metrics().rpc_errors.add(
                    1,
                    &[
                        kv("rpc.method", method.clone()),
                        kv("reason", reason),
                        kv("cause", cause.unwrap_or("")),
                    ],
                );
            }
            metrics()
                .rpc_duration
                .record(started.elapsed().as_secs_f64(), &attributes);
            result
        })
    }
}
