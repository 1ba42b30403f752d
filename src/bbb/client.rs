//! The HTTP side of the BBB API: one pooled client, a deadline per kind of call, bounded bodies.

use super::{
    Endpoint, Query, Tls,
    error::BbbError,
    response::{self, Created, Meeting, Recording, Version},
};
use crate::telemetry::{kv, metrics};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Once},
    time::Duration,
};
use tracing::Instrument;

/// Deadlines per kind of call. `connect` bounds the TCP (and TLS) handshake; the others bound
/// the whole call, so a hung server costs exactly that much and no more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    /// `create`, on the join path: short, because a join waits for it.
    pub create: Duration,
    /// `getMeetingInfo`, `isMeetingRunning`, `end`, the version document.
    pub info: Duration,
    /// `getMeetings`, asked by the poller.
    pub poll: Duration,
    /// `getRecordings`, per page.
    pub recordings: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(2),
            create: Duration::from_secs(5),
            info: Duration::from_secs(5),
            poll: Duration::from_secs(5),
            recordings: Duration::from_secs(10),
        }
    }
}

/// The largest body read from a BBB server: generous for getRecordings of a busy room, small
/// enough that a broken proxy streaming garbage cannot exhaust memory.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Pages asked of BBB's getRecordings (at most 100 per page, BBB's own cap).
const RECORDINGS_PAGE: u64 = 100;
/// A bound on pagination, so a server that misreports `totalElements` cannot loop us forever.
const MAX_RECORDING_PAGES: u64 = 100;

/// What `end` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Ended,
    /// BBB does not know the meeting: nothing was running to end.
    NotRunning,
}

/// The HTTP client BBB calls share, so connections are pooled per server; servers with TLS
/// settings of their own get a client per distinct setting.
#[derive(Debug, Clone)]
pub struct BbbClient {
    http: reqwest::Client,
    custom: Arc<Mutex<HashMap<Tls, reqwest::Client>>>,
    timeouts: Timeouts,
}

fn builder(timeouts: Timeouts) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        // BBB never redirects API calls; following one could carry a checksum to another host.
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("eventyay-bbb/", env!("CARGO_PKG_VERSION")))
}

impl BbbClient {
    pub fn new(timeouts: Timeouts) -> Self {
        install_crypto_provider();
        let http = builder(timeouts)
            .build()
            .expect("a TLS backend is installed, so the HTTP client builds");
        Self {
            http,
            custom: Arc::default(),
            timeouts,
        }
    }

    /// The client for this endpoint's TLS settings.
    fn http(&self, endpoint: &Endpoint) -> Result<reqwest::Client, BbbError> {
        let tls = endpoint.tls();
        if *tls == Tls::default() {
            return Ok(self.http.clone());
        }
        let mut custom = self.custom.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = custom.get(tls) {
            return Ok(client.clone());
        }
        let mut b = builder(self.timeouts);
        if let Some(path) = &tls.ca_bundle {
            let pem =
                std::fs::read(path).map_err(|_| BbbError::Unreachable("CA bundle unreadable"))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|_| BbbError::Unreachable("CA bundle is not PEM"))?;
            b = b.tls_certs_merge(certs);
        }
        if tls.insecure {
            b = b.tls_danger_accept_invalid_certs(true);
        }
        let client = b
            .build()
            .map_err(|_| BbbError::Unreachable("TLS settings rejected"))?;
        custom.insert(tls.clone(), client.clone());
        Ok(client)
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// `create`: creates the meeting, or confirms it exists (`duplicate`). With presentation
    /// URLs it is a POST carrying BBB's `<modules>` document; all parameters stay in the signed
    /// query string either way.
    pub async fn create(
        &self,
        endpoint: &Endpoint,
        query: &Query,
        presentation_urls: &[String],
    ) -> Result<Created, BbbError> {
        let url = endpoint.signed_url("create", query);
        let http = self.http(endpoint)?;
        let (request, method) = if presentation_urls.is_empty() {
            (http.get(url), "GET")
        } else {
            let post = http
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/xml")
                .body(presentation_modules(presentation_urls));
            (post, "POST")
        };
        let body = self
            .send(request, self.timeouts.create, endpoint, "create", method)
            .await?;
        response::created(&body)
    }

