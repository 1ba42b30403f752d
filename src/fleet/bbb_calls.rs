//! Every call to a BBB server goes through the fleet, which records what its outcome says about
//! the server by one policy per kind of call, and hands back typed outcomes.

use super::{Fleet, FleetServer};
use crate::bbb::{BbbError, Created, Ended, Query, Recording, Timeouts};
use std::time::{Duration, SystemTime};

impl Fleet {
    pub fn timeouts(&self) -> Timeouts {
        self.bbb.timeouts()
    }

    /// `create`, on the join path. Every outcome counts: a join is the truest probe there is.
    /// With the end callback on, the create carries its signed `meetingEndedURL` (BBB keeps the
    /// one of the create that made the meeting and ignores those of repeats).
    pub async fn create(
        &self,
        server: &FleetServer,
        query: &Query,
        presentation_urls: &[String],
    ) -> Result<Created, BbbError> {
        let with_callback = self.with_end_callback(&server.spec.id, query);
        let query = with_callback.as_ref().unwrap_or(query);
        let outcome = self
            .bbb
            .create(&server.endpoint, query, presentation_urls)
            .await;
        self.record(&server.spec.id, outcome.as_ref().map(drop));
        outcome
    }

    /// `end` (an operator's move, an event's deletion). Every outcome counts.
    pub async fn end(
        &self,
        server: &FleetServer,
        meeting_id: &str,
        moderator_pw: Option<&str>,
    ) -> Result<Ended, BbbError> {
        let outcome = self
            .bbb
            .end(&server.endpoint, meeting_id, moderator_pw)
            .await;
        self.record(&server.spec.id, outcome.as_ref().map(drop));
        outcome
    }

    /// `getRecordings`, within `deadline`. A slow answer does not count against the server:
    /// listing a busy room's recordings may take long while the server serves meetings fine,
    /// and the poll judges whether it answers. Refusals and dead connections count.
    pub async fn recordings(
        &self,
        server: &FleetServer,
        meeting_ids: &[&str],
        deadline: Duration,
    ) -> Result<Vec<Recording>, BbbError> {
        let outcome = tokio::time::timeout(
            deadline,
            self.bbb.get_recordings(&server.endpoint, meeting_ids),
        )
        .await
        .unwrap_or(Err(BbbError::Timeout(deadline)));
        match &outcome {
            Err(BbbError::Timeout(_)) => {}
            other => self.record(&server.spec.id, other.as_ref().map(drop)),
        }
        outcome
    }

    /// Whether the server holds the meeting now (created there and not ended), by
    /// `getMeetingInfo`. Asked before a room whose meeting the poll no longer shows is placed
    /// anew: the poll may predate a create made since. Every outcome counts; "not found" is an
    /// answer.
    pub async fn holds(&self, server: &FleetServer, meeting_id: &str) -> Result<bool, BbbError> {
        let outcome = self
            .bbb
            .get_meeting_info(&server.endpoint, meeting_id)
            .await;
        self.record(&server.spec.id, outcome.as_ref().map(drop));
        match outcome {
            Ok(meeting) => Ok(!meeting.has_been_forcibly_ended),
            Err(err) if err.is_unknown_meeting() => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// `getMeetings`, the poller's question, within `deadline`: health, and on an answer the
    /// meetings the server carries. Returns how many it carries.
    pub async fn poll(&self, server: &FleetServer, deadline: Duration) -> Result<usize, BbbError> {
        let at = SystemTime::now();
        let answer = tokio::time::timeout(deadline, self.bbb.get_meetings(&server.endpoint))
            .await
            .unwrap_or(Err(BbbError::Timeout(deadline)));
        self.record_poll(&server.spec.id, answer.as_deref(), at);
        // An answer to a question asked before BBB reported an end still lists the meeting.
        self.apply_ends();
        answer.map(|meetings| meetings.len())
    }
}
