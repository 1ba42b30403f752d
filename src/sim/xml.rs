//! Response bodies, element for element in the order bbb-web's FreeMarker templates print them
//! (create-meeting, join-meeting, get-meeting-info, get-meetings, api-error(s), the recording
//! helpers). Whitespace is not significant to BBB clients; one element per line keeps it readable.

use super::state::{Meeting, Recording};
use quick_xml::escape::escape;
use std::{fmt::Display, fmt::Write, time::Instant};

pub(crate) const CONTENT_TYPE: &str = "text/xml;charset=utf-8";

pub(crate) const VERSION: &str = "<response>\n<returncode>SUCCESS</returncode>\n\
<version>2.0</version>\n<apiVersion>2.0</apiVersion>\n<bbbVersion>3.0.0-emulated</bbbVersion>\n\
</response>\n";

pub(crate) const END_SUCCESS: &str = "<response>\n<returncode>SUCCESS</returncode>\n\
<messageKey>sentEndMeetingRequest</messageKey>\n<message>A request to end the meeting was sent.  \
Please wait a few seconds, and then use the getMeetingInfo or isMeetingRunning API calls to verify \
that it was ended.</message>\n</response>\n";

/// What `Fault::Malformed` serves: a document cut off mid-element, as from a crashed proxy.
pub(crate) const MALFORMED: &str =
    "<response>\n<returncode>SUCCESS</returncode>\n<meetings>\n<meeting>\n<meetingName>Trunc";

/// A `FAILED` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) key: &'static str,
    pub(crate) message: &'static str,
    /// Printed in the `<errors><error>` list form of api-errors.ftlx instead of
    /// `messageKey`/`message`.
    listed: bool,
}

impl Failure {
    pub(crate) const fn new(key: &'static str, message: &'static str) -> Self {
        Self {
            key,
            message,
            listed: false,
        }
    }

    pub(crate) const fn listed(key: &'static str, message: &'static str) -> Self {
        Self {
            key,
            message,
            listed: true,
        }
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(160);
        out.push_str("<response>\n<returncode>FAILED</returncode>\n");
        if self.listed {
            out.push_str("<errors>\n<error>\n");
            field(&mut out, "key", self.key);
            field(&mut out, "message", self.message);
            out.push_str("</error>\n</errors>\n");
        } else {
            field(&mut out, "messageKey", self.key);
            field(&mut out, "message", self.message);
        }
        out.push_str("</response>\n");
        out
    }
}

pub(crate) fn create(meeting: &Meeting, key: &str, message: &str) -> String {
    let mut out = String::with_capacity(700);
    out.push_str("<response>\n<returncode>SUCCESS</returncode>\n");
    field(&mut out, "meetingID", &meeting.meeting_id);
    field(&mut out, "internalMeetingID", &meeting.internal_id);
    field(&mut out, "parentMeetingID", "bbb-none");
    field(&mut out, "attendeePW", &meeting.attendee_pw);
    field(&mut out, "moderatorPW", &meeting.moderator_pw);
    value(&mut out, "createTime", meeting.create_time);
    field(&mut out, "voiceBridge", &meeting.voice_bridge);
    field(&mut out, "dialNumber", &meeting.dial_number);
    value(&mut out, "createDate", java_date(meeting.create_time));
    value(&mut out, "hasUserJoined", meeting.has_user_joined);
    value(&mut out, "duration", meeting.duration);
    value(&mut out, "hasBeenForciblyEnded", meeting.ended());
    // The template prints both even when empty, unlike the other answers.
    field(&mut out, "messageKey", key);
    field(&mut out, "message", message);
    out.push_str("</response>\n");
    out
}

/// The fields of join-meeting.ftlx.
#[derive(Debug)]
pub(crate) struct JoinReply<'a> {
    pub(crate) key: &'a str,
    pub(crate) message: &'a str,
    pub(crate) meeting_id: &'a str,
    pub(crate) user_id: &'a str,
    pub(crate) auth_token: &'a str,
    pub(crate) session_token: &'a str,
    pub(crate) guest_status: &'a str,
    pub(crate) url: &'a str,
}

