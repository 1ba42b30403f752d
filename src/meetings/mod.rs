//! Rooms and private calls as BBB meetings: who may join and how, where each meeting lives, and
//! making sure it exists on its server before a join URL is handed out.

mod ending;
mod flight;
mod lifecycle;
pub mod params;
#[cfg(test)]
mod simulation;

use crate::{
    bbb::{BbbError, Verdict},
    domain::Meeting,
    fleet::{Availability, Fleet, FleetServer, MeetingKind, PlacementRequest},
    store::{Store, StoreError},
};
use flight::Flights;
use lifecycle::{Established, Move};
use std::{sync::Arc, time::Duration};
use tokio::time::Instant;

/// The most of a DeleteEvent's time kept for deleting its rows once its meetings are ended (or
/// given up on): an event's meetings must be deleted even when its servers hang.
const DELETE_RESERVE: Duration = Duration::from_secs(5);

/// The user a join URL is signed for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub display_name: String,
    pub avatar_url: String,
}

/// What the user may do in a room, from the permission strings the backend computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Permissions {
    pub join: bool,
    pub moderate: bool,
    pub recordings: bool,
}

impl Permissions {
    /// Unknown strings mean nothing here: they are ignored, never an error.
    pub fn from_strings<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut p = Self::default();
        for name in names {
            match name {
                "room:bbb.join" => p.join = true,
                "room:bbb.moderate" | "room:update" | "event.update" => p.moderate = true,
                "room:bbb.recordings" => p.recordings = true,
                _ => {}
            }
        }
        p
    }
}

/// A room's BBB settings (see the proto's `RoomSettings`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomSettings {
    pub record: bool,
    pub waiting_room: bool,
    pub mute_on_start: bool,
    pub disable_cam: bool,
    pub disable_chat: bool,
    /// `None`: locked, as the original defaulted.
    pub disable_private_chat: Option<bool>,
    pub hide_presentation: bool,
    pub auto_microphone: bool,
    pub auto_camera: bool,
    pub voice_bridge: String,
    pub prefer_server: String,
    pub presentation_url: String,
    /// How many the session is expected to bring; 0: unknown.
    pub expected_participants: u32,
}

#[derive(Debug, Clone)]
pub struct RoomJoin {
    pub event_id: String,
    pub organizer_id: String,
    pub room_id: String,
    pub room_name: String,
    pub user: User,
    pub permissions: Permissions,
    pub settings: RoomSettings,
    pub domain: String,
}

#[derive(Debug, Clone)]
pub struct CallJoin {
    pub event_id: String,
    pub call_id: String,
    pub user: User,
    pub domain: String,
}

#[derive(Debug, Clone)]
pub struct NewCall {
    pub event_id: String,
    pub organizer_id: String,
    pub member_ids: Vec<String>,
    pub idempotency_key: Option<String>,
}

/// What deleting an event did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventDeleted {
    pub meetings_deleted: u64,
    pub meetings_ended: u64,
    pub end_failed_on: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinUrl {
    pub url: String,
    pub server_id: String,
    pub meeting_id: String,
    pub moderator: bool,
}

/// Why a meeting could not be joined or created. Only the variant reaches a client.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("a required permission is missing")]
    Denied,
    #[error("the user has no display name")]
    MissingProfile,
    #[error("BBB failed: {0}")]
    BbbFailed(Failure),
    /// The database's own words, for the log at the API boundary.
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

/// The cause behind `bbb.failed`, for logs and metrics.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Failure {
    #[error("no server fits")]
    NoServer,
    #[error("server {server}: {error}")]
    Bbb { server: String, error: BbbError },
    #[error("no such call for this user")]
    NotInvited,
    #[error("the deadline passed")]
    Deadline,
    #[error("BBB still holds the ended meeting")]
    StillEnding,
    #[error("the attempt's task died")]
    Lost,
    #[error("other joins kept claiming the meeting first")]
    Contended,
    #[error("every server that hosted the room failed")]
    AllServersFailed,
}

