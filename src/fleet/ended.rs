//! BBB's end callback on the fleet's side. Every create carries `meetingEndedURL`, a URL of the
//! service's callback listener that BBB calls, unsigned, when the meeting ends. The URL signs
//! itself: an HMAC-SHA256, under a key every replica reads from the database, over the server,
//! the meetingID, the time of the create and a random nonce. A genuine call is recorded in the
//! database (which makes a replay change nothing) and drops the meeting from the fleet's view
//! at once; every replica picks up the ends others recorded within a second, and applies what
//! it knows again after every poll, so a poll taken before an end cannot bring it back.

use super::Fleet;
use crate::{
    bbb::{Query, query},
    calendar::{epoch_ms, from_epoch_ms},
    secret::{Secret, random_alphanumeric},
    store::{Store, StoreError, ends::MeetingEnd},
};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::sync::watch;

/// The path under the callback base URL that BBB calls.
pub const CALLBACK_PATH: &str = "ended";

/// How long a callback URL stays valid after its create. Far beyond any conference session;
/// a meeting that outlives it is still seen to end by the poll.
pub const URL_MAX_AGE: Duration = Duration::from_secs(7 * 86_400);

/// A create time this far ahead of the receiver's clock is no clock's drift.
const FUTURE_SLACK: Duration = Duration::from_secs(86_400);

/// How often a replica reads the ends other replicas recorded.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// How far back each read looks before the newest end read: a row committed late, or stamped
/// by a replica whose clock runs behind, is still found.
const WATCH_SLACK: Duration = Duration::from_secs(30);

/// Ends a replica keeps applying after every poll, at most. Beyond that (a mass end) the newest
/// are kept; the next poll shows the others gone anyway.
const MAX_RECENT: usize = 10_000;

const NONCE_LEN: usize = 16;

/// Where BBB reaches the listener, and the key its URLs are signed with.
struct Callback {
    /// Without a trailing slash.
    base_url: String,
    key: Secret,
}

/// The fleet's part of the end callback: off until [`Fleet::enable_end_callback`], and the
/// ends recently reported, which every poll is corrected by.
#[derive(Default)]
pub(super) struct Ends {
    callback: OnceLock<Callback>,
    recent: Mutex<Recent>,
}

impl std::fmt::Debug for Ends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ends")
            .field("enabled", &self.callback.get().is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Recent {
    /// By server, meetingID and nonce: one entry per callback URL.
    ends: HashMap<(String, String, String), MeetingEnd>,
    /// How long an end is kept: longer than a poll round, so no poll older than the end
    /// (a late answer, another replica's view) outlives it.
    keep: Duration,
}

/// Why a callback changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A parameter is missing, repeated or malformed, or the signature is not the service's.
    #[error("not signed by this service")]
    BadSignature,
    /// Signed by this service, but for a server no longer in the registry, or too old.
    #[error("unknown or expired")]
    Unknown,
}

/// What a callback that passed the checks did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    /// Recorded for every replica, and dropped from this replica's view.
    Accepted,
    /// Its end was recorded already (BBB repeating itself, or a replay): nothing changed.
    Duplicate,
    /// Dropped from this replica's view, but the database could not record it.
    NotRecorded,
}

/// HMAC-SHA256 of the fields, each prefixed with its length so no two field lists sign alike.
/// `None` only if the HMAC refused the key, which it never does for any length.
fn mac(
    key: &Secret,
    server_id: &str,
    meeting_id: &str,
    created_ms: i64,
    nonce: &str,
) -> Option<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose().as_bytes()).ok()?;
    mac.update(b"eventyay-bbb meeting ended v1");
    let created = created_ms.to_string();
    for field in [server_id, meeting_id, &created, nonce] {
        mac.update(&(field.len() as u64).to_be_bytes());
        mac.update(field.as_bytes());
    }
    Some(mac)
}

