//! TLS both ways: the gRPC port over TLS (trusted clients in, plaintext refused, certificates
//! renewed in place), and the fleet's TLS settings per BBB server against emulators that
//! serve HTTPS. Every certificate is made here, by a CA that lives only in this process.

use crate::{cli::Proc, common::*};
use eventyay_bbb::{
    app::Service,
    config::ServeArgs,
    proto::{
        self, ServerHealth, bbb_service_client::BbbServiceClient,
        fleet_service_client::FleetServiceClient,
    },
    sim::{SimConfig, SimServer},
    tls::{Issued, ThrowawayCa},
};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::net::TcpStream;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const BIN: &str = env!("CARGO_BIN_EXE_eventyay-bbb");

/// A CA of its own name: a client looks an issuer up by name, so two CAs named alike would
/// fail on the signature instead of as an unknown issuer.
fn new_ca() -> ThrowawayCa {
    let name = eventyay_bbb::secret::random_alphanumeric(8);
    ThrowawayCa::new(&format!("eventyay-bbb test CA {name}")).unwrap()
}

fn issue(ca: &ThrowawayCa) -> Issued {
    ca.issue(&["127.0.0.1", "localhost"]).unwrap()
}

/// Writes the pair as `tls.crt` and `tls.key` in `dir`, as a mounted Secret names them.
fn write_pair(dir: &Path, issued: &Issued) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert, &issued.cert_pem).unwrap();
    std::fs::write(&key, issued.key_pem.expose()).unwrap();
    (cert, key)
}

fn client_config(ca_pem: &str, alpn: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(config)
}

/// A gRPC channel over TLS that trusts only `ca_pem`, as a client given a CA file does.
async fn tls_channel(addr: SocketAddr, ca_pem: &str) -> Result<Channel, tonic::transport::Error> {
    let connector = tokio_rustls::TlsConnector::from(client_config(ca_pem, b"h2"));
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(3))
        .connect_with_connector(tower::service_fn(move |_| {
            let connector = connector.clone();
            async move {
                let tcp = TcpStream::connect(addr).await?;
                let tls = connector
                    .connect(ServerName::IpAddress(addr.ip().into()), tcp)
                    .await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
            }
        }))
        .await
}

/// The certificate the port presents now, to a client trusting `ca_pem`.
async fn served_certificate(addr: SocketAddr, ca_pem: &str) -> CertificateDer<'static> {
    let connector = tokio_rustls::TlsConnector::from(client_config(ca_pem, b"h2"));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = connector
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

fn der(issued: &Issued) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap()
}

