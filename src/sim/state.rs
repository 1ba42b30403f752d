//! The emulated server's memory: meetings by external ID and the recordings they leave behind,
//! with the rules bbb-web applies to them. Answers come back as rendered XML (or a failure), so
//! nothing is cloned out of the lock just to be printed.

use super::{
    Load, MeetingSnapshot, RecordingSnapshot,
    params::Params,
    xml::{self, Failure},
};
use rand::{Rng, distr::Alphanumeric};
use sha1::{Digest, Sha1};
use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

const MISSING_MEETING_ID: Failure =
    Failure::new("missingParamMeetingID", "You must provide a meeting ID");
const MEETING_ID_SIZE: Failure = Failure::new(
    "validationError",
    "Meeting ID must be between 2 and 256 characters",
);
const MEETING_ID_COMMA: Failure = Failure::new("validationError", "Meeting ID cannot contain ','");
// bbb-web's MeetingNameConstraint reports a missing name under the generic key, not a
// `missingParam…` one.
const MISSING_NAME: Failure = Failure::new("validationError", "You must provide a meeting name");
const NAME_SIZE: Failure = Failure::new(
    "validationError",
    "Meeting name must be between 2 and 256 characters",
);
const ID_NOT_UNIQUE: Failure = Failure::new(
    "idNotUnique",
    "A meeting already exists with that meeting ID.  Please use a different meeting ID.",
);
// bbb-web still answers this one in the old `<errors><error>` list form.
const VOICE_BRIDGE_IN_USE: Failure = Failure::listed(
    "nonUniqueVoiceBridge",
    "The selected voice bridge is already in use.",
);
const NOT_FOUND: Failure = Failure::new("notFound", "A meeting with that ID does not exist");
// JoinMeeting.java overrides the key of MeetingExistsConstraint for join (2.5 and later).
const JOIN_NOT_FOUND: Failure = Failure::new(
    "invalidMeetingIdentifier",
    "A meeting with that ID does not exist",
);
const FORCIBLY_ENDED: Failure = Failure::new(
    "meetingForciblyEnded",
    "You can not join a meeting that has already been forcibly ended",
);
const MISSING_FULL_NAME: Failure =
    Failure::new("missingParamFullName", "You must provide your name");
const CREATE_TIME_MISMATCH: Failure = Failure::new(
    "mismatchCreateTimeParam",
    "The createTime parameter submitted mismatches with the current meeting.",
);
const WRONG_PASSWORD: Failure = Failure::new("Params required", "You must enter a valid password");
// "sould" is bbb-web's spelling.
const NO_ROLE: Failure = Failure::new(
    "Params required",
    "You must either send the valid role of the user, or the password, sould the meeting has one.",
);
const MAX_PARTICIPANTS: Failure = Failure::new(
    "maxParticipantsReached",
    "The number of participants allowed for this meeting has been reached.",
);
const GUEST_DENIED: Failure = Failure::new(
    "guestDeniedAccess",
    "You have been denied access to this meeting based on the meeting's guest policy",
);

const DUPLICATE_WARNING: (&str, &str) = (
    "duplicateWarning",
    "This conference was already in existence and may currently be in progress.",
);

/// A BBB user role as the API prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Moderator,
    Viewer,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Moderator => "MODERATOR",
            Self::Viewer => "VIEWER",
        }
    }
}

#[derive(Debug)]
pub(crate) struct Attendee {
    pub(crate) user_id: String,
    pub(crate) full_name: String,
    pub(crate) role: Role,
    pub(crate) custom_data: Vec<(String, String)>,
}

/// What getMeetingInfo counts; from the attendees, unless a test set the load.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counts {
    pub(crate) participants: u32,
    pub(crate) listeners: u32,
    pub(crate) voice: u32,
    pub(crate) video: u32,
    pub(crate) moderators: u32,
}

