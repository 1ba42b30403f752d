//! The end callback listener: a small plain-HTTP port that BBB servers call (`meetingEndedURL`)
//! when a meeting ends. Anyone can reach it, so it does little and holds little: one GET per
//! connection, a bounded number of connections, short deadlines, no request body read, and
//! nothing of a request logged but the meeting a genuine call ended. What a call means is the
//! fleet's to decide (`fleet::ended`); this module only speaks HTTP and counts outcomes.

use crate::{
    fleet::{
        Fleet,
        ended::{CALLBACK_PATH, Refused, Reported},
    },
    telemetry::kv,
};
use hyper::{Method, Request, Response, StatusCode, body::Incoming, server::conn::http1};
use hyper_util::rt::{TokioIo, TokioTimer};
use opentelemetry::metrics::Counter;
use std::{
    convert::Infallible,
    sync::{Arc, OnceLock},
    time::Duration,
};
use tokio::{
    net::TcpListener,
    sync::{Semaphore, watch},
};

/// Connections open at once. BBB makes one short call per ended meeting; when full, the port
/// stops accepting until one closes, which `CONNECTION_TIMEOUT` bounds.
const MAX_CONNECTIONS: usize = 128;
/// From accepting a connection to its request line and headers: BBB sends them at once.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// A connection's whole life, answer included.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// hyper's smallest read buffer, which also caps the request line and headers.
const MAX_BUFFER: usize = 8 * 1024;
/// A genuine callback's URL is a few hundred bytes.
const MAX_URI: usize = 2048;
/// Calls recording an end in the database at once: the database pool serves joins first.
const RECORDING: usize = 2;

/// The outcome of each call, by `outcome`: accepted, duplicate, bad_signature, unknown, failed.
fn callbacks() -> &'static Counter<u64> {
    static COUNTER: OnceLock<Counter<u64>> = OnceLock::new();
    COUNTER.get_or_init(|| {
        crate::telemetry::meter()
            .u64_counter("eventyay_bbb.end_callbacks")
            .with_description("Calls of the end callback listener, by outcome")
            .build()
    })
}

/// Serves the callback listener on `listener` until `stop`.
pub async fn serve(listener: TcpListener, fleet: Arc<Fleet>, mut stop: watch::Receiver<bool>) {
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let recording = Arc::new(Semaphore::new(RECORDING));
    loop {
        let slot = tokio::select! {
            slot = connections.clone().acquire_owned() => slot,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Ok(slot) = slot else { return };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of file descriptors, or a connection reset while queued: wait a little
                // rather than spin.
                tracing::debug!(%err, "end callback listener: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (fleet, recording) = (fleet.clone(), recording.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |request| {
                let (fleet, recording) = (fleet.clone(), recording.clone());
                async move { Ok::<_, Infallible>(answer(&fleet, &recording, request).await) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .max_buf_size(MAX_BUFFER)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
        });
    }
}

async fn answer(
    fleet: &Fleet,
    recording: &Semaphore,
    request: Request<Incoming>,
) -> Response<String> {
    let (outcome, status) = judge(fleet, recording, &request).await;
    callbacks().add(1, &[kv("outcome", outcome)]);
    let body = match status {
        StatusCode::OK => "ok\n",
        StatusCode::FORBIDDEN => "not signed by this service\n",
        StatusCode::NOT_FOUND => "unknown\n",
        StatusCode::METHOD_NOT_ALLOWED => "GET only\n",
        StatusCode::URI_TOO_LONG => "URI too long\n",
        _ => "not recorded; try again later\n",
    };
    let mut response = Response::new(body.to_owned());
    *response.status_mut() = status;
    response
}

/// The outcome's name for the metric, and the status to answer.
async fn judge(
    fleet: &Fleet,
    recording: &Semaphore,
    request: &Request<Incoming>,
) -> (&'static str, StatusCode) {
    if request.method() != Method::GET {
        return ("unknown", StatusCode::METHOD_NOT_ALLOWED);
    }
    let uri = request.uri();
    if uri.path_and_query().map_or(0, |pq| pq.as_str().len()) > MAX_URI {
        return ("bad_signature", StatusCode::URI_TOO_LONG);
    }
    // Whatever path a proxy in front keeps, the URL ends in the callback's path.
    let path = uri.path().trim_end_matches('/');
    if path.rsplit('/').next() != Some(CALLBACK_PATH) {
        return ("unknown", StatusCode::NOT_FOUND);
    }
    let Ok(_permit) = recording.acquire().await else {
        return ("failed", StatusCode::SERVICE_UNAVAILABLE);
    };
    match fleet.report_end(uri.query().unwrap_or_default()).await {
        Ok(Reported::Accepted) => ("accepted", StatusCode::OK),
        Ok(Reported::Duplicate) => ("duplicate", StatusCode::OK),
        Ok(Reported::NotRecorded) => ("failed", StatusCode::SERVICE_UNAVAILABLE),
        Err(Refused::BadSignature) => ("bad_signature", StatusCode::FORBIDDEN),
        Err(Refused::Unknown) => ("unknown", StatusCode::NOT_FOUND),
    }
}
