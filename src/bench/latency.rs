//! RoomUrl on a running meeting, one request at a time, against a bare BBB `create` of the same
//! meeting on the same emulator (the very query the service sends). The two are interleaved, so
//! whatever else the machine does weighs on both alike.

use super::{
    Bench, Fallible,
    emulators::{Emulators, fresh_ids},
    harness::{self, BenchService, Options},
    measure::Samples,
    report::{Figure, Section},
};
use crate::{
    bbb::{BbbClient, Timeouts},
    meetings::{RoomSettings, params},
};
use std::time::{Duration, Instant};

/// Requests that warm connections, caches and the allocator before anything counts.
const WARM_UP: usize = 20;

pub async fn run(bench: &Bench, latency: Duration) -> Fallible<Vec<Section>> {
    // Enough samples for a p99 (the 5th or 3rd slowest), fewer where each one waits for BBB.
    let requests = match (bench.quick, latency.is_zero()) {
        (true, _) => 50,
        (false, true) => 500,
        (false, false) => 300,
    };
    let emulators = Emulators::start(fresh_ids(1), latency).await?;
    let mut sections = Vec::new();
    for &ttl in &bench.ensure_ttls {
        let options = Options {
            ensure_ttl: ttl,
            ..Options::default()
        };
        let service = BenchService::start(bench, &emulators.servers, &options).await?;
        let event = harness::fresh_event();
        let addr = service.addr;
        let (client, first) = {
            let event = event.clone();
            bench
                .load
                .run(async move {
                    let mut client = harness::client(addr).await?;
                    let first = client
                        .room_url(harness::authed(harness::room(&event, "main", "u0")))
                        .await?
                        .into_inner();
                    Ok((client, first))
                })
                .await?
        };
        let meeting = service
            .store()
            .await?
            .room_meeting(&event, "main")
            .await?
            .ok_or("the room's meeting is not stored")?;
        let query = params::room_create(&meeting, harness::ROOM_NAME, &RoomSettings::default());
        let endpoint = emulators
            .servers
            .iter()
            .find(|s| s.id == first.server_id)
            .ok_or("the room is on an unknown server")?
            .endpoint
            .clone();

        let bbb = BbbClient::new(Timeouts::default());
        let interleaved = |n: usize| {
            let (bbb, endpoint, query, event) =
                (bbb.clone(), endpoint.clone(), query.clone(), event.clone());
            let mut client = client.clone();
            async move {
                let (mut service, mut bare) = (Samples::default(), Samples::default());
                for i in 0..n {
                    let request = harness::room(&event, "main", &format!("u{}", i % 50));
                    let started = Instant::now();
                    client.room_url(harness::authed(request)).await?;
                    service.push(started.elapsed());
                    let started = Instant::now();
                    bbb.create(&endpoint, &query, &[]).await?;
                    bare.push(started.elapsed());
                }
                Fallible::Ok((service, bare))
            }
        };
        bench.load.run(interleaved(WARM_UP)).await?;
        let creates_before = emulators.calls("create").await?;
        let (service_samples, bare) = bench.load.run(interleaved(requests)).await?;
        let creates = emulators.calls("create").await? - creates_before;
        // The baseline sent one create per request; the rest are the service's.
        let service_creates = creates.saturating_sub(requests as u64) as f64 / requests as f64;
        drop(client);
        service.stop().await;

        let (p50, p99) = (
            service_samples.percentile_ms(0.5),
            service_samples.percentile_ms(0.99),
        );
        let (bare50, bare99) = (bare.percentile_ms(0.5), bare.percentile_ms(0.99));
        sections.push(Section {
            scenario: "latency",
            title: format!(
                "RoomUrl on a running meeting: {requests} sequential requests, interleaved with bare BBB creates"
            ),
            latency_ms: latency.as_millis() as u64,
            conditions: ttl_conditions(ttl),
            figures: vec![
                Figure::new("RoomUrl p50", p50, "ms")
                    .baseline(bare50)
                    .peer(
                        "create 6.1–6.4×, create+join 9.0–9.4× bare",
                        Some(6.25 / (p50 / bare50)),
                    )
                    .goal("≤ 1.25× baseline", p50 <= 1.25 * bare50),
                Figure::new("RoomUrl p99", p99, "ms")
                    .baseline(bare99)
                    .goal("≤ 2× baseline", p99 <= 2.0 * bare99),
                Figure::new("RoomUrl max", service_samples.max_ms(), "ms").baseline(bare.max_ms()),
                Figure::new("BBB creates per RoomUrl", service_creates, ""),
            ],
            peak_rss_mib: 0.0,
        });
    }
    Ok(sections)
}

/// How the ensure TTL shapes what a RoomUrl costs, in words.
pub fn ttl_conditions(ttl: Duration) -> String {
    if ttl.is_zero() {
        "ensure TTL 0 (every RoomUrl asks BBB: DB read + create)".to_owned()
    } else {
        format!(
            "ensure TTL {} ms (default: a create is trusted that long)",
            ttl.as_millis()
        )
    }
}
