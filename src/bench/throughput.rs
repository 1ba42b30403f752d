//! RoomUrl at 32 and 64 concurrent clients, each with its own connection and its own running
//! room (so that with TTL 0 every RoomUrl costs a database read and a BBB create), for a fixed
//! time. The baseline is the emulators alone: the same clients sending the service's create
//! straight to the room's server.

use super::{
    Bench, Fallible,
    emulators::{Emulators, fresh_ids},
    harness::{self, BenchService, Options},
    latency::ttl_conditions,
    measure::{Cpu, Samples, ms},
    report::{Figure, Section},
};
use crate::{
    bbb::{BbbClient, Endpoint, Query, Timeouts},
    meetings::{RoomSettings, params},
};
use std::{
    collections::{HashMap, hash_map::Entry},
    time::{Duration, Instant},
};
use tokio::task::JoinSet;

const CONCURRENCY: [usize; 2] = [32, 64];
const SERVERS: usize = 10;
/// bbblb's create+join pairs per second at 32 clients (184–191), its midpoint.
const PEER_RATE: f64 = 187.5;
/// bbblb's CPU per create+join.
const PEER_CPU_MS: f64 = 5.4;
const PEER_P99_MS: f64 = 1100.0;

struct Window {
    samples: Samples,
    errors: u64,
    elapsed: Duration,
    cpu: Cpu,
}

impl Window {
    fn rate(&self) -> f64 {
        self.samples.len() as f64 / self.elapsed.as_secs_f64()
    }
}

pub async fn run(bench: &Bench, latency: Duration) -> Fallible<Vec<Section>> {
    let window = if bench.quick {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(10)
    };
    let rooms = CONCURRENCY[CONCURRENCY.len() - 1];
    let emulators = Emulators::start(fresh_ids(SERVERS), latency).await?;
    let endpoints: HashMap<String, Endpoint> = emulators
        .servers
        .iter()
        .map(|s| (s.id.clone(), s.endpoint.clone()))
        .collect();
    // The emulators' own rate does not depend on the service's settings: measured once.
    let mut baselines: HashMap<usize, Window> = HashMap::new();
    let mut sections = Vec::new();
    for &ttl in &bench.ensure_ttls {
        let options = Options {
            ensure_ttl: ttl,
            ..Options::default()
        };
        let service = BenchService::start(bench, &emulators.servers, &options).await?;
        let event = harness::fresh_event();
        let addr = service.addr;
        let placed = {
            let event = event.clone();
            bench
                .load
                .run(async move {
                    let mut client = harness::client(addr).await?;
                    let mut placed = Vec::with_capacity(rooms);
                    for i in 0..rooms {
                        let request = harness::room(&event, &format!("room-{i}"), "u");
                        placed.push(
                            client
                                .room_url(harness::authed(request))
                                .await?
                                .into_inner()
                                .server_id,
                        );
                    }
                    Ok(placed)
                })
                .await?
        };
        let store = service.store().await?;
        let mut creates = Vec::with_capacity(rooms);
        for (i, server) in placed.iter().enumerate() {
            let meeting = store
                .room_meeting(&event, &format!("room-{i}"))
                .await?
                .ok_or("a room's meeting is not stored")?;
            let query = params::room_create(&meeting, harness::ROOM_NAME, &RoomSettings::default());
            let endpoint = endpoints.get(server).ok_or("unknown server")?.clone();
            creates.push((endpoint, query));
        }

        for clients in CONCURRENCY {
            let bare = match baselines.entry(clients) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(slot) => {
                    let work = bare_creates(creates[..clients].to_vec(), window);
                    slot.insert(bench.load.run(work).await?)
                }
            };
            let creates_before = emulators.calls("create").await?;
            let measured = bench
                .load
                .run(room_urls(addr, event.clone(), clients, window))
                .await?;
            let service_creates = emulators.calls("create").await? - creates_before;
            sections.push(section(
                latency,
                ttl,
                clients,
                &measured,
                bare,
                service_creates,
            ));
        }
        service.stop().await;
    }
    Ok(sections)
}

/// `clients` loops of RoomUrl, each on its own connection and room, for `window`.
async fn room_urls(
    addr: std::net::SocketAddr,
    event: String,
    clients: usize,
    window: Duration,
) -> Fallible<Window> {
    // Connections first, so that connecting is not measured.
    let mut connected = Vec::with_capacity(clients);
    for _ in 0..clients {
        connected.push(harness::client(addr).await?);
    }
    let cpu = Cpu::now();
    let started = Instant::now();
    let until = started + window;
    let mut loops = JoinSet::new();
    for (i, mut client) in connected.into_iter().enumerate() {
        let request = harness::room(&event, &format!("room-{i}"), &format!("u{i}"));
        loops.spawn(async move {
            let (mut samples, mut errors) = (Samples::default(), 0u64);
            while Instant::now() < until {
                let sent = Instant::now();
                match client.room_url(harness::authed(request.clone())).await {
                    Ok(_) => samples.push(sent.elapsed()),
                    Err(_) => errors += 1,
                }
            }
            (samples, errors)
        });
    }
    collect(loops, started, cpu).await
}

