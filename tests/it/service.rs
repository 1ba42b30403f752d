//! BbbService end to end: a real service on 127.0.0.1, emulated BBB servers behind it, a gRPC
//! client in front, configured only through the operator's settings.

use crate::common::*;
use eventyay_bbb::{
    bbb::ChecksumAlgorithm,
    proto::{self, RoomSettings},
    sim::Fault,
};
use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};
use tonic::Code;

async fn moderator_and_attendee_get_working_urls_for_one_meeting(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("bbb-1")]).await;
    let mut client = app.client().await;

    let moderator = client
        .room_url(authed(room_request("room-1", "u-mod", MODERATE)))
        .await
        .unwrap()
        .into_inner();
    assert!(moderator.moderator);
    assert_eq!(param(&moderator.url, "role").as_deref(), Some("MODERATOR"));
    assert_eq!(param(&moderator.url, "userID").as_deref(), Some("u-mod"));
    assert_eq!(
        param(&moderator.url, "fullName").as_deref(),
        Some("Ada Lovelace")
    );
    assert_eq!(
        param(&moderator.url, "password"),
        None,
        "join URLs carry a role, not a password"
    );
    assert_join_works(&moderator.url).await;

    let attendee = client
        .room_url(authed(room_request("room-1", "u-att", JOIN)))
        .await
        .unwrap()
        .into_inner();
    assert!(!attendee.moderator);
    assert_eq!(param(&attendee.url, "role").as_deref(), Some("VIEWER"));
    assert_eq!(
        attendee.meeting_id, moderator.meeting_id,
        "one meeting per room"
    );
    assert_eq!(attendee.server_id, "bbb-1");
    assert_join_works(&attendee.url).await;

    let meetings = app.sim("bbb-1").meetings();
    assert_eq!(meetings.len(), 1);
    let m = &meetings[0];
    assert_eq!(m.meeting_id, moderator.meeting_id);
    assert_eq!((m.participants, m.moderators), (2, 1));
    assert_eq!(
        param(&attendee.url, "createTime"),
        Some(m.create_time.to_string())
    );
    assert_eq!(m.name, "Main Stage");
    for (k, v) in [
        ("source", "eventyay"),
        ("event", "ev-1"),
        ("room", "room-1"),
    ] {
        assert!(
            m.metadata.contains(&(k.to_owned(), v.to_owned())),
            "{:?}",
            m.metadata
        );
    }
    app.stop().await;
}

async fn room_settings_shape_the_meeting_and_the_join(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("bbb-1")]).await;
    let mut client = app.client().await;
    let mut request = room_request("styled", "u-1", JOIN);
    request.room_name = String::new();
    request.user.as_mut().unwrap().display_name = "Grace\u{0} Hopper\n".into();
    request.user.as_mut().unwrap().avatar_url = "https://cdn.example.org/grace.png".into();
    request.settings = Some(RoomSettings {
        record: true,
        waiting_room: true,
        mute_on_start: true,
        auto_camera: true,
        voice_bridge: "71234".into(),
        presentation_url: "https://cdn.example.org/deck.pdf".into(),
        ..RoomSettings::default()
    });
    let url = client
        .room_url(authed(request))
        .await
        .unwrap()
        .into_inner()
        .url;
    assert_eq!(param(&url, "guest").as_deref(), Some("true"));
    assert_eq!(param(&url, "fullName").as_deref(), Some("Grace Hopper"));
    assert_eq!(
        param(&url, "avatarURL").as_deref(),
        Some("https://cdn.example.org/grace.png")
    );
    assert_eq!(
        param(&url, "userdata-bbb_auto_share_webcam").as_deref(),
        Some("true")
    );
    assert_eq!(
        param(&url, "userdata-bbb_custom_style_url").as_deref(),
        Some("https://events.example.org/_bbb.css")
    );

    let m = &app.sim("bbb-1").meetings()[0];
    assert_eq!(m.name, "Meeting");
    assert!(m.record);
    assert_eq!(m.voice_bridge, "71234");
    assert_eq!(m.guest_policy, "ASK_MODERATOR");
    assert_eq!(
        m.presentation_urls,
        vec!["https://cdn.example.org/deck.pdf".to_owned()]
    );
    let create = |k: &str| {
        m.create_params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(create("muteOnStart").as_deref(), Some("true"));
    assert_eq!(
        create("lockSettingsDisablePrivateChat").as_deref(),
        Some("true")
    );
    app.stop().await;
}

