//! Two `serve` processes on one PostgreSQL: meetings stay unique under concurrent first joins
//! split between them, exactly one polls, and when one is killed the other goes on and takes
//! the polling over within two intervals.

use crate::common::*;
use eventyay_bbb::{
    proto::bbb_service_client::BbbServiceClient,
    sim::{SimConfig, SimServer},
};
use std::{
    collections::HashSet,
    time::{Duration, Instant},
};
use tonic::transport::Channel;

const POLL: Duration = Duration::from_millis(300);

/// Joins `rooms` × `per_room` times, alternating replicas, all at once. Returns, per join, the
/// room and its meeting (or `None` when that replica could not answer).
async fn burst(
    replicas: &[&Channel],
    prefix: &str,
    rooms: usize,
    per_room: usize,
) -> Vec<(usize, Option<String>)> {
    let mut tasks = Vec::new();
    for i in 0..rooms * per_room {
        let room = i % rooms;
        let mut client = BbbServiceClient::new(replicas[i % replicas.len()].clone());
        let name = format!("{prefix}-{room}");
        tasks.push(tokio::spawn(async move {
            let mut request = authed(room_request(&name, &format!("u{i}"), JOIN));
            request.set_timeout(Duration::from_secs(20));
            (
                room,
                client
                    .room_url(request)
                    .await
                    .ok()
                    .map(|r| r.into_inner().meeting_id),
            )
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn polls(sims: &[SimServer]) -> Vec<u64> {
    sims.iter().map(|s| s.call_count("getMeetings")).collect()
}

async fn two_replicas_share_one_fleet(db: TestDb) {
    let mut sims = Vec::new();
    for id in ["r1", "r2", "r3"] {
        sims.push(
            SimServer::start(SimConfig::new(secret_of(id)))
                .await
                .unwrap(),
        );
    }
    let servers_file = db.dir.path().join("servers.toml");
    write_servers_file(&servers_file, &sims, &[("r1", ""), ("r2", ""), ("r3", "")]);
    let a = serve(&db, &servers_file, POLL, &[]).await;
    let b = serve(&db, &servers_file, POLL, &[]).await;

    // 1,000 first joins of 100 rooms, split between the replicas: exactly 100 meetings.
    let joins = burst(&[&a.channel, &b.channel], "first", 100, 10).await;
    assert!(
        joins.iter().all(|(_, m)| m.is_some()),
        "every join got a URL"
    );
    let per_room: HashSet<(usize, String)> =
        joins.into_iter().map(|(r, m)| (r, m.unwrap())).collect();
    assert_eq!(per_room.len(), 100, "one meeting per room");
    let on_servers: usize = sims.iter().map(|s| s.meetings().len()).sum();
    assert_eq!(on_servers, 100, "and exactly one on the fleet per room");

    // One poller between the two: each server is polled about once per interval.
    let before = polls(&sims);
    let window = Duration::from_millis(3000);
    tokio::time::sleep(window).await;
    let rounds = window.as_millis() / POLL.as_millis();
    for (b0, b1) in before.iter().zip(polls(&sims)) {
        let n = u128::from(b1 - b0);
        assert!(
            n >= rounds - 3 && n <= rounds + 2,
            "{n} polls in {rounds} intervals"
        );
    }

    // A replica dies in the middle of a burst: the other goes on.
    let (a_channel, b_channel) = (a.channel.clone(), b.channel.clone());
    let channels = [&a_channel, &b_channel];
    let kill = async move {
        tokio::time::sleep(Duration::from_millis(30)).await;
        drop(a); // SIGKILL
    };
    let (joins, ()) = tokio::join!(burst(&channels, "second", 100, 4), kill);
    let killed_at = Instant::now();
    let lost: HashSet<usize> = joins
        .iter()
        .filter(|(_, m)| m.is_none())
        .map(|(r, _)| *r)
        .collect();
    let mut meetings: HashSet<(usize, String)> = joins
        .into_iter()
        .filter_map(|(r, m)| m.map(|m| (r, m)))
        .collect();
    let mut client = BbbServiceClient::new(b.channel.clone());
    for room in lost {
        let m = client
            .room_url(authed(room_request(
                &format!("second-{room}"),
                "retry",
                JOIN,
            )))
            .await
            .expect("the surviving replica serves what the dead one could not")
            .into_inner()
            .meeting_id;
        meetings.insert((room, m));
    }
    assert_eq!(meetings.len(), 100, "nothing lost, nothing duplicated");
    let on_servers: usize = sims.iter().map(|s| s.meetings().len()).sum();
    assert_eq!(on_servers, 200);

    // Polling moves to the survivor within two intervals of the lease expiring.
    tokio::time::sleep((POLL * 2 + POLL).saturating_sub(killed_at.elapsed())).await;
    let before = polls(&sims);
    tokio::time::sleep(POLL * 4).await;
    for (b0, b1) in before.iter().zip(polls(&sims)) {
        assert!(
            b1 - b0 >= 2,
            "the survivor polls: {} polls in four intervals",
            b1 - b0
        );
        assert!(
            b1 - b0 <= 6,
            "and only it: {} polls in four intervals",
            b1 - b0
        );
    }
}

on_postgres!(two_replicas_share_one_fleet);

/// A replica whose node died mid-placement leaves its session holding the placement lock. New
/// rooms must then fail within seconds (UNAVAILABLE, which the client retries), not queue for
/// hours, and work again once the lock is gone.
async fn a_stuck_placement_lock_fails_new_rooms_in_seconds(db: TestDb) {
    use sea_orm::{ConnectionTrait, Database};
    // The placement lock's key ("bbb-plac").
    const PLACEMENT_LOCK: i64 = 0x6262_622d_706c_6163;
    let app = spawn_app(db, &[SimSpec::new("s1")]).await;
    let mut client = app.client().await;
    client
        .room_url(authed(room_request("before", "u", JOIN)))
        .await
        .unwrap();

    let holder = Database::connect(&app.database_url).await.unwrap();
    holder
        .execute_unprepared(&format!("SELECT pg_advisory_lock({PLACEMENT_LOCK})"))
        .await
        .unwrap();
    let started = Instant::now();
    let mut request = authed(room_request("during", "u", JOIN));
    request.set_timeout(Duration::from_secs(30));
    let err = client.room_url(request).await.unwrap_err();
    let waited = started.elapsed();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    // Rooms placed before still join: they need no placement.
    client
        .room_url(authed(room_request("before", "u", JOIN)))
        .await
        .unwrap();

    holder
        .execute_unprepared(&format!("SELECT pg_advisory_unlock({PLACEMENT_LOCK})"))
        .await
        .unwrap();
    let url = client
        .room_url(authed(room_request("during", "u", JOIN)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(url.server_id, "s1");
    app.stop().await;
}

on_postgres!(a_stuck_placement_lock_fails_new_rooms_in_seconds);