impl Failure {
    /// A low-cardinality name for logs and metrics.
    pub fn cause(&self) -> &'static str {
        match self {
            Self::NoServer => "no_server",
            Self::Bbb { error, .. } => match error.verdict() {
                Verdict::Misconfigured(_) => "misconfigured",
                Verdict::Answered => "refused",
                Verdict::Failed => error.kind(),
            },
            Self::NotInvited => "not_invited",
            Self::Deadline => "deadline",
            Self::StillEnding => "still_ending",
            Self::Lost => "lost",
            Self::Contended => "contended",
            Self::AllServersFailed => "all_servers_failed",
        }
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        Self::Unavailable(err.0.to_string())
    }
}

/// A meeting confirmed to exist on its server, with the createTime joins must carry.
#[derive(Debug, Clone)]
struct Ensured {
    meeting: Meeting,
    server: Arc<FleetServer>,
    create_time: u64,
    at: std::time::SystemTime,
}

impl Ensured {
    /// Signs the join URL of this meeting on its server.
    fn join_url(&self, query: &crate::bbb::Query, moderator: bool) -> JoinUrl {
        tracing::debug!(server = %self.server.spec.id, meeting = %self.meeting.id, moderator, "join URL signed");
        JoinUrl {
            url: self.server.endpoint.join_url(query),
            server_id: self.server.spec.id.clone(),
            meeting_id: self.meeting.bbb_meeting_id.clone(),
            moderator,
        }
    }
}

pub struct Meetings {
    core: Arc<Core>,
    flights: Arc<Flights<Result<Ensured, Error>>>,
}

/// What an ensure attempt needs; shared with the attempt's own task.
struct Core {
    store: Store,
    fleet: Arc<Fleet>,
    /// Whether BBB may fetch presentations from private addresses.
    private_presentations: bool,
    /// Rooms stay on the server of their first placement (until failover).
    pin_rooms: bool,
}

/// Where a room's join would place its meeting: its event, preference and expected size.
fn room_placement(join: &RoomJoin) -> PlacementRequest<'_> {
    PlacementRequest {
        event_id: &join.event_id,
        organizer_id: &join.organizer_id,
        kind: MeetingKind::Room,
        prefer: Some(join.settings.prefer_server.as_str()),
        participants: join.settings.expected_participants,
        room: Some(&join.room_id),
    }
}

fn room_key(event_id: &str, room_id: &str) -> String {
    format!("room/{event_id}/{room_id}")
}

/// BBB accepts 2–64 characters for passwords; 24 alphanumerics give 142 bits.
fn random_key() -> String {
    crate::secret::random_alphanumeric(24)
}

impl Meetings {
    pub fn new(
        store: Store,
        fleet: Arc<Fleet>,
        ensure_ttl: Duration,
        private_presentations: bool,
        pin_rooms: bool,
    ) -> Self {
        Self {
            core: Arc::new(Core {
                store,
                fleet,
                private_presentations,
                pin_rooms,
            }),
            flights: Flights::new(ensure_ttl),
        }
    }

    /// Drops what is known of a room's meeting (an operator moved it), so its next join asks
    /// BBB where it is now.
    pub fn forget_room(&self, event_id: &str, room_id: &str) {
        self.flights.forget(&room_key(event_id, room_id));
    }

    /// A join URL for a room, creating the room's meeting on its first join.
    pub async fn room_url(&self, join: &RoomJoin, budget: Duration) -> Result<JoinUrl, Error> {
        let deadline = Instant::now() + budget;
        if !join.permissions.join {
            return Err(Error::Denied);
        }
        if params::full_name(&join.user.display_name).is_empty() {
            return Err(Error::MissingProfile);
        }
        let key = room_key(&join.event_id, &join.room_id);
        let core = self.core.clone();
        let owned = join.clone();
        let ensured = self
            .ensure(deadline, &key, move || async move {
                core.ensure_room(&owned).await
            })
            .await?;
        let query = params::room_join(
            &ensured.meeting,
            ensured.create_time,
            &join.user,
            join.permissions,
            &join.settings,
            &join.domain,
        );
        Ok(ensured.join_url(&query, join.permissions.moderate))
    }

