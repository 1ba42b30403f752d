//! The BBB API over HTTP: routes, methods, checksums, injected faults and join's redirects.

use super::{
    Fault, control,
    params::Params,
    server::Shared,
    xml::{self, Failure},
};
use crate::bbb::{checksum, query};
use axum::{
    Router,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::{any, get},
};
use quick_xml::{
    XmlVersion,
    events::{BytesStart, Event},
    reader::Reader,
};
use std::sync::Arc;

const UNSUPPORTED: Failure = Failure::new("unsupportedRequest", "This request is not supported.");
const CHECKSUM: Failure = Failure::new("checksumError", "Checksums do not match");
// RecordingController still words it the pre-2.4 way.
const RECORDING_CHECKSUM: Failure = Failure::new(
    "checksumError",
    "You did not pass the checksum security check",
);
const CONTENT_TYPE: Failure = Failure::new(
    "unsupportedContentType",
    "POST request Content-Type is missing or unsupported",
);
// Newest bbb-web rejects an unreadable create body under this key; the message is the
// emulator's own.
const MALFORMED_BODY: Failure = Failure::new(
    "malformedXml",
    "The XML body of the request is not well-formed",
);

const CLIENT_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>BigBlueButton (emulated)</title>\
</head><body><p>An emulated BigBlueButton server: the meeting client would open here.</p></body>\
</html>\n";

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/bigbluebutton/api", get(version))
        .route("/bigbluebutton/api/", get(version))
        .route("/bigbluebutton/api/{call}", any(api_call))
        .route("/html5client/{page}", get(client_page))
        .merge(control::routes())
        .with_state(shared)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Create,
    Join,
    IsMeetingRunning,
    GetMeetingInfo,
    GetMeetings,
    End,
    GetRecordings,
}

impl Call {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "create" => Self::Create,
            "join" => Self::Join,
            "isMeetingRunning" => Self::IsMeetingRunning,
            "getMeetingInfo" => Self::GetMeetingInfo,
            "getMeetings" => Self::GetMeetings,
            "end" => Self::End,
            "getRecordings" => Self::GetRecordings,
            _ => return None,
        })
    }

    /// bbb-web's UrlMappings: everything here takes GET or POST, except join (GET only since 3.0).
    fn allows(self, method: &Method) -> bool {
        *method == Method::GET || (*method == Method::POST && self != Self::Join)
    }

    /// The POST content types bbb-web accepts; create's body is the `<modules>` document.
    fn accepts(self, content_type: &str) -> bool {
        match content_type {
            "application/xml" | "text/xml" => true,
            "application/x-www-form-urlencoded" | "multipart/form-data" => self != Self::Create,
            _ => false,
        }
    }
}

