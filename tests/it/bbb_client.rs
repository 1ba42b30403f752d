//! The BBB client against the emulator: every call, every checksum algorithm, and each way a
//! server can fail, as the service will meet them.

use eventyay_bbb::{
    bbb::{BbbClient, BbbError, ChecksumAlgorithm, Endpoint, Query, Timeouts},
    secret::Secret,
    sim::{Fault, Load, SimConfig, SimServer},
};
use std::time::{Duration, Instant};

const SECRET: &str = "emulated-shared-secret-for-client-tests";

fn client() -> BbbClient {
    BbbClient::new(Timeouts {
        connect: Duration::from_millis(500),
        create: Duration::from_millis(800),
        info: Duration::from_millis(800),
        poll: Duration::from_millis(800),
        recordings: Duration::from_millis(800),
    })
}

fn endpoint(sim: &SimServer, algorithm: ChecksumAlgorithm) -> Endpoint {
    Endpoint::new(&sim.base_url(), Secret::new(SECRET), algorithm).unwrap()
}

async fn start(config: SimConfig) -> SimServer {
    SimServer::start(config).await.expect("emulator starts")
}

fn create_query(meeting_id: &str, name: &str) -> Query {
    Query::new()
        .with("name", name)
        .with("meetingID", meeting_id)
        .with("record", "true")
        .with("meta_Source", "eventyay")
}

/// What a browser does with a join URL: one GET, no redirect followed.
async fn open_join_url(url: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn full_meeting_lifecycle_with_every_checksum_algorithm() {
    let sim = start(SimConfig::new(SECRET)).await;
    let bbb = client();
    for algorithm in ChecksumAlgorithm::ALL {
        let ep = endpoint(&sim, algorithm);
        let id = format!("room-{algorithm}");
        let created = bbb
            .create(&ep, &create_query(&id, "Main Stage"), &[])
            .await
            .unwrap();
        assert!(!created.duplicate);
        assert_eq!(created.meeting_id, id);

        let join = ep.join_url(
            &Query::new()
                .with("meetingID", &id)
                .with("fullName", "Ada Lovelace")
                .with("role", "MODERATOR")
                .with("createTime", created.create_time.to_string()),
        );
        let answer = open_join_url(&join).await;
        assert_eq!(answer.status(), 302, "{algorithm}");
        let location = answer.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            location.contains("sessionToken="),
            "{algorithm}: {location}"
        );

        assert!(bbb.is_meeting_running(&ep, &id).await.unwrap());
        let info = bbb.get_meeting_info(&ep, &id).await.unwrap();
        assert_eq!((info.participant_count, info.moderator_count), (1, 1));
        assert_eq!(info.create_time, created.create_time);
        assert!(
            info.metadata
                .contains(&("source".into(), "eventyay".into()))
        );
        let listed = bbb.get_meetings(&ep).await.unwrap();
        assert!(listed.iter().any(|m| m.meeting_id == id));

        bbb.end(&ep, &id, Some(&created.moderator_pw))
            .await
            .unwrap();
        assert!(!bbb.is_meeting_running(&ep, &id).await.unwrap());
        let recordings = bbb.get_recordings(&ep, &[&id]).await.unwrap();
        assert_eq!(recordings.len(), 1, "{algorithm}");
        assert_eq!(recordings[0].record_id, created.internal_meeting_id);
        assert!(
            recordings[0]
                .formats
                .iter()
                .any(|f| f.kind == "presentation")
        );
    }
}

#[tokio::test]
async fn values_that_need_encoding_are_signed_as_sent() {
    let sim = start(SimConfig::new(SECRET)).await;
    let ep = endpoint(&sim, ChecksumAlgorithm::Sha256);
    let name = "Café & Co ~ 'quoted' (100%) + more/ünïcødé ✓";
    let created = client()
        .create(&ep, &create_query("encoding-room", name), &[])
        .await
        .unwrap();
    let info = client()
        .get_meeting_info(&ep, &created.meeting_id)
        .await
        .unwrap();
    assert_eq!(info.name, name);
}

