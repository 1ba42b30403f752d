//! BBB's XML answers as typed values.
//!
//! Every answer is `<response><returncode>SUCCESS|FAILED</returncode>…`. FAILED becomes
//! [`BbbError::Api`] with BBB's messageKey (or the first key of the legacy `<errors>` form).
//! Some successes carry a messageKey too — `duplicateWarning`, `noMeetings`, `noRecordings` —
//! and stay successes. Missing optional elements read as their defaults.

use super::{
    error::BbbError,
    xml::{self, Element},
};

/// The root of a successful answer.
/// A body that is BBB's XML, broken or not, fails as [`BbbError::BadXml`] (a server in trouble);
/// anything else (an HTML page, JSON, another XML document) as [`BbbError::NotBbb`] (a URL
/// that is not a BBB API).
pub fn success(bytes: &[u8]) -> Result<Element, BbbError> {
    let root = match xml::parse(bytes) {
        Ok(root) => root,
        Err(_) if !looks_like_xml(bytes) => {
            return Err(BbbError::NotBbb("the answer is not XML"));
        }
        Err(e) => return Err(BbbError::BadXml(e.to_string())),
    };
    if root.name != "response" {
        return Err(BbbError::NotBbb("XML whose root is not <response>"));
    }
    match root.text_of("returncode") {
        Some("SUCCESS") => Ok(root),
        Some("FAILED") => Err(failure(&root)),
        Some(_) => Err(BbbError::BadXml("unknown returncode".into())),
        None => Err(BbbError::NotBbb("a <response> without a returncode")),
    }
}

/// Whether a body that failed to parse was meant as XML: it starts (after a byte-order mark
/// and white space) with `<`, and not with an HTML document's opening.
fn looks_like_xml(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = bytes.trim_ascii_start();
    let head: Vec<u8> = start.iter().take(14).map(u8::to_ascii_lowercase).collect();
    start.starts_with(b"<") && !head.starts_with(b"<!doctype html") && !head.starts_with(b"<html")
}

fn failure(root: &Element) -> BbbError {
    let legacy = root
        .child("errors")
        .and_then(|errors| errors.child("error"));
    let (key, message) = match legacy {
        Some(error) => (error.text_of("key"), error.text_of("message")),
        None => (root.text_of("messageKey"), root.text_of("message")),
    };
    // The key reaches logs and error texts: BBB's are short camelCase words.
    BbbError::Api {
        key: capped(key.unwrap_or_default(), 64),
        message: capped(message.unwrap_or_default(), 512),
    }
}

/// The longest text kept from an answer: BBB's ids and names stop at 256 characters, its URLs
/// well before this. What reaches caches, logs and callers stays bounded whatever a server
/// sends.
const MAX_TEXT: usize = 2048;

fn text(e: &Element, name: &str) -> String {
    capped(e.text_of(name).unwrap_or_default(), MAX_TEXT)
}

fn capped(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

fn flag(e: &Element, name: &str) -> bool {
    e.text_of(name) == Some("true")
}

fn number<T: std::str::FromStr + Default>(e: &Element, name: &str) -> T {
    e.text_of(name)
        .and_then(|t| t.parse().ok())
        .unwrap_or_default()
}

fn optional_number<T: std::str::FromStr>(e: &Element, name: &str) -> Option<T> {
    e.text_of(name).and_then(|t| t.parse().ok())
}

/// The answer to `create`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub meeting_id: String,
    pub internal_meeting_id: String,
    /// Epoch milliseconds; joins must carry it so stale links cannot enter a later meeting.
    pub create_time: u64,
    pub attendee_pw: String,
    pub moderator_pw: String,
    pub voice_bridge: String,
    /// The meeting already existed (`duplicateWarning`): nothing about it changed.
    pub duplicate: bool,
    /// The existing meeting was ended and BBB has not purged it yet: joins will fail until a
    /// create makes a new one.
    pub ended: bool,
}

