//! Settings the operator gives: flags, `EVENTYAY_BBB_*` environment variables, and the same
//! keys in an optional TOML file (`--config`). A flag or variable wins over the file, the file
//! over the defaults. Secrets are read here and leave only as [`Secret`]s.

use crate::{
    bbb::{ChecksumAlgorithm, Endpoint, Timeouts},
    domain::{Server, ServerState},
    fleet::Thresholds,
    secret::Secret,
    tls::TlsFiles,
};
use serde::Deserialize;
use std::{collections::HashMap, net::SocketAddr, path::PathBuf, time::Duration};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn invalid(msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(msg.into())
}

/// `serve`'s settings, as flags and environment variables. No `Debug`: it holds tokens and the
/// database URL as typed.
#[derive(Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below, keyed by variable name
    /// (`EVENTYAY_BBB_LISTEN = "…"`) or its short form (`listen = "…"`).
    #[arg(long, env = "EVENTYAY_BBB_CONFIG")]
    pub config: Option<PathBuf>,
    /// gRPC listen address [default: 127.0.0.1:50051]
    #[arg(long, env = "EVENTYAY_BBB_LISTEN")]
    pub listen: Option<String>,
    /// PEM certificate chain of the gRPC port. With `tls_key` the port serves TLS only, and a
    /// renewed pair (the files replaced in place) is served within seconds, without a restart.
    #[arg(long, env = "EVENTYAY_BBB_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    #[arg(long, env = "EVENTYAY_BBB_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// A plaintext address that answers only health checks (grpc.health.v1), for probes that
    /// cannot speak TLS, such as Kubernetes' gRPC probes [default: none]
    #[arg(long, env = "EVENTYAY_BBB_HEALTH_LISTEN")]
    pub health_listen: Option<String>,
    /// Database URL: an SQLite file (default `sqlite://eventyay-bbb.db?mode=rwc`) or `postgres://…`.
    #[arg(long, env = "EVENTYAY_BBB_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Database connections per replica, plus one for health pings [default: 8 on SQLite, 16
    /// on PostgreSQL]. On PostgreSQL, replicas × (pool + 1) must stay within the connections
    /// the database allows.
    #[arg(long, env = "EVENTYAY_BBB_DATABASE_POOL")]
    pub database_pool: Option<u32>,
    /// Apply pending migrations at start [default: true]
    #[arg(long, env = "EVENTYAY_BBB_MIGRATE")]
    pub migrate: Option<bool>,
    /// Bearer tokens of BbbService, comma-separated (several during a rotation).
    #[arg(long, env = "EVENTYAY_BBB_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// A file holding the BbbService tokens (a mounted secret).
    #[arg(long, env = "EVENTYAY_BBB_API_TOKEN_FILE")]
    pub api_token_file: Option<PathBuf>,
    /// Bearer tokens of FleetService, comma-separated.
    #[arg(long, env = "EVENTYAY_BBB_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// A file holding the FleetService tokens.
    #[arg(long, env = "EVENTYAY_BBB_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// TOML file of BBB servers (`[[servers]]` tables); it wins for every server it lists.
    #[arg(long, env = "EVENTYAY_BBB_SERVERS_FILE")]
    pub servers_file: Option<PathBuf>,
    /// How often the fleet is polled, e.g. `10s`, `500ms` [default: 10s]
    #[arg(long, env = "EVENTYAY_BBB_POLL_INTERVAL")]
    pub poll_interval: Option<String>,
    /// Consecutive failed calls before a server counts as unhealthy [default: 2]
    #[arg(long, env = "EVENTYAY_BBB_UNHEALTHY_AFTER")]
    pub unhealthy_after: Option<u32>,
    /// Consecutive answers before an unhealthy server is trusted again [default: 2]
    #[arg(long, env = "EVENTYAY_BBB_HEALTHY_AFTER")]
    pub healthy_after: Option<u32>,
    /// How long a meeting confirmed on its server is trusted without asking again [default: 2s]
    #[arg(long, env = "EVENTYAY_BBB_ENSURE_TTL")]
    pub ensure_ttl: Option<String>,
    /// Deadline of BBB's create on the join path [default: 5s]
    #[arg(long, env = "EVENTYAY_BBB_CREATE_TIMEOUT")]
    pub create_timeout: Option<String>,
    /// Deadline of a TCP/TLS connect to a BBB server [default: 2s]
    #[arg(long, env = "EVENTYAY_BBB_CONNECT_TIMEOUT")]
    pub connect_timeout: Option<String>,
    /// Deadline of getRecordings per server [default: 10s]
    #[arg(long, env = "EVENTYAY_BBB_RECORDINGS_TIMEOUT")]
    pub recordings_timeout: Option<String>,
    /// Private calls older than this are deleted (their links stop working) [default: 30d]
    #[arg(long, env = "EVENTYAY_BBB_CALL_MAX_AGE")]
    pub call_max_age: Option<String>,
    /// Longest any RPC may take, whatever the caller's deadline [default: 30s]
    #[arg(long, env = "EVENTYAY_BBB_RPC_TIMEOUT")]
    pub rpc_timeout: Option<String>,
    /// Let BBB fetch presentations from loopback, private and link-local addresses (a
    /// presentation server inside the BBB servers' own network) [default: false]
    #[arg(long, env = "EVENTYAY_BBB_PRIVATE_PRESENTATIONS")]
    pub private_presentations: Option<bool>,
    /// Keep every room on the server of its first placement (until failover) instead of
    /// placing it anew when a session starts [default: false]
    #[arg(long, env = "EVENTYAY_BBB_PIN_ROOMS")]
    pub pin_rooms: Option<bool>,
    /// Address of the listener BBB servers call when a meeting ends, e.g. 0.0.0.0:8090; with
    /// `callback_url` [default: none, no end callbacks]
    #[arg(long, env = "EVENTYAY_BBB_CALLBACK_LISTEN")]
    pub callback_listen: Option<String>,
    /// The base URL by which BBB servers reach that listener, e.g.
    /// https://bbb-callback.example.org; with `callback_listen`
    #[arg(long, env = "EVENTYAY_BBB_CALLBACK_URL")]
    pub callback_url: Option<String>,
}

