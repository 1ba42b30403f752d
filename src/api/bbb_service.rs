//! `eventyay.bbb.v1.BbbService`: decode and check, call the domain, encode.

use super::{error::ApiError, validate};
use crate::{
    meetings::{self, CallJoin, Meetings, NewCall, Permissions, RoomJoin, RoomSettings},
    proto::{self, bbb_service_server::BbbService},
    recordings::Recordings,
};
use std::{sync::Arc, time::Duration};
use tonic::{Request, Response, Status};

pub struct BbbApi {
    pub meetings: Arc<Meetings>,
    pub recordings: Arc<Recordings>,
    /// The longest any call may take, whatever the caller's deadline.
    pub rpc_timeout: Duration,
}

/// Most members a private call may be created with.
const MAX_CALL_MEMBERS: usize = 1000;

impl BbbApi {
    /// Time left for the domain: the caller's deadline (or ours, if shorter), less a margin so
    /// that a typed error reaches the caller before its deadline fires.
    fn budget<T>(&self, request: &Request<T>) -> Duration {
        let deadline = request
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout)
            .map_or(self.rpc_timeout, |d| d.min(self.rpc_timeout));
        deadline.saturating_sub((deadline / 10).min(Duration::from_millis(200)))
    }
}

/// `grpc-timeout` as the gRPC HTTP/2 protocol writes it: up to 8 digits and a unit.
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Names are shortened to what BBB takes later (`meetings::params`), never refused.
fn user(user: Option<proto::User>, base: Option<&url::Url>) -> validate::Checked<meetings::User> {
    let user = user.ok_or(ApiError::invalid("user", "is required"))?;
    Ok(meetings::User {
        id: validate::id("user.id", &user.id)?,
        display_name: user.display_name,
        avatar_url: validate::passed_url("user.avatar_url", &user.avatar_url, base),
    })
}

/// A schedule as the forecast takes it (see `plan::check`).
fn schedule(
    sessions: Vec<proto::PlannedSession>,
    slot_minutes: u32,
) -> validate::Checked<(Vec<crate::fleet::plan::Session>, Duration)> {
    if sessions.len() > crate::fleet::plan::MAX_SESSIONS {
        return Err(ApiError::invalid("sessions", "at most 2,000"));
    }
    let time = |t: Option<prost_types::Timestamp>, field| {
        t.and_then(|t| std::time::SystemTime::try_from(t).ok())
            .ok_or(ApiError::invalid(
                field,
                "is required and must be a valid time",
            ))
    };
    let mut out = Vec::with_capacity(sessions.len());
    for s in sessions {
        out.push(crate::fleet::plan::Session {
            room_id: validate::id("sessions.room_id", &s.room_id)?,
            start: time(s.start, "sessions.start")?,
            end: time(s.end, "sessions.end")?,
            participants: s.expected_participants.min(MAX_EXPECTED),
        });
    }
    crate::fleet::plan::check(out, slot_minutes)
        .map_err(|(field, problem)| ApiError::invalid(field, problem))
}

/// No BBB server hosts more in one meeting; a larger figure is a typo, not a plan.
const MAX_EXPECTED: u32 = 100_000;

fn settings(
    s: Option<proto::RoomSettings>,
    base: Option<&url::Url>,
) -> validate::Checked<RoomSettings> {
    let s = s.unwrap_or_default();
    // The create leaves out a bridge BBB cannot take (`params::room_create`); say so here, once.
    if !s.voice_bridge.trim().is_empty()
        && meetings::params::voice_bridge(&s.voice_bridge).is_none()
    {
        tracing::warn!(
            field = "settings.voice_bridge",
            "left a voice bridge that is not 5 digits out of the create"
        );
    }
    Ok(RoomSettings {
        record: s.record,
        waiting_room: s.waiting_room,
        mute_on_start: s.mute_on_start,
        disable_cam: s.disable_cam,
        disable_chat: s.disable_chat,
        disable_private_chat: s.disable_private_chat,
        hide_presentation: s.hide_presentation,
        auto_microphone: s.auto_microphone,
        auto_camera: s.auto_camera,
        voice_bridge: s.voice_bridge,
        prefer_server: validate::text("settings.prefer_server", s.prefer_server.trim(), 2048)?,
        presentation_url: validate::passed_url(
            "settings.presentation_url",
            &s.presentation_url,
            base,
        ),
        expected_participants: s.expected_participants.min(MAX_EXPECTED),
    })
}