#[derive(Debug)]
pub(crate) struct Meeting {
    pub(crate) meeting_id: String,
    pub(crate) internal_id: String,
    pub(crate) name: String,
    pub(crate) create_time: u64,
    pub(crate) record: bool,
    pub(crate) attendee_pw: String,
    pub(crate) moderator_pw: String,
    pub(crate) voice_bridge: String,
    pub(crate) dial_number: String,
    pub(crate) guest_policy: String,
    pub(crate) max_participants: u32,
    pub(crate) duration: u32,
    pub(crate) logout_url: Option<String>,
    pub(crate) metadata: Vec<(String, String)>,
    pub(crate) presentation_urls: Vec<String>,
    pub(crate) create_params: Vec<(String, String)>,
    pub(crate) attendees: Vec<Attendee>,
    pub(crate) has_user_joined: bool,
    /// Set by `end`; an ended meeting stays (for join's `meetingForciblyEnded`) until the next
    /// create with its ID replaces it.
    pub(crate) end_time: Option<u64>,
    /// `meetingEndedURL`: called once, when the meeting ends.
    ended_url: Option<String>,
    load: Option<Load>,
    /// Creation order; createTime alone ties within a millisecond.
    sequence: u64,
}

impl Meeting {
    pub(crate) fn ended(&self) -> bool {
        self.end_time.is_some()
    }

    /// BBB calls a meeting running once someone is in it, until it ends.
    pub(crate) fn running(&self) -> bool {
        !self.ended() && self.has_user_joined
    }

    pub(crate) fn counts(&self) -> Counts {
        match self.load {
            Some(load) => Counts {
                participants: load.participants,
                listeners: load.listeners,
                voice: load.voice,
                video: load.video,
                moderators: load.moderators,
            },
            None => Counts {
                participants: len_u32(self.attendees.len()),
                listeners: 0,
                voice: 0,
                video: 0,
                moderators: len_u32(
                    self.attendees
                        .iter()
                        .filter(|a| a.role == Role::Moderator)
                        .count(),
                ),
            },
        }
    }