/// Settings after defaults, files and validation.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub tls: Option<TlsFiles>,
    pub health_listen: Option<SocketAddr>,
    pub database_url: Secret,
    /// `None`: the backend's default.
    pub database_pool: Option<u32>,
    pub migrate: bool,
    pub api_tokens: Vec<Secret>,
    pub admin_tokens: Vec<Secret>,
    pub servers: Option<Vec<Server>>,
    pub poll_interval: Duration,
    pub health: Thresholds,
    pub ensure_ttl: Duration,
    pub bbb_timeouts: Timeouts,
    pub rpc_timeout: Duration,
    pub call_max_age: Duration,
    pub private_presentations: bool,
    pub pin_rooms: bool,
    /// BBB's end callback; `None`: off.
    pub callback: Option<CallbackSettings>,
}

/// Where the end callback listener listens, and the base URL BBB servers reach it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackSettings {
    pub listen: SocketAddr,
    /// Absolute http(s) URL without query, fragment or credentials.
    pub url: String,
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://eventyay-bbb.db?mode=rwc";

impl ServeArgs {
    pub fn load(&self) -> Result<Settings, ConfigError> {
        let file = match &self.config {
            Some(path) => read_settings_file(path)?,
            None => HashMap::new(),
        };
        let pick = |flag: &Option<String>, key: &str| -> Option<String> {
            flag.clone().or_else(|| file.get(key).cloned())
        };
        let duration = |flag: &Option<String>, key: &str, default: Duration| {
            pick(flag, key)
                .map(|v| parse_duration(&v).map_err(|e| invalid(format!("{key}: {e}"))))
                .transpose()
                .map(|d| d.unwrap_or(default))
        };

        let listen = pick(&self.listen, "listen").unwrap_or_else(|| "127.0.0.1:50051".into());
        let listen: SocketAddr = listen.parse().map_err(|_| {
            invalid(format!(
                "listen: {listen:?} is not an address like 127.0.0.1:50051"
            ))
        })?;
        let path = |flag: &Option<PathBuf>, key: &str| {
            flag.clone().or_else(|| file.get(key).map(PathBuf::from))
        };
        let tls = match (
            path(&self.tls_cert, "tls_cert"),
            path(&self.tls_key, "tls_key"),
        ) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (cert, _) => {
                let (set, unset) = if cert.is_some() {
                    ("tls_cert", "tls_key")
                } else {
                    ("tls_key", "tls_cert")
                };
                return Err(invalid(format!(
                    "{set} is set but {unset} is not: TLS needs both EVENTYAY_BBB_TLS_CERT and EVENTYAY_BBB_TLS_KEY"
                )));
            }
        };
        let health_listen = pick(&self.health_listen, "health_listen")
            .map(|addr| {
                addr.parse::<SocketAddr>().map_err(|_| {
                    invalid(format!(
                        "health_listen: {addr:?} is not an address like 0.0.0.0:50052"
                    ))
                })
            })
            .transpose()?;
        let callback = callback_settings(
            pick(&self.callback_listen, "callback_listen"),
            pick(&self.callback_url, "callback_url"),
        )?;
        let flag = |given: Option<bool>, key: &str, default: bool| match given {
            Some(value) => Ok(value),
            None => match file.get(key).map(String::as_str) {
                None => Ok(default),
                Some("true") => Ok(true),
                Some("false") => Ok(false),
                Some(other) => Err(invalid(format!("{key}: {other:?} is not true or false"))),
            },
        };
        let migrate = flag(self.migrate, "migrate", true)?;
        let private_presentations =
            flag(self.private_presentations, "private_presentations", false)?;
        let pin_rooms = flag(self.pin_rooms, "pin_rooms", false)?;
        let api_tokens = tokens(
            pick(&self.api_token, "api_token"),
            self.api_token_file
                .clone()
                .or_else(|| file.get("api_token_file").map(PathBuf::from)),
            "api_token",
        )?;
        let admin_tokens = tokens(
            pick(&self.admin_token, "admin_token"),
            self.admin_token_file
                .clone()
                .or_else(|| file.get("admin_token_file").map(PathBuf::from)),
            "admin_token",
        )?;
        if api_tokens.is_empty() {
            return Err(invalid(
                "no API token: set EVENTYAY_BBB_API_TOKEN or EVENTYAY_BBB_API_TOKEN_FILE",
            ));
        }
        if api_tokens.iter().any(|t| admin_tokens.contains(t)) {
            return Err(invalid("an API token must not also be an admin token"));
        }
        let servers_file = self
            .servers_file
            .clone()
            .or_else(|| file.get("servers_file").map(PathBuf::from));
        let servers = servers_file.map(|p| read_servers_file(&p)).transpose()?;