pub(crate) fn join(reply: &JoinReply<'_>) -> String {
    let mut out = String::with_capacity(500);
    out.push_str("<response>\n<returncode>SUCCESS</returncode>\n");
    field(&mut out, "messageKey", reply.key);
    field(&mut out, "message", reply.message);
    field(&mut out, "meeting_id", reply.meeting_id);
    field(&mut out, "user_id", reply.user_id);
    field(&mut out, "auth_token", reply.auth_token);
    field(&mut out, "session_token", reply.session_token);
    field(&mut out, "guestStatus", reply.guest_status);
    field(&mut out, "url", reply.url);
    out.push_str("</response>\n");
    out
}

pub(crate) fn is_meeting_running(running: bool) -> String {
    format!(
        "<response>\n<returncode>SUCCESS</returncode>\n<running>{running}</running>\n</response>\n"
    )
}

pub(crate) fn meeting_info(meeting: &Meeting) -> String {
    let mut out = String::with_capacity(1500);
    out.push_str("<response>\n<returncode>SUCCESS</returncode>\n");
    meeting_fields(&mut out, meeting);
    out.push_str("</response>\n");
    out
}

pub(crate) fn meetings(meetings: &[&Meeting]) -> String {
    if meetings.is_empty() {
        return "<response>\n<returncode>SUCCESS</returncode>\n<meetings/>\n\
<messageKey>noMeetings</messageKey>\n<message>no meetings were found on this server</message>\n\
</response>\n"
            .to_owned();
    }
    let mut out = String::with_capacity(100 + 1200 * meetings.len());
    out.push_str("<response>\n<returncode>SUCCESS</returncode>\n<meetings>\n");
    for meeting in meetings {
        out.push_str("<meeting>\n");
        meeting_fields(&mut out, meeting);
        out.push_str("</meeting>\n");
    }
    out.push_str("</meetings>\n</response>\n");
    out
}

/// The body shared by getMeetingInfo and each getMeetings `<meeting>`. (getMeetingInfo prints
/// the passwords only when set, getMeetings always; the emulator always has both.)
fn meeting_fields(out: &mut String, meeting: &Meeting) {
    let counts = meeting.counts();
    field(out, "meetingName", &meeting.name);
    field(out, "meetingID", &meeting.meeting_id);
    field(out, "internalMeetingID", &meeting.internal_id);
    value(out, "createTime", meeting.create_time);
    value(out, "createDate", java_date(meeting.create_time));
    field(out, "voiceBridge", &meeting.voice_bridge);
    field(out, "dialNumber", &meeting.dial_number);
    field(out, "attendeePW", &meeting.attendee_pw);
    field(out, "moderatorPW", &meeting.moderator_pw);
    value(out, "running", meeting.running());
    value(out, "duration", meeting.duration);
    value(out, "hasUserJoined", meeting.has_user_joined);
    value(out, "recording", meeting.record);
    value(out, "hasBeenForciblyEnded", meeting.ended());
    value(out, "startTime", meeting.create_time);
    value(out, "endTime", meeting.end_time.unwrap_or(0));
    value(out, "participantCount", counts.participants);
    value(out, "listenerCount", counts.listeners);
    value(out, "voiceParticipantCount", counts.voice);
    value(out, "videoCount", counts.video);
    value(out, "maxUsers", meeting.max_participants);
    value(out, "moderatorCount", counts.moderators);
    out.push_str("<attendees>\n");
    for attendee in &meeting.attendees {
        out.push_str("<attendee>\n");
        field(out, "userID", &attendee.user_id);
        field(out, "fullName", &attendee.full_name);
        field(out, "role", attendee.role.as_str());
        // Nobody presents, talks or shares a camera in the emulator.
        out.push_str(
            "<isPresenter>false</isPresenter>\n<isListeningOnly>false</isListeningOnly>\n\
<hasJoinedVoice>false</hasJoinedVoice>\n<hasVideo>false</hasVideo>\n<clientType>HTML5</clientType>\n",
        );
        out.push_str("<customdata>\n");
        for (key, text) in &attendee.custom_data {
            field(out, key, text);
        }
        out.push_str("</customdata>\n</attendee>\n");
    }
    out.push_str("</attendees>\n<metadata>\n");
    for (key, text) in &meeting.metadata {
        field(out, key, text);
    }
    out.push_str("</metadata>\n<isBreakout>false</isBreakout>\n");
}

