//! A room's recordings: asked in parallel of every server that ever hosted its meeting,
//! merged by record id, newest first. Servers that fail are named, not hidden.

use crate::{
    bbb::Recording,
    fleet::Fleet,
    meetings::{Error, Failure, Permissions},
    store::Store,
};
use std::{collections::HashMap, sync::Arc, time::Duration};
use tokio::{task::JoinSet, time::Instant};

/// One recording as the backend shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordingView {
    pub record_id: String,
    /// Epoch milliseconds.
    pub start: Option<u64>,
    pub end: Option<u64>,
    pub participants: u32,
    pub state: String,
    pub url: String,
    pub url_video: String,
    pub url_screenshare: String,
    pub url_notes: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordingList {
    pub recordings: Vec<RecordingView>,
    /// Servers that hosted the room but could not be asked.
    pub unreachable_servers: Vec<String>,
}

pub struct Recordings {
    store: Store,
    fleet: Arc<Fleet>,
}

impl Recordings {
    pub fn new(store: Store, fleet: Arc<Fleet>) -> Self {
        Self { store, fleet }
    }

    /// Each server gets the same deadline and they run side by side, so one hung server costs
    /// the call at most that deadline.
    pub async fn list(
        &self,
        event_id: &str,
        room_id: &str,
        permissions: Permissions,
        budget: Duration,
    ) -> Result<RecordingList, Error> {
        if !permissions.recordings {
            return Err(Error::Denied);
        }
        let deadline = Instant::now() + budget;
        let read = async {
            let Some(meeting) = self.store.room_meeting(event_id, room_id).await? else {
                return Ok(None);
            };
            let hosts = self.store.hosts(&meeting.id).await?;
            Ok(Some((meeting, hosts)))
        };
        let Some((meeting, mut hosts)) = tokio::time::timeout_at(deadline, read)
            .await
            .unwrap_or(Err(Error::BbbFailed(Failure::Deadline)))?
        else {
            return Ok(RecordingList::default());
        };
        // The Python module kept no hosting history and moved rooms between servers: for a
        // room taken over from it, every server the event may use is asked, as it did.
        if meeting.imported {
            for server in self.fleet.snapshot().values() {
                if server.spec.state != crate::domain::ServerState::Disabled
                    && server.serves(&meeting.event_id, &meeting.organizer_id)
                    && !hosts.contains(&server.spec.id)
                {
                    hosts.push(server.spec.id.clone());
                }
            }
        }
        let per_server = deadline
            .saturating_duration_since(Instant::now())
            .min(self.fleet.timeouts().recordings);
        let mut asks = JoinSet::new();
        let mut asked_of = HashMap::new();
        let mut unreachable = Vec::new();
        for host in hosts {
            let Some(server) = self.fleet.get(&host) else {
                // Removed from the registry: nothing to ask it with.
                unreachable.push(host);
                continue;
            };
            let fleet = self.fleet.clone();
            let meeting_id = meeting.bbb_meeting_id.clone();
            let task = asks.spawn(async move {
                let ids = [meeting_id.as_str()];
                let result = fleet.recordings(&server, &ids, per_server).await;
                (server, result)
            });
            asked_of.insert(task.id(), host);
        }
        let asked = asks.len() + unreachable.len();
        let mut merged: HashMap<String, RecordingView> = HashMap::new();
        while let Some(joined) = asks.join_next_with_id().await {
            let (server, result) = match joined {
                Ok((_, answer)) => answer,
                Err(died) => {
                    tracing::error!(server = ?asked_of.get(&died.id()), "getRecordings task died");
                    unreachable.extend(asked_of.get(&died.id()).cloned());
                    continue;
                }
            };
            match result {
                Ok(recordings) => {
                    for r in recordings {
                        merge(&mut merged, r, server.endpoint.host());
                    }
                }
                Err(error) => {
                    tracing::warn!(server = %server.spec.id, %error, "getRecordings failed");
                    unreachable.push(server.spec.id.clone());
                }
            }
        }
        if asked > 0 && unreachable.len() == asked {
            return Err(Error::BbbFailed(Failure::AllServersFailed));
        }
        let mut recordings: Vec<_> = merged.into_values().collect();
        recordings.sort_by(|a, b| {
            b.start
                .cmp(&a.start)
                .then_with(|| a.record_id.cmp(&b.record_id))
        });
        unreachable.sort();
        Ok(RecordingList {
            recordings,
            unreachable_servers: unreachable,
        })
    }
}