    pub async fn get_meetings(&self, endpoint: &Endpoint) -> Result<Vec<Meeting>, BbbError> {
        let body = self
            .get(endpoint, "getMeetings", &Query::new(), self.timeouts.poll)
            .await?;
        response::meetings(&body)
    }

    pub async fn get_meeting_info(
        &self,
        endpoint: &Endpoint,
        meeting_id: &str,
    ) -> Result<Meeting, BbbError> {
        let query = Query::new().with("meetingID", meeting_id);
        let body = self
            .get(endpoint, "getMeetingInfo", &query, self.timeouts.info)
            .await?;
        response::meeting_info(&body)
    }

    pub async fn is_meeting_running(
        &self,
        endpoint: &Endpoint,
        meeting_id: &str,
    ) -> Result<bool, BbbError> {
        let query = Query::new().with("meetingID", meeting_id);
        let body = self
            .get(endpoint, "isMeetingRunning", &query, self.timeouts.info)
            .await?;
        response::running(&body)
    }

    /// `end`. Servers before 2.6 require the moderator password, later ones ignore it, so it
    /// is sent when known.
    pub async fn end(
        &self,
        endpoint: &Endpoint,
        meeting_id: &str,
        moderator_pw: Option<&str>,
    ) -> Result<Ended, BbbError> {
        let mut query = Query::new().with("meetingID", meeting_id);
        if let Some(pw) = moderator_pw {
            query.push("password", pw);
        }
        let body = self
            .get(endpoint, "end", &query, self.timeouts.info)
            .await?;
        match response::ended(&body) {
            Ok(()) => Ok(Ended::Ended),
            Err(err) if err.is_unknown_meeting() => Ok(Ended::NotRunning),
            Err(err) => Err(err),
        }
    }

    /// Every recording of the given meetings, in any state, following BBB 2.6+ pagination.
    /// Older servers ignore `offset`/`limit` and answer everything at once without a total.
    pub async fn get_recordings(
        &self,
        endpoint: &Endpoint,
        meeting_ids: &[&str],
    ) -> Result<Vec<Recording>, BbbError> {
        let mut all: Vec<Recording> = Vec::new();
        for page in 0..MAX_RECORDING_PAGES {
            let offset = page * RECORDINGS_PAGE;
            let query = Query::new()
                .with("meetingID", meeting_ids.join(","))
                .with("state", "any")
                .with("offset", offset.to_string())
                .with("limit", RECORDINGS_PAGE.to_string());
            let body = self
                .get(endpoint, "getRecordings", &query, self.timeouts.recordings)
                .await?;
            let page = response::recordings(&body)?;
            let received = page.recordings.len() as u64;
            all.extend(page.recordings);
            match page.total {
                Some(total) if received > 0 && offset + received < total => continue,
                _ => break,
            }
        }
        Ok(all)
    }

    /// The version document at the API root (unsigned); also a cheap liveness probe.
    pub async fn version(&self, endpoint: &Endpoint) -> Result<Version, BbbError> {
        let request = self.http(endpoint)?.get(endpoint.api_base());
        let body = self
            .send(request, self.timeouts.info, endpoint, "", "GET")
            .await?;
        response::version(&body)
    }

    async fn get(
        &self,
        endpoint: &Endpoint,
        call: &str,
        query: &Query,
        timeout: Duration,
    ) -> Result<Vec<u8>, BbbError> {
        let request = self.http(endpoint)?.get(endpoint.signed_url(call, query));
        self.send(request, timeout, endpoint, call, "GET").await
    }