async fn permission_and_profile_errors_are_typed(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("bbb-1")]).await;
    let mut client = app.client().await;

    // Unknown, odd and many permission strings are ignored, never an error.
    let mut noisy = room_request("noisy", "u", JOIN);
    noisy
        .permissions
        .extend((0..2000).map(|i| format!("custom:{i}:{}", "x".repeat(200))));
    assert!(client.room_url(authed(noisy)).await.is_ok());

    let denied = client
        .room_url(authed(room_request(
            "r",
            "u",
            &["room:view", "something:else"],
        )))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(
        reason(&denied),
        (
            "protocol.denied".into(),
            "ERROR_CODE_PERMISSION_DENIED".into()
        )
    );

    for blank in ["", "   ", "\u{1}\u{2}\t"] {
        let mut request = room_request("r", "u", JOIN);
        request.user.as_mut().unwrap().display_name = blank.into();
        let err = client.room_url(authed(request)).await.unwrap_err();
        assert_eq!(
            reason(&err),
            (
                "bbb.join.missing_profile".into(),
                "ERROR_CODE_MISSING_PROFILE".into()
            )
        );
    }
    assert_eq!(
        app.sim("bbb-1").meetings().len(),
        1,
        "only the noisy room's meeting"
    );
    assert!(
        app.store()
            .await
            .room_meeting("ev-1", "r")
            .await
            .unwrap()
            .is_none()
    );
    app.stop().await;
}

async fn a_thousand_first_joins_make_one_meeting_and_a_thousand_working_urls(db: TestDb) {
    // The service's default ensure TTL: a burst sent from this one process takes a few
    // hundred milliseconds to arrive, longer than the harness's short TTL.
    let app = spawn_app_with(
        db,
        &[SimSpec::new("bbb-1"), SimSpec::new("bbb-2")],
        |args| {
            args.ensure_ttl = Some("2s".into());
        },
    )
    .await;
    let channel = app.channel().await;
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let mut client = proto::bbb_service_client::BbbServiceClient::new(channel.clone());
        tasks.push(tokio::spawn(async move {
            client
                .room_url(authed(room_request("burst", &format!("u-{i}"), JOIN)))
                .await
                .map(|r| r.into_inner())
        }));
    }
    let mut urls = Vec::new();
    for t in tasks {
        urls.push(t.await.unwrap().expect("every join gets a URL"));
    }
    let meetings: HashSet<_> = urls
        .iter()
        .map(|u| (u.server_id.clone(), u.meeting_id.clone()))
        .collect();
    assert_eq!(meetings.len(), 1);
    let creates = app.sim("bbb-1").call_count("create") + app.sim("bbb-2").call_count("create");
    assert!(creates <= 3, "{creates} creates for one burst");
    let hosting = app.sims.iter().filter(|s| !s.meetings().is_empty()).count();
    assert_eq!(hosting, 1);
    let urls = Arc::new(urls);
    let mut checks = Vec::new();
    for chunk in 0..10 {
        let urls = urls.clone();
        checks.push(tokio::spawn(async move {
            for u in urls.iter().skip(chunk * 100).take(100) {
                assert_join_works(&u.url).await;
            }
        }));
    }
    for c in checks {
        c.await.unwrap();
    }
    let total: u32 = app
        .sims
        .iter()
        .flat_map(|s| s.meetings())
        .map(|m| m.participants)
        .sum();
    assert_eq!(total, 1000);
    app.stop().await;
}

async fn a_join_after_the_meeting_ended_starts_a_fresh_meeting(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("bbb-1")]).await;
    let mut client = app.client().await;
    let first = client
        .room_url(authed(room_request("again", "u", MODERATE)))
        .await
        .unwrap()
        .into_inner();
    assert_join_works(&first.url).await;

    end_on_sim(&app, "bbb-1", &first.meeting_id).await;
    // The service trusts a fresh create for its ensure TTL (300 ms here).
    tokio::time::sleep(Duration::from_millis(400)).await;

    let second = client
        .room_url(authed(room_request("again", "u", MODERATE)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        second.meeting_id, first.meeting_id,
        "the room keeps its meetingID"
    );
    assert_ne!(
        param(&second.url, "createTime"),
        param(&first.url, "createTime")
    );
    assert_join_works(&second.url).await;
    let (_, stale) = open(&first.url).await;
    assert!(
        !stale.contains("/html5client/join"),
        "the old URL must not enter the new meeting: {stale}"
    );
    app.stop().await;
}

