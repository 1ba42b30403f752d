//! The BBB answer parser against real and documented BBB responses (tests/fixtures/bbb), and
//! against arbitrary bytes.

use eventyay_bbb::bbb::{BbbError, parse};
use proptest::prelude::*;
use std::{fs, path::PathBuf};

fn fixture(path: &str) -> Vec<u8> {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bbb")
        .join(path);
    fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn key(err: BbbError) -> String {
    err.message_key()
        .unwrap_or_else(|| panic!("expected a BBB refusal, got {err:?}"))
        .to_owned()
}

/// Request bodies and on-disk recording metadata live beside the responses; they are not
/// answers of the API.
fn is_response(path: &str) -> bool {
    !(path.contains("/requests/")
        || path.contains("recording-metadata")
        || path.contains("presentation_with_")
        || path.contains("insert_document_presentations")
        || path.contains("client_settings"))
}

fn all_xml(dir: &PathBuf, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all_xml(&path, out);
        } else if path.extension().is_some_and(|e| e == "xml") {
            out.push(path.to_string_lossy().into_owned());
        }
    }
}

#[test]
fn every_response_fixture_parses_to_success_or_a_message_key() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bbb");
    let mut files = Vec::new();
    all_xml(&root, &mut files);
    let responses: Vec<_> = files.iter().filter(|p| is_response(p)).collect();
    assert!(
        responses.len() >= 60,
        "only {} response fixtures found",
        responses.len()
    );
    for path in responses {
        let bytes = fs::read(path).unwrap();
        // The envelope is what every call reads first: it must never call a real answer bad XML.
        match parse::running(&bytes) {
            Ok(_) => {}
            Err(BbbError::Api { key, .. }) => assert!(!key.is_empty(), "{path}: empty messageKey"),
            Err(other) => panic!("{path}: {other:?}"),
        }
    }
}

#[test]
fn create_success_duplicate_and_not_unique() {
    let fresh = parse::created(&fixture("constructed-from-bbb-source/create_success.xml")).unwrap();
    assert!(!fresh.duplicate);
    assert!(fresh.create_time > 1_000_000_000_000);
    assert!(
        fresh
            .internal_meeting_id
            .ends_with(&format!("-{}", fresh.create_time))
    );

    for dup in [
        "constructed-from-bbb-source/create_duplicate_warning.xml",
        "bigbluebutton-api-php/responses/create_meeting.xml",
    ] {
        let created = parse::created(&fixture(dup)).unwrap();
        assert!(created.duplicate, "{dup}");
        assert!(created.create_time > 0, "{dup}");
    }
    for not_unique in [
        "constructed-from-bbb-source/create_id_not_unique.xml",
        "littleredbutton-bigbluebutton-api-php/create_meeting_not_unique_error.xml",
    ] {
        assert_eq!(
            key(parse::created(&fixture(not_unique)).unwrap_err()),
            "idNotUnique"
        );
    }
}

#[test]
fn error_keys_as_bbb_sends_them() {
    let cases = [
        (
            "constructed-from-bbb-source/checksum_error_validation_service.xml",
            "checksumError",
        ),
        (
            "constructed-from-bbb-source/checksum_error_legacy_and_recording_api.xml",
            "checksumError",
        ),
        ("bbb-docs-api-examples/checksum_error.xml", "checksumError"),
        (
            "constructed-from-bbb-source/meeting_not_found.xml",
            "notFound",
        ),
        (
            "constructed-from-bbb-source/meeting_not_found_legacy_and_scalelite.xml",
            "notFound",
        ),
        (
            "constructed-from-bbb-source/missing_param_meeting_id.xml",
            "missingParamMeetingID",
        ),
    ];
    for (path, want) in cases {
        assert_eq!(
            key(parse::meeting_info(&fixture(path)).unwrap_err()),
            want,
            "{path}"
        );
    }
}

#[test]
fn meetings_lists_and_empty_lists() {
    let meetings = parse::meetings(&fixture(
        "littleredbutton-bigbluebutton-api-php/get_meetings.xml",
    ))
    .unwrap();
    assert_eq!(meetings.len(), 3);
    assert!(
        meetings
            .iter()
            .all(|m| !m.meeting_id.is_empty() && m.create_time > 0)
    );

    let php =
        parse::meetings(&fixture("bigbluebutton-api-php/responses/get_meetings.xml")).unwrap();
    assert!(php.len() >= 2);
    assert_eq!(php[0].max_users, 14);
    assert!(php[0].recording);
    assert!(
        php[0]
            .metadata
            .iter()
            .any(|(k, v)| k == "presenter" && v == "Alessandra Funk")
    );

    let empty = parse::meetings(&fixture(
        "constructed-from-bbb-source/get_meetings_empty.xml",
    ))
    .unwrap();
    assert!(empty.is_empty());
}

