//! `/_sim/*`: the emulator's control surface for tests and benchmarks in another process. It
//! sits beside the BBB API on the same port and ignores faults and latency, so whatever broke
//! the API can be switched off again (except `Refuse`, which closes the port and is therefore
//! left to the in-process API).

use super::{Fault, Load, params::Params, server::Shared};
use axum::{
    Router,
    extract::{RawQuery, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use std::{fmt::Write, sync::Arc, time::Duration};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_sim/fault", post(fault))
        .route("/_sim/latency", post(latency))
        .route("/_sim/load", post(load))
        .route("/_sim/stats", get(stats))
        .route("/_sim/end", post(end))
}

fn params(raw: Option<String>) -> Params {
    Params::parse(raw.as_deref().unwrap_or_default())
}

fn bad_request(message: &'static str) -> Response {
    (StatusCode::BAD_REQUEST, message).into_response()
}

/// `mode=none|unavailable|hang|malformed|fail`, with `fraction=0.0..1.0` for `fail`.
async fn fault(State(shared): State<Arc<Shared>>, RawQuery(raw): RawQuery) -> Response {
    let params = params(raw);
    let fault = match params.get("mode") {
        Some("none") => Fault::None,
        Some("unavailable") => Fault::Unavailable,
        Some("hang") => Fault::Hang,
        Some("malformed") => Fault::Malformed,
        Some("fail") => match params.number::<f64>("fraction") {
            Some(fraction) if (0.0..=1.0).contains(&fraction) => Fault::FailFraction(fraction),
            _ => return bad_request("mode=fail needs fraction=<0.0 to 1.0>\n"),
        },
        _ => return bad_request("mode must be none, unavailable, hang, malformed or fail\n"),
    };
    shared.set_fault(fault);
    "ok\n".into_response()
}

/// `ms=<milliseconds>` added to every API answer.
async fn latency(State(shared): State<Arc<Shared>>, RawQuery(raw): RawQuery) -> Response {
    let Some(ms) = params(raw).number::<u64>("ms") else {
        return bad_request("latency needs ms=<milliseconds>\n");
    };
    shared.set_latency(Duration::from_millis(ms));
    "ok\n".into_response()
}

/// `meetingID=…` and any of `participants`, `voice`, `video`, `listeners`, `moderators` (absent
/// ones are 0).
async fn load(State(shared): State<Arc<Shared>>, RawQuery(raw): RawQuery) -> Response {
    let params = params(raw);
    let Some(meeting_id) = params.non_empty("meetingID") else {
        return bad_request("load needs meetingID=…\n");
    };
    let count = |name| params.number::<u32>(name).unwrap_or(0);
    let load = Load {
        participants: count("participants"),
        voice: count("voice"),
        video: count("video"),
        listeners: count("listeners"),
        moderators: count("moderators"),
    };
    if shared.set_meeting_load(meeting_id, load) {
        "ok\n".into_response()
    } else {
        (StatusCode::NOT_FOUND, "no such meeting (or it has ended)\n").into_response()
    }
}

/// `meetingID=…`: ends the meeting as its moderator would (a recorded one leaves a recording),
/// for scripts that do not hold the server's secret.
async fn end(State(shared): State<Arc<Shared>>, RawQuery(raw): RawQuery) -> Response {
    match shared.end(&params(raw)) {
        Ok(_) => "ok\n".into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "no such meeting\n").into_response(),
    }
}

/// One `call count` line per API call name received so far.
async fn stats(State(shared): State<Arc<Shared>>) -> String {
    let mut out = String::new();
    for (call, count) in shared.call_counts() {
        let _ = writeln!(out, "{call} {count}");
    }
    out
}