async fn private_calls_admit_members_only_and_all_failures_look_alike(db: TestDb) {
    let app = spawn_app(
        db,
        &[
            SimSpec::new("bbb-1").with("rooms_only = true"),
            SimSpec::new("bbb-2"),
        ],
    )
    .await;
    let mut client = app.client().await;
    let created = client
        .create_call(authed(proto::CreateCallRequest {
            event_id: "ev-1".into(),
            organizer_id: "org-1".into(),
            member_ids: vec!["alice".into(), "bob".into(), "alice".into()],
            idempotency_key: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(uuid::Uuid::parse_str(&created.call_id).is_ok());

    let call = |event: &str, call_id: &str, user_id: &str| proto::CallUrlRequest {
        event_id: event.into(),
        call_id: call_id.into(),
        user: user(user_id, "Someone"),
        domain: "events.example.org".into(),
        base_url: String::new(),
    };
    for member in ["alice", "bob"] {
        let url = client
            .call_url(authed(call("ev-1", &created.call_id, member)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            url.server_id, "bbb-2",
            "calls never go to a rooms-only server"
        );
        assert_eq!(param(&url.url, "role").as_deref(), Some("MODERATOR"));
        assert_join_works(&url.url).await;
    }
    let upper = created.call_id.to_uppercase();
    assert!(
        client
            .call_url(authed(call("ev-1", &upper, "alice")))
            .await
            .is_ok(),
        "UUIDs in any case"
    );

    let unknown = uuid::Uuid::new_v4().to_string();
    let failures = [
        call("ev-1", &created.call_id, "mallory"),
        call("ev-2", &created.call_id, "alice"),
        call("ev-1", &unknown, "alice"),
        call("ev-1", "not-a-uuid", "alice"),
        call("ev-1", "", "alice"),
    ];
    for request in failures {
        let err = client.call_url(authed(request)).await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
        assert_eq!(
            reason(&err),
            ("bbb.failed".into(), "ERROR_CODE_BBB_FAILED".into())
        );
        assert_eq!(err.message(), "BigBlueButton could not serve this request");
    }
    assert_eq!(app.sim("bbb-1").call_count("create"), 0);
    app.stop().await;
}

async fn no_fitting_server_fails_cleanly_and_writes_nothing(db: TestDb) {
    let app = spawn_app(
        db,
        &[
            SimSpec::new("bbb-1").with("events = [\"other-event\"]"),
            SimSpec::new("bbb-2").with("state = \"disabled\""),
            SimSpec::new("bbb-3").with("state = \"cordoned\""),
        ],
    )
    .await;
    let mut client = app.client().await;
    let err = client
        .room_url(authed(room_request("r", "u", JOIN)))
        .await
        .unwrap_err();
    assert_eq!(reason(&err).0, "bbb.failed");
    let err = client
        .create_call(authed(proto::CreateCallRequest {
            event_id: "ev-1".into(),
            organizer_id: "org-1".into(),
            member_ids: vec!["a".into()],
            idempotency_key: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(reason(&err).0, "bbb.failed");
    assert!(
        app.store()
            .await
            .room_meeting("ev-1", "r")
            .await
            .unwrap()
            .is_none()
    );
    assert!(app.sims.iter().all(|s| s.call_count("create") == 0));
    app.stop().await;
}

async fn placement_honours_preference_and_exclusivity(db: TestDb) {
    let app = spawn_app(
        db,
        &[
            SimSpec::new("bbb-1"),
            SimSpec::new("bbb-2"),
            SimSpec::new("bbb-3").with("organizers = [\"org-1\"]"),
        ],
    )
    .await;
    let mut client = app.client().await;
    // The organizer's server beats the global pool.
    let url = client
        .room_url(authed(room_request("a", "u", JOIN)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(url.server_id, "bbb-3");
    // A preference (by id or URL) wins at the first join.
    let mut preferred = room_request("b", "u", JOIN);
    preferred.settings.as_mut().unwrap().prefer_server = "bbb-2".into();
    assert_eq!(
        client
            .room_url(authed(preferred))
            .await
            .unwrap()
            .into_inner()
            .server_id,
        "bbb-2"
    );
    let mut by_url = room_request("c", "u", JOIN);
    by_url.settings.as_mut().unwrap().prefer_server = app.sim("bbb-1").base_url();
    assert_eq!(
        client
            .room_url(authed(by_url))
            .await
            .unwrap()
            .into_inner()
            .server_id,
        "bbb-1"
    );
    app.stop().await;
}

async fn a_server_that_only_accepts_sha512(db: TestDb) {
    let mut spec = SimSpec::new("bbb-1").with("checksum = \"sha512\"");
    spec.checksums = vec![ChecksumAlgorithm::Sha512];
    let app = spawn_app(db, &[spec]).await;
    let mut client = app.client().await;
    let url = client
        .room_url(authed(room_request("r", "u", JOIN)))
        .await
        .unwrap()
        .into_inner()
        .url;
    assert_eq!(param(&url, "checksum").unwrap().len(), 128);
    assert_join_works(&url).await;
    app.stop().await;
}

async fn a_dead_or_hung_bbb_gives_a_typed_error_within_the_deadline(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("bbb-1")]).await;
    let mut client = app.client().await;

    app.sim("bbb-1").set_fault(Fault::Refuse);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = client
        .room_url(authed(room_request("dead", "u", JOIN)))
        .await
        .unwrap_err();
    assert_eq!(reason(&err).0, "bbb.failed");

    app.sim("bbb-1").set_fault(Fault::Hang);
    let mut request = authed(room_request("hung", "u", JOIN));
    request.set_timeout(Duration::from_millis(600));
    let started = Instant::now();
    let err = client.room_url(request).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(reason(&err).0, "bbb.failed");

    // Back up: the poller sees it answer again (twice in a row) and joins work once more.
    app.sim("bbb-1").set_fault(Fault::None);
    let mut url = None;
    for _ in 0..40 {
        if let Ok(r) = client
            .room_url(authed(room_request("hung", "u", JOIN)))
            .await
        {
            url = Some(r.into_inner().url);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_join_works(&url.expect("joins work again after recovery")).await;
    app.stop().await;
}

async fn every_call_needs_a_bbb_service_token(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("bbb-1")]).await;
    let mut client = app.client().await;
    for token in [
        None,
        Some("wrong-token-0123456789abcdef"),
        Some(ADMIN_TOKEN),
    ] {
        let request = match token {
            None => tonic::Request::new(room_request("r", "u", JOIN)),
            Some(t) => authed_with(room_request("r", "u", JOIN), t),
        };
        let err = client.room_url(request).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        assert_eq!(reason(&err).0, "unauthenticated");
    }
    // Both configured tokens work, for rotation.
    let second = authed_with(room_request("r", "u", JOIN), &format!("second-{API_TOKEN}"));
    assert!(client.room_url(second).await.is_ok());
    app.stop().await;
}

async fn health_reports_readiness_and_liveness(db: TestDb) {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let app = spawn_app(db, &[SimSpec::new("bbb-1")]).await;
    let mut health = HealthClient::new(app.channel().await);
    for service in ["", "eventyay.bbb.v1.BbbService", "liveness"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    app.stop().await;
}

async fn reflection_lists_the_services_in_both_versions(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("bbb-1")]).await;
    let channel = app.channel().await;
    {
        use tonic_reflection::pb::v1alpha::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut client = ServerReflectionClient::new(channel.clone());
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = client
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let response = stream.message().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
            panic!()
        };
        let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
        assert!(
            names.contains(&"eventyay.bbb.v1.BbbService".to_owned()),
            "{names:?}"
        );
        assert!(
            names.contains(&"grpc.health.v1.Health".to_owned()),
            "{names:?}"
        );
    }
    {
        use tonic_reflection::pb::v1::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut client = ServerReflectionClient::new(channel);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "google.rpc.ErrorInfo".into(),
            )),
        };
        let mut stream = client
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let response = stream.message().await.unwrap().unwrap();
        assert!(matches!(
            response.message_response,
            Some(MessageResponse::FileDescriptorResponse(_))
        ));
    }
    app.stop().await;
}

async fn malformed_requests_are_rejected_and_change_nothing(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("bbb-1")]).await;
    let mut client = app.client().await;
    type Edit = fn(&mut proto::RoomUrlRequest);
    let cases: Vec<(&str, Edit)> = vec![
        ("event_id", |r| r.event_id = String::new()),
        ("event_id", |r| r.event_id = "x".repeat(129)),
        ("organizer_id", |r| r.organizer_id = "has space".into()),
        ("room_id", |r| r.room_id = "a/b".into()),
        ("room_id", |r| r.room_id = "a,b".into()),
        ("user", |r| r.user = None),
        ("user.id", |r| r.user.as_mut().unwrap().id = String::new()),
        ("base_url", |r| r.base_url = "/relative".into()),
        ("base_url", |r| {
            r.base_url = "ftp://files.example.org/".into()
        }),
        ("settings.prefer_server", |r| {
            r.settings.as_mut().unwrap().prefer_server = "p".repeat(3000)
        }),
        ("domain", |r| r.domain = "evil.org/path?x".into()),
    ];
    for (field, edit) in cases {
        let mut request = room_request("valid-room", "u", MODERATE);
        edit(&mut request);
        let err = client.room_url(authed(request)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert_eq!(
            reason(&err),
            (
                "invalid_argument".into(),
                "ERROR_CODE_INVALID_ARGUMENT".into()
            ),
            "{field}"
        );
        use tonic_types::StatusExt;
        let violations = err
            .get_details_bad_request()
            .expect("BadRequest details")
            .field_violations;
        assert_eq!(violations[0].field, field);
    }
    let bad_calls = [
        proto::CreateCallRequest {
            event_id: "ev".into(),
            organizer_id: "o".into(),
            member_ids: vec![],
            idempotency_key: String::new(),
        },
        proto::CreateCallRequest {
            event_id: "ev".into(),
            organizer_id: "o".into(),
            member_ids: vec!["bad id".into()],
            idempotency_key: String::new(),
        },
        proto::CreateCallRequest {
            event_id: "".into(),
            organizer_id: "o".into(),
            member_ids: vec!["a".into()],
            idempotency_key: String::new(),
        },
        proto::CreateCallRequest {
            event_id: "ev".into(),
            organizer_id: "o".into(),
            member_ids: vec!["a".into(); 1001],
            idempotency_key: String::new(),
        },
    ];
    for request in bad_calls {
        let err = client.create_call(authed(request)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }
    assert_eq!(app.sim("bbb-1").call_count("create"), 0);
    assert!(
        app.store()
            .await
            .room_meeting("ev-1", "valid-room")
            .await
            .unwrap()
            .is_none()
    );
    app.stop().await;
}

/// What the original module accepted and sent along still joins: long names are shortened,
/// relative avatar and presentation URLs resolved against the event's site (or left out
/// without one), unusable URLs and voice bridges left out, `:` kept out of full names.
async fn joins_the_original_allowed_still_work(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("bbb-1")]).await;
    let mut client = app.client().await;
    let mut request = room_request("lenient", "u-1", JOIN);
    request.room_name = "Hall: ".to_owned() + &"n".repeat(300);
    request.base_url = "https://events.example.org/video/".into();
    let user = request.user.as_mut().unwrap();
    user.display_name = "Dr. Ada: ".to_owned() + &"d".repeat(300);
    user.avatar_url = "/media/avatars/ada.png".into();
    let settings = request.settings.as_mut().unwrap();
    settings.voice_bridge = "1234".into();
    settings.presentation_url = "media/decks/intro.pdf".into();
    let url = client
        .room_url(authed(request.clone()))
        .await
        .unwrap()
        .into_inner()
        .url;
    assert_join_works(&url).await;
    let full_name = param(&url, "fullName").unwrap();
    assert!(full_name.starts_with("Dr. Ada ddd"), "{full_name}");
    assert_eq!(full_name.chars().count(), 256);
    assert_eq!(
        param(&url, "avatarURL").as_deref(),
        Some("https://events.example.org/media/avatars/ada.png")
    );
    let m = &app.sim("bbb-1").meetings()[0];
    assert!(m.name.starts_with("Hall: nnn"), "meeting names keep ':'");
    assert_eq!(m.name.chars().count(), 256);
    assert_ne!(m.voice_bridge, "1234", "BBB chose the bridge");
    assert!(!m.create_params.iter().any(|(k, _)| k == "voiceBridge"));
    assert_eq!(
        m.presentation_urls,
        vec!["https://events.example.org/video/media/decks/intro.pdf".to_owned()]
    );

    // Without a base URL, or with URLs no browser or BBB could fetch, the join still works
    // and leaves them out.
    for (avatar, presentation) in [
        ("/media/a.png", "decks/x.pdf"),
        ("javascript:alert(1)", "ftp://h/x.pdf"),
    ] {
        let mut request = room_request("lenient-2", "u-2", JOIN);
        request.user.as_mut().unwrap().avatar_url = avatar.into();
        request.settings.as_mut().unwrap().presentation_url = presentation.into();
        request.settings.as_mut().unwrap().voice_bridge = "12a45".into();
        let url = client
            .room_url(authed(request))
            .await
            .unwrap()
            .into_inner()
            .url;
        assert_eq!(param(&url, "avatarURL"), None, "{avatar}");
    }
    let plain = app
        .sim("bbb-1")
        .meetings()
        .into_iter()
        .find(|m| {
            m.create_params
                .iter()
                .any(|(k, v)| k == "meta_Room" && v == "lenient-2")
        })
        .unwrap();
    assert!(plain.presentation_urls.is_empty());

    // A leading zero is a bridge BBB takes, as the import accepts it.
    let mut request = room_request("lenient-3", "u-3", JOIN);
    request.settings.as_mut().unwrap().voice_bridge = "01234".into();
    client.room_url(authed(request)).await.unwrap();
    let zero = app
        .sim("bbb-1")
        .meetings()
        .into_iter()
        .find(|m| m.voice_bridge == "01234");
    assert!(zero.is_some());
    app.stop().await;
}

