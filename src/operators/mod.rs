//! What operators do to the fleet — add, change, remove, cordon, drain servers, move rooms,
//! ask why a placement goes where it goes — each change checked, applied through the store so
//! every replica sees it, and written to the audit log. No secret is ever returned or logged.

use crate::{
    domain::{Server, ServerState},
    fleet::{Decision, Fleet, MeetingKind, PlaceError, PlacementRequest, ServerStatus},
    meetings::Meetings,
    store::{Audit, AuditEntry, Store, StoreError},
};
use std::{collections::HashMap, sync::Arc, time::Duration};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: &'static str,
    },
    #[error("not found")]
    NotFound,
    /// Refused as things stand; the text says why (it never holds a secret).
    #[error("{0}")]
    Refused(&'static str),
    /// The database's own words, for the log at the API boundary.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The placement batch ended without an answer (the log says why).
    #[error("the placement was lost")]
    Lost,
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        Self::Unavailable(err.0.to_string())
    }
}

impl From<PlaceError> for Error {
    fn from(err: PlaceError) -> Self {
        match err {
            PlaceError::Store(err) => err.into(),
            PlaceError::Lost => Self::Lost,
        }
    }
}

/// A server as operators see it.
#[derive(Debug, Clone)]
pub struct ServerView {
    pub server: Server,
    pub from_file: bool,
    pub status: Option<ServerStatus>,
}

/// The outcome of a room move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub from: String,
    pub to: String,
    pub ended_on_old_server: bool,
}

pub struct Operators {
    store: Store,
    fleet: Arc<Fleet>,
    meetings: Arc<Meetings>,
}

/// How long a probe of a server just added or changed may take.
const PROBE: Duration = Duration::from_secs(3);

impl Operators {
    pub fn new(store: Store, fleet: Arc<Fleet>, meetings: Arc<Meetings>) -> Self {
        Self {
            store,
            fleet,
            meetings,
        }
    }

    pub async fn list(&self) -> Result<Vec<ServerView>, Error> {
        let status = self.fleet.status();
        let mut servers: Vec<ServerView> = self
            .store
            .servers_with_origin()
            .await?
            .into_iter()
            .map(|(server, from_file)| ServerView {
                status: status.get(&server.id).cloned(),
                server,
                from_file,
            })
            .collect();
        servers.sort_by(|a, b| a.server.id.cmp(&b.server.id));
        Ok(servers)
    }

    async fn view(&self, id: &str) -> Result<ServerView, Error> {
        self.list()
            .await?
            .into_iter()
            .find(|v| v.server.id == id)
            .ok_or(Error::NotFound)
    }

    /// Adds or updates a server, then probes it so that a healthy server takes meetings at
    /// once (and a broken one none). Returns the server and whether it was created.
    /// Adds or updates a server, then probes it so that a healthy server takes meetings at
    /// once (and a broken one none). `state: None` keeps an existing server's state (a new one
    /// starts enabled). Returns the server and whether it was created.
    pub async fn put(
        &self,
        actor: &str,
        server: Server,
        state: Option<ServerState>,
    ) -> Result<(ServerView, bool), Error> {
        let exists = self.store.server(&server.id).await?.is_some();
        server.check(!exists).map_err(|bad| Error::Invalid {
            field: match bad.field {
                "id" => "server.id",
                "url" => "server.url",
                "secret" => "server.secret",
                "weight" => "server.weight",
                _ => "server.events",
            },
            problem: bad.problem,
        })?;
        let secret_note = if server.secret.expose().is_empty() {
            "kept"
        } else {
            "set"
        };
        let details = format!(
            "url={} checksum={} state={} rooms_only={} events=[{}] organizers=[{}] weight={} max_meetings={} max_participants={} secret={secret_note}",
            server.url,
            server.checksum,
            state.map_or("kept", ServerState::name),
            server.rooms_only,
            server.events.join(","),
            server.organizers.join(","),
            server.weight,
            server.max_meetings,
            server.max_participants,
        );
        let audit = Audit {
            actor,
            action: "put-server",
            target: &server.id,
            details,
        };
        let put = self.store.put_server(&server, state, audit).await?;
        if put.drain_cancelled {
            tracing::info!(server = %server.id, actor, "drain cancelled by a change of state");
        }
        self.fleet.reload().await?;
        self.probe(&server.id).await;
        Ok((self.view(&server.id).await?, put.created))
    }

    async fn probe(&self, id: &str) {
        let Some(server) = self.fleet.get(id) else {
            return;
        };
        // The outcome lands in the server's health, which the reply shows.
        let _ = self.fleet.poll(&server, PROBE).await;
    }

    pub async fn remove(&self, actor: &str, id: &str) -> Result<(), Error> {
        if self.store.server(id).await?.is_none() {
            return Err(Error::NotFound);
        }
        let audit = Audit {
            actor,
            action: "remove-server",
            target: id,
            details: "deleted".into(),
        };
        if !self.store.delete_unused_server(id, audit).await? {
            return Err(Error::Refused(
                "the server has hosted meetings: disable it instead, so their recordings stay findable",
            ));
        }
        self.fleet.reload().await?;
        Ok(())
    }

