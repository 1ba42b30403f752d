//! `eventyay-bbb plan FILE`: the forecast PlanSchedule answers, for operators, from the fleet
//! the service's database holds (the servers file's servers and those added through
//! FleetService), printed slot by slot.

use crate::{
    bbb::BbbClient,
    fleet::{
        Fleet, Thresholds,
        plan::{self, Session},
    },
    store::Store,
};
use serde::Deserialize;
use std::{
    error::Error,
    path::PathBuf,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

#[derive(clap::Args)]
pub struct PlanArgs {
    /// The schedule (TOML): `event_id`, `organizer_id`, optional `slot_minutes`, and
    /// `[[sessions]]` with `room_id`, `start`, `end` (TOML date-times with an offset) and
    /// `expected_participants`.
    file: PathBuf,
    #[arg(long, env = "EVENTYAY_BBB_DATABASE_URL", hide_env_values = true,
          default_value = crate::config::DEFAULT_DATABASE_URL)]
    database_url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Schedule {
    event_id: String,
    organizer_id: String,
    #[serde(default)]
    slot_minutes: u32,
    #[serde(default)]
    sessions: Vec<Planned>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Planned {
    room_id: String,
    start: toml::value::Datetime,
    end: toml::value::Datetime,
    #[serde(default)]
    expected_participants: u32,
}

pub async fn run(args: PlanArgs) -> Result<(), Box<dyn Error>> {
    let name = args.file.display().to_string();
    let text =
        std::fs::read_to_string(&args.file).map_err(|e| format!("cannot read {name}: {e}"))?;
    let schedule: Schedule =
        toml::from_str(&text).map_err(|e| format!("{name}: not a schedule: {}", e.message()))?;
    for id in [&schedule.event_id, &schedule.organizer_id] {
        if !crate::domain::is_valid_id(id) {
            return Err(format!("{name}: {id:?} is not a valid id").into());
        }
    }
    let mut sessions = Vec::with_capacity(schedule.sessions.len());
    for (n, s) in schedule.sessions.into_iter().enumerate() {
        let at = |t: &toml::value::Datetime, field: &str| {
            instant(t).ok_or_else(|| {
                format!(
                    "{name}: session {}: {field} needs a date, a time and an offset",
                    n + 1
                )
            })
        };
        if !crate::domain::is_valid_id(&s.room_id) {
            return Err(format!("{name}: session {}: room_id is not a valid id", n + 1).into());
        }
        sessions.push(Session {
            start: at(&s.start, "start")?,
            end: at(&s.end, "end")?,
            room_id: s.room_id,
            participants: s.expected_participants.min(100_000),
        });
    }
    let (sessions, slot) = plan::check(sessions, schedule.slot_minutes)
        .map_err(|(field, problem)| format!("{name}: {field} {problem}"))?;

    let store = Store::connect(&args.database_url).await?;
    let fleet = Fleet::new(
        store.clone(),
        store.servers().await?,
        Thresholds::default(),
        BbbClient::new(Default::default()),
    );
    let kept = crate::meetings::kept_beside(&store, &schedule.event_id, &sessions).await?;
    let forecast = plan::forecast(
        &fleet.snapshot(),
        &schedule.event_id,
        &schedule.organizer_id,
        &sessions,
        &kept,
        slot,
    );
    let mut short_slots = 0;
    for slot in &forecast.slots {
        let servers: Vec<String> = slot
            .servers
            .iter()
            .map(|s| {
                let cap = |n: u64, max: u32| {
                    if max > 0 {
                        format!("{n}/{max}")
                    } else {
                        n.to_string()
                    }
                };
                format!(
                    "{} {} meetings {} participants load {:.0}",
                    s.server_id,
                    cap(u64::from(s.meetings), s.max_meetings),
                    cap(s.participants, s.max_participants),
                    s.load_per_weight
                )
            })
            .collect();
        println!(
            "{}  {}",
            crate::calendar::utc_minutes(slot.start),
            servers.join("  |  ")
        );
        if !slot.unplaced.is_empty() {
            short_slots += 1;
            let short: u64 = slot
                .unplaced
                .iter()
                .map(|u| u64::from(u.participants))
                .sum();
            println!("  CANNOT HOLD {short} participants:");
            for u in &slot.unplaced {
                println!(
                    "    {} ({} expected): {}",
                    u.room_id, u.participants, u.reason
                );
            }
        }
    }
    println!("placements:");
    for p in &forecast.placements {
        println!("  {} -> {}", p.room_id, p.server_id);
    }
    if short_slots > 0 {
        return Err(format!("{short_slots} slot(s) the fleet cannot hold").into());
    }
    Ok(())
}

/// A TOML offset date-time as an instant; `None` without a date, a time or an offset.
fn instant(t: &toml::value::Datetime) -> Option<SystemTime> {
    let (date, time) = (t.date?, t.time?);
    let offset_minutes: i64 = match t.offset? {
        toml::value::Offset::Z => 0,
        toml::value::Offset::Custom { minutes } => i64::from(minutes),
    };
    let days = crate::calendar::days_from_civil(
        i64::from(date.year),
        i64::from(date.month),
        i64::from(date.day),
    );
    let secs = days * 86_400
        + i64::from(time.hour) * 3_600
        + i64::from(time.minute) * 60
        + i64::from(time.second)
        - offset_minutes * 60;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// An instant as `YYYY-MM-DD HH:MMZ`.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_convert_both_ways() {
        let t: toml::value::Datetime = "2026-12-02T10:30:00+01:00".parse().unwrap();
        let at = instant(&t).unwrap();
        assert_eq!(crate::calendar::utc_minutes(at), "2026-12-02 09:30Z");
        let leap: toml::value::Datetime = "2024-02-29T23:59:00Z".parse().unwrap();
        assert_eq!(
            crate::calendar::utc_minutes(instant(&leap).unwrap()),
            "2024-02-29 23:59Z"
        );
        let local: toml::value::Datetime = "2026-12-02T10:30:00".parse().unwrap();
        assert_eq!(instant(&local), None, "no offset: ambiguous");
    }
}