    /// Sends a request and reads its body, all within `timeout`, as one CLIENT span and one
    /// duration measurement. The span names the host, port and path — never the query, which
    /// holds the checksum.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
        endpoint: &Endpoint,
        call: &str,
        method: &'static str,
    ) -> Result<Vec<u8>, BbbError> {
        let path = endpoint.path_of(call);
        let span = tracing::info_span!(
            "bbb",
            otel.name = %format!("{method} {path}"),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            http.request.method = method,
            server.address = %endpoint.host(),
            server.port = endpoint.port(),
            url.path = %path,
            http.response.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
        );
        let started = std::time::Instant::now();
        let exchange = async {
            let mut response = request.send().await.map_err(transport_error)?;
            tracing::Span::current()
                .record("http.response.status_code", response.status().as_u16());
            if response.status() != reqwest::StatusCode::OK {
                return Err(BbbError::HttpStatus(response.status().as_u16()));
            }
            // A body announced too large is refused unread; one announced fits is read into
            // one allocation (growing by doubling would hold up to twice its size at once).
            let announced = response.content_length().unwrap_or(0);
            if announced > MAX_BODY as u64 {
                return Err(BbbError::BadXml("answer larger than 16 MiB".into()));
            }
            let mut body = Vec::with_capacity(announced as usize);
            while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(BbbError::BadXml("answer larger than 16 MiB".into()));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        // One deadline around connect, headers and body: reqwest's own per-request timeout
        // would report as a transport error and lose the distinction.
        let result = tokio::time::timeout(timeout, exchange.instrument(span.clone()))
            .await
            .unwrap_or(Err(BbbError::Timeout(timeout)));
        let call_name = if call.is_empty() { "version" } else { call };
        let attributes = [
            kv("server.address", endpoint.host().to_owned()),
            kv("bbb.call", call_name.to_owned()),
        ];
        metrics()
            .bbb_duration
            .record(started.elapsed().as_secs_f64(), &attributes);
        if let Err(err) = &result {
            span.record("otel.status_code", "ERROR");
            span.record("error.type", err.kind());
            metrics().bbb_errors.add(
                1,
                &[
                    attributes[0].clone(),
                    attributes[1].clone(),
                    kv("error.type", err.kind()),
                ],
            );
        }
        result
    }
}

/// Classifies a transport failure without its text: reqwest's messages include the URL, and
/// with it the checksum.
fn transport_error(err: reqwest::Error) -> BbbError {
    if let Some(refusal) = tls_refusal(&err) {
        return BbbError::Unreachable(refusal);
    }
    if err.is_connect() {
        BbbError::Unreachable("connect failed")
    } else if err.is_timeout() {
        BbbError::Unreachable("connect timed out")
    } else if err.is_body() || err.is_decode() {
        BbbError::Unreachable("body interrupted")
    } else {
        BbbError::Unreachable("request failed")
    }
}

/// Why our side ended a TLS handshake, in words an operator can act on. rustls' error sits
/// inside `io::Error`s, whose `source()` skips what they wrap, hence `get_ref`.
fn tls_refusal(err: &reqwest::Error) -> Option<&'static str> {
    use rustls::{CertificateError, Error as Tls};
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = next {
        if let Some(tls) = cause.downcast_ref::<Tls>() {
            return Some(match tls {
                Tls::InvalidCertificate(CertificateError::UnknownIssuer) => {
                    "TLS certificate not trusted: unknown issuer; set the server's ca_bundle"
                }
                Tls::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ) => "TLS certificate not valid for the server's host name",
                Tls::InvalidCertificate(
                    CertificateError::Expired | CertificateError::ExpiredContext { .. },
                ) => "TLS certificate expired",
                Tls::InvalidCertificate(_) => "TLS certificate rejected",
                _ => "TLS handshake failed",
            });
        }
        next = match cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(wrapped) => Some(wrapped as &(dyn std::error::Error + 'static)),
            None => cause.source(),
        };
    }
    None
}

/// BBB's `<modules>` document naming presentations for the meeting to pre-load.
fn presentation_modules(urls: &[String]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><modules><module name=\"presentation\">",
    );
    for url in urls {
        xml.push_str("<document url=\"");
        xml.push_str(&quick_xml::escape::escape(url.as_str()));
        xml.push_str("\"/>");
    }
    xml.push_str("</module></modules>");
    xml
}

/// reqwest is built without a default TLS provider so that only ring is compiled; install it
/// once per process before the first client is built.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another part of the process installed one first, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_document_escapes_urls() {
        assert_eq!(
            presentation_modules(&["https://h/a.pdf?x=1&y=\"2\"".into()]),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><modules><module name=\"presentation\"><document url=\"https://h/a.pdf?x=1&amp;y=&quot;2&quot;\"/></module></modules>"
        );
    }
}