/// The same loops sending the service's create straight to each room's server.
async fn bare_creates(creates: Vec<(Endpoint, Query)>, window: Duration) -> Fallible<Window> {
    let bbb = BbbClient::new(Timeouts::default());
    for (endpoint, query) in &creates {
        bbb.create(endpoint, query, &[]).await?;
    }
    let cpu = Cpu::now();
    let started = Instant::now();
    let until = started + window;
    let mut loops = JoinSet::new();
    for (endpoint, query) in creates {
        let bbb = bbb.clone();
        loops.spawn(async move {
            let (mut samples, mut errors) = (Samples::default(), 0u64);
            while Instant::now() < until {
                let sent = Instant::now();
                match bbb.create(&endpoint, &query, &[]).await {
                    Ok(_) => samples.push(sent.elapsed()),
                    Err(_) => errors += 1,
                }
            }
            (samples, errors)
        });
    }
    collect(loops, started, cpu).await
}

async fn collect(
    mut loops: JoinSet<(Samples, u64)>,
    started: Instant,
    cpu: Cpu,
) -> Fallible<Window> {
    let (mut samples, mut errors) = (Samples::default(), 0);
    while let Some(done) = loops.join_next().await {
        let (s, e) = done?;
        samples.extend(s);
        errors += e;
    }
    Ok(Window {
        samples,
        errors,
        elapsed: started.elapsed(),
        cpu: Cpu::since(cpu),
    })
}

fn section(
    latency: Duration,
    ttl: Duration,
    clients: usize,
    measured: &Window,
    bare: &Window,
    service_creates: u64,
) -> Section {
    let done = measured.samples.len().max(1) as f64;
    let rate = measured.rate();
    let service_cpu = ms(measured.cpu.service()) / done;
    let process_cpu = ms(measured.cpu.process) / done;
    let busy = measured.cpu.service().as_secs_f64() / measured.elapsed.as_secs_f64();
    let p50 = measured.samples.percentile_ms(0.5);
    let p99 = measured.samples.percentile_ms(0.99);
    let peer_note = if clients == 32 {
        ""
    } else {
        " (at 32 clients)"
    };
    Section {
        scenario: "throughput",
        title: format!(
            "RoomUrl throughput: {clients} concurrent clients, each its own connection and running room, {} s",
            super::report::number(measured.elapsed.as_secs_f64())
        ),
        latency_ms: latency.as_millis() as u64,
        conditions: ttl_conditions(ttl),
        figures: vec![
            Figure::new("RoomUrl per second", rate, "/s")
                .baseline(bare.rate())
                .peer(
                    &format!("184–191 create+join/s{peer_note}"),
                    Some(rate / PEER_RATE),
                )
                .goal("≥ 10× bbblb (1,875/s)", rate >= 10.0 * PEER_RATE),
            Figure::new("service CPU per RoomUrl", service_cpu, "ms")
                .peer("≈ 5.4 ms per create+join", Some(PEER_CPU_MS / service_cpu))
                .goal(
                    "≤ 1/20 of bbblb (0.27 ms)",
                    service_cpu <= PEER_CPU_MS / 20.0,
                ),
            Figure::new(
                "process CPU per RoomUrl (service + load generator)",
                process_cpu,
                "ms",
            ),
            Figure::new("service CPU busy (cores)", busy, ""),
            Figure::new("RoomUrl p50", p50, "ms").baseline(bare.samples.percentile_ms(0.5)),
            Figure::new("RoomUrl p99", p99, "ms")
                .baseline(bare.samples.percentile_ms(0.99))
                .peer("join p99 ≈ 1.1 s", Some(PEER_P99_MS / p99))
                .goal("< 50 ms", p99 < 50.0),
            Figure::new("RoomUrl max", measured.samples.max_ms(), "ms")
                .baseline(bare.samples.max_ms())
                .peer("2.5–3.6 s", None),
            Figure::new("failed RoomUrls", measured.errors as f64, "")
                .baseline(bare.errors as f64)
                .goal("0", measured.errors == 0),
            Figure::new("BBB creates per RoomUrl", service_creates as f64 / done, ""),
        ],
        peak_rss_mib: 0.0,
    }
}