pub fn created(bytes: &[u8]) -> Result<Created, BbbError> {
    let root = success(bytes)?;
    let create_time = optional_number(&root, "createTime")
        .ok_or_else(|| BbbError::BadXml("create answer without a numeric createTime".into()))?;
    Ok(Created {
        meeting_id: text(&root, "meetingID"),
        internal_meeting_id: text(&root, "internalMeetingID"),
        create_time,
        attendee_pw: text(&root, "attendeePW"),
        moderator_pw: text(&root, "moderatorPW"),
        voice_bridge: text(&root, "voiceBridge"),
        duplicate: root.text_of("messageKey") == Some("duplicateWarning"),
        ended: flag(&root, "hasBeenForciblyEnded"),
    })
}

/// A meeting as `getMeetings` and `getMeetingInfo` describe it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meeting {
    pub name: String,
    pub meeting_id: String,
    pub internal_meeting_id: String,
    pub create_time: u64,
    pub running: bool,
    pub has_been_forcibly_ended: bool,
    pub recording: bool,
    pub is_breakout: bool,
    pub participant_count: u32,
    pub listener_count: u32,
    pub voice_participant_count: u32,
    pub video_count: u32,
    pub moderator_count: u32,
    pub max_users: u32,
    /// `meta_*` values as BBB echoes them: keys lower-cased, without the prefix.
    pub metadata: Vec<(String, String)>,
}

fn meeting(e: &Element) -> Meeting {
    Meeting {
        name: text(e, "meetingName"),
        meeting_id: text(e, "meetingID"),
        internal_meeting_id: text(e, "internalMeetingID"),
        create_time: number(e, "createTime"),
        running: flag(e, "running"),
        has_been_forcibly_ended: flag(e, "hasBeenForciblyEnded"),
        recording: flag(e, "recording"),
        is_breakout: flag(e, "isBreakout"),
        participant_count: number(e, "participantCount"),
        listener_count: number(e, "listenerCount"),
        voice_participant_count: number(e, "voiceParticipantCount"),
        video_count: number(e, "videoCount"),
        moderator_count: number(e, "moderatorCount"),
        max_users: number(e, "maxUsers"),
        metadata: e
            .child("metadata")
            .map(|m| {
                m.children
                    .iter()
                    .map(|c| (c.name.clone(), c.text.clone()))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

pub fn meeting_info(bytes: &[u8]) -> Result<Meeting, BbbError> {
    success(bytes).map(|root| meeting(&root))
}

pub fn meetings(bytes: &[u8]) -> Result<Vec<Meeting>, BbbError> {
    let root = success(bytes)?;
    Ok(root
        .child("meetings")
        .map(|list| list.children_named("meeting").map(meeting).collect())
        .unwrap_or_default())
}

pub fn running(bytes: &[u8]) -> Result<bool, BbbError> {
    success(bytes).map(|root| flag(&root, "running"))
}

pub fn ended(bytes: &[u8]) -> Result<(), BbbError> {
    success(bytes).map(drop)
}

/// One way to watch a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaybackFormat {
    /// `presentation`, `video`, `screenshare`, `notes`, `podcast`, … (any string, as BBB sends it).
    pub kind: String,
    pub url: String,
    /// Length in minutes, as BBB reports it.
    pub length_minutes: u32,
}

/// A recording as `getRecordings` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub record_id: String,
    pub meeting_id: String,
    pub internal_meeting_id: String,
    pub name: String,
    pub state: String,
    pub published: bool,
    /// Epoch milliseconds; absent in 0.8-era data that used date strings.
    pub start_time: Option<u64>,
    pub end_time: Option<u64>,
    pub participants: u32,
    pub formats: Vec<PlaybackFormat>,
}

fn recording(e: &Element) -> Recording {
    let formats = e
        .child("playback")
        .map(|p| {
            p.children_named("format")
                .map(|f| PlaybackFormat {
                    kind: text(f, "type"),
                    url: text(f, "url"),
                    length_minutes: number(f, "length"),
                })
                .collect()
        })
        .unwrap_or_default();
    Recording {
        record_id: text(e, "recordID"),
        meeting_id: text(e, "meetingID"),
        internal_meeting_id: text(e, "internalMeetingID"),
        name: text(e, "name"),
        state: text(e, "state"),
        published: flag(e, "published"),
        start_time: optional_number(e, "startTime"),
        end_time: optional_number(e, "endTime"),
        participants: number(e, "participants"),
        formats,
    }
}

/// One page of `getRecordings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingsPage {
    pub recordings: Vec<Recording>,
    /// `totalElements`, sent by BBB 2.6+ when the request had a `limit`.
    pub total: Option<u64>,
}

pub fn recordings(bytes: &[u8]) -> Result<RecordingsPage, BbbError> {
    let root = success(bytes)?;
    let recordings = root
        .child("recordings")
        .map(|list| list.children_named("recording").map(recording).collect())
        .unwrap_or_default();
    // An early 2.6 design nested the total in <pagination>; accept both places.
    let total = optional_number(&root, "totalElements").or_else(|| {
        root.child("pagination")
            .and_then(|p| optional_number(p, "totalElements"))
    });
    Ok(RecordingsPage { recordings, total })
}

/// The version document at the API root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub api_version: String,
    /// Empty unless the server reveals it (`allowRevealOfBBBVersion`).
    pub bbb_version: String,
}

