//! `eventyay.bbb.v1.FleetService`: the operators' API. Admin tokens only; secrets write-only.

use super::{auth::TokenIndex, error::ApiError, validate};
use crate::{
    bbb::ChecksumAlgorithm,
    domain::{Server, ServerState},
    fleet::{Health, MeetingKind},
    operators::{Operators, ServerView},
    proto::{self, fleet_service_server::FleetService},
    secret::Secret,
};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct FleetApi {
    pub operators: Arc<Operators>,
}

/// Who made a change, for the audit log: the `x-actor` metadata when it is a sane name, else
/// the position of the admin token used.
fn actor<T>(request: &Request<T>) -> String {
    let named = request
        .metadata()
        .get("x-actor")
        .and_then(|v| v.to_str().ok())
        .filter(|a| {
            (1..=64).contains(&a.len()) && a.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        });
    let token = request
        .extensions()
        .get::<TokenIndex>()
        .map_or(0, |t| t.0 + 1);
    match named {
        Some(name) => format!("{name} (admin token #{token})"),
        None => format!("admin token #{token}"),
    }
}

fn state_to_proto(state: ServerState) -> proto::ServerState {
    match state {
        ServerState::Enabled => proto::ServerState::Enabled,
        ServerState::Cordoned => proto::ServerState::Cordoned,
        ServerState::Disabled => proto::ServerState::Disabled,
    }
}

fn state_from_proto(state: i32, field: &'static str) -> Result<ServerState, ApiError> {
    match proto::ServerState::try_from(state) {
        Ok(proto::ServerState::Enabled) => Ok(ServerState::Enabled),
        Ok(proto::ServerState::Cordoned) => Ok(ServerState::Cordoned),
        Ok(proto::ServerState::Disabled) => Ok(ServerState::Disabled),
        _ => Err(ApiError::invalid(
            field,
            "must be enabled, cordoned or disabled",
        )),
    }
}

impl From<ChecksumAlgorithm> for proto::ChecksumAlgorithm {
    fn from(algorithm: ChecksumAlgorithm) -> Self {
        match algorithm {
            ChecksumAlgorithm::Sha1 => Self::Sha1,
            ChecksumAlgorithm::Sha256 => Self::Sha256,
            ChecksumAlgorithm::Sha384 => Self::Sha384,
            ChecksumAlgorithm::Sha512 => Self::Sha512,
        }
    }
}

impl TryFrom<proto::ChecksumAlgorithm> for ChecksumAlgorithm {
    type Error = ();

    /// Unspecified names no algorithm: the caller decides what it means.
    fn try_from(algorithm: proto::ChecksumAlgorithm) -> Result<Self, ()> {
        match algorithm {
            proto::ChecksumAlgorithm::Unspecified => Err(()),
            proto::ChecksumAlgorithm::Sha1 => Ok(Self::Sha1),
            proto::ChecksumAlgorithm::Sha256 => Ok(Self::Sha256),
            proto::ChecksumAlgorithm::Sha384 => Ok(Self::Sha384),
            proto::ChecksumAlgorithm::Sha512 => Ok(Self::Sha512),
        }
    }
}

fn info(view: ServerView) -> proto::ServerInfo {
    let s = view.server;
    let status = view.status.unwrap_or_default();
    proto::ServerInfo {
        spec: Some(proto::ServerSpec {
            id: s.id,
            url: s.url,
            // Write-only: never returned.
            secret: String::new(),
            checksum_algorithm: proto::ChecksumAlgorithm::from(s.checksum) as i32,
            state: state_to_proto(s.state) as i32,
            rooms_only: s.rooms_only,
            events: s.events,
            organizers: s.organizers,
            weight: s.weight,
            max_meetings: s.max_meetings,
            max_participants: s.max_participants,
        }),
        draining: s.draining,
        health: match status.health {
            Health::Unknown => proto::ServerHealth::Unspecified,
            Health::Healthy => proto::ServerHealth::Healthy,
            Health::Unhealthy => proto::ServerHealth::Unhealthy,
            Health::Misconfigured => proto::ServerHealth::Misconfigured,
        } as i32,
        load: status.load,
        meetings: status.meetings,
        participants: status.participants,
        from_file: view.from_file,
        health_reason: status.health_reason,
    }
}

/// The server a PutServer describes, and the state it asks for (`None`: unspecified).
fn server_from_spec(
    spec: Option<proto::ServerSpec>,
) -> Result<(Server, Option<ServerState>), ApiError> {
    let spec = spec.ok_or(ApiError::invalid("server", "is required"))?;
    let checksum = match proto::ChecksumAlgorithm::try_from(spec.checksum_algorithm) {
        Ok(proto::ChecksumAlgorithm::Unspecified) => ChecksumAlgorithm::default(),
        Ok(known) => ChecksumAlgorithm::try_from(known).unwrap_or_default(),
        Err(_) => {
            return Err(ApiError::invalid(
                "server.checksum_algorithm",
                "must be sha1, sha256, sha384 or sha512",
            ));
        }
    };
    let state = if spec.state == proto::ServerState::Unspecified as i32 {
        None
    } else {
        Some(state_from_proto(spec.state, "server.state")?)
    };
    let server = Server {
        checksum,
        rooms_only: spec.rooms_only,
        events: spec.events,
        organizers: spec.organizers,
        weight: if spec.weight == 0.0 { 1.0 } else { spec.weight },
        max_meetings: spec.max_meetings,
        max_participants: spec.max_participants,
        ..Server::new(spec.id, spec.url.trim(), Secret::new(spec.secret.trim()))
    };
    Ok((server, state))
}