    /// Records a private call for its members on a server that takes calls. A retry with an
    /// idempotency key already used answers the earlier call without placing anything again.
    pub async fn create_call(&self, call: &NewCall, budget: Duration) -> Result<String, Error> {
        let deadline = Instant::now() + budget;
        if let Some(key) = &call.idempotency_key {
            let earlier = self.core.store.call_with_key(&call.event_id, key);
            if let Some(id) = within(deadline, async { Ok(earlier.await?) }).await? {
                return Ok(id);
            }
        }
        let request = PlacementRequest {
            event_id: &call.event_id,
            organizer_id: &call.organizer_id,
            kind: MeetingKind::Call,
            prefer: None,
            participants: u32::try_from(call.member_ids.len()).unwrap_or(u32::MAX),
            room: None,
        };
        let bbb_meeting_id = random_key();
        let server = within(deadline, async {
            Ok(self
                .core
                .fleet
                .place(&request, &[], &bbb_meeting_id)
                .await?)
        })
        .await?
        .ok_or(Error::BbbFailed(Failure::NoServer))?;
        let meeting = Meeting {
            id: uuid::Uuid::new_v4().to_string(),
            event_id: call.event_id.clone(),
            organizer_id: call.organizer_id.clone(),
            room_id: None,
            bbb_meeting_id,
            attendee_pw: random_key(),
            moderator_pw: random_key(),
            server_id: server.spec.id.clone(),
            imported: false,
            claimed_at: 0,
        };
        let insert = self.core.store.insert_call(
            &meeting,
            &call.member_ids,
            call.idempotency_key.as_deref(),
        );
        within(deadline, async { Ok(insert.await?) }).await
    }

    /// Whether rooms and calls of an event can be served now.
    pub fn availability(&self, event_id: &str, organizer_id: &str) -> Availability {
        self.core.fleet.availability(event_id, organizer_id)
    }

    /// Where a schedule's sessions would run, slot by slot, beside other events' kept plans
    /// (see `fleet::plan`).
    pub async fn forecast(
        &self,
        event_id: &str,
        organizer_id: &str,
        sessions: &[crate::fleet::plan::Session],
        slot: Duration,
    ) -> Result<crate::fleet::plan::Forecast, Error> {
        let kept = kept_beside(&self.core.store, event_id, sessions).await?;
        Ok(crate::fleet::plan::forecast(
            &self.core.fleet.snapshot(),
            event_id,
            organizer_id,
            sessions,
            &kept,
            slot,
        ))
    }

    /// Keeps `plan` as the event's plan (replacing its earlier one), and applies it here at
    /// once; other replicas read it with their next poll. Returns how many sessions it holds.
    pub async fn keep_plan(
        &self,
        event_id: &str,
        plan: &[crate::store::Planned],
    ) -> Result<u32, Error> {
        self.core.store.keep_plan(event_id, plan).await?;
        self.core.fleet.reload_reservations().await?;
        Ok(u32::try_from(plan.len()).unwrap_or(u32::MAX))
    }

    /// Removes a user from every private call (the user was deleted). Returns how many.
    pub async fn forget_user(&self, user_id: &str) -> Result<u64, Error> {
        Ok(self.core.store.forget_member(user_id).await?)
    }

    /// Deletes an event's meetings and calls, ending them on their servers first when asked:
    /// in parallel, skipping servers that do not answer, and by a deadline that leaves a part
    /// of `budget` for the deletion itself. Servers where meetings may still run are named;
    /// the deletion goes on regardless.
    pub async fn delete_event(
        &self,
        event_id: &str,
        end: bool,
        budget: Duration,
    ) -> Result<EventDeleted, Error> {
        let deadline = Instant::now() + budget;
        let lookup = self.core.store.event_meetings(event_id);
        let meetings = within(deadline, async { Ok(lookup.await?) }).await?;
        let mut outcome = EventDeleted::default();
        if end {
            let reserve = (budget / 4).min(DELETE_RESERVE);
            let ended = ending::end_all(&self.core.fleet, &meetings, deadline - reserve).await;
            outcome.meetings_ended = ended.ended;
            outcome.end_failed_on = ended.failed_on;
        }
        let delete = self.core.store.delete_event(event_id);
        outcome.meetings_deleted = within(deadline, async { Ok(delete.await?) }).await?;
        for meeting in &meetings {
            if let Some(room) = &meeting.room_id {
                self.forget_room(event_id, room);
            }
        }
        Ok(outcome)
    }

