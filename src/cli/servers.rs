//! `eventyay-bbb servers …`: the operators' commands, a client of a running service's
//! FleetService. Human tables by default, JSON with `--json`.

use crate::{
    bbb::ChecksumAlgorithm,
    proto::{self, fleet_service_client::FleetServiceClient},
};
use serde_json::{Value, json};
use std::{error::Error, time::Duration};
use tonic::{Request, metadata::MetadataValue, transport::Channel};

#[derive(Debug, clap::Args)]
pub struct ServersArgs {
    /// The service's gRPC address.
    #[arg(
        long,
        env = "EVENTYAY_BBB_ADDRESS",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    address: String,
    /// An admin token (FleetService).
    #[arg(
        long,
        env = "EVENTYAY_BBB_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    admin_token: Option<String>,
    /// Who you are, for the audit log.
    #[arg(long, env = "USER", global = true)]
    actor: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: ServersCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ServersCommand {
    /// Every server with its state, health, load, meetings and participants.
    List,
    /// Add or update a server. The secret is read from --secret-file or EVENTYAY_BBB_SERVER_SECRET
    /// (never a flag, so it stays out of shell history); omit it on update to keep the current one.
    Put(PutArgs),
    /// Delete a server that never hosted a meeting.
    Remove { id: String },
    /// Set a server's state: enabled, cordoned or disabled.
    State { id: String, state: String },
    /// Cordon a server and disable it once it is empty.
    Drain { id: String },
    /// Move a room to another server (ends it on its current server first).
    MoveRoom {
        event_id: String,
        room_id: String,
        /// The target server; placement chooses when omitted.
        #[arg(long)]
        to: Option<String>,
        /// Move even if ending the meeting on its current server fails.
        #[arg(long)]
        force: bool,
    },
    /// Why a new meeting would go where it goes.
    Explain {
        event_id: String,
        organizer_id: String,
        /// A private call rather than a room.
        #[arg(long)]
        call: bool,
        #[arg(long, default_value = "")]
        prefer: String,
        /// The participants the meeting expects (servers it would take past their cap are
        /// excluded).
        #[arg(long, default_value_t = 0)]
        participants: u32,
        /// A room of the event: its planned session, if the event's kept plan has one running
        /// or about to start, is shown and followed.
        #[arg(long, default_value = "")]
        room: String,
    },
    /// The audit log, newest first.
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Debug, clap::Args)]
struct PutArgs {
    id: String,
    #[arg(long)]
    url: String,
    #[arg(long)]
    secret_file: Option<std::path::PathBuf>,
    #[arg(long, default_value = "sha256")]
    checksum: ChecksumAlgorithm,
    /// enabled, cordoned or disabled; left out, a new server is enabled and an existing one
    /// keeps its state (and its drain).
    #[arg(long)]
    state: Option<String>,
    #[arg(long)]
    rooms_only: bool,
    #[arg(long, value_delimiter = ',')]
    events: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    organizers: Vec<String>,
    #[arg(long, default_value_t = 1.0)]
    weight: f64,
    #[arg(long, default_value_t = 0)]
    max_meetings: u32,
    #[arg(long, default_value_t = 0)]
    max_participants: u32,
}

fn state(name: &str) -> Result<i32, String> {
    Ok(match name {
        "enabled" => proto::ServerState::Enabled,
        "cordoned" => proto::ServerState::Cordoned,
        "disabled" => proto::ServerState::Disabled,
        other => {
            return Err(format!(
                "unknown state {other:?}: enabled, cordoned or disabled"
            ));
        }
    } as i32)
}

fn state_name(state: i32) -> &'static str {
    match proto::ServerState::try_from(state) {
        Ok(proto::ServerState::Enabled) => "enabled",
        Ok(proto::ServerState::Cordoned) => "cordoned",
        Ok(proto::ServerState::Disabled) => "disabled",
        _ => "?",
    }
}

fn checksum_name(algorithm: i32) -> &'static str {
    proto::ChecksumAlgorithm::try_from(algorithm)
        .ok()
        .and_then(|a| ChecksumAlgorithm::try_from(a).ok())
        .map_or("?", ChecksumAlgorithm::name)
}

fn health_name(health: i32) -> &'static str {
    match proto::ServerHealth::try_from(health) {
        Ok(proto::ServerHealth::Healthy) => "healthy",
        Ok(proto::ServerHealth::Unhealthy) => "unhealthy",
        Ok(proto::ServerHealth::Misconfigured) => "misconfigured",
        _ => "unknown",
    }
}

struct Client {
    inner: FleetServiceClient<Channel>,
    token: String,
    actor: Option<String>,
}

impl Client {
    fn request<T>(&self, message: T) -> Result<Request<T>, Box<dyn Error>> {
        let mut request = Request::new(message);
        request.set_timeout(Duration::from_secs(30));
        let bearer: MetadataValue<_> = format!("Bearer {}", self.token)
            .parse()
            .map_err(|_| "the admin token holds characters a header cannot")?;
        request.metadata_mut().insert("authorization", bearer);
        if let Some(actor) = self.actor.as_deref().and_then(|a| a.parse().ok()) {
            request.metadata_mut().insert("x-actor", actor);
        }
        Ok(request)
    }
}

