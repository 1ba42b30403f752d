//! The domain's types: the servers of the fleet as operators configure them, their states, and
//! meetings as the service keeps them. Every layer speaks them; `store` persists them.

use crate::{
    bbb::{ChecksumAlgorithm, Endpoint},
    secret::Secret,
};
use std::{
    net::{IpAddr, Ipv6Addr},
    str::FromStr,
};

/// Whether an id is one the contract allows: 1 to 128 letters, digits or `._:-`. Commas are
/// out, so id lists can be stored comma-joined.
pub fn is_valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Whether a server takes meetings. `Cordoned` keeps its running meetings but takes no new
/// ones; `Disabled` takes nothing, and its meetings move on their next join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ServerState {
    #[default]
    Enabled,
    Cordoned,
    Disabled,
}

impl ServerState {
    pub fn name(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Cordoned => "cordoned",
            Self::Disabled => "disabled",
        }
    }
}

impl FromStr for ServerState {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "enabled" => Ok(Self::Enabled),
            "cordoned" => Ok(Self::Cordoned),
            "disabled" => Ok(Self::Disabled),
            other => Err(format!(
                "unknown server state {other:?} (expected enabled, cordoned or disabled)"
            )),
        }
    }
}

/// A BBB server of the fleet, as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub id: String,
    pub url: String,
    pub secret: Secret,
    pub checksum: ChecksumAlgorithm,
    pub state: ServerState,
    /// Never hosts private calls.
    pub rooms_only: bool,
    /// Reserved for these events (with `organizers`: for these events or organizers).
    pub events: Vec<String>,
    pub organizers: Vec<String>,
    /// Relative capacity.
    pub weight: f64,
    /// Hard caps; 0 means none.
    pub max_meetings: u32,
    pub max_participants: u32,
    /// Cordoned until it carries no meeting, then disabled.
    pub draining: bool,
    /// A PEM file of extra CA certificates to trust for this server, or empty.
    pub ca_bundle: String,
    /// Skip TLS certificate checks (the original's `disable_ssl`; logged loudly).
    pub insecure_tls: bool,
}

impl Server {
    /// A server with the servers file's defaults: enabled, sha256, open to every event,
    /// weight 1, no caps.
    pub fn new(id: impl Into<String>, url: impl Into<String>, secret: Secret) -> Self {
        Self {
            id: id.into(),
            url: url.into(),
            secret,
            checksum: ChecksumAlgorithm::default(),
            state: ServerState::Enabled,
            rooms_only: false,
            events: Vec::new(),
            organizers: Vec::new(),
            weight: 1.0,
            max_meetings: 0,
            max_participants: 0,
            draining: false,
            ca_bundle: String::new(),
            insecure_tls: false,
        }
    }
}

/// A room's meeting or a private call: its BBB identity and where it lives now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meeting {
    pub id: String,
    pub event_id: String,
    pub organizer_id: String,
    pub room_id: Option<String>,
    pub bbb_meeting_id: String,
    pub attendee_pw: String,
    pub moderator_pw: String,
    pub server_id: String,
    /// Taken over from the Python module (see `entities::meeting`).
    pub imported: bool,
    /// When the meeting's latest claim was written (epoch ms, by the claiming replica's clock):
    /// its placement, or the claim that preceded its latest create. Every create is preceded by
    /// a claim, so no create that may make a fresh meeting on a server is older than this.
    pub claimed_at: i64,
}

/// A URL's host: a literal address (an IPv4-mapped IPv6 one read as the IPv4 it is), or a name.
enum UrlHost {
    Ip(IpAddr),
    Name(String),
}

fn url_host(url: &str) -> Option<UrlHost> {
    let url = url::Url::parse(url.trim()).ok()?;
    Some(match url.host()? {
        url::Host::Ipv4(ip) => UrlHost::Ip(ip.into()),
        url::Host::Ipv6(ip) => UrlHost::Ip(ip.to_ipv4_mapped().map_or(ip.into(), IpAddr::V4)),
        url::Host::Domain(name) => UrlHost::Name(name.to_owned()),
    })
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => ip.is_link_local(),
        IpAddr::V6(ip) => ip.is_unicast_link_local(),
    }
}

/// Link-local addresses (where clouds serve instance metadata and credentials) and the
/// metadata host names: signed calls must never go there.
fn is_metadata_address(url: &str) -> bool {
    match url_host(url) {
        Some(UrlHost::Ip(ip)) => {
            is_link_local(ip)
                || ip == IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254))
        }
        Some(UrlHost::Name(name)) => {
            matches!(
                name.as_str(),
                "metadata.google.internal" | "metadata" | "instance-data"
            )
        }
        None => false,
    }
}

