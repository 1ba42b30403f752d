//! `eventyay-bbb import FILE`: takes over what the Python module knows, from the JSON export
//! documented in the README (written by `examples/django/export_bbb.py`).
//!
//! Every record is checked before anything is written; a bad record is reported with its
//! position and nothing at all is written. The write is one transaction, and running the same
//! import twice changes nothing.

use crate::{
    bbb::ChecksumAlgorithm,
    domain::is_valid_id,
    domain::{Meeting, Server, ServerState},
    meetings::params::voice_bridge,
    secret::Secret,
    store::{ImportPlan, Store},
};
use serde::Deserialize;
use std::{collections::HashSet, error::Error, path::PathBuf};

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The JSON export of the Python module.
    file: PathBuf,
    #[arg(long, env = "EVENTYAY_BBB_DATABASE_URL", hide_env_values = true,
          default_value = crate::config::DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Check the file and say what would be written, without writing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Export {
    version: u32,
    #[serde(default)]
    servers: Vec<ExportServer>,
    #[serde(default)]
    rooms: Vec<ExportRoom>,
    #[serde(default)]
    calls: Vec<ExportCall>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportServer {
    id: String,
    url: String,
    secret: String,
    #[serde(default)]
    checksum: Option<String>,
    #[serde(default = "yes")]
    active: bool,
    #[serde(default)]
    rooms_only: bool,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    organizers: Vec<String>,
    #[serde(default)]
    disable_ssl: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportRoom {
    event_id: String,
    organizer_id: String,
    room_id: String,
    server_id: String,
    meeting_id: String,
    attendee_pw: String,
    moderator_pw: String,
    /// The backend keeps these in the room's settings and sends them with every join; they
    /// are checked here (an export written straight from the Python model carries them) but
    /// not stored.
    #[serde(default)]
    voice_bridge: Option<String>,
    #[serde(default)]
    guest_policy: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportCall {
    call_id: String,
    event_id: String,
    organizer_id: String,
    server_id: String,
    meeting_id: String,
    attendee_pw: String,
    moderator_pw: String,
    #[serde(default)]
    invitees: Vec<String>,
}

/// Problems found, each with the record's position, e.g. `rooms[3].meeting_id: …`; and
/// warnings, which do not stop the import.
#[derive(Default)]
struct Problems {
    errors: Vec<String>,
    warnings: Vec<String>,
}

impl Problems {
    fn check(&mut self, ok: bool, at: impl FnOnce() -> String, what: &str) {
        if !ok {
            self.errors.push(format!("{}: {what}", at()));
        }
    }

    fn warn(&mut self, ok: bool, at: impl FnOnce() -> String, what: &str) {
        if !ok {
            self.warnings.push(format!("{}: {what}", at()));
        }
    }
}

/// What the import will write, and what it noticed on the way.
struct Planned {
    plan: ImportPlan,
    warnings: Vec<String>,
}

fn valid_meeting_id(id: &str) -> bool {
    (2..=256).contains(&id.chars().count()) && !id.contains(',')
}

fn valid_password(pw: &str) -> bool {
    (2..=64).contains(&pw.chars().count())
}

/// Checks an export against what exists already, and turns it into a plan.
fn plan(export: Export, known_servers: &HashSet<String>) -> Result<Planned, Vec<String>> {
    let mut p = Problems::default();
    p.check(export.version == 1, || "version".into(), "must be 1");
    let mut plan = ImportPlan::default();
    let mut servers: HashSet<String> = known_servers.clone();
    let mut seen = HashSet::new();
    for (i, s) in export.servers.into_iter().enumerate() {
        let at = |f: &str| format!("servers[{i}].{f}");
        p.check(seen.insert(s.id.clone()), || at("id"), "listed twice");
        let checksum: Option<ChecksumAlgorithm> = match s.checksum.as_deref() {
            None => Some(ChecksumAlgorithm::Sha1),
            Some(name) => name.parse().ok(),
        };
        p.check(
            checksum.is_some(),
            || at("checksum"),
            "must be sha1, sha256, sha384 or sha512",
        );
        servers.insert(s.id.clone());
        let server = Server {
            checksum: checksum.unwrap_or_default(),
            state: if s.active {
                ServerState::Enabled
            } else {
                ServerState::Disabled
            },
            rooms_only: s.rooms_only,
            events: s.events,
            organizers: s.organizers,
            insecure_tls: s.disable_ssl,
            ..Server::new(s.id, s.url.trim(), Secret::new(s.secret.trim()))
        };
        // The same rules as the servers file's and PutServer's.
        if let Err(bad) = server.check(true) {
            p.check(false, || at(bad.field), bad.problem);
        }
        plan.servers.push(server);
    }
    let mut rooms = HashSet::new();
    for (i, r) in export.rooms.into_iter().enumerate() {
        let at = |f: &str| format!("rooms[{i}].{f}");
        for (field, value) in [
            ("event_id", &r.event_id),
            ("organizer_id", &r.organizer_id),
            ("room_id", &r.room_id),
        ] {
            p.check(
                is_valid_id(value),
                || at(field),
                "must be 1-128 letters, digits or ._:-",
            );
        }
        p.check(
            servers.contains(&r.server_id),
            || at("server_id"),
            "names no server of the export or the database",
        );
        p.check(
            valid_meeting_id(&r.meeting_id),
            || at("meeting_id"),
            "must be 2-256 characters without commas",
        );
        p.check(
            valid_password(&r.attendee_pw),
            || at("attendee_pw"),
            "must be 2-64 characters",
        );
        p.check(
            valid_password(&r.moderator_pw),
            || at("moderator_pw"),
            "must be 2-64 characters",
        );
        p.check(
            rooms.insert((r.event_id.clone(), r.room_id.clone())),
            || at("room_id"),
            "listed twice",
        );
        // The same rule as a join's: a bridge BBB cannot take is left out, BBB picks one.
        let bridge_ok = r
            .voice_bridge
            .as_deref()
            .is_none_or(|b| b.trim().is_empty() || voice_bridge(b).is_some());
        p.warn(
            bridge_ok,
            || at("voice_bridge"),
            "not 5 digits: joins leave it out and BBB picks one",
        );
        let policy_ok = r.guest_policy.as_deref().is_none_or(|g| {
            [
                "",
                "ALWAYS_ACCEPT",
                "ALWAYS_DENY",
                "ASK_MODERATOR",
                "ALWAYS_ACCEPT_AUTH",
            ]
            .contains(&g)
        });
        p.check(
            policy_ok,
            || at("guest_policy"),
            "must be a BBB guest policy",
        );
        plan.rooms.push(Meeting {
            id: uuid::Uuid::new_v4().to_string(),
            event_id: r.event_id,
            organizer_id: r.organizer_id,
            room_id: Some(r.room_id),
            bbb_meeting_id: r.meeting_id,
            attendee_pw: r.attendee_pw,
            moderator_pw: r.moderator_pw,
            server_id: r.server_id,
            imported: true,
            claimed_at: 0,
        });
    }
    let mut calls = HashSet::new();
    for (i, c) in export.calls.into_iter().enumerate() {
        let at = |f: &str| format!("calls[{i}].{f}");
        let id = uuid::Uuid::parse_str(&c.call_id).map(|u| u.to_string());
        p.check(id.is_ok(), || at("call_id"), "must be a UUID");
        p.check(
            is_valid_id(&c.event_id),
            || at("event_id"),
            "must be 1-128 letters, digits or ._:-",
        );
        p.check(
            is_valid_id(&c.organizer_id),
            || at("organizer_id"),
            "must be 1-128 letters, digits or ._:-",
        );
        p.check(
            servers.contains(&c.server_id),
            || at("server_id"),
            "names no server of the export or the database",
        );
        p.check(
            valid_meeting_id(&c.meeting_id),
            || at("meeting_id"),
            "must be 2-256 characters without commas",
        );
        p.check(
            valid_password(&c.attendee_pw),
            || at("attendee_pw"),
            "must be 2-64 characters",
        );
        p.check(
            valid_password(&c.moderator_pw),
            || at("moderator_pw"),
            "must be 2-64 characters",
        );
        p.check(
            c.invitees.iter().all(|m| is_valid_id(m)),
            || at("invitees"),
            "every invitee must be a valid id",
        );
        let id = id.unwrap_or_default();
        p.check(calls.insert(id.clone()), || at("call_id"), "listed twice");
        plan.calls.push((
            Meeting {
                id,
                event_id: c.event_id,
                organizer_id: c.organizer_id,
                room_id: None,
                bbb_meeting_id: c.meeting_id,
                attendee_pw: c.attendee_pw,
                moderator_pw: c.moderator_pw,
                server_id: c.server_id,
                imported: true,
                claimed_at: 0,
            },
            c.invitees,
        ));
    }
    if p.errors.is_empty() {
        Ok(Planned {
            plan,
            warnings: p.warnings,
        })
    } else {
        Err(p.errors)
    }
}

pub async fn run(args: ImportArgs) -> Result<(), Box<dyn Error>> {
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| format!("cannot read {}: {e}", args.file.display()))?;
    // serde_json's errors give the line and column, never the text around them.
    let export: Export = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: not the documented export format: {e}",
            args.file.display()
        )
    })?;
    let store = Store::connect(&args.database_url).await?;
    store.migrate().await?;
    let known: HashSet<String> = store.servers().await?.into_iter().map(|s| s.id).collect();
    let plan = match plan(export, &known) {
        Ok(Planned { plan, warnings }) => {
            for warning in &warnings {
                eprintln!("{}: warning: {warning}", args.file.display());
            }
            plan
        }
        Err(problems) => {
            for problem in &problems {
                eprintln!("{}: {problem}", args.file.display());
            }
            return Err(format!("{} problem(s); nothing was written", problems.len()).into());
        }
    };
    if args.dry_run {
        println!(
            "would import {} server(s), {} room(s), {} call(s)",
            plan.servers.len(),
            plan.rooms.len(),
            plan.calls.len()
        );
        return Ok(());
    }
    let r = store
        .import(&plan, &args.file.display().to_string())
        .await?;
    println!(
        "servers: {} added, {} updated, {} unchanged; rooms: {} imported, {} kept; calls: {} imported, {} kept; invitees added: {}",
        r.servers_added,
        r.servers_updated,
        r.servers_unchanged,
        r.rooms_imported,
        r.rooms_kept,
        r.calls_imported,
        r.calls_kept,
        r.invitees_added
    );
    Ok(())
}
