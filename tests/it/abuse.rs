//! What an anonymous caller can make the service hold. Health and reflection need no token,
//! so whatever they accept, anyone can send.

use crate::common::{free_port, temp_dir, terminate};
use std::{process::Command, time::Duration};

const BIN: &str = env!("CARGO_BIN_EXE_eventyay-bbb");

/// The resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024.0
}

/// Starts `serve` on SQLite in `dir` with `extra` variables; returns it once it listens, with its
/// address and how long it took to listen.
async fn start_serve(
    dir: &tempfile::TempDir,
    extra: &[(&str, &std::ffi::OsStr)],
) -> (std::process::Child, String, Duration) {
    let port = free_port();
    let started = std::time::Instant::now();
    let serve = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("RUST_LOG", "warn")
        .env("EVENTYAY_BBB_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "EVENTYAY_BBB_DATABASE_URL",
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("db.sqlite").display()
            ),
        )
        .env("EVENTYAY_BBB_API_TOKEN", "abuse-test-token-0123456789")
        .envs(extra.iter().copied())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    loop {
        match tokio::net::TcpStream::connect(&addr).await {
            Ok(_) => return (serve, addr, started.elapsed()),
            Err(_) if started.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(err) => panic!("serve did not listen: {err}"),
        }
    }
}

/// 200 reflection streams over 4 anonymous connections, each announcing a 4 MiB message and
/// sending a megabyte of it, never the rest: the service refuses each at its length prefix
/// and stays small.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_half_sent_anonymous_messages_leave_the_process_small() {
    let dir = temp_dir();
    let (mut serve, addr, _) = start_serve(&dir, &[]).await;
    let before = rss_mib(serve.id());

    let (mut held, mut clients) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let (client, connection) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(connection);
        let mut client = client;
        for _ in 0..50 {
            client =
                match tokio::time::timeout(Duration::from_secs(5), client.clone().ready()).await {
                    Ok(Ok(ready)) => ready,
                    // The service would take no more streams on this connection: that bounds it too.
                    _ => break,
                };
            let request = http::Request::builder()
                .method("POST")
                .uri(format!(
                    "http://{addr}/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
                ))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(())
                .unwrap();
            let Ok((response, mut stream)) = client.send_request(request, false) else {
                break;
            };
            let mut message = vec![0u8];
            message.extend_from_slice(&(4u32 * 1024 * 1024).to_be_bytes());
            message.resize(1024 * 1024, 0);
            let _ = stream.send_data(bytes::Bytes::from(message), false);
            held.push((response, stream));
        }
        clients.push(client);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_mib(serve.id());
    drop((held, clients));
    terminate(&mut serve);
    assert!(
        after < 128.0,
        "RSS grew from {before:.0} MiB to {after:.0} MiB with 200 half-sent messages"
    );
}

/// A "BBB server" that answers every request with 15 MiB of tiny elements inside a proper
/// `<response>`: cheap to send, costly to parse into a tree.
async fn flooding_server() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut body = String::from("<response><returncode>SUCCESS</returncode><meetings>");
    while body.len() < 15 * 1024 * 1024 {
        body.push_str("<a/>");
    }
    body.push_str("</meetings></response>");
    let body = std::sync::Arc::new(body);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                while let Ok(n) = tcp.read(&mut request).await {
                    if n == 0 {
                        return;
                    }
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    if tcp.write_all(head.as_bytes()).await.is_err()
                        || tcp.write_all(body.as_bytes()).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A server that accepts connections and reads requests but never answers.
async fn hung_server() -> std::net::SocketAddr {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut sink = [0u8; 4096];
                while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

/// Every replica polls every server at start. A server that hangs and one that floods the
/// poll with 15 MiB of elements must neither keep `serve` from listening nor grow it past the
/// chart's memory limit; both are listed unhealthy, with a reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_and_a_flooding_server_neither_stall_the_start_nor_exhaust_memory() {
    use eventyay_bbb::proto::{self, fleet_service_client::FleetServiceClient};
    let (flood, hung) = (flooding_server().await, hung_server().await);
    let dir = temp_dir();
    let servers = dir.path().join("servers.toml");
    std::fs::write(
        &servers,
        format!(
            "[[servers]]\nid = \"flood\"\nurl = \"http://{flood}/bigbluebutton/\"\nsecret = \"flood-secret-0123456789\"\n\n\
             [[servers]]\nid = \"hung\"\nurl = \"http://{hung}/bigbluebutton/\"\nsecret = \"hung-secret-0123456789\"\n"
        ),
    )
    .unwrap();
    let admin_token = "abuse-admin-token-0123456789";
    let (mut serve, addr, listening_after) = start_serve(
        &dir,
        &[
            ("EVENTYAY_BBB_ADMIN_TOKEN", admin_token.as_ref()),
            ("EVENTYAY_BBB_SERVERS_FILE", servers.as_os_str()),
            ("EVENTYAY_BBB_POLL_INTERVAL", "1s".as_ref()),
        ],
    )
    .await;

    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut fleet = FleetServiceClient::new(channel);
    let mut peak = 0f64;
    let mut listed = Vec::new();
    // Several poll rounds, each parsing (and refusing) the flood again.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        peak = peak.max(rss_mib(serve.id()));
        let mut request = tonic::Request::new(proto::ListServersRequest {});
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {admin_token}").parse().unwrap(),
        );
        listed = fleet
            .list_servers(request)
            .await
            .unwrap()
            .into_inner()
            .servers;
    }
    terminate(&mut serve);

    assert!(
        listening_after < Duration::from_secs(10),
        "serve listened only after {listening_after:?}"
    );
    assert!(peak < 128.0, "RSS reached {peak:.0} MiB");
    for server in &listed {
        let id = &server.spec.as_ref().unwrap().id;
        assert_eq!(
            server.health,
            proto::ServerHealth::Unhealthy as i32,
            "{id}: {server:?}"
        );
        assert!(!server.health_reason.is_empty(), "{id} has no reason");
    }
    assert_eq!(listed.len(), 2);
}