#[tonic::async_trait]
impl FleetService for FleetApi {
    async fn list_servers(
        &self,
        _request: Request<proto::ListServersRequest>,
    ) -> Result<Response<proto::ListServersResponse>, Status> {
        let servers = self.operators.list().await.map_err(ApiError::from)?;
        Ok(Response::new(proto::ListServersResponse {
            servers: servers.into_iter().map(info).collect(),
        }))
    }

    async fn put_server(
        &self,
        request: Request<proto::PutServerRequest>,
    ) -> Result<Response<proto::PutServerResponse>, Status> {
        let actor = actor(&request);
        let (server, state) = server_from_spec(request.into_inner().server)?;
        let (view, created) = self
            .operators
            .put(&actor, server, state)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(proto::PutServerResponse {
            server: Some(info(view)),
            created,
        }))
    }

    async fn remove_server(
        &self,
        request: Request<proto::RemoveServerRequest>,
    ) -> Result<Response<proto::RemoveServerResponse>, Status> {
        let actor = actor(&request);
        let id = validate::id("id", &request.into_inner().id)?;
        self.operators
            .remove(&actor, &id)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(proto::RemoveServerResponse {}))
    }

    async fn set_server_state(
        &self,
        request: Request<proto::SetServerStateRequest>,
    ) -> Result<Response<proto::SetServerStateResponse>, Status> {
        let actor = actor(&request);
        let r = request.into_inner();
        let id = validate::id("id", &r.id)?;
        let state = state_from_proto(r.state, "state")?;
        let view = self
            .operators
            .set_state(&actor, &id, state)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(proto::SetServerStateResponse {
            server: Some(info(view)),
        }))
    }

    async fn drain_server(
        &self,
        request: Request<proto::DrainServerRequest>,
    ) -> Result<Response<proto::DrainServerResponse>, Status> {
        let actor = actor(&request);
        let id = validate::id("id", &request.into_inner().id)?;
        let view = self
            .operators
            .drain(&actor, &id)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(proto::DrainServerResponse {
            server: Some(info(view)),
        }))
    }

    async fn move_room(
        &self,
        request: Request<proto::MoveRoomRequest>,
    ) -> Result<Response<proto::MoveRoomResponse>, Status> {
        let actor = actor(&request);
        let r = request.into_inner();
        let event_id = validate::id("event_id", &r.event_id)?;
        let room_id = validate::id("room_id", &r.room_id)?;
        let target = if r.server_id.is_empty() {
            None
        } else {
            Some(validate::id("server_id", &r.server_id)?)
        };
        let moved = self
            .operators
            .move_room(&actor, &event_id, &room_id, target.as_deref(), r.force)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(proto::MoveRoomResponse {
            from_server_id: moved.from,
            to_server_id: moved.to,
            ended_on_old_server: moved.ended_on_old_server,
        }))
    }

    async fn explain_placement(
        &self,
        request: Request<proto::ExplainPlacementRequest>,
    ) -> Result<Response<proto::ExplainPlacementResponse>, Status> {
        let r = request.into_inner();
        let event_id = validate::id("event_id", &r.event_id)?;
        let organizer_id = validate::id("organizer_id", &r.organizer_id)?;
        let kind = match proto::MeetingKind::try_from(r.kind) {
            Ok(proto::MeetingKind::Call) => MeetingKind::Call,
            _ => MeetingKind::Room,
        };
        let prefer = validate::text("prefer_server", r.prefer_server.trim(), 2048)?;
        let room_id = if r.room_id.is_empty() {
            String::new()
        } else {
            validate::id("room_id", &r.room_id)?
        };
        let explained = self
            .operators
            .explain(
                &event_id,
                &organizer_id,
                kind,
                &prefer,
                r.expected_participants.min(100_000),
                &room_id,
            )
            .await
            .map_err(ApiError::from)?;
        let now = std::time::SystemTime::now();
        Ok(Response::new(proto::ExplainPlacementResponse {
            chosen_server_id: explained
                .chosen
                .map(|s| s.spec.id.clone())
                .unwrap_or_default(),
            planned: explained.planned.map(|p| proto::PlannedPlacement {
                reserving: crate::fleet::plan::reserves(&p, now),
                server_id: p.server_id,
                start: Some(p.start.into()),
                end: Some(p.end.into()),
                expected_participants: p.participants,
            }),
            candidates: explained
                .servers
                .into_iter()
                .map(|r| proto::PlacementCandidate {
                    score: r.score(),
                    server_id: r.server_id,
                    eligible: r.excluded_because.is_none(),
                    excluded_because: r.excluded_because.clone().unwrap_or_default(),
                    tier: u32::from(r.tier),
                    load: r.load,
                    weight: r.weight,
                    event_rooms: r.event_rooms,
                })
                .collect(),
        }))
    }

    async fn list_audit_log(
        &self,
        request: Request<proto::ListAuditLogRequest>,
    ) -> Result<Response<proto::ListAuditLogResponse>, Status> {
        let limit = match request.into_inner().limit {
            0 => 100,
            n => n,
        };
        let entries = self
            .operators
            .audit_log(limit)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(proto::ListAuditLogResponse {
            entries: entries
                .into_iter()
                .map(|e| proto::AuditEntry {
                    at: Some(e.at.into()),
                    actor: e.actor,
                    action: e.action,
                    target: e.target,
                    details: e.details,
                })
                .collect(),
        }))
    }
}