        let count = |flag: Option<u32>, key: &str, default: u32| -> Result<u32, ConfigError> {
            let value = match flag {
                Some(v) => v,
                None => match file.get(key) {
                    Some(v) => v
                        .parse()
                        .map_err(|_| invalid(format!("{key}: {v:?} is not a count")))?,
                    None => default,
                },
            };
            if value == 0 {
                return Err(invalid(format!("{key} must be at least 1")));
            }
            Ok(value)
        };
        let database_pool = match (self.database_pool, file.get("database_pool")) {
            (Some(n), _) => Some(n),
            (None, Some(v)) => Some(
                v.parse()
                    .map_err(|_| invalid(format!("database_pool: {v:?} is not a count")))?,
            ),
            (None, None) => None,
        };
        if database_pool.is_some_and(|n| !(1..=1000).contains(&n)) {
            return Err(invalid("database_pool must be between 1 and 1000"));
        }
        let health_defaults = Thresholds::default();
        let health = Thresholds {
            unhealthy_after: count(
                self.unhealthy_after,
                "unhealthy_after",
                health_defaults.unhealthy_after,
            )?,
            healthy_after: count(
                self.healthy_after,
                "healthy_after",
                health_defaults.healthy_after,
            )?,
        };
        let poll_interval = duration(
            &self.poll_interval,
            "poll_interval",
            Duration::from_secs(10),
        )?;
        if poll_interval < Duration::from_millis(100) {
            return Err(invalid("poll_interval must be at least 100ms"));
        }
        let defaults = Timeouts::default();
        let bbb_timeouts = Timeouts {
            connect: duration(&self.connect_timeout, "connect_timeout", defaults.connect)?,
            create: duration(&self.create_timeout, "create_timeout", defaults.create)?,
            recordings: duration(
                &self.recordings_timeout,
                "recordings_timeout",
                defaults.recordings,
            )?,
            ..defaults
        };
        Ok(Settings {
            listen,
            tls,
            health_listen,
            database_url: Secret::new(
                pick(&self.database_url, "database_url")
                    .unwrap_or_else(|| DEFAULT_DATABASE_URL.into()),
            ),
            database_pool,
            migrate,
            api_tokens,
            admin_tokens,
            servers,
            poll_interval,
            health,
            ensure_ttl: duration(&self.ensure_ttl, "ensure_ttl", Duration::from_secs(2))?,
            bbb_timeouts,
            rpc_timeout: duration(&self.rpc_timeout, "rpc_timeout", Duration::from_secs(30))?,
            call_max_age: duration(
                &self.call_max_age,
                "call_max_age",
                Duration::from_secs(30 * 86_400),
            )?,
            private_presentations,
            pin_rooms,
            callback,
        })
    }
}

