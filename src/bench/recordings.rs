//! ListRecordings of a room that every one of 10 servers has hosted, with one server hung: the
//! answer must come within the per-server deadline (plus little), with the other nine servers'
//! recordings. The room gets there the way operators move rooms: RoomUrl records a meeting on a
//! server, MoveRoom ends it there (leaving a recording) and points the room at the next server.

use super::{
    Bench, Fallible,
    emulators::{Emulators, fresh_ids},
    harness::{self, BenchService, Options},
    measure::{Samples, ms},
    report::{Figure, Section},
};
use crate::{
    bbb::{BbbClient, Timeouts},
    proto,
};
use std::time::{Duration, Instant};

const SERVERS: usize = 10;
/// The per-server getRecordings deadline the service is given (`--recordings-timeout`).
const DEADLINE: Duration = Duration::from_secs(1);

pub async fn run(bench: &Bench, latency: Duration) -> Fallible<Vec<Section>> {
    let rounds = if bench.quick { 2 } else { 5 };
    let emulators = Emulators::start(fresh_ids(SERVERS), latency).await?;
    let options = Options {
        recordings_timeout: DEADLINE,
        ..Options::default()
    };
    let service = BenchService::start(bench, &emulators.servers, &options).await?;
    let event = harness::fresh_event();
    let addr = service.addr;
    let ids: Vec<String> = emulators.servers.iter().map(|s| s.id.clone()).collect();

    let (last_server, meeting_id) = {
        let event = event.clone();
        bench
            .load
            .run(async move {
                let mut client = harness::client(addr).await?;
                let mut admin = harness::admin(addr).await?;
                let mut recorded = harness::room(&event, "talks", "speaker");
                recorded.permissions.push("room:bbb.moderate".to_owned());
                if let Some(settings) = recorded.settings.as_mut() {
                    settings.record = true;
                }
                let first = client
                    .room_url(harness::authed(recorded.clone()))
                    .await?
                    .into_inner();
                let mut here = first.server_id;
                let start = ids.iter().position(|id| *id == here).unwrap_or(0);
                for step in 1..ids.len() {
                    let next = ids[(start + step) % ids.len()].clone();
                    admin
                        .move_room(harness::admin_authed(proto::MoveRoomRequest {
                            event_id: event.clone(),
                            room_id: "talks".to_owned(),
                            server_id: next.clone(),
                            force: false,
                        }))
                        .await?;
                    let joined = client
                        .room_url(harness::authed(recorded.clone()))
                        .await?
                        .into_inner();
                    if joined.server_id != next {
                        return Err(
                            format!("the room moved to {}, not {next}", joined.server_id).into(),
                        );
                    }
                    here = next;
                }
                Ok((here, first.meeting_id))
            })
            .await?
    };
    // The meeting on the last server ends too, so every server holds one recording.
    let last = emulators
        .servers
        .iter()
        .find(|s| s.id == last_server)
        .ok_or("unknown server")?;
    emulators.end(last, &meeting_id).await?;

    let list = |n: usize| {
        let event = event.clone();
        async move {
            let mut client = harness::client(addr).await?;
            let mut walls = Samples::default();
            let mut answer = proto::ListRecordingsResponse::default();
            for _ in 0..n {
                let request = proto::ListRecordingsRequest {
                    event_id: event.clone(),
                    room_id: "talks".to_owned(),
                    permissions: vec!["room:bbb.recordings".to_owned()],
                };
                let started = Instant::now();
                answer = client
                    .list_recordings(harness::authed(request))
                    .await?
                    .into_inner();
                walls.push(started.elapsed());
            }
            Fallible::Ok((walls, answer))
        }
    };
    let (healthy, all) = bench.load.run(list(rounds)).await?;
    let hung = &emulators.servers[0];
    emulators.set_fault(hung, "hang").await?;
    let (with_hung, partial) = bench.load.run(list(rounds)).await?;
    emulators.set_fault(hung, "none").await?;
    service.stop().await;

    let bbb = BbbClient::new(Timeouts::default());
    let mut bare = Samples::default();
    for _ in 0..10 {
        let started = Instant::now();
        bbb.get_recordings(&emulators.servers[1].endpoint, &[meeting_id.as_str()])
            .await?;
        bare.push(started.elapsed());
    }

    let worst = with_hung.max_ms();
    let deadline = ms(DEADLINE);
    Ok(vec![Section {
        scenario: "recordings",
        title: format!(
            "ListRecordings of a room hosted by all {SERVERS} servers, {rounds} calls each way"
        ),
        latency_ms: latency.as_millis() as u64,
        conditions: format!("per-server deadline {} ms", DEADLINE.as_millis()),
        figures: vec![
            Figure::new("wall time, one server hung (max)", worst, "ms")
                .baseline(deadline)
                .goal("≤ 1.2× the per-server deadline", worst <= 1.2 * deadline),
            Figure::text(
                "recordings returned, one server hung",
                partial.results.len() as f64,
                format!(
                    "{} of {SERVERS}, unreachable: {}",
                    partial.results.len(),
                    partial.unreachable_servers.join(" ")
                ),
            )
            .goal(
                &format!("{} and the hung server named", SERVERS - 1),
                partial.results.len() == SERVERS - 1
                    && partial.unreachable_servers == [hung.id.clone()],
            ),
            Figure::new(
                "wall time, all answering (p50)",
                healthy.percentile_ms(0.5),
                "ms",
            )
            .baseline(bare.percentile_ms(0.5)),
            Figure::text(
                "recordings returned, all answering",
                all.results.len() as f64,
                format!("{} of {SERVERS}", all.results.len()),
            )
            .goal("all", all.results.len() == SERVERS),
        ],
        peak_rss_mib: 0.0,
    }])
}
