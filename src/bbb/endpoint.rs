//! One BBB server as the wire sees it: where its API lives, and how calls to it are signed.

use super::{ChecksumAlgorithm, Query};
use crate::secret::Secret;
use std::fmt;

/// How to check a server's TLS certificate, when the platform's roots are not enough.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Tls {
    /// A PEM file of CA certificates to trust besides the platform's.
    pub ca_bundle: Option<std::path::PathBuf>,
    /// Accept any certificate (the original module's `disable_ssl`): for test fleets only.
    pub insecure: bool,
}

/// The API base of a BBB server plus its shared secret and checksum algorithm.
#[derive(Clone)]
pub struct Endpoint {
    tls: Tls,
    api_base: String,
    host: String,
    port: u16,
    /// The path of `api_base`, for telemetry that must not carry the host's query.
    api_path: String,
    secret: Secret,
    algorithm: ChecksumAlgorithm,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadBaseUrl {
    #[error("not a URL")]
    NotAUrl,
    #[error("the URL must use http or https")]
    Scheme,
    #[error("the URL must not carry a query, fragment or user info")]
    Extras,
}

impl Endpoint {
    /// Accepts a server URL the way operators write it — `https://h`, `https://h/bigbluebutton`,
    /// `…/bigbluebutton/` or `…/bigbluebutton/api[/]` — and derives the API base
    /// `…/bigbluebutton/api/`. A bare host means BBB's standard `/bigbluebutton` path.
    pub fn new(
        url: &str,
        secret: Secret,
        algorithm: ChecksumAlgorithm,
    ) -> Result<Self, BadBaseUrl> {
        let parsed = reqwest::Url::parse(url.trim()).map_err(|_| BadBaseUrl::NotAUrl)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(BadBaseUrl::Scheme);
        }
        if parsed.query().is_some()
            || parsed.fragment().is_some()
            || !parsed.username().is_empty()
            || parsed.password().is_some()
        {
            return Err(BadBaseUrl::Extras);
        }
        let host = parsed.host_str().ok_or(BadBaseUrl::NotAUrl)?.to_owned();
        let mut path = parsed.path().trim_end_matches('/');
        path = path.strip_suffix("/api").unwrap_or(path);
        let path = if path.is_empty() {
            "/bigbluebutton"
        } else {
            path
        };
        let origin = parsed.origin().ascii_serialization();
        Ok(Self {
            tls: Tls::default(),
            api_base: format!("{origin}{path}/api/"),
            port: parsed.port_or_known_default().unwrap_or(443),
            api_path: format!("{path}/api/"),
            host,
            secret,
            algorithm,
        })
    }

    /// `…/bigbluebutton/api/`, always with the trailing slash.
    pub fn api_base(&self) -> &str {
        &self.api_base
    }

    /// The server's host name, for telemetry and for repairing BBB's `///` playback URLs.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The same endpoint with its own TLS settings.
    pub fn with_tls(mut self, tls: Tls) -> Self {
        self.tls = tls;
        self
    }

    pub fn tls(&self) -> &Tls {
        &self.tls
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path of `call` on this server, without host or query: what telemetry may show.
    pub fn path_of(&self, call: &str) -> String {
        format!("{}{call}", self.api_path)
    }

    pub fn algorithm(&self) -> ChecksumAlgorithm {
        self.algorithm
    }

    /// The full signed URL of `call`: the query exactly as built, then `checksum` last.
    pub fn signed_url(&self, call: &str, query: &Query) -> String {
        let checksum = self
            .algorithm
            .checksum(call, query.as_str(), self.secret.expose());
        let separator = if query.is_empty() { "" } else { "&" };
        format!(
            "{}{call}?{}{separator}checksum={checksum}",
            self.api_base,
            query.as_str()
        )
    }

    /// A signed join URL for a browser to open. It is built, never fetched: fetching it would
    /// make the server add this service as a participant.
    pub fn join_url(&self, query: &Query) -> String {
        self.signed_url("join", query)
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("api_base", &self.api_base)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(url: &str) -> Result<String, BadBaseUrl> {
        Endpoint::new(url, Secret::new("s"), ChecksumAlgorithm::Sha256)
            .map(|e| e.api_base().to_owned())
    }

    #[test]
    fn normalises_base_urls_as_operators_type_them() {
        let want = "https://bbb.example.org/bigbluebutton/api/";
        for url in [
            "https://bbb.example.org",
            "https://bbb.example.org/",
            "https://bbb.example.org/bigbluebutton",
            "https://bbb.example.org/bigbluebutton/",
            "https://bbb.example.org/bigbluebutton/api",
            " https://bbb.example.org/bigbluebutton/api/ ",
        ] {
            assert_eq!(base(url).as_deref(), Ok(want), "{url}");
        }
        assert_eq!(
            base("http://127.0.0.1:8090/lb/bbb/").as_deref(),
            Ok("http://127.0.0.1:8090/lb/bbb/api/")
        );
    }

    #[test]
    fn rejects_what_cannot_be_a_bbb_base() {
        assert_eq!(base("bbb.example.org"), Err(BadBaseUrl::NotAUrl));
        assert_eq!(base("ftp://h/bigbluebutton"), Err(BadBaseUrl::Scheme));
        assert_eq!(base("https://h/b?x=1"), Err(BadBaseUrl::Extras));
        assert_eq!(base("https://u:p@h/b"), Err(BadBaseUrl::Extras));
    }

    #[test]
    fn signs_with_checksum_last_and_handles_the_empty_query() {
        let ep = Endpoint::new(
            "https://h/bigbluebutton/",
            Secret::new("639259d4-9dd8-4b25-bf01-95f9567eaf4b"),
            ChecksumAlgorithm::Sha1,
        )
        .unwrap();
        let q = Query::new()
            .with("name", "Test Meeting")
            .with("meetingID", "abc123")
            .with("attendeePW", "111222")
            .with("moderatorPW", "333444");
        assert_eq!(
            ep.signed_url("create", &q),
            "https://h/bigbluebutton/api/create?name=Test+Meeting&meetingID=abc123&attendeePW=111222&moderatorPW=333444&checksum=1fcbb0c4fc1f039f73aa6d697d2db9ba7f803f17"
        );
        let ep = Endpoint::new(
            "https://h/bigbluebutton/",
            Secret::new("b4578c133b8a49acaecacbb3abec91a1"),
            ChecksumAlgorithm::Sha1,
        )
        .unwrap();
        assert_eq!(
            ep.signed_url("getMeetings", &Query::new()),
            "https://h/bigbluebutton/api/getMeetings?checksum=626a395f69c5f3a3e04145a8262c318c6f788808"
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let ep = Endpoint::new(
            "https://h",
            Secret::new("canary-secret"),
            Default::default(),
        )
        .unwrap();
        assert!(!format!("{ep:?}").contains("canary"));
    }
}