/// The end callback's settings: both given, or neither (off).
fn callback_settings(
    listen: Option<String>,
    url: Option<String>,
) -> Result<Option<CallbackSettings>, ConfigError> {
    let (listen, url) = match (listen, url) {
        (None, None) => return Ok(None),
        (Some(listen), Some(url)) => (listen, url),
        (listen, _) => {
            let (set, unset) = if listen.is_some() {
                ("callback_listen", "callback_url")
            } else {
                ("callback_url", "callback_listen")
            };
            return Err(invalid(format!(
                "{set} is set but {unset} is not: the end callback needs both EVENTYAY_BBB_CALLBACK_LISTEN and EVENTYAY_BBB_CALLBACK_URL"
            )));
        }
    };
    let listen = listen.parse::<SocketAddr>().map_err(|_| {
        invalid(format!(
            "callback_listen: {listen:?} is not an address like 0.0.0.0:8090"
        ))
    })?;
    let bad_url = || {
        invalid(
            "callback_url: must be an absolute http:// or https:// URL without credentials, query or fragment, like https://bbb-callback.example.org",
        )
    };
    let parsed = url::Url::parse(url.trim()).map_err(|_| bad_url())?;
    let plain = matches!(parsed.scheme(), "http" | "https")
        && parsed.host_str().is_some_and(|h| !h.is_empty())
        && parsed.username().is_empty()
        && parsed.password().is_none()
        && parsed.query().is_none()
        && parsed.fragment().is_none();
    if !plain {
        return Err(bad_url());
    }
    Ok(Some(CallbackSettings {
        listen,
        url: parsed.as_str().trim_end_matches('/').to_owned(),
    }))
}

/// Reads the settings file into `short_key → value`, accepting `EVENTYAY_BBB_LISTEN` and
/// `listen` alike.
fn read_settings_file(path: &PathBuf) -> Result<HashMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| toml_error(path, &text, &e))?;
    let mut out = HashMap::new();
    for (key, value) in table {
        let short = key
            .strip_prefix("EVENTYAY_BBB_")
            .unwrap_or(&key)
            .to_ascii_lowercase();
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Integer(i) => i.to_string(),
            _ => {
                return Err(invalid(format!(
                    "{}: {key} must be a string",
                    path.display()
                )));
            }
        };
        out.insert(short, value);
    }
    Ok(out)
}

/// A TOML error names the file and line only: the offending line may hold a secret.
fn toml_error(path: &std::path::Path, text: &str, err: &toml::de::Error) -> ConfigError {
    let line = err
        .span()
        .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
    let at = line.map(|l| format!(" at line {l}")).unwrap_or_default();
    invalid(format!("{}{at}: {}", path.display(), err.message()))
}