impl Callback {
    fn url(&self, server_id: &str, meeting_id: &str, created: SystemTime) -> Option<String> {
        let created_ms = epoch_ms(created);
        let nonce = random_alphanumeric(NONCE_LEN);
        let signature = hex::encode(
            mac(&self.key, server_id, meeting_id, created_ms, &nonce)?
                .finalize()
                .into_bytes(),
        );
        let query = Query::new()
            .with("server", server_id)
            .with("meeting", meeting_id)
            .with("created", created_ms.to_string())
            .with("nonce", nonce)
            .with("sig", signature);
        Some(format!(
            "{}/{CALLBACK_PATH}?{}",
            self.base_url,
            query.as_str()
        ))
    }

    /// The end a callback's query reports, if this service signed it.
    fn verify(&self, raw_query: &str, now: SystemTime) -> Result<MeetingEnd, Refused> {
        let params = query::parse(raw_query);
        let one = |name: &str| {
            let mut values = params.iter().filter(|(n, _)| n == name).map(|(_, v)| v);
            match (values.next(), values.next()) {
                (Some(value), None) if !value.is_empty() => Ok(value.as_str()),
                _ => Err(Refused::BadSignature),
            }
        };
        let (server_id, meeting_id, nonce) = (one("server")?, one("meeting")?, one("nonce")?);
        let created_ms: i64 = one("created")?.parse().map_err(|_| Refused::BadSignature)?;
        let signature = hex::decode(one("sig")?).map_err(|_| Refused::BadSignature)?;
        if params.len() != 5 {
            return Err(Refused::BadSignature);
        }
        mac(&self.key, server_id, meeting_id, created_ms, nonce)
            .ok_or(Refused::BadSignature)?
            .verify_slice(&signature)
            .map_err(|_| Refused::BadSignature)?;
        let created = from_epoch_ms(created_ms);
        let too_old = now
            .duration_since(created)
            .is_ok_and(|age| age > URL_MAX_AGE);
        let too_new = created
            .duration_since(now)
            .is_ok_and(|ahead| ahead > FUTURE_SLACK);
        if too_old || too_new {
            return Err(Refused::Unknown);
        }
        Ok(MeetingEnd {
            server_id: server_id.to_owned(),
            meeting_id: meeting_id.to_owned(),
            nonce: nonce.to_owned(),
            created_at: created,
            ended_at: now,
        })
    }
}

impl Recent {
    fn add(&mut self, end: MeetingEnd) {
        let key = (
            end.server_id.clone(),
            end.meeting_id.clone(),
            end.nonce.clone(),
        );
        self.ends.entry(key).or_insert(end);
    }

    /// Forgets ends older than `keep`, and the oldest beyond `MAX_RECENT`.
    fn prune(&mut self, now: SystemTime) {
        let keep = self.keep;
        self.ends
            .retain(|_, e| now.duration_since(e.ended_at).unwrap_or_default() <= keep);
        if self.ends.len() > MAX_RECENT {
            let mut times: Vec<SystemTime> = self.ends.values().map(|e| e.ended_at).collect();
            times.sort_unstable_by(|a, b| b.cmp(a));
            let cutoff = times[MAX_RECENT - 1];
            self.ends.retain(|_, e| e.ended_at >= cutoff);
        }
    }
}