    pub async fn set_state(
        &self,
        actor: &str,
        id: &str,
        state: ServerState,
    ) -> Result<ServerView, Error> {
        let audit = Audit {
            actor,
            action: "set-state",
            target: id,
            details: state.name().into(),
        };
        if !self.store.set_server_state(id, state, false, audit).await? {
            return Err(Error::NotFound);
        }
        self.fleet.reload().await?;
        self.view(id).await
    }

    /// Cordons the server; the poller disables it once it carries no meeting.
    pub async fn drain(&self, actor: &str, id: &str) -> Result<ServerView, Error> {
        let audit = Audit {
            actor,
            action: "drain",
            target: id,
            details: "cordoned; disabled once empty".into(),
        };
        if !self
            .store
            .set_server_state(id, ServerState::Cordoned, true, audit)
            .await?
        {
            return Err(Error::NotFound);
        }
        self.fleet.reload().await?;
        self.view(id).await
    }

    /// Moves a room's meeting: ends it on its current server first, so users are never split
    /// across two servers, and refuses when that fails unless `force`.
    pub async fn move_room(
        &self,
        actor: &str,
        event_id: &str,
        room_id: &str,
        target: Option<&str>,
        force: bool,
    ) -> Result<Moved, Error> {
        let meeting = self
            .store
            .room_meeting(event_id, room_id)
            .await?
            .ok_or(Error::NotFound)?;
        let from = meeting.server_id.clone();
        let (target, placed) = match target {
            Some(id) => {
                let server = self.fleet.get(id).ok_or(Error::NotFound)?;
                if server.spec.state == ServerState::Disabled {
                    return Err(Error::Refused("the target server is disabled"));
                }
                (server, false)
            }
            None => {
                let request = PlacementRequest {
                    event_id,
                    organizer_id: &meeting.organizer_id,
                    kind: MeetingKind::Room,
                    prefer: None,
                    participants: 0,
                    // An operator's move goes where load says, whatever a plan said.
                    room: None,
                };
                let server = self
                    .fleet
                    .place(
                        &request,
                        std::slice::from_ref(&from),
                        &meeting.bbb_meeting_id,
                    )
                    .await?
                    .ok_or(Error::Refused("no other server can take the room"))?;
                (server, true)
            }
        };
        let moved = self.move_to(actor, &meeting, &target, force).await;
        // A move refused after its placement takes the reservation back: nothing comes to the
        // target for it.
        if placed && moved.is_err() {
            self.fleet
                .withdraw(&meeting.bbb_meeting_id, &target.spec.id)
                .await?;
        }
        let moved = moved?;
        self.meetings.forget_room(event_id, room_id);
        Ok(moved)
    }

    /// Moves `meeting` to `target` as `move_room` says.
    async fn move_to(
        &self,
        actor: &str,
        meeting: &crate::domain::Meeting,
        target: &crate::fleet::FleetServer,
        force: bool,
    ) -> Result<Moved, Error> {
        let from = meeting.server_id.clone();
        if target.spec.id == from {
            return Err(Error::Refused("the room is already on that server"));
        }
        let ended = match self.fleet.get(&from) {
            Some(old) => match self
                .fleet
                .end(&old, &meeting.bbb_meeting_id, Some(&meeting.moderator_pw))
                .await
            {
                // Not running there: nothing to end.
                Ok(_) => true,
                Err(err) => {
                    tracing::warn!(server = %from, error = %err, "ending the meeting before a move failed");
                    false
                }
            },
            None => false,
        };
        if !ended && !force {
            return Err(Error::Refused(
                "ending the meeting on its current server failed; retry, or force the move",
            ));
        }
        let details = format!(
            "from {from} to {}; {}",
            target.spec.id,
            if ended {
                "ended on the old server"
            } else {
                "FORCED: not ended on the old server, users may be split until they rejoin"
            }
        );
        let room = format!(
            "{}/{}",
            meeting.event_id,
            meeting.room_id.as_deref().unwrap_or_default()
        );
        let audit = Audit {
            actor,
            action: "move-room",
            target: &room,
            details,
        };
        let stored = self
            .store
            .repin(&meeting.id, &from, &target.spec.id, Some(audit))
            .await?;
        if stored.server_id != target.spec.id {
            return Err(Error::Refused("the room was moved meanwhile; look again"));
        }
        Ok(Moved {
            from,
            to: target.spec.id.clone(),
            ended_on_old_server: ended,
        })
    }

    pub async fn explain(
        &self,
        event_id: &str,
        organizer_id: &str,
        kind: MeetingKind,
        prefer: &str,
        participants: u32,
        room: &str,
    ) -> Result<Decision, Error> {
        let rooms = match kind {
            MeetingKind::Room => self.store.event_rooms_per_server(event_id).await?,
            MeetingKind::Call => HashMap::new(),
        };
        let request = PlacementRequest {
            event_id,
            organizer_id,
            kind,
            prefer: (!prefer.is_empty()).then_some(prefer),
            participants,
            room: (!room.is_empty()).then_some(room),
        };
        Ok(self.fleet.explain(&request, &rooms))
    }

    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, Error> {
        Ok(self
            .store
            .audit_log(u64::from(limit.clamp(1, 1000)))
            .await?)
    }
}