/// BBB downloads a room's presentation itself: one on a private or link-local address is left
/// out (the join still works) unless the operator allows it.
async fn presentations_on_private_addresses_are_left_out_unless_allowed(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("bbb-1")]).await;
    let mut client = app.client().await;
    let mut request = room_request("metadata", "u", JOIN);
    request.settings.as_mut().unwrap().presentation_url =
        "http://169.254.169.254/latest/meta-data/iam/".into();
    let url = client
        .room_url(authed(request))
        .await
        .unwrap()
        .into_inner()
        .url;
    assert_join_works(&url).await;
    assert!(app.sim("bbb-1").meetings()[0].presentation_urls.is_empty());
    app.stop().await;
}

async fn presentations_on_private_addresses_pass_when_allowed(db: TestDb) {
    let app = spawn_app_with(db, &[SimSpec::new("bbb-1")], |args| {
        args.private_presentations = Some(true)
    })
    .await;
    let mut client = app.client().await;
    let mut request = room_request("intranet", "u", JOIN);
    request.settings.as_mut().unwrap().presentation_url = "http://10.0.0.7/deck.pdf".into();
    client.room_url(authed(request)).await.unwrap();
    assert_eq!(
        app.sim("bbb-1").meetings()[0].presentation_urls,
        vec!["http://10.0.0.7/deck.pdf".to_owned()]
    );
    app.stop().await;
}