pub fn version(bytes: &[u8]) -> Result<Version, BbbError> {
    let root = success(bytes)?;
    Ok(Version {
        api_version: root
            .text_of("apiVersion")
            .or_else(|| root.text_of("version"))
            .unwrap_or_default()
            .to_owned(),
        bbb_version: text(&root, "bbbVersion"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_answers_carry_the_message_key() {
        let err = success(b"<response><returncode>FAILED</returncode><messageKey>checksumError</messageKey><message>Checksums do not match</message></response>").unwrap_err();
        assert_eq!(err.message_key(), Some("checksumError"));
        let legacy = success(b"<response><returncode>FAILED</returncode><errors><error><key>missingParamMeetingID</key><message>m</message></error><error><key>other</key></error></errors></response>").unwrap_err();
        assert_eq!(legacy.message_key(), Some("missingParamMeetingID"));
    }

    #[test]
    fn broken_bbb_answers_are_bad_xml() {
        for doc in [
            &b"<response><returncode>MAYBE</returncode></response>"[..],
            b"<response>\n<returncode>SUCCESS</returncode>\n<meetings><meeting><meetingName>Trunc",
            b"\xEF\xBB\xBF  <?xml version=\"1.0\"?><response><returncode>SUC",
        ] {
            assert_eq!(success(doc).unwrap_err().kind(), "bad_xml", "{doc:?}");
        }
    }

    #[test]
    fn documents_that_are_not_bbb_answers_say_so() {
        for doc in [
            &b"<response></response>"[..],
            b"<html><body>Welcome to nginx!</body></html>",
            b"<!DOCTYPE html>\n<html><head><title>Moodle</title>",
            b"  <!doctype HTML><p>unclosed",
            b"{\"status\": \"ok\"}",
            b"It works!",
            b"<feed xmlns=\"http://www.w3.org/2005/Atom\"></feed>",
        ] {
            let err = success(doc).unwrap_err();
            assert_eq!(err.kind(), "not_bbb", "{doc:?}");
            assert!(matches!(
                err.verdict(),
                crate::bbb::Verdict::Misconfigured(_)
            ));
        }
    }

    #[test]
    fn text_from_a_server_is_capped() {
        let key = "k".repeat(10_000);
        let doc = format!(
            "<response><returncode>FAILED</returncode><messageKey>{key}</messageKey><message>{key}</message></response>"
        );
        let err = success(doc.as_bytes()).unwrap_err();
        assert_eq!(err.message_key().map(str::len), Some(64));
        assert!(err.to_string().len() < 128);
        let id = "m".repeat(100_000);
        let doc = format!(
            "<response><returncode>SUCCESS</returncode><meetings><meeting><meetingID>{id}</meetingID></meeting></meetings></response>"
        );
        assert_eq!(meetings(doc.as_bytes()).unwrap()[0].meeting_id.len(), 2048);
    }

    #[test]
    fn create_needs_a_create_time() {
        let err = created(
            b"<response><returncode>SUCCESS</returncode><meetingID>m</meetingID></response>",
        )
        .unwrap_err();
        assert_eq!(err.kind(), "bad_xml");
    }
}