pub(crate) fn recordings(
    recordings: &[&Recording],
    base: &str,
    now: Instant,
    total: Option<usize>,
) -> String {
    let mut out = String::with_capacity(200 + 1500 * recordings.len());
    out.push_str("<response>\n<returncode>SUCCESS</returncode>\n<recordings>\n");
    for recording in recordings {
        recording_fields(&mut out, recording, base, now);
    }
    out.push_str("</recordings>\n");
    if recordings.is_empty() {
        out.push_str(
            "<messageKey>noRecordings</messageKey>\n\
<message>There are no recordings for the meeting(s).</message>\n",
        );
    }
    if let Some(total) = total {
        value(&mut out, "totalElements", total);
    }
    out.push_str("</response>\n");
    out
}

fn recording_fields(out: &mut String, recording: &Recording, base: &str, now: Instant) {
    let state = recording.state(now);
    out.push_str("<recording>\n");
    field(out, "recordID", &recording.record_id);
    field(out, "meetingID", &recording.meeting_id);
    field(out, "internalMeetingID", &recording.record_id);
    field(out, "name", &recording.name);
    out.push_str("<isBreakout>false</isBreakout>\n");
    value(out, "published", state == "published");
    value(out, "state", state);
    value(out, "startTime", recording.start_time);
    value(out, "endTime", recording.end_time);
    value(out, "participants", recording.participants);
    out.push_str("<metadata>\n");
    for (key, text) in &recording.metadata {
        field(out, key, text);
    }
    out.push_str("</metadata>\n<playback>\n");
    // Playback formats exist only once processing has published them.
    if state == "published" {
        let minutes = (recording.end_time - recording.start_time) / 60_000;
        let id = &recording.record_id;
        for (kind, url) in [
            (
                "presentation",
                format!("{base}/playback/presentation/2.3/{id}"),
            ),
            ("video", format!("{base}/playback/video/{id}/")),
        ] {
            out.push_str("<format>\n");
            value(out, "type", kind);
            field(out, "url", &url);
            value(out, "processingTime", recording.processing_ms);
            value(out, "length", minutes);
            out.push_str("</format>\n");
        }
    }
    out.push_str("</playback>\n</recording>\n");
}

/// `<name>text</name>` with the text escaped. XML 1.0 cannot carry most control characters even
/// escaped, so they are dropped (bbb-web strips them from its input as well).
fn field(out: &mut String, name: &str, text: &str) {
    let _ = write!(out, "<{name}>");
    if text.chars().any(forbidden_in_xml) {
        let kept: String = text.chars().filter(|c| !forbidden_in_xml(*c)).collect();
        out.push_str(&escape(kept.as_str()));
    } else {
        out.push_str(&escape(text));
    }
    let _ = writeln!(out, "</{name}>");
}

/// `<name>value</name>` for numbers, booleans and fixed words, which need no escaping.
fn value(out: &mut String, name: &str, value: impl Display) {
    let _ = writeln!(out, "<{name}>{value}</{name}>");
}

fn forbidden_in_xml(c: char) -> bool {
    (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
}

/// Java's `Date.toString()` in UTC, e.g. `Mon Jul 09 17:03:29 UTC 2018`, as bbb-web prints
/// createDate.
pub(crate) fn java_date(epoch_ms: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = epoch_ms / 1000;
    let days = secs / 86_400;
    let (hour, minute, second) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    let (year, month, day) = crate::calendar::civil_date(days as i64);
    format!(
        "{} {} {day:02} {hour:02}:{minute:02}:{second:02} UTC {year}",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_print_like_java() {
        // The createTime/createDate pair of the BBB fixtures.
        assert_eq!(java_date(1_531_155_809_613), "Mon Jul 09 17:03:29 UTC 2018");
        assert_eq!(java_date(1_715_261_728_123), "Thu May 09 13:35:28 UTC 2024");
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
    }

    #[test]
    fn failures_print_both_error_forms() {
        let single = Failure::new("notFound", "A <meeting>").render();
        assert!(single.contains("<messageKey>notFound</messageKey>"));
        assert!(single.contains("<message>A &lt;meeting&gt;</message>"));
        let listed = Failure::listed("nonUniqueVoiceBridge", "in use").render();
        assert!(listed.contains("<errors>\n<error>\n<key>nonUniqueVoiceBridge</key>"));
    }

    #[test]
    fn control_characters_never_reach_the_document() {
        let mut out = String::new();
        field(&mut out, "fullName", "a\u{1}b\tc&");
        assert_eq!(out, "<fullName>ab\tc&amp;</fullName>\n");
    }
}
