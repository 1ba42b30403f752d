//! Request bytes as a client may send them: every BbbService request type decodes (or fails to)
//! without panicking, and the checks the service applies to what decodes — opaque ids, and the
//! names it passes to BBB — hold their promises for any text: an id check that says yes means
//! 1–128 of letters, digits and `._:-`; a display name has no control characters and no outer
//! whitespace; a meeting name is 2–256 UTF-16 units without control characters.
//!
//! (The service's field-by-field validation sits in a private module of the gRPC layer; these
//! are the library functions it is built on.)

#![no_main]

use eventyay_bbb::{
    domain::is_valid_id,
    meetings::params::{full_name, meeting_name},
    proto,
};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn id(value: &str) {
    if is_valid_id(value) {
        assert!((1..=128).contains(&value.len()));
        assert!(
            value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
        );
    }
}

fn name(value: &str) {
    let shown = full_name(value);
    assert!(!shown.chars().any(char::is_control));
    assert_eq!(shown.trim(), shown);
    let meeting = meeting_name(value);
    let units = meeting.encode_utf16().count();
    assert!((2..=256).contains(&units), "{units} units: {meeting:?}");
    assert!(!meeting.chars().any(char::is_control));
}

fn user(user: Option<&proto::User>) {
    if let Some(user) = user {
        id(&user.id);
        name(&user.display_name);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = proto::RoomUrlRequest::decode(data) {
        for value in [&r.event_id, &r.organizer_id, &r.room_id] {
            id(value);
        }
        name(&r.room_name);
        user(r.user.as_ref());
    }
    if let Ok(r) = proto::CallUrlRequest::decode(data) {
        id(&r.event_id);
        user(r.user.as_ref());
    }
    if let Ok(r) = proto::CreateCallRequest::decode(data) {
        id(&r.event_id);
        id(&r.organizer_id);
        r.member_ids.iter().for_each(|m| id(m));
    }
    if let Ok(r) = proto::ListRecordingsRequest::decode(data) {
        id(&r.event_id);
        id(&r.room_id);
    }
    // The text checks on their own, for inputs that are not protobuf at all.
    let text = String::from_utf8_lossy(data);
    id(&text);
    name(&text);
});