async fn serving(channel: Channel, service: &str) -> i32 {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

fn tls_args(cert: PathBuf, key: PathBuf, db: &TestDb) -> ServeArgs {
    ServeArgs {
        listen: Some("127.0.0.1:0".into()),
        database_url: Some(db.url.clone()),
        api_token: Some(API_TOKEN.into()),
        admin_token: Some(ADMIN_TOKEN.into()),
        tls_cert: Some(cert),
        tls_key: Some(key),
        ..ServeArgs::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tls_port_answers_clients_trusting_its_ca_and_refuses_plaintext() {
    let db = TestDb::sqlite();
    let ca = new_ca();
    let (cert, key) = write_pair(db.dir.path(), &issue(&ca));
    let service = Service::start(
        ServeArgs {
            health_listen: Some("127.0.0.1:0".into()),
            ..tls_args(cert, key, &db)
        }
        .load()
        .unwrap(),
    )
    .await
    .unwrap();
    let addr = service.addr();

    // A caller that connects and never starts its handshake holds up nobody.
    let stalled = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let channel = tls_channel(addr, ca.certificate_pem()).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    let availability = BbbServiceClient::new(channel.clone())
        .availability(authed(proto::AvailabilityRequest {
            event_id: "ev-1".into(),
            organizer_id: "org-1".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(!availability.rooms, "no servers configured, so no rooms");
    assert_eq!(serving(channel, "liveness").await, 1);

    // A client that does not trust the CA never gets in.
    let stranger = new_ca();
    assert!(tls_channel(addr, stranger.certificate_pem()).await.is_err());

    // Plaintext gets no gRPC answer: the handshake fails and the connection closes.
    let plaintext = async {
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await?;
        HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map(|_| ())
            .map_err(Into::into)
    };
    let outcome: Result<(), Box<dyn std::error::Error + Send + Sync>> =
        tokio::time::timeout(Duration::from_secs(5), plaintext)
            .await
            .expect("a plaintext caller is refused at once, not left hanging");
    assert!(outcome.is_err());

    // Probes that cannot speak TLS ask the plaintext health port instead.
    let health = Channel::from_shared(format!("http://{}", service.health_addr().unwrap()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert_eq!(serving(health.clone(), "").await, 1);
    assert_eq!(serving(health, "liveness").await, 1);

    drop(stalled);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_is_cut_after_ten_seconds() {
    let db = TestDb::sqlite();
    let ca = new_ca();
    let (cert, key) = write_pair(db.dir.path(), &issue(&ca));
    let service = Service::start(tls_args(cert, key, &db).load().unwrap())
        .await
        .unwrap();
    let mut stalled = TcpStream::connect(service.addr()).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(
        Duration::from_secs(15),
        tokio::io::AsyncReadExt::read(&mut stalled, &mut buf),
    )
    .await
    .expect("the server closes a connection whose handshake never starts");
    assert!(matches!(read, Ok(0) | Err(_)), "closed, not answered");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(13),
        "{took:?}"
    );
    service.stop().await;
}

/// Replaces the pair the way Kubernetes updates a mounted Secret: the files are symlinks into
/// `..data`, itself a symlink swapped at once to a new directory.
fn swap_secret_volume(dir: &Path, version: &str, issued: &Issued) {
    let target = dir.join(version);
    std::fs::create_dir(&target).unwrap();
    write_pair(&target, issued);
    let staged = dir.join("..data_tmp");
    std::os::unix::fs::symlink(version, &staged).unwrap();
    std::fs::rename(&staged, dir.join("..data")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_without_a_restart_and_a_broken_one_keeps_the_old() {
    let scratch = temp_dir();
    let volume = scratch.path().join("tls");
    std::fs::create_dir(&volume).unwrap();
    let ca = new_ca();
    let first = issue(&ca);
    swap_secret_volume(&volume, "..v1", &first);
    for name in ["tls.crt", "tls.key"] {
        std::os::unix::fs::symlink(format!("..data/{name}"), volume.join(name)).unwrap();
    }
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut proc = Proc::spawn(
        Command::new(BIN)
            .arg("serve")
            .env_clear()
            .env("EVENTYAY_BBB_LISTEN", addr.to_string())
            .env("EVENTYAY_BBB_DATABASE_URL", "sqlite::memory:")
            .env("EVENTYAY_BBB_API_TOKEN", API_TOKEN)
            .env("EVENTYAY_BBB_TLS_CERT", volume.join("tls.crt"))
            .env("EVENTYAY_BBB_TLS_KEY", volume.join("tls.key")),
    );
    proc.wait_for("serving gRPC");
    assert_eq!(
        served_certificate(addr, ca.certificate_pem()).await,
        der(&first)
    );

    let renewed = issue(&ca);
    swap_secret_volume(&volume, "..v2", &renewed);
    let wait_for = |want: CertificateDer<'static>| {
        let pem = ca.certificate_pem().to_owned();
        async move {
            let deadline = Instant::now() + Duration::from_secs(8);
            loop {
                if served_certificate(addr, &pem).await == want {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "the renewed certificate is never served"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    wait_for(der(&renewed)).await;

    // Written in place, the certificate first: until the key follows, the pair does not match.
    let third = issue(&ca);
    std::fs::write(volume.join("..v2/tls.crt"), &third.cert_pem).unwrap();
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(
        served_certificate(addr, ca.certificate_pem()).await,
        der(&renewed),
        "a half-written renewal leaves the previous certificate serving"
    );
    std::fs::write(volume.join("..v2/tls.key"), third.key_pem.expose()).unwrap();
    wait_for(der(&third)).await;

    let output = proc.stop().await;
    let warnings: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("does not load"))
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "said once, over several polls:\n{output}"
    );
    assert!(
        warnings[0].contains("tls.key") && warnings[0].contains("does not belong"),
        "{}",
        warnings[0]
    );
    assert_eq!(
        output.matches("TLS certificate reloaded").count(),
        2,
        "{output}"
    );
    for issued in [&first, &renewed, &third] {
        let key = issued.key_pem.expose();
        let body = key.lines().nth(1).unwrap();
        assert!(!output.contains(body), "key material in the output");
    }
}

#[test]
fn tls_start_errors_name_the_file_and_never_show_its_content() {
    let dir = temp_dir();
    let ca = new_ca();
    let issued = issue(&ca);
    let (cert, key) = write_pair(dir.path(), &issued);
    let canary = dir.path().join("canary.key");
    std::fs::write(
        &canary,
        "-----BEGIN PRIVATE KEY-----\ncanary-key-material-5e1f\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let other = dir.path().join("other.key");
    std::fs::write(&other, issue(&ca).key_pem.expose()).unwrap();
    let missing = dir.path().join("missing.crt");

    let start = |cert: Option<&Path>, key: Option<&Path>| {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .env_clear()
            .env("EVENTYAY_BBB_LISTEN", "127.0.0.1:0")
            .env("EVENTYAY_BBB_DATABASE_URL", "sqlite::memory:")
            .env("EVENTYAY_BBB_API_TOKEN", API_TOKEN);
        if let Some(cert) = cert {
            cmd.env("EVENTYAY_BBB_TLS_CERT", cert);
        }
        if let Some(key) = key {
            cmd.env("EVENTYAY_BBB_TLS_KEY", key);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "serve must not start");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    let err = start(Some(&cert), None);
    assert!(err.contains("tls_cert is set but tls_key is not"), "{err}");
    let err = start(None, Some(&key));
    assert!(err.contains("tls_key is set but tls_cert is not"), "{err}");
    let err = start(Some(&missing), Some(&key));
    assert!(err.contains("missing.crt"), "{err}");
    let err = start(Some(&cert), Some(&canary));
    assert!(err.contains("canary.key"), "{err}");
    assert!(!err.contains("canary-key-material"), "{err}");
    let err = start(Some(&cert), Some(&other));
    assert!(
        err.contains("other.key") && err.contains("does not belong to the certificate"),
        "{err}"
    );
    // `check` says the same, one line, before anything starts.
    let out = Command::new(BIN)
        .arg("check")
        .env_clear()
        .env("EVENTYAY_BBB_DATABASE_URL", "sqlite::memory:")
        .env("EVENTYAY_BBB_API_TOKEN", API_TOKEN)
        .env("EVENTYAY_BBB_TLS_CERT", &cert)
        .env("EVENTYAY_BBB_TLS_KEY", &canary)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    let line = report
        .lines()
        .find(|l| l.contains("TLS certificate"))
        .unwrap();
    assert!(
        line.starts_with("FAIL") && line.contains("canary.key"),
        "{report}"
    );
    assert!(!report.contains("canary-key-material"), "{report}");
    let out = Command::new(BIN)
        .arg("check")
        .env_clear()
        .env("EVENTYAY_BBB_DATABASE_URL", "sqlite::memory:")
        .env("EVENTYAY_BBB_API_TOKEN", API_TOKEN)
        .env("EVENTYAY_BBB_TLS_CERT", &cert)
        .env("EVENTYAY_BBB_TLS_KEY", &key)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("OK") && l.contains("TLS certificate"))
    );

    // A key given as the certificate: named, and its text not shown.
    let err = start(Some(&key), Some(&key));
    assert!(
        err.contains("tls.key") && err.contains("no CERTIFICATE"),
        "{err}"
    );
    let body = issued.key_pem.expose().lines().nth(1).unwrap().to_owned();
    assert!(!err.contains(&body), "{err}");
}

/// An emulated BBB server serving HTTPS with a certificate from `ca`.
async fn https_sim(ca: &ThrowawayCa, id: &str) -> SimServer {
    SimServer::start(SimConfig {
        tls: Some(issue(ca).identity().unwrap()),
        ..SimConfig::new(secret_of(id))
    })
    .await
    .unwrap()
}

/// What `servers list` shows: health and reason per server id.
async fn healths(channel: Channel) -> Vec<(String, ServerHealth, String)> {
    let mut servers = FleetServiceClient::new(channel)
        .list_servers(authed_with(proto::ListServersRequest {}, ADMIN_TOKEN))
        .await
        .unwrap()
        .into_inner()
        .servers;
    servers.sort_by(|a, b| {
        a.spec
            .as_ref()
            .unwrap()
            .id
            .cmp(&b.spec.as_ref().unwrap().id)
    });
    servers
        .into_iter()
        .map(|s| (s.spec.clone().unwrap().id, s.health(), s.health_reason))
        .collect()
}

/// Polls until no server's health is unknown any more (the first polls decide), at most 10 s.
async fn settled(channel: Channel, servers: usize) -> Vec<(String, ServerHealth, String)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = healths(channel.clone()).await;
        let decided = now.len() == servers
            && now
                .iter()
                .all(|(_, h, _)| matches!(h, ServerHealth::Healthy | ServerHealth::Unhealthy));
        let unhealthy_have_reasons = now
            .iter()
            .all(|(_, h, r)| *h != ServerHealth::Unhealthy || !r.is_empty());
        if decided && unhealthy_have_reasons {
            return now;
        }
        assert!(Instant::now() < deadline, "{now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A browser that trusts `ca_pem`, opening a join URL: status and redirect target.
async fn open_trusting(url: &str, ca_pem: &str) -> (u16, String) {
    eventyay_bbb::bbb::install_crypto_provider();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let answer = browser.get(url).send().await.unwrap();
    let location = answer
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (answer.status().as_u16(), location)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_servers_tls_setting_decides_whether_its_certificate_is_trusted() {
    let db = TestDb::sqlite();
    let ca = new_ca();
    let bundle = db.dir.path().join("bbb-ca.pem");
    std::fs::write(&bundle, ca.certificate_pem()).unwrap();
    let sims = vec![
        https_sim(&ca, "with-bundle").await,
        https_sim(&ca, "insecure").await,
        https_sim(&ca, "untrusted").await,
    ];
    let servers = db.dir.path().join("servers.toml");
    let with_bundle = format!(
        "ca_bundle = \"{}\"\norganizers = [\"org-1\"]",
        bundle.display()
    );
    write_servers_file(
        &servers,
        &sims,
        &[
            ("with-bundle", &with_bundle),
            ("insecure", "insecure_tls = true\norganizers = [\"org-2\"]"),
            ("untrusted", ""),
        ],
    );
    let service = Service::start(
        ServeArgs {
            listen: Some("127.0.0.1:0".into()),
            database_url: Some(db.url.clone()),
            api_token: Some(API_TOKEN.into()),
            admin_token: Some(ADMIN_TOKEN.into()),
            servers_file: Some(servers),
            poll_interval: Some("200ms".into()),
            connect_timeout: Some("1s".into()),
            ..ServeArgs::default()
        }
        .load()
        .unwrap(),
    )
    .await
    .unwrap();
    let channel = Channel::from_shared(format!("http://{}", service.addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = settled(channel.clone(), 3).await;
    assert_eq!(health[0].0, "insecure");
    assert_eq!(health[0].1, ServerHealth::Healthy, "{health:?}");
    assert_eq!(health[1].0, "untrusted");
    assert_eq!(health[1].1, ServerHealth::Unhealthy, "{health:?}");
    assert!(
        health[1].2.contains("TLS certificate not trusted"),
        "an operator can tell why: {health:?}"
    );
    assert_eq!(health[2].0, "with-bundle");
    assert_eq!(health[2].1, ServerHealth::Healthy, "{health:?}");

    // Meetings land on the trusted servers, over HTTPS, and their join URLs work.
    for (organizer, server) in [("org-1", "with-bundle"), ("org-2", "insecure")] {
        let mut request = room_request(&format!("room-{server}"), "u1", MODERATE);
        request.organizer_id = organizer.into();
        let room = BbbServiceClient::new(channel.clone())
            .room_url(authed(request))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(room.server_id, server);
        assert!(room.url.starts_with("https://127.0.0.1:"), "{}", room.url);
        let (status, target) = open_trusting(&room.url, ca.certificate_pem()).await;
        assert_eq!(status, 302, "{target}");
        assert!(target.contains("/html5client/join"), "{target}");
    }
    service.stop().await;
}

/// `serve` in a child process with `SSL_CERT_FILE` set, and one HTTPS server without a
/// ca_bundle: what its health settles at.
async fn health_with_system_trust(sim: &SimServer, trust_file: &Path) -> (ServerHealth, String) {
    let dir = temp_dir();
    let servers = dir.path().join("servers.toml");
    write_servers_file(&servers, std::slice::from_ref(sim), &[("bbb-1", "")]);
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut proc = Proc::spawn(
        Command::new(BIN)
            .arg("serve")
            .env_clear()
            .env("SSL_CERT_FILE", trust_file)
            .env("EVENTYAY_BBB_LISTEN", addr.to_string())
            .env("EVENTYAY_BBB_DATABASE_URL", "sqlite::memory:")
            .env("EVENTYAY_BBB_API_TOKEN", API_TOKEN)
            .env("EVENTYAY_BBB_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("EVENTYAY_BBB_POLL_INTERVAL", "200ms")
            .env("EVENTYAY_BBB_SERVERS_FILE", &servers),
    );
    proc.wait_for("serving gRPC");
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let (_, health, reason) = settled(channel, 1).await.remove(0);
    proc.stop().await;
    (health, reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_system_trust_store_is_read_from_ssl_cert_file() {
    let ca = new_ca();
    let sim = https_sim(&ca, "bbb-1").await;
    let dir = temp_dir();
    let trusted = dir.path().join("trusted.pem");
    let stranger = new_ca();
    // A bundle as a system has it: several CAs, ours among them.
    std::fs::write(
        &trusted,
        format!("{}{}", stranger.certificate_pem(), ca.certificate_pem()),
    )
    .unwrap();
    let (health, reason) = health_with_system_trust(&sim, &trusted).await;
    assert_eq!(health, ServerHealth::Healthy, "{reason}");

    let others_only = dir.path().join("others.pem");
    std::fs::write(&others_only, stranger.certificate_pem()).unwrap();
    let (health, reason) = health_with_system_trust(&sim, &others_only).await;
    assert_eq!(health, ServerHealth::Unhealthy);
    assert!(reason.contains("not trusted"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_serves_https_with_the_given_certificate() {
    let dir = temp_dir();
    let ca = new_ca();
    let (cert, key) = write_pair(dir.path(), &issue(&ca));
    let mut proc = Proc::spawn(
        Command::new(BIN)
            .args(["sim", "--secret", "sim-secret-0123456789", "--tls-cert"])
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key),
    );
    let line = proc.wait_for("BBB API at ");
    let url = line
        .split("BBB API at ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let (status, _) = open_trusting(&url, ca.certificate_pem()).await;
    assert_eq!(status, 200);
    let plain = url.replacen("https://", "http://", 1);
    eventyay_bbb::bbb::install_crypto_provider();
    let answer = reqwest::Client::new().get(&plain).send().await;
    assert!(
        answer.is_err(),
        "plain HTTP to the HTTPS port gets no answer"
    );
    proc.stop().await;

    // Only one of the two is a usage error, before anything listens.
    let out = Command::new(BIN)
        .args(["sim", "--secret", "s", "--tls-cert"])
        .arg(&cert)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_with_tls_serves_grpc_and_its_emulators_over_tls_with_the_printed_ca() {
    let mut proc = Proc::spawn(
        Command::new(BIN)
            .args(["dev", "--tls", "--listen", "127.0.0.1:0"])
            .env_remove("RUST_LOG"),
    );
    let line = proc.wait_for("gRPC over TLS on ");
    let addr: SocketAddr = line
        .split("gRPC over TLS on ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let token = proc
        .wait_for("API token")
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    let ca_file = proc
        .wait_for("CA certificate")
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    let grpcurl = proc.wait_for("grpcurl -cacert");
    assert!(grpcurl.contains(&ca_file), "{grpcurl}");
    let ca_pem = std::fs::read_to_string(&ca_file).unwrap();

    let channel = tls_channel(addr, &ca_pem).await.unwrap();
    let url = BbbServiceClient::new(channel)
        .room_url(authed_with(room_request("main", "u1", MODERATE), &token))
        .await
        .unwrap()
        .into_inner()
        .url;
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let (status, target) = open_trusting(&url, &ca_pem).await;
    assert_eq!(status, 302, "{target}");
    let output = proc.stop().await;
    assert!(!output.contains("ERROR"), "{output}");
    assert!(
        !Path::new(&ca_file).exists(),
        "the throwaway CA goes with the run"
    );
}