/// Folds one BBB recording into the view of its record id: some servers and proxies send one
/// `<recording>` per format.
fn merge(merged: &mut HashMap<String, RecordingView>, r: Recording, host: &str) {
    let view = merged
        .entry(r.record_id.clone())
        .or_insert_with(|| RecordingView {
            record_id: r.record_id.clone(),
            ..RecordingView::default()
        });
    view.start = view.start.or(r.start_time.filter(plausible_time));
    view.end = view.end.or(r.end_time.filter(plausible_time));
    view.participants = view.participants.max(r.participants);
    if !r.state.is_empty() {
        view.state = r.state;
    }
    for format in r.formats {
        let slot = match format.kind.as_str() {
            "presentation" => &mut view.url,
            "video" | "Video" => &mut view.url_video,
            "screenshare" => &mut view.url_screenshare,
            "notes" => &mut view.url_notes,
            _ => continue,
        };
        // Some BBB versions emit `https:///playback/…` for the video format: the host is
        // missing, and it is the server we asked.
        let url = format.url.replacen(":///", &format!("://{host}/"), 1);
        // The browser opens these: only web links pass, never `javascript:` or the like.
        if is_web_link(&url) {
            *slot = url;
        }
    }
}

/// Epoch milliseconds a recording can have: after 1970, before the year 10000 (which is also
/// what a protobuf Timestamp can hold). Anything else is left out, not sent.
fn plausible_time(ms: &u64) -> bool {
    (1..=253_402_300_799_999).contains(ms)
}

fn is_web_link(url: &str) -> bool {
    url.len() <= 2048
        && url::Url::parse(url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bbb::PlaybackFormat;

    fn rec(id: &str, start: u64, formats: &[(&str, &str)]) -> Recording {
        Recording {
            record_id: id.into(),
            meeting_id: "m".into(),
            internal_meeting_id: id.into(),
            name: "n".into(),
            state: "published".into(),
            published: true,
            start_time: Some(start),
            end_time: Some(start + 1000),
            participants: 3,
            formats: formats
                .iter()
                .map(|(k, u)| PlaybackFormat {
                    kind: (*k).into(),
                    url: (*u).into(),
                    length_minutes: 1,
                })
                .collect(),
        }
    }

    #[test]
    fn only_web_links_and_plausible_times_pass() {
        let mut merged = HashMap::new();
        let mut r = rec(
            "a",
            u64::MAX - 1000,
            &[
                ("presentation", "javascript:alert(document.cookie)"),
                ("video", "data:text/html,<script>x</script>"),
                ("notes", "https://h/n/a"),
            ],
        );
        r.end_time = Some(0);
        merge(&mut merged, r, "h");
        let a = &merged["a"];
        assert_eq!((a.url.as_str(), a.url_video.as_str()), ("", ""));
        assert_eq!(a.url_notes, "https://h/n/a");
        assert_eq!((a.start, a.end), (None, None));
    }

    #[test]
    fn formats_merge_by_record_id_and_video_urls_get_their_host() {
        let mut merged = HashMap::new();
        merge(
            &mut merged,
            rec("a", 1, &[("presentation", "https://h/p/a")]),
            "bbb1.example.org",
        );
        merge(
            &mut merged,
            rec("a", 1, &[("Video", "https:///playback/video/a/")]),
            "bbb1.example.org",
        );
        merge(
            &mut merged,
            rec(
                "a",
                1,
                &[
                    ("notes", "https://h/n/a"),
                    ("screenshare", "https://h/s/a"),
                    ("podcast", "x"),
                ],
            ),
            "h",
        );
        let a = &merged["a"];
        assert_eq!(a.url, "https://h/p/a");
        assert_eq!(a.url_video, "https://bbb1.example.org/playback/video/a/");
        assert_eq!(a.url_notes, "https://h/n/a");
        assert_eq!(a.url_screenshare, "https://h/s/a");
        assert_eq!(merged.len(), 1);
    }
}