fn room_join(r: proto::RoomUrlRequest) -> validate::Checked<RoomJoin> {
    let base = validate::base_url(&r.base_url)?;
    Ok(RoomJoin {
        event_id: validate::id("event_id", &r.event_id)?,
        organizer_id: validate::id("organizer_id", &r.organizer_id)?,
        room_id: validate::id("room_id", &r.room_id)?,
        room_name: r.room_name,
        user: user(r.user, base.as_ref())?,
        permissions: Permissions::from_strings(r.permissions.iter().map(String::as_str)),
        settings: settings(r.settings, base.as_ref())?,
        domain: validate::domain(&r.domain)?,
    })
}

#[tonic::async_trait]
impl BbbService for BbbApi {
    async fn room_url(
        &self,
        request: Request<proto::RoomUrlRequest>,
    ) -> Result<Response<proto::RoomUrlResponse>, Status> {
        let budget = self.budget(&request);
        let join = room_join(request.into_inner())?;
        let url = self
            .meetings
            .room_url(&join, budget)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(proto::RoomUrlResponse {
            url: url.url,
            server_id: url.server_id,
            meeting_id: url.meeting_id,
            moderator: url.moderator,
        }))
    }

    async fn call_url(
        &self,
        request: Request<proto::CallUrlRequest>,
    ) -> Result<Response<proto::CallUrlResponse>, Status> {
        let budget = self.budget(&request);
        let r = request.into_inner();
        let event_id = validate::id("event_id", &r.event_id)?;
        let base = validate::base_url(&r.base_url)?;
        let user = user(r.user, base.as_ref())?;
        let domain = validate::domain(&r.domain)?;
        // A malformed call id is just another call the user is not in.
        let call_id = uuid::Uuid::parse_str(&r.call_id)
            .map_err(|_| ApiError::bbb_failed("not_invited", "call_id is not a UUID"))?
            .to_string();
        let join = CallJoin {
            event_id,
            call_id,
            user,
            domain,
        };
        let url = self
            .meetings
            .call_url(&join, budget)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(proto::CallUrlResponse {
            url: url.url,
            server_id: url.server_id,
            meeting_id: url.meeting_id,
        }))
    }

    async fn create_call(
        &self,
        request: Request<proto::CreateCallRequest>,
    ) -> Result<Response<proto::CreateCallResponse>, Status> {
        let budget = self.budget(&request);
        let r = request.into_inner();
        let event_id = validate::id("event_id", &r.event_id)?;
        let organizer_id = validate::id("organizer_id", &r.organizer_id)?;
        if r.member_ids.is_empty() || r.member_ids.len() > MAX_CALL_MEMBERS {
            return Err(ApiError::invalid("member_ids", "must list 1 to 1000 members").into());
        }
        let mut member_ids = r
            .member_ids
            .iter()
            .map(|m| validate::id("member_ids", m))
            .collect::<Result<Vec<_>, _>>()?;
        member_ids.sort();
        member_ids.dedup();
        let idempotency_key = match r.idempotency_key.as_str() {
            "" => None,
            key if key.len() <= 128 && !key.chars().any(char::is_control) => Some(key.to_owned()),
            _ => {
                return Err(ApiError::invalid(
                    "idempotency_key",
                    "at most 128 characters, no control characters",
                )
                .into());
            }
        };
        let call = NewCall {
            event_id,
            organizer_id,
            member_ids,
            idempotency_key,
        };
        let call_id = self
            .meetings
            .create_call(&call, budget)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(proto::CreateCallResponse { call_id }))
    }

    async fn forget_user(
        &self,
        request: Request<proto::ForgetUserRequest>,
    ) -> Result<Response<proto::ForgetUserResponse>, Status> {
        let user_id = validate::id("user_id", &request.into_inner().user_id)?;
        let calls = self
            .meetings
            .forget_user(&user_id)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(proto::ForgetUserResponse {
            calls: u32::try_from(calls).unwrap_or(u32::MAX),
        }))
    }

    async fn delete_event(
        &self,
        request: Request<proto::DeleteEventRequest>,
    ) -> Result<Response<proto::DeleteEventResponse>, Status> {
        let budget = self.budget(&request);
        let r = request.into_inner();
        let event_id = validate::id("event_id", &r.event_id)?;
        let deleted = self
            .meetings
            .delete_event(&event_id, r.end_meetings, budget)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(proto::DeleteEventResponse {
            meetings_deleted: u32::try_from(deleted.meetings_deleted).unwrap_or(u32::MAX),
            meetings_ended: u32::try_from(deleted.meetings_ended).unwrap_or(u32::MAX),
            end_failed_on: deleted.end_failed_on,
        }))
    }

    async fn availability(
        &self,
        request: Request<proto::AvailabilityRequest>,
    ) -> Result<Response<proto::AvailabilityResponse>, Status> {
        let r = request.into_inner();
        let event_id = validate::id("event_id", &r.event_id)?;
        let organizer_id = validate::id("organizer_id", &r.organizer_id)?;
        let available = self.meetings.availability(&event_id, &organizer_id);
        Ok(Response::new(proto::AvailabilityResponse {
            rooms: available.rooms,
            calls: available.calls,
        }))
    }

    async fn plan_schedule(
        &self,
        request: Request<proto::PlanScheduleRequest>,
    ) -> Result<Response<proto::PlanScheduleResponse>, Status> {
        let r = request.into_inner();
        let event_id = validate::id("event_id", &r.event_id)?;
        let organizer_id = validate::id("organizer_id", &r.organizer_id)?;
        let (sessions, slot) = schedule(r.sessions, r.slot_minutes)?;
        let forecast = self
            .meetings
            .forecast(&event_id, &organizer_id, &sessions, slot)
            .await
            .map_err(ApiError::from)?;
        let kept = if r.keep {
            let plan = forecast.plan(&event_id, &sessions);
            self.meetings
                .keep_plan(&event_id, &plan)
                .await
                .map_err(ApiError::from)?
        } else {
            0
        };
        Ok(Response::new(proto::PlanScheduleResponse {
            kept,
            slots: forecast
                .slots
                .into_iter()
                .map(|slot| proto::PlannedSlot {
                    start: Some(slot.start.into()),
                    participants_short: slot
                        .unplaced
                        .iter()
                        .map(|u| u64::from(u.participants))
                        .sum(),
                    servers: slot
                        .servers
                        .into_iter()
                        .map(|s| proto::PlannedServerLoad {
                            server_id: s.server_id,
                            load: s.load,
                            load_per_weight: s.load_per_weight,
                            meetings: s.meetings,
                            participants: s.participants,
                            max_meetings: s.max_meetings,
                            max_participants: s.max_participants,
                        })
                        .collect(),
                    unplaced: slot
                        .unplaced
                        .into_iter()
                        .map(|u| proto::UnplacedSession {
                            room_id: u.room_id,
                            expected_participants: u.participants,
                            reason: u.reason.into(),
                        })
                        .collect(),
                })
                .collect(),
            placements: forecast
                .placements
                .into_iter()
                .map(|p| proto::SessionPlacement {
                    room_id: p.room_id,
                    server_id: p.server_id,
                    start: Some(p.start.into()),
                })
                .collect(),
        }))
    }

    async fn list_recordings(
        &self,
        request: Request<proto::ListRecordingsRequest>,
    ) -> Result<Response<proto::ListRecordingsResponse>, Status> {
        let budget = self.budget(&request);
        let r = request.into_inner();
        let event_id = validate::id("event_id", &r.event_id)?;
        let room_id = validate::id("room_id", &r.room_id)?;
        let permissions = Permissions::from_strings(r.permissions.iter().map(String::as_str));
        let list = self
            .recordings
            .list(&event_id, &room_id, permissions, budget)
            .await
            .map_err(ApiError::from)?;
        let timestamp = |ms: Option<u64>| {
            ms.map(|ms| (std::time::UNIX_EPOCH + Duration::from_millis(ms)).into())
        };
        Ok(Response::new(proto::ListRecordingsResponse {
            results: list
                .recordings
                .into_iter()
                .map(|r| proto::Recording {
                    record_id: r.record_id,
                    start: timestamp(r.start),
                    end: timestamp(r.end),
                    participants: r.participants,
                    state: r.state,
                    url: r.url,
                    url_video: r.url_video,
                    url_screenshare: r.url_screenshare,
                    url_notes: r.url_notes,
                })
                .collect(),
            unreachable_servers: list.unreachable_servers,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts() {
        assert_eq!(
            parse_grpc_timeout("1500m"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("123456789S"), None);
        assert_eq!(parse_grpc_timeout("S"), None);
        assert_eq!(parse_grpc_timeout(""), None);
        assert_eq!(parse_grpc_timeout("10x"), None);
    }
}
