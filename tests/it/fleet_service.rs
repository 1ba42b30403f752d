//! FleetService end to end: operators' changes through gRPC, checked through the effects users
//! see (joins, placements) and through the audit log. Secrets never come back.

use crate::common::*;
use eventyay_bbb::{
    proto::{self, fleet_service_client::FleetServiceClient},
    sim::{Fault, SimConfig, SimServer},
};
use std::time::Duration;
use tonic::{Code, transport::Channel};

async fn admin(app: &TestApp) -> FleetServiceClient<Channel> {
    FleetServiceClient::new(app.channel().await)
}

fn as_admin<T>(message: T) -> tonic::Request<T> {
    let mut request = authed_with(message, ADMIN_TOKEN);
    request
        .metadata_mut()
        .insert("x-actor", "ops-alice".parse().unwrap());
    request
}

/// ExplainPlacement for a room of ev-1 expecting `participants`.
async fn explain_room(
    client: &mut FleetServiceClient<Channel>,
    participants: u32,
) -> proto::ExplainPlacementResponse {
    client
        .explain_placement(as_admin(proto::ExplainPlacementRequest {
            event_id: "ev-1".into(),
            organizer_id: "org-1".into(),
            kind: proto::MeetingKind::Room as i32,
            prefer_server: String::new(),
            expected_participants: participants,
            room_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
}

async fn servers(client: &mut FleetServiceClient<Channel>) -> Vec<proto::ServerInfo> {
    client
        .list_servers(as_admin(proto::ListServersRequest {}))
        .await
        .unwrap()
        .into_inner()
        .servers
}

fn spec(id: &str, url: &str, secret: &str) -> proto::ServerSpec {
    proto::ServerSpec {
        id: id.into(),
        url: url.into(),
        secret: secret.into(),
        ..Default::default()
    }
}

async fn only_admin_tokens_open_it(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("s1")]).await;
    let mut client = admin(&app).await;
    for request in [
        tonic::Request::new(proto::ListServersRequest {}),
        authed(proto::ListServersRequest {}),
    ] {
        let err = client.list_servers(request).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }
    let listed = servers(&mut client).await;
    assert_eq!(listed.len(), 1);
    let s = &listed[0];
    assert_eq!(s.spec.as_ref().unwrap().id, "s1");
    assert_eq!(
        s.spec.as_ref().unwrap().secret,
        "",
        "secrets are write-only"
    );
    assert!(s.from_file);
    assert_eq!(s.health, proto::ServerHealth::Healthy as i32);
    app.stop().await;
}

async fn servers_added_later_are_probed_and_take_meetings_and_secrets_stay_hidden(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("s1").with("state = \"disabled\"")]).await;
    let mut client = admin(&app).await;
    let extra = SimServer::start(SimConfig::new("added-secret-canary-42"))
        .await
        .unwrap();

    let missing_secret = client
        .put_server(as_admin(proto::PutServerRequest {
            server: Some(spec("s2", &extra.base_url(), "")),
        }))
        .await
        .unwrap_err();
    assert_eq!(missing_secret.code(), Code::InvalidArgument);

    let put = client
        .put_server(as_admin(proto::PutServerRequest {
            server: Some(spec("s2", &extra.base_url(), "added-secret-canary-42")),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(put.created);
    let info = put.server.unwrap();
    assert_eq!(
        info.health,
        proto::ServerHealth::Healthy as i32,
        "probed on the spot"
    );
    assert_eq!(info.spec.as_ref().unwrap().secret, "");

    let mut bbb = app.client().await;
    let url = bbb
        .room_url(authed(room_request("r", "u", JOIN)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(url.server_id, "s2");
    assert_join_works(&url.url).await;

    // An update without a secret keeps the secret.
    let mut update = spec("s2", &extra.base_url(), "");
    update.weight = 3.0;
    let updated = client
        .put_server(as_admin(proto::PutServerRequest {
            server: Some(update),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(!updated.created);
    assert_eq!(updated.server.unwrap().spec.unwrap().weight, 3.0);
    let url = bbb
        .room_url(authed(room_request("r2", "u", JOIN)))
        .await
        .unwrap()
        .into_inner();
    assert_join_works(&url.url).await;

    let log = client
        .list_audit_log(as_admin(proto::ListAuditLogRequest { limit: 10 }))
        .await
        .unwrap()
        .into_inner();
    let text = format!("{log:?} {:?}", servers(&mut client).await);
    assert!(!text.contains("canary"), "{text}");
    assert_eq!(log.entries[0].action, "put-server");
    assert!(log.entries[0].actor.contains("ops-alice"));
    assert!(log.entries[0].details.contains("secret=kept"));
    app.stop().await;
}

async fn removal_is_only_for_servers_without_history(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("s1"), SimSpec::new("s2")]).await;
    let mut client = admin(&app).await;
    let mut bbb = app.client().await;
    let mut on_s1 = room_request("r", "u", JOIN);
    on_s1.settings.as_mut().unwrap().prefer_server = "s1".into();
    bbb.room_url(authed(on_s1)).await.unwrap();

    let refused = client
        .remove_server(as_admin(proto::RemoveServerRequest { id: "s1".into() }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused).0, "failed_precondition");
    client
        .remove_server(as_admin(proto::RemoveServerRequest { id: "s2".into() }))
        .await
        .unwrap();
    let missing = client
        .remove_server(as_admin(proto::RemoveServerRequest { id: "nope".into() }))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(servers(&mut client).await.len(), 1);
    app.stop().await;
}

async fn cordon_and_drain(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("s1"), SimSpec::new("s2")]).await;
    let mut client = admin(&app).await;
    let mut bbb = app.client().await;
    let mut on_s1 = room_request("busy", "u", JOIN);
    on_s1.settings.as_mut().unwrap().prefer_server = "s1".into();
    let busy = bbb.room_url(authed(on_s1)).await.unwrap().into_inner();
    assert_join_works(&busy.url).await;

    let drained = client
        .drain_server(as_admin(proto::DrainServerRequest { id: "s1".into() }))
        .await
        .unwrap()
        .into_inner()
        .server
        .unwrap();
    assert!(drained.draining);
    assert_eq!(
        drained.spec.unwrap().state,
        proto::ServerState::Cordoned as i32
    );
    // Changing its weight mid-drain, without a state, keeps the drain.
    let mut reweighted = spec("s1", &app.sim("s1").base_url(), "");
    reweighted.weight = 2.0;
    let put = client
        .put_server(as_admin(proto::PutServerRequest {
            server: Some(reweighted),
        }))
        .await
        .unwrap()
        .into_inner()
        .server
        .unwrap();
    assert!(
        put.draining,
        "a PutServer without a state cancelled the drain"
    );
    assert_eq!(put.spec.unwrap().state, proto::ServerState::Cordoned as i32);
    // No new meetings there; the running one stays.
    for i in 0..5 {
        let url = bbb
            .room_url(authed(room_request(&format!("new-{i}"), "u", JOIN)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(url.server_id, "s2");
    }
    assert_eq!(
        bbb.room_url(authed(room_request("busy", "u", JOIN)))
            .await
            .unwrap()
            .into_inner()
            .server_id,
        "s1"
    );

    // Once empty, the poller disables it.
    end_on_sim(&app, "s1", &busy.meeting_id).await;
    let mut disabled = false;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let s1 = servers(&mut client)
            .await
            .into_iter()
            .find(|s| s.spec.as_ref().unwrap().id == "s1")
            .unwrap();
        if s1.spec.unwrap().state == proto::ServerState::Disabled as i32 {
            disabled = true;
            break;
        }
    }
    assert!(disabled, "a drained server is disabled once empty");
    let log = client
        .list_audit_log(as_admin(proto::ListAuditLogRequest { limit: 5 }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(log.entries[0].action, "drain-completed");
    app.stop().await;
}

async fn move_room_ends_first_and_refuses_unless_forced(db: TestDb) {
    let app = spawn_app(
        db,
        &[SimSpec::new("s1"), SimSpec::new("s2"), SimSpec::new("s3")],
    )
    .await;
    let mut client = admin(&app).await;
    let mut bbb = app.client().await;
    let mut on_s1 = room_request("hall", "u", JOIN);
    on_s1.settings.as_mut().unwrap().prefer_server = "s1".into();
    let before = bbb.room_url(authed(on_s1)).await.unwrap().into_inner();
    assert_join_works(&before.url).await;

    let moved = client
        .move_room(as_admin(proto::MoveRoomRequest {
            event_id: "ev-1".into(),
            room_id: "hall".into(),
            server_id: "s2".into(),
            force: false,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (moved.from_server_id.as_str(), moved.to_server_id.as_str()),
        ("s1", "s2")
    );
    assert!(moved.ended_on_old_server);
    assert!(
        app.sim("s1").meetings().is_empty(),
        "ended on the old server"
    );
    let after = bbb
        .room_url(authed(room_request("hall", "u", JOIN)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.server_id, "s2");
    assert_eq!(after.meeting_id, before.meeting_id);
    assert_join_works(&after.url).await;

    // The old server cannot be reached: the move is refused, unless forced.
    app.sim("s2").set_fault(Fault::Refuse);
    let request = |force| proto::MoveRoomRequest {
        event_id: "ev-1".into(),
        room_id: "hall".into(),
        server_id: "s3".into(),
        force,
    };
    let refused = client
        .move_room(as_admin(request(false)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let forced = client
        .move_room(as_admin(request(true)))
        .await
        .unwrap()
        .into_inner();
    assert!(!forced.ended_on_old_server);
    let log = client
        .list_audit_log(as_admin(proto::ListAuditLogRequest { limit: 1 }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(log.entries[0].action, "move-room");
    assert!(
        log.entries[0].details.contains("FORCED"),
        "{}",
        log.entries[0].details
    );
    app.stop().await;
}

async fn explain_shows_the_ranking_with_its_numbers(db: TestDb) {
    let app = spawn_app(
        db,
        &[
            SimSpec::new("s1"),
            SimSpec::new("s2").with("weight = 2.0\nmax_participants = 100"),
            SimSpec::new("s3").with("state = \"cordoned\""),
            SimSpec::new("s4").with("events = [\"other\"]"),
        ],
    )
    .await;
    let mut client = admin(&app).await;
    let mut bbb = app.client().await;
    bbb.room_url(authed(room_request("a", "u", JOIN)))
        .await
        .unwrap();
    let explained = explain_room(&mut client, 0).await;
    let by_id = |id: &str| {
        explained
            .candidates
            .iter()
            .find(|c| c.server_id == id)
            .unwrap()
            .clone()
    };
    assert!(by_id("s1").eligible && by_id("s2").eligible);
    assert_eq!(by_id("s3").excluded_because, "cordoned");
    assert_eq!(by_id("s4").excluded_because, "not for this event or kind");
    assert_eq!(by_id("s2").weight, 2.0);
    assert!(
        by_id("s1").load > 0.0 || by_id("s2").load > 0.0,
        "the first room's reservation shows"
    );
    assert!(["s1", "s2"].contains(&explained.chosen_server_id.as_str()));
    assert!(explained.candidates[0].eligible, "eligible servers first");
    // A keynote of 500 does not fit s2's cap of 100: s2 stays eligible (an estimate never
    // refuses), ranked after s1, where it fits.
    let keynote = explain_room(&mut client, 500).await;
    assert_eq!(keynote.chosen_server_id, "s1");
    let ranked: Vec<(&str, bool)> = keynote.candidates[..2]
        .iter()
        .map(|c| (c.server_id.as_str(), c.eligible))
        .collect();
    assert_eq!(ranked, [("s1", true), ("s2", true)]);
    app.stop().await;
}

/// Answers every request with the same web page, as a URL that is not a BBB API does.
async fn not_bbb() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let page =
                    "<!DOCTYPE html><html><body>Welcome to the conference site</body></html>";
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/bigbluebutton/")
}

/// A server that answers but refuses us — its secret rotated on the BBB side, or its URL no
/// BBB API — is listed MISCONFIGURED with why, takes no new meeting, loses its pinned rooms at
/// their next join without a failed join, and takes meetings again once fixed.
async fn misconfigured_servers_are_seen_avoided_and_recover(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("s1"), SimSpec::new("s2")]).await;
    let mut client = app.client().await;
    let mut admin = admin(&app).await;
    let mut on_s2 = Vec::new();
    for i in 0..20 {
        let room = format!("early-{i}");
        let url = client
            .room_url(authed(room_request(&room, "u", JOIN)))
            .await
            .unwrap()
            .into_inner();
        if url.server_id == "s2" {
            on_s2.push(room);
        }
    }
    assert!(!on_s2.is_empty());

    // The BBB side rotates its secret: the next join of a room pinned there moves it.
    app.sim("s2")
        .set_secret(eventyay_bbb::secret::Secret::new("rotated-on-bbb-side"));
    // Past the time a fresh create is trusted (300 ms here), a join asks BBB again.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let moved = client
        .room_url(authed(room_request(&on_s2[0], "u", JOIN)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.server_id, "s1");
    assert_join_works(&moved.url).await;

    let put = admin
        .put_server(as_admin(proto::PutServerRequest {
            server: Some(spec("web", &not_bbb().await, "whatever")),
        }))
        .await
        .unwrap()
        .into_inner()
        .server
        .unwrap();
    assert_eq!(put.health(), proto::ServerHealth::Misconfigured);
    assert!(
        put.health_reason.contains("not BBB"),
        "{}",
        put.health_reason
    );

    let by_id = |servers: &[proto::ServerInfo], id: &str| {
        servers
            .iter()
            .find(|s| s.spec.as_ref().unwrap().id == id)
            .unwrap()
            .clone()
    };
    let s2 = by_id(&servers(&mut admin).await, "s2");
    assert_eq!(s2.health(), proto::ServerHealth::Misconfigured);
    assert!(
        s2.health_reason.contains("checksum refused"),
        "{}",
        s2.health_reason
    );
    assert!(!s2.health_reason.contains("rotated"), "never a secret");

    for i in 0..20 {
        let url = client
            .room_url(authed(room_request(&format!("later-{i}"), "u", JOIN)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(url.server_id, "s1", "nothing new on a misconfigured server");
    }
    for room in &on_s2[1..] {
        let url = client
            .room_url(authed(room_request(room, "u", JOIN)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            url.server_id, "s1",
            "pinned rooms move as from a dead server"
        );
    }
    let explained = explain_room(&mut admin, 0).await;
    let s2_row = explained
        .candidates
        .iter()
        .find(|c| c.server_id == "s2")
        .unwrap();
    assert!(
        s2_row
            .excluded_because
            .starts_with("misconfigured: checksum refused"),
        "{s2_row:?}"
    );

    // The operator puts the new secret in: healthy at once, and it takes rooms again.
    let mut fixed = spec("s2", &app.sim("s2").base_url(), "rotated-on-bbb-side");
    fixed.state = proto::ServerState::Enabled as i32;
    let put = admin
        .put_server(as_admin(proto::PutServerRequest {
            server: Some(fixed),
        }))
        .await
        .unwrap()
        .into_inner()
        .server
        .unwrap();
    assert_eq!(put.health(), proto::ServerHealth::Healthy);
    assert_eq!(put.health_reason, "");
    let mut placed_on_s2 = 0;
    for i in 0..20 {
        let url = client
            .room_url(authed(room_request(&format!("fixed-{i}"), "u", JOIN)))
            .await
            .unwrap()
            .into_inner();
        assert_join_works(&url.url).await;
        placed_on_s2 += usize::from(url.server_id == "s2");
    }
    assert!(placed_on_s2 > 0, "the fixed server takes rooms again");
    app.stop().await;
}

on_both_databases!(
    only_admin_tokens_open_it,
    servers_added_later_are_probed_and_take_meetings_and_secrets_stay_hidden,
    removal_is_only_for_servers_without_history,
    cordon_and_drain,
    move_room_ends_first_and_refuses_unless_forced,
    explain_shows_the_ranking_with_its_numbers,
    misconfigured_servers_are_seen_avoided_and_recover,
);