impl Fleet {
    /// Makes every create from now on carry an end callback to `base_url`, signed with the key
    /// every replica shares. `poll_interval` sets how long reported ends are kept applying.
    pub fn enable_end_callback(&self, base_url: &str, key: Secret, poll_interval: Duration) {
        let callback = Callback {
            base_url: base_url.trim_end_matches('/').to_owned(),
            key,
        };
        if self.ends.callback.set(callback).is_err() {
            tracing::warn!("the end callback was enabled twice; keeping the first");
        }
        self.recent().keep = (poll_interval * 3).max(Duration::from_secs(600));
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.ends.recent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `query` with its end callback added, when the callback is on and the query names its
    /// meeting.
    pub(super) fn with_end_callback(&self, server_id: &str, query: &Query) -> Option<Query> {
        let callback = self.ends.callback.get()?;
        let params = query::parse(query.as_str());
        let (_, meeting_id) = params.iter().find(|(name, _)| name == "meetingID")?;
        let url = callback.url(server_id, meeting_id, SystemTime::now())?;
        Some(query.clone().with("meetingEndedURL", url))
    }

    /// Takes a call of the callback listener (its raw query string): checks the signature,
    /// records the end for every replica and drops the meeting from this replica's view. A
    /// refused call changes nothing.
    pub async fn report_end(&self, raw_query: &str) -> Result<Reported, Refused> {
        let callback = self.ends.callback.get().ok_or(Refused::Unknown)?;
        let end = callback.verify(raw_query, SystemTime::now())?;
        if self.get(&end.server_id).is_none() {
            return Err(Refused::Unknown);
        }
        // A repeat of an end this replica knows costs no database write.
        let key = (
            end.server_id.clone(),
            end.meeting_id.clone(),
            end.nonce.clone(),
        );
        if self.recent().ends.contains_key(&key) {
            return Ok(Reported::Duplicate);
        }
        let recorded = self.store.record_end(&end).await;
        if matches!(recorded, Ok(false)) {
            return Ok(Reported::Duplicate);
        }
        tracing::info!(server = %end.server_id, meeting = %end.meeting_id, "BBB reported the meeting ended");
        self.learn_ends([end]);
        Ok(match recorded {
            Ok(_) => Reported::Accepted,
            Err(err) => {
                tracing::warn!(error = %err.0, "a meeting end could not be recorded: other replicas see it at their next poll");
                Reported::NotRecorded
            }
        })
    }

    /// Adds reported ends to those this replica applies, and applies them now.
    fn learn_ends(&self, ends: impl IntoIterator<Item = MeetingEnd>) {
        {
            let mut recent = self.recent();
            for end in ends {
                recent.add(end);
            }
            recent.prune(SystemTime::now());
        }
        self.apply_ends();
    }

    /// Drops from the polled view every meeting a poll showed before BBB reported its end, and
    /// the reservations made for it before it ended. Cheap, and a no-op without ends: run after
    /// every change of the view (a poll, the poller's shared view, reloaded reservations).
    pub fn apply_ends(&self) {
        let recent = self.recent();
        if recent.ends.is_empty() {
            return;
        }
        // The latest end of each meeting decides: a poll or a placement before it is stale.
        let mut latest: HashMap<(&str, &str), SystemTime> = HashMap::new();
        for end in recent.ends.values() {
            let at = latest
                .entry((end.server_id.as_str(), end.meeting_id.as_str()))
                .or_insert(end.ended_at);
            *at = (*at).max(end.ended_at);
        }
        let mut live = self.live();
        for ((server_id, meeting_id), ended_at) in &latest {
            if let Some(polled) = live.polled.get_mut(*server_id)
                && polled.at.is_some_and(|at| at < *ended_at)
            {
                polled.meetings.remove(*meeting_id);
            }
        }
        live.reservations.retain(|r| {
            latest
                .get(&(r.server_id.as_str(), r.meeting_id.as_str()))
                .is_none_or(|ended_at| r.at >= *ended_at)
        });
    }
}

/// Reads, every second until `stop`, the ends any replica recorded, so that an end reaches
/// every replica's view within about a second of its callback, whichever replica received it.
pub async fn watch_ends(fleet: Arc<Fleet>, store: Store, mut stop: watch::Receiver<bool>) {
    let keep = fleet.recent().keep;
    let mut since = SystemTime::now().checked_sub(keep).unwrap_or(UNIX_EPOCH);
    loop {
        match read_ends(&fleet, &store, since).await {
            Ok(Some(newest)) => {
                since = since.max(newest.checked_sub(WATCH_SLACK).unwrap_or(UNIX_EPOCH));
            }
            Ok(None) => {}
            Err(err) => tracing::debug!(error = %err.0, "reading meeting ends failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(WATCH_INTERVAL) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Reads the ends recorded since `since` and applies them; returns the newest one's time.
async fn read_ends(
    fleet: &Fleet,
    store: &Store,
    since: SystemTime,
) -> Result<Option<SystemTime>, StoreError> {
    let ends = store.ends_since(since, MAX_RECENT as u64).await?;
    let newest = ends.iter().map(|e| e.ended_at).max();
    if !ends.is_empty() {
        fleet.learn_ends(ends);
    }
    Ok(newest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        bbb::{BbbClient, Meeting, Timeouts},
        domain::Server,
        fleet::Thresholds,
    };

    fn callback() -> Callback {
        Callback {
            base_url: "https://cb.example.org/prefix".into(),
            key: Secret::new("k".repeat(64)),
        }
    }

    fn query_of(url: &str) -> &str {
        url.split_once('?').unwrap().1
    }

    #[test]
    fn a_signed_url_verifies_and_nothing_else_does() {
        let cb = callback();
        let created = SystemTime::now();
        let url = cb.url("bbb-1", "m 1&x=y", created).unwrap();
        assert!(
            url.starts_with("https://cb.example.org/prefix/ended?"),
            "{url}"
        );
        let end = cb.verify(query_of(&url), created).unwrap();
        assert_eq!(
            (end.server_id.as_str(), end.meeting_id.as_str()),
            ("bbb-1", "m 1&x=y")
        );
        assert_eq!(end.nonce.len(), NONCE_LEN);
        assert_ne!(
            cb.url("bbb-1", "m 1&x=y", created).unwrap(),
            url,
            "each create signs a URL of its own"
        );

        let other_key = Callback {
            key: Secret::new("j".repeat(64)),
            ..callback()
        };
        assert_eq!(
            other_key.verify(query_of(&url), created),
            Err(Refused::BadSignature)
        );
        for bad in [
            "",
            "server=bbb-1",
            "garbage&&=",
            &query_of(&url).replace("bbb-1", "bbb-2"),
        ] {
            assert_eq!(cb.verify(bad, created), Err(Refused::BadSignature), "{bad}");
        }
        let late = created + URL_MAX_AGE + Duration::from_secs(1);
        assert_eq!(cb.verify(query_of(&url), late), Err(Refused::Unknown));
    }

    #[tokio::test]
    async fn an_end_hides_only_what_polls_before_it_showed() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let server = Server::new(
            "a",
            "https://a.example.org/bigbluebutton/",
            Secret::new("s"),
        );
        let fleet = Fleet::new(
            store,
            vec![server],
            Thresholds::default(),
            BbbClient::new(Timeouts::default()),
        );
        fleet.enable_end_callback(
            "https://cb.example.org",
            Secret::new("k"),
            Duration::from_secs(1),
        );
        let meeting = |id: &str| Meeting {
            meeting_id: id.into(),
            running: true,
            participant_count: 3,
            ..Default::default()
        };
        let t0 = SystemTime::now() - Duration::from_secs(60);
        fleet.record_poll("a", Ok(&[meeting("m1"), meeting("m2")]), t0);
        let ended = |id: &str, at: SystemTime| MeetingEnd {
            server_id: "a".into(),
            meeting_id: id.into(),
            nonce: "n".into(),
            created_at: t0,
            ended_at: at,
        };
        fleet.learn_ends([ended("m1", t0 + Duration::from_secs(1))]);
        assert_eq!(fleet.status()["a"].polled_meetings, 1);
        assert_eq!(fleet.status()["a"].participants, 3);

        // A poll after the end shows the room's meeting created again: it stays.
        fleet.record_poll(
            "a",
            Ok(&[meeting("m1"), meeting("m2")]),
            t0 + Duration::from_secs(2),
        );
        fleet.apply_ends();
        assert_eq!(fleet.status()["a"].polled_meetings, 2);
    }
}
