//! What an anonymous caller can make the service hold. Health and reflection need no token,
//! so whatever they accept, anyone can send.

use crate::common::{free_port, temp_dir};
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

/// 200 reflection streams over 4 anonymous connections, each announcing a 4 MiB message and
/// sending a megabyte of it, never the rest: the service refuses each at its length prefix
/// and stays small.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_half_sent_anonymous_messages_leave_the_process_small() {
    let dir = temp_dir();
    let port = free_port();
    let mut serve = Command::new(BIN)
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
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let tcp = loop {
        match tokio::net::TcpStream::connect(&addr).await {
            Ok(tcp) => break tcp,
            Err(_) if started.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(err) => panic!("serve did not listen: {err}"),
        }
    };
    drop(tcp);
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
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(serve.id().to_string())
        .status();
    let _ = serve.wait();
    assert!(
        after < 128.0,
        "RSS grew from {before:.0} MiB to {after:.0} MiB with 200 half-sent messages"
    );
}