async fn recordings_are_listed_from_the_servers_that_hosted_the_room(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("bbb-1")]).await;
    let mut client = app.client().await;
    let mut request = room_request("recorded", "u", MODERATE);
    request.settings.as_mut().unwrap().record = true;
    let url = client.room_url(authed(request)).await.unwrap().into_inner();
    end_on_sim(&app, "bbb-1", &url.meeting_id).await;

    let list = |permissions: &[&str], room: &str| proto::ListRecordingsRequest {
        event_id: "ev-1".into(),
        room_id: room.into(),
        permissions: permissions.iter().map(|p| p.to_string()).collect(),
    };
    let denied = client
        .list_recordings(authed(list(JOIN, "recorded")))
        .await
        .unwrap_err();
    assert_eq!(reason(&denied).0, "protocol.denied");
    let got = client
        .list_recordings(authed(list(&["room:bbb.recordings"], "recorded")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.results.len(), 1);
    let r = &got.results[0];
    assert_eq!(r.state, "published");
    assert!(r.url.contains("/playback/presentation/"), "{}", r.url);
    assert!(r.url_video.contains("/playback/video/"), "{}", r.url_video);
    assert!(r.start.is_some() && r.end.is_some());
    assert!(got.unreachable_servers.is_empty());
    let empty = client
        .list_recordings(authed(list(&["room:bbb.recordings"], "never-used")))
        .await
        .unwrap()
        .into_inner();
    assert!(empty.results.is_empty());
    app.stop().await;
}