fn xml_response(body: impl IntoResponse) -> Response {
    (
        [
            (header::CONTENT_TYPE, xml::CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// What the current fault and latency do to an answer: `Some` replaces it.
async fn disturbance(shared: &Shared) -> Option<Response> {
    let latency = shared.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let fault = *shared.faults.borrow();
    match fault {
        // Refused connections are cut below HTTP, in `faults`.
        Fault::None | Fault::Refuse => None,
        Fault::Unavailable => Some(StatusCode::SERVICE_UNAVAILABLE.into_response()),
        Fault::Hang => {
            hang(shared).await;
            Some(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
        Fault::Malformed => Some(xml_response(xml::MALFORMED)),
        Fault::FailFraction(fraction) => (rand::random::<f64>() < fraction)
            .then(|| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
    }
}

/// Waits until the fault is no longer `Hang` or the server stops.
async fn hang(shared: &Shared) {
    let mut faults = shared.faults.subscribe();
    let mut stopping = shared.stopping.subscribe();
    tokio::select! {
        _ = async { let _ = faults.wait_for(|f| !matches!(f, Fault::Hang)).await; } => {}
        _ = async { let _ = stopping.wait_for(|stop| *stop).await; } => {}
    }
}

async fn version(State(shared): State<Arc<Shared>>) -> Response {
    shared.count("index");
    if let Some(disturbed) = disturbance(&shared).await {
        return disturbed;
    }
    xml_response(xml::VERSION)
}

/// Where join sends a browser; a page so that following the redirect ends somewhere.
async fn client_page(State(shared): State<Arc<Shared>>) -> Response {
    if let Some(disturbed) = disturbance(&shared).await {
        return disturbed;
    }
    Html(CLIENT_PAGE).into_response()
}

async fn api_call(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    shared.count(&name);
    if let Some(disturbed) = disturbance(&shared).await {
        return disturbed;
    }
    let Some(call) = Call::from_name(&name) else {
        return xml_response(UNSUPPORTED.render());
    };
    if !call.allows(&method) {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    // The checksum covers the query string exactly as it arrived, never a re-encoding of it.
    let raw = raw.unwrap_or_default();
    let params = Params::parse(&raw);
    // join answers a browser: its errors are redirects unless the caller asked for XML.
    let redirect = call == Call::Join
        && params
            .non_empty("redirect")
            .is_none_or(|v| v.eq_ignore_ascii_case("true"));

    if !checksum_matches(&shared, &name, &raw, &params) {
        let failure = if call == Call::GetRecordings {
            RECORDING_CHECKSUM
        } else {
            CHECKSUM
        };
        return if redirect {
            error_redirect(&shared, None, failure)
        } else {
            xml_response(failure.render())
        };
    }
    let params = params.without("checksum");

    if method == Method::POST {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        if !call.accepts(&content_type) {
            return xml_response(CONTENT_TYPE.render());
        }
    }

    let answer = match call {
        Call::Create => {
            let documents = if method == Method::POST {
                match presentation_urls(&body) {
                    Ok(urls) => urls,
                    Err(failure) => return xml_response(failure.render()),
                }
            } else {
                Vec::new()
            };
            shared.state().create(&params, documents)
        }
        Call::Join => {
            let joined = shared.state().join(&params);
            return match (joined, redirect) {
                (Ok(joined), true) => found(&joined.url),
                (Ok(joined), false) => xml_response(joined.xml),
                (Err(failed), true) => {
                    error_redirect(&shared, failed.logout_url.as_deref(), failed.failure)
                }
                (Err(failed), false) => xml_response(failed.failure.render()),
            };
        }
        Call::IsMeetingRunning => shared.state().is_meeting_running(&params),
        Call::GetMeetingInfo => shared.state().meeting_info(&params),
        Call::GetMeetings => Ok(shared.state().meetings_xml()),
        Call::End => shared.end(&params),
        Call::GetRecordings => Ok(shared.state().recordings_xml(&params)),
    };
    xml_response(answer.unwrap_or_else(|failure| failure.render()))
}

/// bbb-web's check: exactly one `checksum` parameter, removed from the raw query string by
/// literal replacement (GetChecksum.java), the hash picked by the checksum's length.
fn checksum_matches(shared: &Shared, call: &str, raw: &str, params: &Params) -> bool {
    let mut received = params.all("checksum");
    let (Some(checksum), None) = (received.next(), received.next()) else {
        return false;
    };
    let stripped = raw
        .replace(&format!("&checksum={checksum}"), "")
        .replace(&format!("checksum={checksum}&"), "")
        .replace(&format!("checksum={checksum}"), "");
    checksum::verify(
        &shared.checksums,
        call,
        &stripped,
        shared.secret().expose(),
        checksum,
    )
}

fn found(location: &str) -> Response {
    match HeaderValue::from_bytes(location.as_bytes()) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        // Only a logoutURL with control characters gets here; BBB would fail as well.
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A join error the 2.7+ way for browsers: a redirect to the meeting's logout URL (or the
/// server) with `errors=[{"key":…,"message":…}]` in the query.
fn error_redirect(shared: &Shared, logout_url: Option<&str>, failure: Failure) -> Response {
    let fallback = format!("{}/", shared.origin);
    let target = logout_url.unwrap_or(&fallback);
    // Keys and messages are constants without quotes or backslashes: nothing to escape in JSON.
    let errors = format!(
        r#"[{{"key":"{}","message":"{}"}}]"#,
        failure.key, failure.message
    );
    let separator = if target.contains('?') { '&' } else { '?' };
    found(&format!(
        "{target}{separator}errors={}",
        query::encode(&errors)
    ))
}

/// The URLs of the `<document url=…>` elements of create's `<modules>` body, from the
/// `presentation` module only; documents embedded as base64 have no URL and are skipped.
fn presentation_urls(body: &[u8]) -> Result<Vec<String>, Failure> {
    let text = std::str::from_utf8(body).map_err(|_| MALFORMED_BODY)?;
    let mut urls = Vec::new();
    if text.trim().is_empty() {
        return Ok(urls);
    }
    let mut reader = Reader::from_str(text);
    let mut depth = 0usize;
    let mut in_presentation = false;
    loop {
        match reader.read_event().map_err(|_| MALFORMED_BODY)? {
            Event::Start(element) => {
                depth += 1;
                if element.name().as_ref() == "module" {
                    in_presentation =
                        attribute(&element, "name")?.as_deref() == Some("presentation");
                }
                document_url(&element, in_presentation, &mut urls)?;
            }
            Event::Empty(element) => document_url(&element, in_presentation, &mut urls)?,
            Event::End(element) => {
                depth = depth.checked_sub(1).ok_or(MALFORMED_BODY)?;
                if element.name().as_ref() == "module" {
                    in_presentation = false;
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    // quick-xml reports mismatched end tags, but not elements left open at the end.
    if depth == 0 {
        Ok(urls)
    } else {
        Err(MALFORMED_BODY)
    }
}

fn document_url(
    element: &BytesStart<'_>,
    in_presentation: bool,
    urls: &mut Vec<String>,
) -> Result<(), Failure> {
    if in_presentation
        && element.name().as_ref() == "document"
        && let Some(url) = attribute(element, "url")?
    {
        urls.push(url);
    }
    Ok(())
}

fn attribute(element: &BytesStart<'_>, name: &str) -> Result<Option<String>, Failure> {
    match element.try_get_attribute(name) {
        Ok(Some(attribute)) => attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map(|value| Some(value.into_owned()))
            .map_err(|_| MALFORMED_BODY),
        Ok(None) => Ok(None),
        Err(_) => Err(MALFORMED_BODY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presentation_documents_come_from_the_presentation_module_only() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<modules>
  <module name="presentation">
    <document url="https://example.org/a.pdf?x=1&amp;y=2" filename="a.pdf"/>
    <document name="embedded.pdf">JVBERi0xLjQK</document>
    <document url="https://example.org/b.pdf"></document>
  </module>
  <module name="clientSettingsOverride"><document url="https://example.org/ignored"/></module>
</modules>"#;
        assert_eq!(
            presentation_urls(body).unwrap(),
            vec![
                "https://example.org/a.pdf?x=1&y=2".to_owned(),
                "https://example.org/b.pdf".to_owned()
            ]
        );
    }

    #[test]
    fn broken_bodies_are_rejected() {
        for body in [
            &b"<modules><module name=\"presentation\">"[..],
            b"<modules></module>",
            b"<modules><document url=\"x></modules>",
            b"\xff\xfe",
        ] {
            assert_eq!(presentation_urls(body), Err(MALFORMED_BODY), "{body:?}");
        }
        assert_eq!(presentation_urls(b"  "), Ok(Vec::new()));
    }
}