#[tokio::test]
async fn a_server_limited_to_sha512_refuses_other_checksums() {
    let mut config = SimConfig::new(SECRET);
    config.checksums = vec![ChecksumAlgorithm::Sha512];
    let sim = start(config).await;
    let bbb = client();
    for algorithm in [
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
        ChecksumAlgorithm::Sha384,
    ] {
        let err = bbb
            .get_meetings(&endpoint(&sim, algorithm))
            .await
            .unwrap_err();
        assert_eq!(err.message_key(), Some("checksumError"), "{algorithm}");
    }
    assert!(
        bbb.get_meetings(&endpoint(&sim, ChecksumAlgorithm::Sha512))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_wrong_secret_is_a_checksum_error() {
    let sim = start(SimConfig::new(SECRET)).await;
    let ep = Endpoint::new(
        &sim.base_url(),
        Secret::new("not-the-secret"),
        ChecksumAlgorithm::Sha256,
    )
    .unwrap();
    let err = client().get_meetings(&ep).await.unwrap_err();
    assert_eq!(err.message_key(), Some("checksumError"));
}

#[tokio::test]
async fn create_is_idempotent_and_passwords_must_match() {
    let sim = start(SimConfig::new(SECRET)).await;
    let ep = endpoint(&sim, ChecksumAlgorithm::Sha256);
    let bbb = client();
    let with_pw = |pw: &str| {
        create_query("idempotent", "Room")
            .with("attendeePW", format!("{pw}-a"))
            .with("moderatorPW", format!("{pw}-m"))
    };
    let first = bbb.create(&ep, &with_pw("one"), &[]).await.unwrap();
    let again = bbb.create(&ep, &with_pw("one"), &[]).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.create_time, first.create_time);
    assert_eq!(again.internal_meeting_id, first.internal_meeting_id);
    let clash = bbb.create(&ep, &with_pw("two"), &[]).await.unwrap_err();
    assert_eq!(clash.message_key(), Some("idNotUnique"));
    assert_eq!(sim.meetings().len(), 1);
}

#[tokio::test]
async fn a_meeting_ended_and_created_again_gets_a_new_create_time() {
    let sim = start(SimConfig::new(SECRET)).await;
    let ep = endpoint(&sim, ChecksumAlgorithm::Sha256);
    let bbb = client();
    let first = bbb
        .create(&ep, &create_query("again", "Room"), &[])
        .await
        .unwrap();
    bbb.end(&ep, "again", None).await.unwrap();
    let second = bbb
        .create(&ep, &create_query("again", "Room"), &[])
        .await
        .unwrap();
    assert!(!second.duplicate);
    assert!(second.create_time > first.create_time);

    // A link signed for the first meeting must not enter the second.
    let stale = ep.join_url(
        &Query::new()
            .with("meetingID", "again")
            .with("fullName", "Late Comer")
            .with("role", "VIEWER")
            .with("createTime", first.create_time.to_string())
            .with("redirect", "false"),
    );
    let body = open_join_url(&stale).await.text().await.unwrap();
    assert!(body.contains("mismatchCreateTimeParam"), "{body}");
}

#[tokio::test]
async fn unknown_meetings_are_not_found() {
    let sim = start(SimConfig::new(SECRET)).await;
    let ep = endpoint(&sim, ChecksumAlgorithm::Sha256);
    let bbb = client();
    assert_eq!(
        bbb.get_meeting_info(&ep, "nope")
            .await
            .unwrap_err()
            .message_key(),
        Some("notFound")
    );
    assert_eq!(
        bbb.end(&ep, "nope", None).await.unwrap(),
        eventyay_bbb::bbb::Ended::NotRunning,
        "nothing to end is not a failure"
    );
    assert!(!bbb.is_meeting_running(&ep, "nope").await.unwrap());
    assert!(bbb.get_recordings(&ep, &["nope"]).await.unwrap().is_empty());
}

#[tokio::test]
async fn create_with_a_presentation_posts_the_modules_document() {
    let sim = start(SimConfig::new(SECRET)).await;
    let ep = endpoint(&sim, ChecksumAlgorithm::Sha256);
    let slides = "https://cdn.example.org/slides.pdf?v=2&lang=en".to_owned();
    client()
        .create(
            &ep,
            &create_query("with-slides", "Keynote"),
            std::slice::from_ref(&slides),
        )
        .await
        .unwrap();
    let meetings = sim.meetings();
    assert_eq!(meetings[0].presentation_urls, vec![slides]);
    assert_eq!(sim.call_count("create"), 1);
}

#[tokio::test]
async fn recordings_follow_pagination() {
    let sim = start(SimConfig::new(SECRET)).await;
    let ep = endpoint(&sim, ChecksumAlgorithm::Sha256);
    let bbb = client();
    for _ in 0..130 {
        bbb.create(&ep, &create_query("busy-room", "Busy"), &[])
            .await
            .unwrap();
        bbb.end(&ep, "busy-room", None).await.unwrap();
    }
    let recordings = bbb.get_recordings(&ep, &["busy-room"]).await.unwrap();
    assert_eq!(recordings.len(), 130);
    let mut ids: Vec<_> = recordings.iter().map(|r| r.record_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 130, "pages overlap");
    assert_eq!(sim.call_count("getRecordings"), 2);
}

#[tokio::test]
async fn base_urls_as_operators_write_them_all_reach_the_api() {
    let sim = start(SimConfig::new(SECRET)).await;
    let root = format!("http://{}", sim.addr());
    for url in [
        root.clone(),
        format!("{root}/bigbluebutton"),
        format!("{root}/bigbluebutton/"),
        format!("{root}/bigbluebutton/api"),
        format!("{root}/bigbluebutton/api/"),
    ] {
        let ep = Endpoint::new(&url, Secret::new(SECRET), ChecksumAlgorithm::Sha256).unwrap();
        assert!(client().get_meetings(&ep).await.is_ok(), "{url}");
        assert_eq!(
            client().version(&ep).await.unwrap().api_version,
            "2.0",
            "{url}"
        );
    }
}

#[tokio::test]
async fn load_set_on_the_emulator_shows_in_get_meetings() {
    let sim = start(SimConfig::new(SECRET)).await;
    let ep = endpoint(&sim, ChecksumAlgorithm::Sha256);
    client()
        .create(&ep, &create_query("loaded", "Loaded"), &[])
        .await
        .unwrap();
    assert!(sim.set_meeting_load(
        "loaded",
        Load {
            participants: 40,
            voice: 12,
            video: 5,
            listeners: 20,
            moderators: 2
        }
    ));
    let m = &client().get_meetings(&ep).await.unwrap()[0];
    assert_eq!(
        (
            m.participant_count,
            m.voice_participant_count,
            m.video_count,
            m.listener_count,
            m.moderator_count
        ),
        (40, 12, 5, 20, 2)
    );
}

#[tokio::test]
async fn each_failure_mode_maps_to_its_typed_error() {
    let sim = start(SimConfig::new(SECRET)).await;
    let ep = endpoint(&sim, ChecksumAlgorithm::Sha256);
    let bbb = client();

    sim.set_fault(Fault::Unavailable);
    assert_eq!(
        bbb.get_meetings(&ep).await.unwrap_err(),
        BbbError::HttpStatus(503)
    );

    sim.set_fault(Fault::FailFraction(1.0));
    assert_eq!(
        bbb.get_meetings(&ep).await.unwrap_err(),
        BbbError::HttpStatus(500)
    );

    sim.set_fault(Fault::Malformed);
    assert_eq!(bbb.get_meetings(&ep).await.unwrap_err().kind(), "bad_xml");

    sim.set_fault(Fault::Hang);
    let started = Instant::now();
    let err = bbb
        .create(&ep, &create_query("hung", "Hung"), &[])
        .await
        .unwrap_err();
    assert_eq!(err, BbbError::Timeout(bbb.timeouts().create));
    assert!(started.elapsed() < bbb.timeouts().create + Duration::from_millis(300));

    sim.set_fault(Fault::Refuse);
    // Give the emulator a moment to close its listener.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        bbb.get_meetings(&ep).await.unwrap_err().kind(),
        "unreachable"
    );

    sim.set_fault(Fault::None);
    let mut recovered = false;
    for _ in 0..50 {
        if bbb.get_meetings(&ep).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        recovered,
        "the emulator serves again after the fault is cleared"
    );
}