async fn no_secret_appears_in_any_reply(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("bbb-1")]).await;
    let mut client = app.client().await;
    let ok = client
        .room_url(authed(room_request("r", "u", JOIN)))
        .await
        .unwrap()
        .into_inner();
    app.sim("bbb-1").set_fault(Fault::Malformed);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let err = client
        .room_url(authed(room_request("r", "u", JOIN)))
        .await
        .unwrap_err();
    let failure = format!("{err:?} {}", String::from_utf8_lossy(err.details()));
    let text = format!("{ok:?} {failure}");
    assert!(!text.contains(&secret_of("bbb-1")));
    // (Only the failure is searched for "sql": a random meetingID in the URL may hold it.)
    assert!(
        !text.contains("<response") && !failure.to_lowercase().contains("sql"),
        "{text}"
    );
    app.stop().await;
}

on_both_databases!(
    moderator_and_attendee_get_working_urls_for_one_meeting,
    room_settings_shape_the_meeting_and_the_join,
    permission_and_profile_errors_are_typed,
    a_thousand_first_joins_make_one_meeting_and_a_thousand_working_urls,
    a_join_after_the_meeting_ended_starts_a_fresh_meeting,
    private_calls_admit_members_only_and_all_failures_look_alike,
    no_fitting_server_fails_cleanly_and_writes_nothing,
    placement_honours_preference_and_exclusivity,
    a_server_that_only_accepts_sha512,
    a_dead_or_hung_bbb_gives_a_typed_error_within_the_deadline,
    every_call_needs_a_bbb_service_token,
    health_reports_readiness_and_liveness,
    reflection_lists_the_services_in_both_versions,
    malformed_requests_are_rejected_and_change_nothing,
    joins_the_original_allowed_still_work,
    presentations_on_private_addresses_are_left_out_unless_allowed,
    presentations_on_private_addresses_pass_when_allowed,
    recordings_are_listed_from_the_servers_that_hosted_the_room,
    no_secret_appears_in_any_reply,
);