/// A failed call, as an operator reads it: the status and the service's own words.
fn failed(status: tonic::Status) -> Box<dyn Error> {
    format!("{:?}: {}", status.code(), status.message()).into()
}

fn server_json(s: &proto::ServerInfo) -> Value {
    let spec = s.spec.clone().unwrap_or_default();
    json!({
        "id": spec.id, "url": spec.url, "checksum": checksum_name(spec.checksum_algorithm),
        "state": state_name(spec.state),
        "draining": s.draining, "health": health_name(s.health),
        "health_reason": s.health_reason, "load": s.load,
        "meetings": s.meetings, "participants": s.participants, "weight": spec.weight,
        "rooms_only": spec.rooms_only, "events": spec.events, "organizers": spec.organizers,
        "max_meetings": spec.max_meetings, "max_participants": spec.max_participants,
        "from_file": s.from_file,
    })
}

/// Prints rows under a header, each column as wide as its widest cell.
fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .into_iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
}

pub async fn run(args: ServersArgs) -> Result<(), Box<dyn Error>> {
    let token = args
        .admin_token
        .clone()
        .ok_or("an admin token is needed: --admin-token or EVENTYAY_BBB_ADMIN_TOKEN")?;
    let channel = Channel::from_shared(args.address.clone())
        .map_err(|_| {
            format!(
                "{:?} is not an address like http://127.0.0.1:50051",
                args.address
            )
        })?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|_| format!("cannot reach the service at {}", args.address))?;
    let mut client = Client {
        inner: FleetServiceClient::new(channel),
        token,
        actor: args.actor.clone(),
    };
    let out = |value: Value, human: &dyn Fn()| {
        if args.json {
            println!("{value:#}");
        } else {
            human();
        }
    };
    match args.command {
        ServersCommand::List => {
            let request = client.request(proto::ListServersRequest {})?;
            let servers = client
                .inner
                .list_servers(request)
                .await
                .map_err(failed)?
                .into_inner()
                .servers;
            out(
                Value::Array(servers.iter().map(server_json).collect()),
                &|| {
                    table(
                        &[
                            "ID",
                            "STATE",
                            "HEALTH",
                            "LOAD",
                            "MEETINGS",
                            "PARTICIPANTS",
                            "WEIGHT",
                            "URL",
                            "WHY",
                        ],
                        servers
                            .iter()
                            .map(|s| {
                                let spec = s.spec.clone().unwrap_or_default();
                                let state = if s.draining {
                                    "draining".into()
                                } else {
                                    state_name(spec.state).to_owned()
                                };
                                vec![
                                    spec.id,
                                    state,
                                    health_name(s.health).into(),
                                    format!("{:.0}", s.load),
                                    s.meetings.to_string(),
                                    s.participants.to_string(),
                                    format!("{}", spec.weight),
                                    spec.url,
                                    s.health_reason.clone(),
                                ]
                            })
                            .collect(),
                    )
                },
            );
        }
        ServersCommand::Put(put) => {
            let secret = match &put.secret_file {
                Some(path) => std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                    .trim()
                    .to_owned(),
                None => std::env::var("EVENTYAY_BBB_SERVER_SECRET").unwrap_or_default(),
            };
            let spec = proto::ServerSpec {
                id: put.id,
                url: put.url,
                secret,
                checksum_algorithm: proto::ChecksumAlgorithm::from(put.checksum) as i32,
                state: put
                    .state
                    .as_deref()
                    .map(state)
                    .transpose()?
                    .unwrap_or_default(),
                rooms_only: put.rooms_only,
                events: put.events,
                organizers: put.organizers,
                weight: put.weight,
                max_meetings: put.max_meetings,
                max_participants: put.max_participants,
            };
            let request = client.request(proto::PutServerRequest { server: Some(spec) })?;
            let reply = client
                .inner
                .put_server(request)
                .await
                .map_err(failed)?
                .into_inner();
            let server = reply.server.unwrap_or_default();
            out(
                json!({"created": reply.created, "server": server_json(&server)}),
                &|| {
                    let spec = server.spec.clone().unwrap_or_default();
                    let why = if server.health_reason.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", server.health_reason)
                    };
                    println!(
                        "{} {}: {}, {}{why}",
                        if reply.created { "added" } else { "updated" },
                        spec.id,
                        state_name(spec.state),
                        health_name(server.health)
                    );
                },
            );
        }
        ServersCommand::Remove { id } => {
            let request = client.request(proto::RemoveServerRequest { id: id.clone() })?;
            client.inner.remove_server(request).await.map_err(failed)?;
            out(json!({"removed": id}), &|| println!("removed {id}"));
        }
        ServersCommand::State { id, state: name } => {
            let request = client.request(proto::SetServerStateRequest {
                id,
                state: state(&name)?,
            })?;
            let server = client
                .inner
                .set_server_state(request)
                .await
                .map_err(failed)?
                .into_inner()
                .server
                .unwrap_or_default();
            out(server_json(&server), &|| {
                let spec = server.spec.clone().unwrap_or_default();
                println!("{}: {}", spec.id, state_name(spec.state));
            });
        }
        ServersCommand::Drain { id } => {
            let request = client.request(proto::DrainServerRequest { id })?;
            let server = client
                .inner
                .drain_server(request)
                .await
                .map_err(failed)?
                .into_inner()
                .server
                .unwrap_or_default();
            out(server_json(&server), &|| {
                let spec = server.spec.clone().unwrap_or_default();
                println!(
                    "{}: draining (cordoned; disabled once it carries no meeting)",
                    spec.id
                );
            });
        }
        ServersCommand::MoveRoom {
            event_id,
            room_id,
            to,
            force,
        } => {
            let request = client.request(proto::MoveRoomRequest {
                event_id,
                room_id,
                server_id: to.unwrap_or_default(),
                force,
            })?;
            let moved = client
                .inner
                .move_room(request)
                .await
                .map_err(failed)?
                .into_inner();
            out(
                json!({"from": moved.from_server_id, "to": moved.to_server_id, "ended_on_old_server": moved.ended_on_old_server}),
                &|| {
                    println!(
                        "moved from {} to {}",
                        moved.from_server_id, moved.to_server_id
                    );
                    if !moved.ended_on_old_server {
                        println!(
                            "warning: forced; the meeting was not ended on {}",
                            moved.from_server_id
                        );
                    }
                },
            );
        }
        ServersCommand::Explain {
            event_id,
            organizer_id,
            call,
            prefer,
            participants,
            room,
        } => {
            let kind = if call {
                proto::MeetingKind::Call
            } else {
                proto::MeetingKind::Room
            };
            let request = client.request(proto::ExplainPlacementRequest {
                event_id,
                organizer_id,
                kind: kind as i32,
                prefer_server: prefer,
                expected_participants: participants,
                room_id: room,
            })?;
            let reply = client
                .inner
                .explain_placement(request)
                .await
                .map_err(failed)?
                .into_inner();
            let rows: Vec<Value> = reply
                .candidates
                .iter()
                .map(|c| json!({"server": c.server_id, "eligible": c.eligible, "excluded_because": c.excluded_because,
                    "tier": c.tier, "load": c.load, "weight": c.weight, "score": c.score, "event_rooms": c.event_rooms}))
                .collect();
            let time = |t: &Option<prost_types::Timestamp>| {
                (*t).and_then(|t| std::time::SystemTime::try_from(t).ok())
                    .map(crate::calendar::utc_minutes)
                    .unwrap_or_default()
            };
            let planned = reply.planned.as_ref().map(|p| {
                json!({"server": p.server_id, "start": time(&p.start), "end": time(&p.end),
                    "expected_participants": p.expected_participants, "reserving": p.reserving})
            });
            out(
                json!({"chosen": reply.chosen_server_id, "candidates": rows, "planned": planned}),
                &|| {
                    if let Some(p) = &reply.planned {
                        println!(
                            "planned: {} from {} to {}, {} expected{}",
                            if p.server_id.is_empty() {
                                "no server (the forecast found none)"
                            } else {
                                &p.server_id
                            },
                            time(&p.start),
                            time(&p.end),
                            p.expected_participants,
                            if p.reserving {
                                ", reserved there now"
                            } else {
                                ""
                            }
                        );
                    }
                    println!(
                        "would choose: {}",
                        if reply.chosen_server_id.is_empty() {
                            "none (no server fits)"
                        } else {
                            &reply.chosen_server_id
                        }
                    );
                    table(
                        &[
                            "SERVER",
                            "TIER",
                            "LOAD",
                            "WEIGHT",
                            "SCORE",
                            "EVENT ROOMS",
                            "NOTE",
                        ],
                        reply
                            .candidates
                            .iter()
                            .map(|c| {
                                vec![
                                    c.server_id.clone(),
                                    c.tier.to_string(),
                                    format!("{:.1}", c.load),
                                    format!("{}", c.weight),
                                    format!("{:.1}", c.score),
                                    c.event_rooms.to_string(),
                                    c.excluded_because.clone(),
                                ]
                            })
                            .collect(),
                    );
                },
            );
        }
        ServersCommand::Audit { limit } => {
            let request = client.request(proto::ListAuditLogRequest { limit })?;
            let entries = client
                .inner
                .list_audit_log(request)
                .await
                .map_err(failed)?
                .into_inner()
                .entries;
            let when = |e: &proto::AuditEntry| e.at.map_or(0, |t| t.seconds);
            out(
                Value::Array(
                    entries
                        .iter()
                        .map(|e| json!({"at": when(e), "actor": e.actor, "action": e.action, "target": e.target, "details": e.details}))
                        .collect(),
                ),
                &|| {
                    table(
                        &["AT (UNIX)", "ACTOR", "ACTION", "TARGET", "DETAILS"],
                        entries
                            .iter()
                            .map(|e| vec![when(e).to_string(), e.actor.clone(), e.action.clone(), e.target.clone(), e.details.clone()])
                            .collect(),
                    )
                },
            );
        }
    }
    Ok(())
}