#[tokio::test]
async fn errors_never_carry_the_url_or_checksum() {
    let sim = start(SimConfig::new(SECRET)).await;
    let ep = endpoint(&sim, ChecksumAlgorithm::Sha256);
    let bbb = client();
    let checksum = ChecksumAlgorithm::Sha256.checksum("getMeetings", "", SECRET);
    for fault in [
        Fault::Unavailable,
        Fault::Malformed,
        Fault::Hang,
        Fault::Refuse,
    ] {
        sim.set_fault(fault);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let err = bbb.get_meetings(&ep).await.unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(
            !text.contains(&checksum) && !text.contains(SECRET) && !text.contains("127.0.0.1"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn per_server_tls_settings_get_their_own_client() {
    let sim = start(SimConfig::new(SECRET)).await;
    let bbb = client();
    let insecure = endpoint(&sim, ChecksumAlgorithm::Sha256).with_tls(eventyay_bbb::bbb::Tls {
        ca_bundle: None,
        insecure: true,
    });
    assert!(
        bbb.get_meetings(&insecure).await.is_ok(),
        "plain http works through it too"
    );
    let missing = endpoint(&sim, ChecksumAlgorithm::Sha256).with_tls(eventyay_bbb::bbb::Tls {
        ca_bundle: Some("/nonexistent/ca.pem".into()),
        insecure: false,
    });
    assert_eq!(
        bbb.get_meetings(&missing).await.unwrap_err(),
        BbbError::Unreachable("CA bundle unreadable")
    );
}
