//! Placement's rules as users meet them: an estimate never locks anyone out, an outage is not
//! "BBB deactivated", a cordon keeps what its server still lists, and no reservation outlives
//! what it was for.

use crate::common::*;
use eventyay_bbb::{
    domain::{Meeting, Server},
    proto::{self, fleet_service_client::FleetServiceClient},
    secret::Secret,
    sim::Fault,
    store::{Decided, Reservation, Store},
};
use std::time::{Duration, Instant, SystemTime};
use tonic::{Code, transport::Channel};

async fn admin(app: &TestApp) -> FleetServiceClient<Channel> {
    FleetServiceClient::new(app.channel().await)
}

fn as_admin<T>(message: T) -> tonic::Request<T> {
    authed_with(message, ADMIN_TOKEN)
}

fn expecting(room: &str, participants: u32) -> proto::RoomUrlRequest {
    let mut request = room_request(room, "u", JOIN);
    request.settings.as_mut().unwrap().expected_participants = participants;
    request
}

/// A kept plan for ev-1 of one session of `room` starting in a minute, for an hour.
fn keep(room: &str, participants: u32) -> proto::PlanScheduleRequest {
    let start = SystemTime::now() + Duration::from_secs(60);
    proto::PlanScheduleRequest {
        event_id: "ev-1".into(),
        organizer_id: "org-1".into(),
        sessions: vec![proto::PlannedSession {
            room_id: room.into(),
            start: Some(start.into()),
            end: Some((start + Duration::from_secs(3600)).into()),
            expected_participants: participants,
        }],
        slot_minutes: 0,
        keep: true,
    }
}