async fn a_database_outage_answers_unavailable_at_once_and_recovers(db: TestDb) {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let app = spawn_app(db, &[SimSpec::new("bbb-1")]).await;
    let mut client = app.client().await;
    let health = HealthClient::new(app.channel().await);
    let status = |name: &'static str| {
        let mut health = health.clone();
        async move {
            health
                .check(HealthCheckRequest {
                    service: name.into(),
                })
                .await
                .unwrap()
                .into_inner()
                .status
        }
    };
    client
        .room_url(authed(room_request("before", "u", JOIN)))
        .await
        .unwrap();
    let cluster = app.db.cluster.as_ref().unwrap();

    cluster.stop_server();
    let started = Instant::now();
    let err = client
        .room_url(authed(room_request("during", "u", JOIN)))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(
        reason(&err),
        ("unavailable".into(), "ERROR_CODE_UNAVAILABLE".into())
    );
    let mut not_ready = false;
    for _ in 0..50 {
        if status("").await == ServingStatus::NotServing as i32 {
            not_ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(not_ready, "readiness follows the database");
    let started = Instant::now();
    let err = client
        .room_url(authed(room_request("during-2", "u", JOIN)))
        .await
        .unwrap_err();
    assert_eq!(reason(&err).0, "unavailable");
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "once known down, calls fail at once: {:?}",
        started.elapsed()
    );
    assert_eq!(
        status("eventyay.bbb.v1.BbbService").await,
        ServingStatus::NotServing as i32
    );
    assert_eq!(
        status("liveness").await,
        ServingStatus::Serving as i32,
        "liveness never follows it"
    );

    cluster.start_server();
    let mut recovered = false;
    for _ in 0..50 {
        if client
            .room_url(authed(room_request("after", "u", JOIN)))
            .await
            .is_ok()
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "calls work again without a restart");
    for _ in 0..50 {
        if status("").await == ServingStatus::Serving as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status("").await, ServingStatus::Serving as i32);
    app.stop().await;
}