#[test]
fn meeting_info_counts_and_metadata() {
    let info = parse::meeting_info(&fixture("bbb-docs-api-examples/getMeetingInfo.xml")).unwrap();
    assert_eq!(info.meeting_id, "gbesu6dht08uobpislzqxsizjzihn87cmewqyacs");
    assert_eq!(info.create_time, 1715261728123);
    assert!(info.running && info.recording && !info.has_been_forcibly_ended);
    assert_eq!(
        (
            info.participant_count,
            info.voice_participant_count,
            info.video_count,
            info.moderator_count
        ),
        (1, 1, 1, 1)
    );
    assert!(info.metadata.iter().any(|(k, _)| k == "endcallbackurl"));
}

#[test]
fn is_meeting_running_both_ways() {
    assert!(
        parse::running(&fixture(
            "bigbluebutton-api-php/responses/is_meeting_running.xml"
        ))
        .unwrap()
    );
    assert!(
        !parse::running(&fixture(
            "constructed-from-bbb-source/is_meeting_running_false.xml"
        ))
        .unwrap()
    );
}

#[test]
fn recordings_real_documented_paginated_and_empty() {
    let real = parse::recordings(&fixture(
        "bigbluebutton-server/sample-get-recordings-response.xml",
    ))
    .unwrap();
    assert_eq!(real.recordings.len(), 8);
    assert_eq!(real.total, None);
    for r in &real.recordings {
        assert!(!r.record_id.is_empty());
        assert!(r.start_time.is_some() && r.end_time >= r.start_time);
        assert!(!r.formats.is_empty());
    }
    // Double-escaped apostrophes stay as BBB sent them, one level of escaping removed.
    assert!(
        real.recordings
            .iter()
            .any(|r| r.name == "Let&#39;s Talk English: Episode 5")
    );

    let docs = parse::recordings(&fixture("bbb-docs-api-examples/getRecordings.xml")).unwrap();
    assert_eq!(docs.recordings.len(), 2);
    let kinds: Vec<_> = docs.recordings[0]
        .formats
        .iter()
        .map(|f| f.kind.as_str())
        .collect();
    assert!(
        kinds.contains(&"presentation") && kinds.contains(&"podcast"),
        "{kinds:?}"
    );

    let paginated = parse::recordings(&fixture(
        "constructed-from-bbb-source/get_recordings_paginated.xml",
    ))
    .unwrap();
    assert_eq!(paginated.total, Some(42));
    assert_eq!(paginated.recordings[0].state, "unpublished");
    assert_eq!(paginated.recordings[0].formats[0].kind, "video");
    assert_eq!(paginated.recordings[0].participants, 3);

    for empty in [
        "constructed-from-bbb-source/get_recordings_empty.xml",
        "constructed-from-bbb-source/get_recordings_fetch_all_disabled.xml",
        "bigbluebutton-api-php/responses/get_recordings_no_recordings.xml",
    ] {
        assert!(
            parse::recordings(&fixture(empty))
                .unwrap()
                .recordings
                .is_empty(),
            "{empty}"
        );
    }

    // 0.8-era data: date strings instead of epoch ms read as unknown times, not as failures.
    let old =
        parse::recordings(&fixture("bigbluebutton-api-ruby/hash_to_xml_complex.xml")).unwrap();
    assert_eq!(old.recordings.len(), 2);
    assert!(old.recordings.iter().all(|r| r.start_time.is_none()));
}

#[test]
fn version_document() {
    let v = parse::version(&fixture("bigbluebutton-api-php/responses/api_version.xml")).unwrap();
    assert_eq!(v.api_version, "2.0");
    assert!(v.bbb_version.starts_with("3.0"), "{v:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse::created(&bytes);
        let _ = parse::meetings(&bytes);
        let _ = parse::recordings(&bytes);
        let _ = parse::version(&bytes);
    }

    #[test]
    fn mutated_real_answers_never_panic(cut in 0usize..4000, flip in any::<u8>(), at in 0usize..4000) {
        let mut bytes = fixture("bbb-docs-api-examples/getRecordings.xml");
        if at < bytes.len() { bytes[at] ^= flip; }
        bytes.truncate(cut.min(bytes.len()));
        let _ = parse::recordings(&bytes);
        let _ = parse::meeting_info(&bytes);
    }
}