/// Whether a URL's host is a literal address BBB should not be sent to fetch from: loopback,
/// private, link-local (cloud metadata lives there), unique-local or unspecified. Host names are
/// left to the operator's network: resolving them here would not bind what BBB resolves later.
pub fn is_private_address(url: &str) -> bool {
    match url_host(url) {
        Some(UrlHost::Ip(ip)) => {
            ip.is_loopback()
                || ip.is_unspecified()
                || is_link_local(ip)
                || match ip {
                    IpAddr::V4(ip) => ip.is_private(),
                    IpAddr::V6(ip) => ip.is_unique_local(),
                }
        }
        Some(UrlHost::Name(name)) => name == "localhost",
        None => false,
    }
}

/// What is wrong with a server's settings: the field and the rule, never the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadSetting {
    /// `id`, `url`, `secret`, `weight` or `events`.
    pub field: &'static str,
    pub problem: &'static str,
}

/// The longest shared secret taken; BBB's are 32 to 64 characters.
const MAX_SECRET: usize = 512;

impl Server {
    /// The one check of a server's settings, wherever they come from (the servers file,
    /// PutServer, the import). An empty secret passes only when `secret_required` is false
    /// (an update that keeps the stored one).
    pub fn check(&self, secret_required: bool) -> Result<(), BadSetting> {
        let bad = |field, problem| Err(BadSetting { field, problem });
        if !is_valid_id(&self.id) {
            return bad("id", "must be 1-128 letters, digits or ._:-");
        }
        if Endpoint::new(&self.url, self.secret.clone(), self.checksum).is_err() {
            return bad("url", "must be an http(s) URL without query or user info");
        }
        if is_metadata_address(&self.url) {
            return bad(
                "url",
                "is a link-local or cloud metadata address, not a BBB server",
            );
        }
        if secret_required && self.secret.expose().is_empty() {
            return bad("secret", "is empty: a server needs its shared secret");
        }
        if self.secret.expose().len() > MAX_SECRET {
            return bad("secret", "is longer than 512 characters");
        }
        if !(self.weight.is_finite() && self.weight > 0.0) {
            return bad("weight", "must be a positive number");
        }
        if !self
            .events
            .iter()
            .chain(&self.organizers)
            .all(|x| is_valid_id(x))
        {
            return bad("events", "every event and organizer must be a valid id");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(is_valid_id("42") && is_valid_id("room.a_b:c-d"));
        assert!(!is_valid_id("") && !is_valid_id("a b") && !is_valid_id("a,b"));
        assert!(!is_valid_id(&"x".repeat(129)));
    }

    #[test]
    fn presentations_on_private_addresses_are_recognised() {
        for private in [
            "http://127.0.0.1/x.pdf",
            "http://10.1.2.3/x.pdf",
            "http://192.168.0.9:8080/x.pdf",
            "http://172.16.5.5/x.pdf",
            "http://169.254.169.254/latest/meta-data/",
            "http://0.0.0.0/x",
            "http://[::1]/x",
            "http://[fd00:ec2::254]/x",
            "http://[fe80::1]/x",
            "http://[::ffff:10.0.0.1]/x",
            "http://localhost/x",
        ] {
            assert!(is_private_address(private), "{private}");
        }
        for public in [
            "https://cdn.example.org/x.pdf",
            "https://93.184.216.34/x.pdf",
            "https://[2606:4700::1111]/x",
            "not a url",
        ] {
            assert!(!is_private_address(public), "{public}");
        }
    }

    #[test]
    fn one_check_of_a_servers_settings() {
        let good = Server::new(
            "bbb-1",
            "https://bbb.example.org/bigbluebutton/",
            Secret::new("s"),
        );
        assert_eq!(good.check(true), Ok(()));
        let field =
            |server: Server, secret_required| server.check(secret_required).unwrap_err().field;
        assert_eq!(
            field(
                Server {
                    id: "a b".into(),
                    ..good.clone()
                },
                true
            ),
            "id"
        );
        assert_eq!(
            field(
                Server {
                    url: "ftp://h/".into(),
                    ..good.clone()
                },
                true
            ),
            "url"
        );
        assert_eq!(
            field(
                Server {
                    weight: 0.0,
                    ..good.clone()
                },
                true
            ),
            "weight"
        );
        assert_eq!(
            field(
                Server {
                    weight: f64::NAN,
                    ..good.clone()
                },
                true
            ),
            "weight"
        );
        assert_eq!(
            field(
                Server {
                    events: vec!["x,y".into()],
                    ..good.clone()
                },
                true
            ),
            "events"
        );
        let keeps_secret = Server {
            secret: Secret::new(""),
            ..good.clone()
        };
        assert_eq!(field(keeps_secret.clone(), true), "secret");
        assert_eq!(
            keeps_secret.check(false),
            Ok(()),
            "an update may keep the stored secret"
        );
        let long = Server {
            secret: Secret::new("s".repeat(513)),
            ..good
        };
        assert_eq!(field(long, false), "secret");
    }
}