    /// A join URL for a private call, for its members only.
    pub async fn call_url(&self, join: &CallJoin, budget: Duration) -> Result<JoinUrl, Error> {
        let deadline = Instant::now() + budget;
        if params::full_name(&join.user.display_name).is_empty() {
            return Err(Error::MissingProfile);
        }
        let lookup = self
            .core
            .store
            .use_call(&join.event_id, &join.call_id, &join.user.id);
        let meeting = within(deadline, async { Ok(lookup.await?) })
            .await?
            .ok_or(Error::BbbFailed(Failure::NotInvited))?;
        let key = format!("call/{}", meeting.id);
        let core = self.core.clone();
        let ensured = self
            .ensure(deadline, &key, move || async move {
                core.ensure_call(meeting).await
            })
            .await?;
        let query = params::call_join(
            &ensured.meeting,
            ensured.create_time,
            &join.user,
            &join.domain,
        );
        Ok(ensured.join_url(&query, true))
    }

    /// The shared outcome of ensuring the meeting behind `key`, waited for until `deadline`.
    async fn ensure<Fut>(
        &self,
        deadline: Instant,
        key: &str,
        attempt: impl FnOnce() -> Fut,
    ) -> Result<Ensured, Error>
    where
        Fut: Future<Output = Result<Ensured, Error>> + Send + 'static,
    {
        let fleet = self.core.fleet.clone();
        let still_there = move |e: &Ensured| {
            fleet.still_hosting(&e.server.spec.id, &e.meeting.bbb_meeting_id, e.at)
        };
        let shared = self.flights.run(key, still_there, attempt);
        match tokio::time::timeout_at(deadline, shared).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_lost)) => Err(Error::BbbFailed(Failure::Lost)),
            Err(_) => Err(Error::BbbFailed(Failure::Deadline)),
        }
    }
}

impl Core {
    async fn ensure_room(&self, join: &RoomJoin) -> Result<Ensured, Error> {
        let url = &join.settings.presentation_url;
        let presentation: &[String] = if url.is_empty() {
            &[]
        } else if !self.private_presentations && crate::domain::is_private_address(url) {
            // BBB would fetch it from inside its own network: a way into what the caller
            // cannot reach. The meeting starts without it.
            tracing::warn!(event = %join.event_id, room = %join.room_id, "presentation on a private address left out (EVENTYAY_BBB_PRIVATE_PRESENTATIONS allows it)");
            crate::telemetry::metrics()
                .presentations_refused
                .add(1, &[]);
            &[]
        } else {
            std::slice::from_ref(url)
        };
        let world = Service {
            core: self,
            join: Some(join),
            // Moves for failover place the room anew, without its first placement's preference.
            failover: PlacementRequest {
                prefer: None,
                ..room_placement(join)
            },
            query: |m: &Meeting| params::room_create(m, &join.room_name, &join.settings),
            presentation,
        };
        Ok(lifecycle::ensure_room(&world, self.pin_rooms).await?.into())
    }

    async fn ensure_call(&self, meeting: Meeting) -> Result<Ensured, Error> {
        let world = Service {
            core: self,
            join: None,
            failover: PlacementRequest {
                event_id: &meeting.event_id,
                organizer_id: &meeting.organizer_id,
                kind: MeetingKind::Call,
                prefer: None,
                // Moves only (a call is placed when created): sized like an unknown meeting.
                participants: 0,
                room: None,
            },
            query: params::call_create,
            presentation: &[],
        };
        Ok(lifecycle::establish(&world, meeting.clone(), false)
            .await?
            .into())
    }
}

impl From<Established<Arc<FleetServer>>> for Ensured {
    fn from(e: Established<Arc<FleetServer>>) -> Self {
        Self {
            meeting: e.meeting,
            server: e.server,
            create_time: e.created.create_time,
            at: std::time::SystemTime::now(),
        }
    }
}

/// The lifecycle's world in the service: the database, the fleet and its BBB servers.
struct Service<'a, Q> {
    core: &'a Core,
    /// The room's join (`None` for a call).
    join: Option<&'a RoomJoin>,
    /// Where a move for failover places the meeting.
    failover: PlacementRequest<'a>,
    query: Q,
    presentation: &'a [String],
}

