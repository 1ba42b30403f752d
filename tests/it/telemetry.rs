//! The whole service as operators run it, with canary secrets and tokens: its OTLP export is
//! received in process and its logs, metrics, errors and admin replies are read — the spans
//! must continue the caller's trace, and no canary may appear anywhere.

use crate::common::*;
use eventyay_bbb::{
    proto::{self, bbb_service_client::BbbServiceClient, fleet_service_client::FleetServiceClient},
    sim::{Fault, SimConfig, SimServer},
};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value as AnyValue,
    trace::v1::{Span, span::SpanKind},
};
use std::{
    io::Read,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tonic::transport::Channel;

const BIN: &str = env!("CARGO_BIN_EXE_eventyay-bbb");
const SIM_SECRET: &str = "canary-bbb-secret-5d1e";
const API: &str = "canary-api-token-0c7b11";
const ADMIN: &str = "canary-admin-token-8a2f44";
const CANARIES: [&str; 4] = [
    "canary-bbb-secret",
    "canary-api-token",
    "canary-admin-token",
    "checksum=",
];

#[derive(Default, Clone)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        a.value.as_ref()?.value.as_ref().map(|v| match v {
            AnyValue::StringValue(s) => s.clone(),
            AnyValue::IntValue(i) => i.to_string(),
            AnyValue::BoolValue(b) => b.to_string(),
            AnyValue::DoubleValue(d) => d.to_string(),
            other => format!("{other:?}"),
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_continue_the_callers_trace_and_nothing_leaks_anywhere() {
    // The receiver.
    let receiver = Receiver::default();
    let otlp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp_addr = otlp.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(otlp)),
    );

    // The service, configured as an operator would, with canaries everywhere.
    let sim = SimServer::start(SimConfig::new(SIM_SECRET)).await.unwrap();
    let dir = temp_dir();
    let servers = dir.path().join("servers.toml");
    std::fs::write(
        &servers,
        format!(
            "[[servers]]\nid = \"bbb-1\"\nurl = \"{}\"\nsecret = \"{SIM_SECRET}\"\n",
            sim.base_url()
        ),
    )
    .unwrap();
    let (port, metrics_port) = (free_port(), free_port());
    let mut child = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("RUST_LOG", "debug,h2=info,hyper=info,tower=info")
        .env("EVENTYAY_BBB_LOG_FORMAT", "json")
        .env("EVENTYAY_BBB_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "EVENTYAY_BBB_METRICS_LISTEN",
            format!("127.0.0.1:{metrics_port}"),
        )
        .env(
            "EVENTYAY_BBB_DATABASE_URL",
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("db.sqlite").display()
            ),
        )
        .env("EVENTYAY_BBB_API_TOKEN", API)
        .env("EVENTYAY_BBB_ADMIN_TOKEN", ADMIN)
        .env("EVENTYAY_BBB_SERVERS_FILE", &servers)
        .env("EVENTYAY_BBB_POLL_INTERVAL", "300ms")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp_addr}"))
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let logs = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let channel = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(c) = Channel::from_shared(format!("http://127.0.0.1:{port}"))
                .unwrap()
                .connect()
                .await
            {
                break c;
            }
            assert!(Instant::now() < deadline, "service did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };

    // A call inside the caller's trace.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_span = "00f067aa0ba902b7";
    let mut bbb = BbbServiceClient::new(channel.clone());
    let mut request = authed_with(room_request("traced", "u", MODERATE), API);
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{parent_span}-01").parse().unwrap(),
    );
    let url = bbb.room_url(request).await.unwrap().into_inner().url;
    assert!(url.contains("checksum="));

    // Failures, and the admin side.
    let mut replies = String::new();
    for token in [API, "wrong-token-0123456789"] {
        let mut r = authed_with(room_request("r", "u", &["room:view"]), token);
        r.set_timeout(Duration::from_secs(5));
        replies.push_str(&format!("{:?}", bbb.room_url(r).await.unwrap_err()));
    }
    sim.set_fault(Fault::Malformed);
    replies.push_str(&format!(
        "{:?}",
        bbb.room_url(authed_with(room_request("broken", "u", JOIN), API))
            .await
            .unwrap_err()
    ));
    sim.set_fault(Fault::None);
    let mut fleet = FleetServiceClient::new(channel.clone());
    replies.push_str(&format!(
        "{:?}",
        fleet
            .list_servers(authed_with(proto::ListServersRequest {}, ADMIN))
            .await
            .unwrap()
    ));
    replies.push_str(&format!(
        "{:?}",
        fleet
            .list_audit_log(authed_with(proto::ListAuditLogRequest { limit: 10 }, ADMIN))
            .await
            .unwrap()
    ));
    // Paths nobody routes, sent without a token: neither a metric series nor a span name each.
    for i in 0..20 {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.unwrap();
        let path = if i % 2 == 0 {
            format!("/made.up.Service/Probe{i}")
        } else {
            format!("/eventyay.bbb.v1.BbbService/Nope{i}")
        };
        let reply: Result<tonic::Response<()>, _> = grpc
            .unary(
                tonic::Request::new(()),
                path.parse().unwrap(),
                tonic_prost::ProstCodec::<(), ()>::default(),
            )
            .await;
        assert!(reply.is_err());
    }
    tokio::time::sleep(Duration::from_millis(800)).await; // a few polls

    eventyay_bbb::bbb::install_crypto_provider();
    let metrics = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    // SIGTERM: drain, flush telemetry, exit.
    drop(channel);
    drop(bbb);
    drop(fleet);
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "a clean exit on SIGTERM");
    let logs = logs.join().unwrap();

    // The spans.
    let spans = receiver.spans.lock().unwrap().clone();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let server = spans
        .iter()
        .find(|s| s.name == "eventyay.bbb.v1.BbbService/RoomUrl" && hex(&s.trace_id) == trace_id)
        .unwrap_or_else(|| {
            panic!(
                "no SERVER span in the caller's trace: {:#?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    assert!(
        !spans
            .iter()
            .any(|s| s.name.contains("made.up") || s.name.contains("Nope")),
        "made-up paths named spans"
    );
    assert_eq!(server.kind, SpanKind::Server as i32);
    assert_eq!(
        hex(&server.parent_span_id),
        parent_span,
        "a child of the caller's span"
    );
    assert_eq!(attribute(server, "rpc.system").as_deref(), Some("grpc"));
    assert_eq!(
        attribute(server, "rpc.system.name").as_deref(),
        Some("grpc")
    );
    assert_eq!(
        attribute(server, "rpc.method").as_deref(),
        Some("eventyay.bbb.v1.BbbService/RoomUrl")
    );
    assert_eq!(
        attribute(server, "rpc.grpc.status_code").as_deref(),
        Some("0")
    );
    let client = spans
        .iter()
        .find(|s| s.kind == SpanKind::Client as i32 && hex(&s.trace_id) == trace_id)
        .expect("a CLIENT span for the BBB call, in the same trace");
    assert_eq!(client.name, "GET /bigbluebutton/api/create");
    assert_eq!(
        attribute(client, "url.path").as_deref(),
        Some("/bigbluebutton/api/create")
    );
    assert_eq!(
        attribute(client, "server.address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        attribute(client, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert!(spans.iter().any(|s| s.name == "fleet.poll"), "poll spans");
    assert!(
        spans.iter().any(|s| s.name == "fleet.place"),
        "placement spans"
    );
    let denied = spans
        .iter()
        .find(|s| {
            s.name.ends_with("/RoomUrl")
                && attribute(s, "rpc.grpc.status_code").as_deref() == Some("7")
        })
        .expect("a span for the denied call");
    assert_eq!(
        attribute(denied, "eventyay.reason").as_deref(),
        Some("protocol.denied")
    );

    // The metrics parse as Prometheus text and carry what operators look at.
    for line in metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "not a sample: {line}");
    }
    for name in [
        "rpc_server_call_duration",
        "eventyay_bbb_bbb_call_duration",
        "eventyay_bbb_server_load",
        "eventyay_bbb_server_healthy",
        "eventyay_bbb_placements",
        "eventyay_bbb_rpc_errors",
    ] {
        assert!(metrics.contains(name), "{name} missing from\n{metrics}");
    }
    assert!(
        !metrics.contains("made.up") && !metrics.contains("Nope") && !metrics.contains("Probe"),
        "made-up paths minted series:\n{metrics}"
    );
    assert!(metrics.contains("rpc_method=\"unknown\""), "{metrics}");
    // Every bbb.failed is counted by its cause: here the server's broken answer.
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("eventyay_bbb_rpc_errors")
                && l.contains("reason=\"bbb.failed\"")
                && l.contains("cause=\"bad_xml\"")),
        "{metrics}"
    );

    // Logs are JSON, with the request's ids inside RPCs.
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    assert!(!lines.is_empty());
    assert!(
        lines
            .iter()
            .any(|l| l["span"]["request_id"].is_string() && l["span"]["trace_id"] == trace_id),
        "log lines inside the traced RPC carry its request and trace ids"
    );
    let failed: Vec<_> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "answered bbb.failed")
        .collect();
    assert_eq!(
        failed.len(),
        1,
        "the broken join is logged once, at the boundary"
    );
    assert_eq!(failed[0]["fields"]["cause"], "bad_xml");
    assert!(failed[0]["span"]["request_id"].is_string());

    // No canary anywhere.
    let spans_text: String = spans
        .iter()
        .map(|s| format!("{} {:?}", s.name, s.attributes))
        .collect();
    for (what, text) in [
        ("logs", &logs),
        ("spans", &spans_text),
        ("metrics", &metrics),
        ("replies", &replies),
    ] {
        for canary in CANARIES {
            assert!(!text.contains(canary), "{canary} in {what}");
        }
    }
}