/// Waits until the service's polls have marked every server unhealthy.
async fn until_all_unhealthy(app: &TestApp) {
    let mut client = admin(app).await;
    let started = Instant::now();
    loop {
        let servers = client
            .list_servers(as_admin(proto::ListServersRequest {}))
            .await
            .unwrap()
            .into_inner()
            .servers;
        if servers
            .iter()
            .all(|s| s.health == proto::ServerHealth::Unhealthy as i32)
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never unhealthy: {servers:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn explain(app: &TestApp, room: &str) -> proto::ExplainPlacementResponse {
    admin(app)
        .await
        .explain_placement(as_admin(proto::ExplainPlacementRequest {
            event_id: "ev-1".into(),
            organizer_id: "org-1".into(),
            kind: proto::MeetingKind::Room as i32,
            prefer_server: String::new(),
            expected_participants: 0,
            room_id: room.into(),
        }))
        .await
        .unwrap()
        .into_inner()
}

/// One empty server capped at 300: a room expecting 301 still gets in there. (Its
/// reservation then fills the server to its cap: that cap, reached, refuses the next room.)
async fn an_estimate_above_every_cap_never_locks_a_room_out(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("small").with("max_participants = 300")]).await;
    let mut client = app.client().await;
    let plenary = client
        .room_url(authed(expecting("plenary", 301)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(plenary.server_id, "small");
    assert_join_works(&plenary.url).await;
    let err = client
        .room_url(authed(expecting("workshop", 10)))
        .await
        .unwrap_err();
    assert_eq!(reason(&err).0, "bbb.failed");
    app.stop().await;
}

/// One empty server capped at 300: a keynote its kept plan expects 400 for, which the
/// forecast names as more than the slot holds, still gets in there on a plain join.
async fn a_kept_plan_above_every_cap_never_locks_its_room_out(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("small").with("max_participants = 300")]).await;
    let mut client = app.client().await;
    let forecast = client
        .plan_schedule(authed(keep("keynote", 400)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(forecast.kept, 1);
    assert_eq!(forecast.slots[0].unplaced.len(), 1, "{forecast:?}");
    assert_eq!(forecast.slots[0].participants_short, 400);
    let keynote = client
        .room_url(authed(room_request("keynote", "u", JOIN)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(keynote.server_id, "small");
    assert_join_works(&keynote.url).await;
    app.stop().await;
}

/// Both servers down for a few polls: the event still has BBB (rooms and calls), and joins
/// are answered with the retryable `bbb.failed`.
async fn an_outage_is_not_bbb_deactivated(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("s1"), SimSpec::new("s2")]).await;
    let mut client = app.client().await;
    let call = client
        .create_call(authed(proto::CreateCallRequest {
            event_id: "ev-1".into(),
            organizer_id: "org-1".into(),
            member_ids: vec!["alice".into()],
            idempotency_key: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    client
        .room_url(authed(room_request("main", "u", JOIN)))
        .await
        .unwrap();
    for id in ["s1", "s2"] {
        app.sim(id).set_fault(Fault::Unavailable);
    }
    until_all_unhealthy(&app).await;

    let available = client
        .availability(authed(proto::AvailabilityRequest {
            event_id: "ev-1".into(),
            organizer_id: "org-1".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(available.rooms && available.calls, "{available:?}");
    let err = client
        .call_url(authed(proto::CallUrlRequest {
            event_id: "ev-1".into(),
            call_id: call.call_id,
            user: user("alice", "Alice"),
            domain: "events.example.org".into(),
            base_url: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(reason(&err).0, "bbb.failed");
    for room in ["main", "fresh"] {
        let err = client
            .room_url(authed(room_request(room, "u", JOIN)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{room}");
        assert_eq!(reason(&err).0, "bbb.failed", "{room}");
    }
    app.stop().await;
}

/// A meeting created on s1 that nobody has entered yet (its guests may be waiting for the
/// moderator) stays on s1 when s1 is cordoned; new rooms go elsewhere.
async fn a_cordon_keeps_a_meeting_its_server_still_lists(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("s1"), SimSpec::new("s2")]).await;
    let mut client = app.client().await;
    let on_s1 = |room: &str| {
        let mut r = room_request(room, "u", JOIN);
        let settings = r.settings.as_mut().unwrap();
        settings.prefer_server = "s1".into();
        settings.waiting_room = true;
        r
    };
    let first = client
        .room_url(authed(on_s1("waiting")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.server_id, "s1");
    admin(&app)
        .await
        .set_server_state(as_admin(proto::SetServerStateRequest {
            id: "s1".into(),
            state: proto::ServerState::Cordoned as i32,
        }))
        .await
        .unwrap();
    // Past the join cache, and a poll that lists the meeting without anyone in it.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app.sim("s1").meetings().len(), 1);
    let again = client
        .room_url(authed(room_request("waiting", "moderator", MODERATE)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again.server_id, "s1",
        "the listed meeting moved off its cordoned server"
    );
    assert_eq!(again.meeting_id, first.meeting_id);
    let fresh = client
        .room_url(authed(on_s1("new")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fresh.server_id, "s2", "a new meeting on a cordoned server");
    app.stop().await;
}

/// A room's join that finds no server does not take its planned session over: the plan keeps
/// reserving it for when a server can.
async fn a_join_that_found_no_server_leaves_the_plan_reserving(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("s1")]).await;
    let mut client = app.client().await;
    let forecast = client
        .plan_schedule(authed(keep("talk", 50)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(forecast.placements[0].server_id, "s1");
    let planned = explain(&app, "talk").await.planned.unwrap();
    assert!(planned.reserving);

    app.sim("s1").set_fault(Fault::Unavailable);
    until_all_unhealthy(&app).await;
    let err = client
        .room_url(authed(room_request("talk", "u", JOIN)))
        .await
        .unwrap_err();
    assert_eq!(reason(&err).0, "bbb.failed");
    let planned = explain(&app, "talk").await.planned.unwrap();
    assert!(planned.reserving, "the session was taken over by nothing");
    app.stop().await;
}

/// A MoveRoom refused after its placement (the old server cannot end the meeting) leaves no
/// reservation on the server it picked.
async fn a_refused_move_takes_its_reservation_back(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("s1"), SimSpec::new("s2")]).await;
    let mut client = app.client().await;
    let mut request = room_request("main", "u", JOIN);
    request.settings.as_mut().unwrap().prefer_server = "s1".into();
    let placed = client.room_url(authed(request)).await.unwrap().into_inner();
    assert_eq!(placed.server_id, "s1");
    app.sim("s1").set_fault(Fault::Unavailable);
    let err = admin(&app)
        .await
        .move_room(as_admin(proto::MoveRoomRequest {
            event_id: "ev-1".into(),
            room_id: "main".into(),
            server_id: String::new(),
            force: false,
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let stored = app
        .store()
        .await
        .reservations(Duration::from_secs(300))
        .await
        .unwrap();
    assert!(
        !stored.iter().any(|r| r.server_id == "s2"),
        "a reservation for a move that did not happen: {stored:?}"
    );
    let s2 = explain(&app, "other")
        .await
        .candidates
        .into_iter()
        .find(|c| c.server_id == "s2")
        .unwrap();
    assert_eq!(s2.load, 0.0, "{s2:?}");
    app.stop().await;
}

fn row(id: &str, bbb_meeting_id: &str, server: &str) -> Meeting {
    Meeting {
        id: id.into(),
        event_id: "ev".into(),
        organizer_id: "org".into(),
        room_id: Some("main".into()),
        bbb_meeting_id: bbb_meeting_id.into(),
        attendee_pw: "attendee-pw".into(),
        moderator_pw: "moderator-pw".into(),
        server_id: server.into(),
        imported: false,
        claimed_at: 0,
    }
}

/// Writes a room's first row with its reservation, as a placement does.
async fn place_first(store: &Store, row: Meeting) -> Meeting {
    let key = (row.event_id.clone(), row.room_id.clone().unwrap());
    let made = Reservation {
        meeting_id: row.bbb_meeting_id.clone(),
        server_id: row.server_id.clone(),
        at: SystemTime::now(),
        participants: 40,
    };
    store
        .reserve_with(Duration::from_secs(300), Duration::ZERO, &[], |_| Decided {
            made: vec![made],
            first_rows: vec![row],
            ..Default::default()
        })
        .await
        .unwrap()
        .rooms
        .remove(&key)
        .unwrap()
}

/// Two replicas place a room's first meeting at once: the second finds the first's row, and
/// its own meetingID, which will never exist, reserves nothing.
async fn a_first_row_that_lost_reserves_nothing(db: TestDb) {
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let servers: Vec<Server> = ["a", "b"]
        .into_iter()
        .map(|id| {
            let url = format!("https://{id}.example.org/bigbluebutton/");
            Server::new(id, url, Secret::new(format!("secret-{id}")))
        })
        .collect();
    store.sync_file_servers(&servers).await.unwrap();
    let won = place_first(&store, row("r1", "bbb-1", "a")).await;
    assert_eq!(won.id, "r1");
    let lost = place_first(&store, row("r2", "bbb-2", "b")).await;
    assert_eq!(lost.id, "r1", "the first row stands");
    let reserved: Vec<String> = store
        .reservations(Duration::from_secs(300))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.meeting_id)
        .collect();
    assert_eq!(reserved, ["bbb-1"]);
}

on_both_databases!(
    an_estimate_above_every_cap_never_locks_a_room_out,
    a_kept_plan_above_every_cap_never_locks_its_room_out,
    an_outage_is_not_bbb_deactivated,
    a_cordon_keeps_a_meeting_its_server_still_lists,
    a_join_that_found_no_server_leaves_the_plan_reserving,
    a_refused_move_takes_its_reservation_back,
    a_first_row_that_lost_reserves_nothing,
);