on_postgres!(a_database_outage_answers_unavailable_at_once_and_recovers);

async fn a_join_right_after_an_end_waits_out_bbbs_purge_of_the_old_meeting(db: TestDb) {
    let mut spec = SimSpec::new("bbb-1");
    spec.ended_retention = Duration::from_millis(500);
    let app = spawn_app(db, &[spec]).await;
    let mut client = app.client().await;
    let first = client
        .room_url(authed(room_request("r", "u", MODERATE)))
        .await
        .unwrap()
        .into_inner();
    end_on_sim(&app, "bbb-1", &first.meeting_id).await;
    tokio::time::sleep(Duration::from_millis(350)).await; // past the service's ensure TTL

    let second = client
        .room_url(authed(room_request("r", "u", MODERATE)))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(
        param(&second.url, "createTime"),
        param(&first.url, "createTime")
    );
    assert_join_works(&second.url).await;
    app.stop().await;
}

async fn a_create_slower_than_the_callers_deadline_still_serves_the_next_caller(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("bbb-1")]).await;
    let mut client = app.client().await;
    app.sim("bbb-1").set_latency(Duration::from_millis(400));
    let mut impatient = authed(room_request("slow", "u", JOIN));
    impatient.set_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let err = client.room_url(impatient).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(200));
    assert_eq!(
        reason(&err).0,
        "bbb.failed",
        "a typed error, before the deadline"
    );

    // The create went on without its caller; the next join reuses it instead of starting over.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let url = client
        .room_url(authed(room_request("slow", "u", JOIN)))
        .await
        .unwrap()
        .into_inner()
        .url;
    assert_join_works(&url).await;
    assert_eq!(app.sim("bbb-1").call_count("create"), 1);
    app.stop().await;
}

async fn malformed_call_and_recording_requests_are_rejected(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("bbb-1")]).await;
    let mut client = app.client().await;
    let call = uuid::Uuid::new_v4().to_string();
    let call_cases: Vec<(&str, proto::CallUrlRequest)> = vec![
        (
            "event_id",
            proto::CallUrlRequest {
                event_id: "".into(),
                call_id: call.clone(),
                user: user("u", "U"),
                domain: "".into(),
                base_url: String::new(),
            },
        ),
        (
            "user",
            proto::CallUrlRequest {
                event_id: "ev".into(),
                call_id: call.clone(),
                user: None,
                domain: "".into(),
                base_url: String::new(),
            },
        ),
        (
            "user.id",
            proto::CallUrlRequest {
                event_id: "ev".into(),
                call_id: call.clone(),
                user: user("a b", "U"),
                domain: "".into(),
                base_url: String::new(),
            },
        ),
        (
            "domain",
            proto::CallUrlRequest {
                event_id: "ev".into(),
                call_id: call.clone(),
                user: user("u", "U"),
                domain: "a/b".into(),
                base_url: String::new(),
            },
        ),
    ];
    for (field, request) in call_cases {
        let err = client.call_url(authed(request)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        use tonic_types::StatusExt;
        assert_eq!(
            err.get_details_bad_request().unwrap().field_violations[0].field,
            field
        );
    }
    let recording_cases = [
        (
            "event_id",
            proto::ListRecordingsRequest {
                event_id: "e v".into(),
                room_id: "r".into(),
                permissions: vec![],
            },
        ),
        (
            "room_id",
            proto::ListRecordingsRequest {
                event_id: "ev".into(),
                room_id: "".into(),
                permissions: vec![],
            },
        ),
    ];
    for (field, request) in recording_cases {
        let err = client.list_recordings(authed(request)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
    }
    let created = client
        .create_call(authed(proto::CreateCallRequest {
            event_id: "ev".into(),
            organizer_id: "o".into(),
            member_ids: vec!["a".into(), "b c".into()],
            idempotency_key: String::new(),
        }))
        .await;
    assert_eq!(created.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(app.sim("bbb-1").call_count("create"), 0);
    app.stop().await;
}

on_both_databases!(
    a_join_right_after_an_end_waits_out_bbbs_purge_of_the_old_meeting,
    a_create_slower_than_the_callers_deadline_still_serves_the_next_caller,
    malformed_call_and_recording_requests_are_rejected,
);