    fn snapshot(&self) -> MeetingSnapshot {
        let counts = self.counts();
        MeetingSnapshot {
            meeting_id: self.meeting_id.clone(),
            internal_meeting_id: self.internal_id.clone(),
            name: self.name.clone(),
            create_time: self.create_time,
            record: self.record,
            running: self.running(),
            participants: counts.participants,
            moderators: counts.moderators,
            attendee_pw: self.attendee_pw.clone(),
            moderator_pw: self.moderator_pw.clone(),
            voice_bridge: self.voice_bridge.clone(),
            guest_policy: self.guest_policy.clone(),
            metadata: self.metadata.clone(),
            presentation_urls: self.presentation_urls.clone(),
            create_params: self.create_params.clone(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Recording {
    pub(crate) record_id: String,
    pub(crate) meeting_id: String,
    pub(crate) name: String,
    pub(crate) start_time: u64,
    pub(crate) end_time: u64,
    pub(crate) participants: u32,
    pub(crate) metadata: Vec<(String, String)>,
    pub(crate) processing_ms: u64,
    /// Processing "finishes" by the clock, so no timer task is needed.
    published_at: Instant,
}

impl Recording {
    pub(crate) fn state(&self, now: Instant) -> &'static str {
        if now >= self.published_at {
            "published"
        } else {
            "processing"
        }
    }
}

/// A successful join: the XML for `redirect=false` and where a browser is sent otherwise.
#[derive(Debug)]
pub(crate) struct Joined {
    pub(crate) xml: String,
    pub(crate) url: String,
}

/// A failed join and the page its error redirect goes to, if the meeting names one.
#[derive(Debug)]
pub(crate) struct JoinFailure {
    pub(crate) failure: Failure,
    pub(crate) logout_url: Option<String>,
}

impl From<Failure> for JoinFailure {
    fn from(failure: Failure) -> Self {
        Self {
            failure,
            logout_url: None,
        }
    }
}

#[derive(Debug)]
pub(crate) struct State {
    /// `http://127.0.0.1:PORT`, the host of client and playback URLs.
    base: String,
    publish_delay: Duration,
    ended_retention: Duration,
    meetings: HashMap<String, Meeting>,
    /// Voice bridges of the meetings that have not ended.
    voice_bridges: HashSet<String>,
    recordings: Vec<Recording>,
    creates: u64,
    /// `meetingEndedURL`s of meetings just ended, for the server to call.
    ended_urls: Vec<String>,
}

impl State {
    pub(crate) fn new(base: String, publish_delay: Duration, ended_retention: Duration) -> Self {
        Self {
            base,
            publish_delay,
            ended_retention,
            meetings: HashMap::new(),
            voice_bridges: HashSet::new(),
            recordings: Vec::new(),
            creates: 0,
            ended_urls: Vec::new(),
        }
    }

    pub(crate) fn create(
        &mut self,
        params: &Params,
        presentation_urls: Vec<String>,
    ) -> Result<String, Failure> {
        let meeting_id = meeting_id(params)?;
        let name = params.non_empty("name").ok_or(MISSING_NAME)?;
        // Java counts UTF-16 units.
        if !(2..=256).contains(&name.encode_utf16().count()) {
            return Err(NAME_SIZE);
        }
        let attendee_pw = params.non_empty("attendeePW");
        let moderator_pw = params.non_empty("moderatorPW");

        let previous = self.meetings.get(meeting_id);
        if let Some(existing) = previous.filter(|m| !m.ended()) {
            // ApiController.create: same passwords, or none at all, is a harmless repeat; the
            // other parameters are ignored.
            let same = attendee_pw == Some(existing.attendee_pw.as_str())
                && moderator_pw == Some(existing.moderator_pw.as_str());
            if same || (attendee_pw.is_none() && moderator_pw.is_none()) {
                let (key, message) = DUPLICATE_WARNING;
                return Ok(xml::create(existing, key, message));
            }
            return Err(ID_NOT_UNIQUE);
        }
        // BBB keeps an ended meeting in memory until it purges it; a create in that window
        // answers for the old meeting, flagged as forcibly ended.
        let retention = u64::try_from(self.ended_retention.as_millis()).unwrap_or(u64::MAX);
        if let Some(ending) = previous.filter(|m| {
            retention > 0
                && m.end_time
                    .is_some_and(|end| now_ms() < end.saturating_add(retention))
        }) {
            let (key, message) = DUPLICATE_WARNING;
            return Ok(xml::create(ending, key, message));
        }
        // A re-created meeting must be told apart from the old one by join's createTime.
        let create_time = now_ms().max(previous.map_or(0, |m| m.create_time + 1));

        let voice_bridge = match params.non_empty("voiceBridge") {
            Some(given) => given.to_owned(),
            // Ten tries, as bbb-web makes; a clash after that is reported below.
            None => {
                let mut rng = rand::rng();
                let mut candidate = String::new();
                for _ in 0..10 {
                    candidate = rng.random_range(10000..=99999u32).to_string();
                    if !self.voice_bridges.contains(&candidate) {
                        break;
                    }
                }
                candidate
            }
        };
        if self.voice_bridges.contains(&voice_bridge) {
            return Err(VOICE_BRIDGE_IN_USE);
        }

        let meeting = Meeting {
            meeting_id: meeting_id.to_owned(),
            internal_id: format!("{}-{create_time}", sha1_hex(meeting_id)),
            name: name.to_owned(),
            create_time,
            record: params.flag("record"),
            attendee_pw: attendee_pw.map_or_else(|| random_text(8, false), str::to_owned),
            moderator_pw: moderator_pw.map_or_else(|| random_text(8, false), str::to_owned),
            voice_bridge: voice_bridge.clone(),
            dial_number: params
                .non_empty("dialNumber")
                .unwrap_or("613-555-1234")
                .to_owned(),
            guest_policy: params
                .non_empty("guestPolicy")
                .unwrap_or("ALWAYS_ACCEPT")
                .to_owned(),
            max_participants: params.number("maxParticipants").unwrap_or(0),
            duration: params.number("duration").unwrap_or(0),
            logout_url: params.non_empty("logoutURL").map(str::to_owned),
            metadata: metadata(params),
            presentation_urls,
            create_params: params.to_vec(),
            attendees: Vec::new(),
            has_user_joined: false,
            end_time: None,
            ended_url: params.non_empty("meetingEndedURL").map(str::to_owned),
            load: None,
            sequence: self.creates,
        };
        let answer = xml::create(&meeting, "", "");
        self.creates += 1;
        self.voice_bridges.insert(voice_bridge);
        self.meetings.insert(meeting.meeting_id.clone(), meeting);
        Ok(answer)
    }

    pub(crate) fn join(&mut self, params: &Params) -> Result<Joined, JoinFailure> {
        let meeting_id = meeting_id(params)?;
        let meeting = self.meetings.get_mut(meeting_id).ok_or(JOIN_NOT_FOUND)?;
        let fail = |failure| JoinFailure {
            failure,
            logout_url: meeting.logout_url.clone(),
        };
        if meeting.ended() {
            return Err(fail(FORCIBLY_ENDED));
        }
        // bbb-web strips control characters from the name before it checks it.
        let full_name: String = params
            .get("fullName")
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        let full_name = full_name.trim();
        if full_name.is_empty() {
            return Err(fail(MISSING_FULL_NAME));
        }
        if let Some(given) = params.get("createTime")
            && given.parse::<u64>().ok() != Some(meeting.create_time)
        {
            return Err(fail(CREATE_TIME_MISMATCH));
        }
        // A valid role wins over the deprecated password.
        let role = match params.get("role").map(str::to_ascii_lowercase).as_deref() {
            Some("moderator") => Role::Moderator,
            Some("viewer") => Role::Viewer,
            _ => match params.non_empty("password") {
                Some(pw) if pw == meeting.moderator_pw => Role::Moderator,
                Some(pw) if pw == meeting.attendee_pw => Role::Viewer,
                Some(_) => return Err(fail(WRONG_PASSWORD)),
                None => return Err(fail(NO_ROLE)),
            },
        };
        let internal_user_id = format!("w_{}", random_text(12, true));
        let user_id = params
            .non_empty("userID")
            .map_or_else(|| internal_user_id.clone(), str::to_owned);

        // Counted in distinct user IDs; someone already in may always come back.
        if meeting.max_participants > 0 && !meeting.attendees.iter().any(|a| a.user_id == user_id) {
            let distinct: HashSet<&str> = meeting
                .attendees
                .iter()
                .map(|a| a.user_id.as_str())
                .collect();
            if len_u32(distinct.len()) >= meeting.max_participants {
                return Err(fail(MAX_PARTICIPANTS));
            }
        }

        let waits = if params.flag("guest") {
            match meeting.guest_policy.as_str() {
                "ALWAYS_DENY" => return Err(fail(GUEST_DENIED)),
                "ASK_MODERATOR" | "ALWAYS_ACCEPT_AUTH" => true,
                _ => false,
            }
        } else {
            false
        };

        let session_token = random_text(16, true);
        let auth_token = random_text(12, true);
        let (page, status, key, message) = if waits {
            (
                "guestWait",
                "WAIT",
                "guestWait",
                "Guest waiting for approval to join meeting.",
            )
        } else {
            (
                "join",
                "ALLOW",
                "successfullyJoined",
                "You have joined successfully.",
            )
        };
        let url = format!(
            "{}/html5client/{page}?sessionToken={session_token}",
            self.base
        );
        let xml = xml::join(&xml::JoinReply {
            key,
            message,
            meeting_id: &meeting.internal_id,
            user_id: &internal_user_id,
            auth_token: &auth_token,
            session_token: &session_token,
            guest_status: status,
            url: &url,
        });
        if !waits {
            // Real BBB adds the user when the browser reaches the client; the emulator counts
            // the successful join instead, so tests need no browser.
            meeting.attendees.push(Attendee {
                user_id,
                full_name: full_name.to_owned(),
                role,
                custom_data: custom_data(params),
            });
            meeting.has_user_joined = true;
        }
        Ok(Joined { xml, url })
    }

    pub(crate) fn is_meeting_running(&self, params: &Params) -> Result<String, Failure> {
        let meeting_id = meeting_id(params)?;
        // Since 2.4 an unknown meeting is simply not running.
        let running = self.meetings.get(meeting_id).is_some_and(Meeting::running);
        Ok(xml::is_meeting_running(running))
    }

    pub(crate) fn meeting_info(&self, params: &Params) -> Result<String, Failure> {
        let meeting_id = meeting_id(params)?;
        let meeting = self.meetings.get(meeting_id).ok_or(NOT_FOUND)?;
        Ok(xml::meeting_info(meeting))
    }

    pub(crate) fn meetings_xml(&self) -> String {
        xml::meetings(&self.current())
    }

    pub(crate) fn end(&mut self, params: &Params) -> Result<String, Failure> {
        let meeting_id = meeting_id(params)?;
        let meeting = self.meetings.get_mut(meeting_id).ok_or(NOT_FOUND)?;
        if !meeting.ended() {
            let end_time = now_ms().max(meeting.create_time);
            meeting.end_time = Some(end_time);
            self.voice_bridges.remove(&meeting.voice_bridge);
            self.ended_urls.extend(meeting.ended_url.take());
            if meeting.record {
                let mut metadata = meeting.metadata.clone();
                metadata.extend([
                    ("meetingId".to_owned(), meeting.meeting_id.clone()),
                    ("meetingName".to_owned(), meeting.name.clone()),
                    ("isBreakout".to_owned(), "false".to_owned()),
                ]);
                self.recordings.push(Recording {
                    record_id: meeting.internal_id.clone(),
                    meeting_id: meeting.meeting_id.clone(),
                    name: meeting.name.clone(),
                    start_time: meeting.create_time,
                    end_time,
                    participants: len_u32(meeting.attendees.len()),
                    metadata,
                    processing_ms: u64::try_from(self.publish_delay.as_millis())
                        .unwrap_or(u64::MAX),
                    published_at: Instant::now() + self.publish_delay,
                });
            }
        }
        Ok(xml::END_SUCCESS.to_owned())
    }

    /// The `meetingEndedURL`s of the meetings ended since the last call.
    pub(crate) fn take_ended_urls(&mut self) -> Vec<String> {
        std::mem::take(&mut self.ended_urls)
    }

    pub(crate) fn recordings_xml(&self, params: &Params) -> String {
        let now = Instant::now();
        let record_ids = csv(params.get("recordID"));
        let meeting_ids = csv(params.get("meetingID"));
        let states: Vec<String> = csv(params.get("state"))
            .map(str::to_ascii_lowercase)
            .collect();
        let any_state = states.iter().any(|s| s == "any");
        let record_ids: Vec<&str> = record_ids.collect();
        let meeting_ids: Vec<&str> = meeting_ids.collect();

        let found: Vec<&Recording> = self
            .recordings
            .iter()
            .filter(|r| {
                // recordID matches by prefix and, when given, makes meetingID irrelevant.
                if !record_ids.is_empty() {
                    record_ids.iter().any(|p| r.record_id.starts_with(p))
                } else {
                    meeting_ids.is_empty() || meeting_ids.contains(&r.meeting_id.as_str())
                }
            })
            .filter(|r| {
                let state = r.state(now);
                any_state
                    || if states.is_empty() {
                        matches!(state, "published" | "unpublished")
                    } else {
                        states.iter().any(|s| s == state)
                    }
            })
            .collect();

        // 2.6+: paging only when a limit is given, clamped to 1..=100.
        match params.number::<i64>("limit") {
            Some(limit) => {
                let limit = usize::try_from(limit.clamp(1, 100)).unwrap_or(100);
                let offset = params
                    .number::<i64>("offset")
                    .map_or(0, |o| usize::try_from(o).unwrap_or(0));
                let total = found.len();
                let page: Vec<&Recording> = found.into_iter().skip(offset).take(limit).collect();
                xml::recordings(&page, &self.base, now, Some(total))
            }
            None => xml::recordings(&found, &self.base, now, None),
        }
    }

    pub(crate) fn set_load(&mut self, meeting_id: &str, load: Load) -> bool {
        match self.meetings.get_mut(meeting_id).filter(|m| !m.ended()) {
            Some(meeting) => {
                meeting.load = Some(load);
                meeting.has_user_joined |= load.participants > 0;
                true
            }
            None => false,
        }
    }

    pub(crate) fn meeting_snapshots(&self) -> Vec<MeetingSnapshot> {
        self.current().into_iter().map(Meeting::snapshot).collect()
    }

    /// The meetings that have not ended, oldest first.
    fn current(&self) -> Vec<&Meeting> {
        let mut current: Vec<&Meeting> = self.meetings.values().filter(|m| !m.ended()).collect();
        current.sort_by_key(|m| m.sequence);
        current
    }

    pub(crate) fn recording_snapshots(&self) -> Vec<RecordingSnapshot> {
        let now = Instant::now();
        self.recordings
            .iter()
            .map(|r| RecordingSnapshot {
                record_id: r.record_id.clone(),
                meeting_id: r.meeting_id.clone(),
                state: r.state(now).to_owned(),
            })
            .collect()
    }
}

/// The `meetingID` checks of bbb-web's MeetingIDConstraint.
fn meeting_id(params: &Params) -> Result<&str, Failure> {
    let id = params.non_empty("meetingID").ok_or(MISSING_MEETING_ID)?;
    if !(2..=256).contains(&id.chars().count()) {
        return Err(MEETING_ID_SIZE);
    }
    if id.contains(',') {
        return Err(MEETING_ID_COMMA);
    }
    Ok(id)
}

/// `meta_<key>` parameters whose key matches `[a-zA-Z][a-zA-Z0-9-]*`, lower-cased; bbb-web drops
/// the others without a word. A repeated key keeps its last value, like the Java map.
fn metadata(params: &Params) -> Vec<(String, String)> {
    let mut metadata: Vec<(String, String)> = Vec::new();
    for (name, value) in params.iter() {
        let Some(key) = name.strip_prefix("meta_") else {
            continue;
        };
        let mut chars = key.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid {
            continue;
        }
        let key = key.to_ascii_lowercase();
        match metadata.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value.to_owned(),
            None => metadata.push((key, value.to_owned())),
        }
    }
    metadata
}

/// `userdata-<key>` parameters, echoed as `<customdata>` elements. Keys that cannot be an XML
/// element name are left out rather than break the document.
fn custom_data(params: &Params) -> Vec<(String, String)> {
    params
        .iter()
        .filter_map(|(name, value)| {
            let key = name.strip_prefix("userdata-")?;
            let mut chars = key.chars();
            let valid = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            valid.then(|| (key.to_owned(), value.to_owned()))
        })
        .collect()
}

fn csv(value: Option<&str>) -> impl Iterator<Item = &str> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn sha1_hex(value: &str) -> String {
    hex::encode(Sha1::digest(value.as_bytes()))
}

/// Alphanumeric text like Apache's `RandomStringUtils.randomAlphanumeric`; tokens are
/// lower-cased as bbb-web does, generated passwords keep both cases.
fn random_text(len: usize, lower: bool) -> String {
    let text: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect();
    if lower {
        text.to_ascii_lowercase()
    } else {
        text
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}