impl<Q: Fn(&Meeting) -> crate::bbb::Query + Sync> lifecycle::World for Service<'_, Q> {
    type Server = Arc<FleetServer>;

    fn now(&self) -> std::time::SystemTime {
        std::time::SystemTime::now()
    }

    fn create_timeout(&self) -> Duration {
        self.core.fleet.timeouts().create
    }

    async fn pause(&self, pause: Duration) {
        tokio::time::sleep(pause).await;
    }

    fn sighting(&self, server_id: &str, meeting_id: &str) -> crate::fleet::Sighting {
        self.core.fleet.sighting(server_id, meeting_id)
    }

    async fn row(&self) -> Result<Option<Meeting>, Error> {
        let Some(join) = self.join else {
            return Ok(None);
        };
        Ok(self
            .core
            .store
            .room_meeting(&join.event_id, &join.room_id)
            .await?)
    }

    async fn place_first(&self) -> Result<Option<(Meeting, bool)>, Error> {
        let Some(join) = self.join else {
            return Ok(None);
        };
        let new = Meeting {
            id: uuid::Uuid::new_v4().to_string(),
            event_id: join.event_id.clone(),
            organizer_id: join.organizer_id.clone(),
            room_id: Some(join.room_id.clone()),
            bbb_meeting_id: random_key(),
            attendee_pw: random_key(),
            moderator_pw: random_key(),
            // The placement fills both in.
            server_id: String::new(),
            imported: false,
            claimed_at: 0,
        };
        Ok(self
            .core
            .fleet
            .place_first(&room_placement(join), new)
            .await?)
    }

    async fn place_again(
        &self,
        meeting: &Meeting,
        why: Move,
        exclude: &[String],
    ) -> Result<Option<(Meeting, bool)>, Error> {
        let request = match (why, self.join) {
            (Move::NewSession, Some(join)) => room_placement(join),
            _ => self.failover.clone(),
        };
        Ok(self
            .core
            .fleet
            .place_again(&request, meeting, exclude)
            .await?)
    }

    async fn claim(&self, meeting: &Meeting) -> Result<(Meeting, bool), Error> {
        Ok(self.core.store.claim_meeting(meeting).await?)
    }

    async fn holds(&self, server_id: &str, meeting_id: &str) -> Option<bool> {
        let server = self.core.fleet.get(server_id)?;
        self.core.fleet.holds(&server, meeting_id).await.ok()
    }

    async fn create(
        &self,
        meeting: &Meeting,
    ) -> Option<(Arc<FleetServer>, Result<crate::bbb::Created, BbbError>)> {
        let server = self.core.fleet.get(&meeting.server_id)?;
        let outcome = self
            .core
            .fleet
            .create(&server, &(self.query)(meeting), self.presentation)
            .await;
        Some((server, outcome))
    }

    async fn end(&self, server_id: &str, meeting: &Meeting) {
        let Some(server) = self.core.fleet.get(server_id) else {
            return;
        };
        let ended = self
            .core
            .fleet
            .end(
                &server,
                &meeting.bbb_meeting_id,
                Some(&meeting.moderator_pw),
            )
            .await;
        match ended {
            Ok(_) => {
                tracing::info!(server = %server_id, meeting = %meeting.id, "ended a meeting created while it moved elsewhere")
            }
            Err(err) => {
                tracing::warn!(server = %server_id, meeting = %meeting.id, error = %err, "could not end a meeting created while it moved elsewhere; BBB drops it unjoined")
            }
        }
    }

    fn moved(&self, before: &Meeting, after: &Meeting, why: Move) {
        let (from, to) = (before.server_id.as_str(), after.server_id.as_str());
        let metrics = crate::telemetry::metrics();
        let counter = match why {
            Move::Failover => {
                tracing::info!(meeting = %before.id, from, to, "moved a meeting to another server");
                &metrics.moves
            }
            Move::NewSession => {
                tracing::info!(meeting = %before.id, from, to, "a new session of the room placed anew");
                &metrics.session_placements
            }
        };
        counter.add(
            1,
            &[
                crate::telemetry::kv("from", from.to_owned()),
                crate::telemetry::kv("to", to.to_owned()),
            ],
        );
    }
}

/// Other events' kept sessions over the span of `sessions`, which a forecast of them counts.
pub async fn kept_beside(
    store: &Store,
    event_id: &str,
    sessions: &[crate::fleet::plan::Session],
) -> Result<Vec<crate::store::Planned>, StoreError> {
    match crate::fleet::plan::span(sessions) {
        Some((from, to)) => store.planned_between(event_id, from, to).await,
        None => Ok(Vec::new()),
    }
}

async fn within<T>(
    deadline: Instant,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout_at(deadline, work)
        .await
        .unwrap_or(Err(Error::BbbFailed(Failure::Deadline)))
}