fn tokens(
    inline: Option<String>,
    file: Option<PathBuf>,
    what: &str,
) -> Result<Vec<Secret>, ConfigError> {
    let mut joined = inline.unwrap_or_default();
    if let Some(path) = file {
        let text =
            std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path, source })?;
        joined.push(',');
        joined.push_str(&text);
    }
    let list: Vec<Secret> = joined
        .split([',', '\n'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(Secret::new)
        .collect();
    if list.iter().any(|t| t.expose().len() < 16) {
        return Err(invalid(format!(
            "{what}: every token must be at least 16 characters"
        )));
    }
    Ok(list)
}

/// `500ms`, `2s`, `1m`, `1h`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 2s or 1m"))?;
    let unit_ms: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{text:?} is not a duration like 500ms, 2s or 1m")),
    };
    n.checked_mul(unit_ms)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServersFile {
    #[serde(default)]
    servers: Vec<ServerEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerEntry {
    id: String,
    url: String,
    secret: String,
    #[serde(default)]
    checksum: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    rooms_only: bool,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    organizers: Vec<String>,
    #[serde(default)]
    weight: Option<f64>,
    #[serde(default)]
    max_meetings: u32,
    #[serde(default)]
    max_participants: u32,
    /// A PEM file of CA certificates to trust for this server.
    #[serde(default)]
    ca_bundle: Option<PathBuf>,
    /// Skip TLS certificate checks (`disable_ssl` in the original module).
    #[serde(default, alias = "disable_ssl")]
    insecure_tls: bool,
}

/// Reads and checks the servers file. Errors name the server and field, never a secret.
pub fn read_servers_file(path: &PathBuf) -> Result<Vec<Server>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let file: ServersFile = toml::from_str(&text).map_err(|e| toml_error(path, &text, &e))?;
    let mut servers: Vec<Server> = Vec::with_capacity(file.servers.len());
    for entry in file.servers {
        let id = entry.id;
        let bad = |what: String| invalid(format!("{}: server {id:?}: {what}", path.display()));
        if servers.iter().any(|s| s.id == id) {
            return Err(bad("listed twice".into()));
        }
        let checksum: ChecksumAlgorithm = entry
            .checksum
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e: crate::bbb::checksum::UnknownAlgorithm| bad(e.to_string()))?
            .unwrap_or_default();
        let state: ServerState = entry
            .state
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(bad)?
            .unwrap_or_default();
        if let Some(bundle) = &entry.ca_bundle
            && !bundle.is_file()
        {
            return Err(bad("ca_bundle: no such file".into()));
        }
        let server = Server {
            ca_bundle: entry
                .ca_bundle
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
            insecure_tls: entry.insecure_tls,
            checksum,
            state,
            rooms_only: entry.rooms_only,
            events: entry.events,
            organizers: entry.organizers,
            weight: entry.weight.unwrap_or(1.0),
            max_meetings: entry.max_meetings,
            max_participants: entry.max_participants,
            ..Server::new(
                id.clone(),
                entry.url.trim(),
                Secret::new(entry.secret.trim()),
            )
        };
        server
            .check(true)
            .map_err(|b| bad(format!("{}: {}", b.field, b.problem)))?;
        let endpoint = Endpoint::new(&server.url, server.secret.clone(), checksum)
            .map_err(|e| bad(format!("url: {e}")))?;
        if endpoint.api_base().starts_with("http://") && !is_loopback(endpoint.host()) {
            tracing::warn!(server = %id, "server URL is plain http: its traffic and join URLs travel unencrypted");
        }
        if server.insecure_tls {
            tracing::warn!(server = %id, "TLS certificate checks are OFF for this server (insecure_tls): anyone on the path can read its secret-signed calls");
        }
        servers.push(server);
    }
    Ok(servers)
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.toml");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        (dir, path)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("fast").is_err());
        for bad in [
            "",
            "s",
            "5 parsecs",
            "-1s",
            "1.5s",
            "99999999999999999999m",
            "9999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn servers_file_defaults_and_checks() {
        let (_d, path) = file(
            r#"
[[servers]]
id = "bbb-1"
url = "https://bbb1.example.org/bigbluebutton/"
secret = "s3cr3t-value"

[[servers]]
id = "bbb-2"
url = "http://127.0.0.1:9000"
secret = "other"
checksum = "sha512"
state = "cordoned"
rooms_only = true
events = ["7"]
weight = 2.5
max_meetings = 10
"#,
        );
        let servers = read_servers_file(&path).unwrap();
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].checksum, ChecksumAlgorithm::Sha256);
        assert_eq!(servers[0].state, ServerState::Enabled);
        assert_eq!(servers[0].weight, 1.0);
        assert_eq!(servers[1].checksum, ChecksumAlgorithm::Sha512);
        assert_eq!(servers[1].state, ServerState::Cordoned);
        assert!(servers[1].rooms_only);
        assert_eq!(servers[1].events, vec!["7".to_owned()]);
        assert_eq!(servers[1].max_meetings, 10);
    }

    #[test]
    fn tls_settings_per_server() {
        let (dir, path) = file("");
        let bundle = dir.path().join("ca.pem");
        std::fs::write(&bundle, "-----BEGIN CERTIFICATE-----\n").unwrap();
        std::fs::write(
            &path,
            format!(
                "[[servers]]\nid = \"a\"\nurl = \"https://a\"\nsecret = \"s\"\nca_bundle = \"{}\"\n\n[[servers]]\nid = \"b\"\nurl = \"https://b\"\nsecret = \"s\"\ndisable_ssl = true\n",
                bundle.display()
            ),
        )
        .unwrap();
        let servers = read_servers_file(&path).unwrap();
        assert_eq!(servers[0].ca_bundle, bundle.display().to_string());
        assert!(!servers[0].insecure_tls);
        assert!(
            servers[1].insecure_tls,
            "the original's disable_ssl is understood"
        );
        std::fs::write(&path, "[[servers]]\nid = \"a\"\nurl = \"https://a\"\nsecret = \"s\"\nca_bundle = \"/nope.pem\"\n").unwrap();
        assert!(
            read_servers_file(&path)
                .unwrap_err()
                .to_string()
                .contains("ca_bundle")
        );
    }

    #[test]
    fn servers_file_errors_never_show_secrets() {
        for text in [
            "[[servers]]\nid = \"a\"\nurl = \"https://h\"\nsecret = \"canary-secret-1\"\nchecksum = \"md5\"\n",
            "[[servers]]\nid = \"a b\"\nurl = \"https://h\"\nsecret = \"canary-secret-1\"\n",
            "[[servers]]\nid = \"a\"\nurl = \"nope\"\nsecret = \"canary-secret-1\"\n",
            "[[servers]]\nid = \"a\"\nurl = \"https://h\"\nsecret = \"canary-secret-1\nweight = 1\n",
            "[[servers]]\nid = \"a\"\nurl = \"https://h\"\nsecret = \"canary-secret-1\"\nwieght = 2.0\n",
            "[[servers]]\nid = \"a\"\nurl = \"https://h\"\nsecret = \"canary-secret-1\"\nweight = -1.0\n",
        ] {
            let (_d, path) = file(text);
            let err = read_servers_file(&path).unwrap_err().to_string();
            assert!(!err.contains("canary"), "{err}");
        }
    }

    #[test]
    fn settings_from_file_with_flags_winning() {
        let (_d, path) = file(
            "EVENTYAY_BBB_LISTEN = \"127.0.0.1:6000\"\napi_token = \"file-token-0123456789\"\npoll_interval = \"500ms\"\nmigrate = false\n",
        );
        let args = ServeArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        let s = args.load().unwrap();
        assert_eq!(s.listen, "127.0.0.1:6000".parse().unwrap());
        assert_eq!(s.poll_interval, Duration::from_millis(500));
        assert!(!s.migrate);
        assert_eq!(s.api_tokens, vec![Secret::new("file-token-0123456789")]);

        let args = ServeArgs {
            config: Some(path),
            listen: Some("127.0.0.1:7000".into()),
            api_token: Some("flag-token-0123456789,second-token-0123456789".into()),
            ..Default::default()
        };
        let s = args.load().unwrap();
        assert_eq!(s.listen, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(s.api_tokens.len(), 2);
    }

    #[test]
    fn tokens_are_required_distinct_and_long_enough() {
        assert!(ServeArgs::default().load().is_err());
        let short = ServeArgs {
            api_token: Some("short".into()),
            ..Default::default()
        };
        assert!(short.load().is_err());
        let shared = ServeArgs {
            api_token: Some("same-token-0123456789".into()),
            admin_token: Some("same-token-0123456789".into()),
            ..Default::default()
        };
        assert!(shared.load().is_err());
    }

    #[test]
    fn end_callback_needs_both_settings_and_a_plain_url() {
        let token = Some("callback-test-token-0123456789".to_owned());
        let load = |listen: Option<&str>, url: Option<&str>| {
            ServeArgs {
                api_token: token.clone(),
                callback_listen: listen.map(str::to_owned),
                callback_url: url.map(str::to_owned),
                ..Default::default()
            }
            .load()
        };
        assert_eq!(load(None, None).unwrap().callback, None);
        assert_eq!(
            load(Some("0.0.0.0:8090"), Some("https://cb.example.org/bbb/"))
                .unwrap()
                .callback,
            Some(CallbackSettings {
                listen: "0.0.0.0:8090".parse().unwrap(),
                url: "https://cb.example.org/bbb".into(),
            })
        );
        for (listen, url, named) in [
            (Some("0.0.0.0:8090"), None, "callback_url is not"),
            (
                None,
                Some("https://cb.example.org"),
                "callback_listen is not",
            ),
            (
                Some("nowhere"),
                Some("https://cb.example.org"),
                "callback_listen:",
            ),
            (
                Some("0.0.0.0:8090"),
                Some("cb.example.org"),
                "callback_url:",
            ),
            (
                Some("0.0.0.0:8090"),
                Some("ftp://cb.example.org"),
                "callback_url:",
            ),
            (
                Some("0.0.0.0:8090"),
                Some("https://cb.example.org/?a=1"),
                "callback_url:",
            ),
            (
                Some("0.0.0.0:8090"),
                Some("https://u:canary-pw@cb.example.org"),
                "callback_url:",
            ),
        ] {
            let err = load(listen, url).unwrap_err().to_string();
            assert!(err.contains(named), "{err}");
            assert!(!err.contains("canary"), "{err}");
        }
    }

    #[test]
    fn tls_needs_both_files_and_they_may_come_from_the_file() {
        let token = Some("tls-test-token-0123456789".to_owned());
        let (_d, path) = file(
            "tls_cert = \"/etc/tls/tls.crt\"\nEVENTYAY_BBB_TLS_KEY = \"/etc/tls/tls.key\"\nhealth_listen = \"0.0.0.0:50052\"\n",
        );
        let s = ServeArgs {
            config: Some(path),
            api_token: token.clone(),
            ..Default::default()
        }
        .load()
        .unwrap();
        assert_eq!(
            s.tls,
            Some(TlsFiles {
                cert: "/etc/tls/tls.crt".into(),
                key: "/etc/tls/tls.key".into()
            })
        );
        assert_eq!(s.health_listen, Some("0.0.0.0:50052".parse().unwrap()));

        let plain = ServeArgs {
            api_token: token.clone(),
            ..Default::default()
        };
        assert_eq!(plain.load().unwrap().tls, None);
        for (cert, key, named) in [
            (Some("c.pem"), None, "tls_key is not"),
            (None, Some("k.pem"), "tls_cert is not"),
        ] {
            let err = ServeArgs {
                api_token: token.clone(),
                tls_cert: cert.map(PathBuf::from),
                tls_key: key.map(PathBuf::from),
                ..Default::default()
            }
            .load()
            .unwrap_err()
            .to_string();
            assert!(err.contains(named), "{err}");
        }
        let bad = ServeArgs {
            api_token: token,
            health_listen: Some("nowhere".into()),
            ..Default::default()
        };
        assert!(
            bad.load()
                .unwrap_err()
                .to_string()
                .contains("health_listen")
        );
    }
}
