//! Whether a server answers, with hysteresis: one failed call is not a dead server, and one
//! answer is not a recovered one. A server that answers but refuses us is misconfigured at
//! once: that refusal repeats on every call until someone fixes the settings.

use crate::bbb::Verdict;

/// A server's health as placement sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Health {
    /// Not probed yet: takes no meetings until it has answered once.
    #[default]
    Unknown,
    Healthy,
    /// Does not answer: down, overloaded or broken.
    Unhealthy,
    /// Answers, but refuses us (wrong secret, API disabled, not a BBB API at its URL).
    Misconfigured,
}

impl Health {
    pub fn name(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::Misconfigured => "misconfigured",
        }
    }

    pub fn from_name(name: &str) -> Self {
        match name {
            "healthy" => Self::Healthy,
            "unhealthy" => Self::Unhealthy,
            "misconfigured" => Self::Misconfigured,
            _ => Self::Unknown,
        }
    }
}

/// The longest reason kept: causes are short texts of ours, details of errors are not.
const MAX_REASON: usize = 200;

/// Consecutive failures before a healthy server is declared unhealthy, and consecutive
/// successes before an unhealthy one is trusted again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub unhealthy_after: u32,
    pub healthy_after: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            unhealthy_after: 2,
            healthy_after: 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracker {
    health: Health,
    failures: u32,
    successes: u32,
    /// Why the server is not healthy, for operators; empty when it is.
    reason: String,
}

impl Default for Tracker {
    fn default() -> Self {
        Self::at(Health::Unknown, "")
    }
}

impl Tracker {
    /// A tracker that starts from a health another replica's poller established.
    pub fn at(health: Health, reason: &str) -> Self {
        Self {
            health,
            failures: 0,
            successes: 0,
            reason: capped(reason),
        }
    }

    pub fn health(&self) -> Health {
        self.health
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Records what a call's outcome says about the server (`detail` describes a failure).
    /// Returns the new health when it changed.
    pub fn observe(&mut self, verdict: Verdict, detail: &str, t: Thresholds) -> Option<Health> {
        match verdict {
            Verdict::Answered => self.success(t),
            Verdict::Failed => self.failure(detail, t),
            Verdict::Misconfigured(cause) => {
                self.failures = 0;
                self.successes = 0;
                self.reason = capped(cause);
                self.change(Health::Misconfigured)
            }
        }
    }

    /// An unknown server is trusted at its first answer (that is the probe a new server must
    /// pass), and so is a misconfigured one (the refusal is gone: someone fixed it); an
    /// unhealthy one after `healthy_after` in a row.
    fn success(&mut self, t: Thresholds) -> Option<Health> {
        self.failures = 0;
        self.successes = self.successes.saturating_add(1);
        let next = match self.health {
            Health::Unknown | Health::Misconfigured => Health::Healthy,
            Health::Unhealthy if self.successes >= t.healthy_after => Health::Healthy,
            other => other,
        };
        if next == Health::Healthy {
            self.reason.clear();
        }
        self.change(next)
    }

    fn failure(&mut self, detail: &str, t: Thresholds) -> Option<Health> {
        self.successes = 0;
        self.failures = self.failures.saturating_add(1);
        let next = match self.health {
            Health::Healthy | Health::Unknown | Health::Misconfigured
                if self.failures >= t.unhealthy_after =>
            {
                Health::Unhealthy
            }
            other => other,
        };
        if next == Health::Unhealthy {
            self.reason = capped(detail);
        }
        self.change(next)
    }

    fn change(&mut self, next: Health) -> Option<Health> {
        (next != self.health).then(|| {
            self.health = next;
            next
        })
    }
}

fn capped(text: &str) -> String {
    text.chars().take(MAX_REASON).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hysteresis_both_ways() {
        let t = Thresholds::default();
        let mut h = Tracker::default();
        assert_eq!(h.health(), Health::Unknown);
        assert_eq!(
            h.observe(Verdict::Answered, "", t),
            Some(Health::Healthy),
            "a probe's answer admits a server"
        );
        assert_eq!(
            h.observe(Verdict::Failed, "timeout", t),
            None,
            "one failure is not a dead server"
        );
        assert_eq!(h.observe(Verdict::Answered, "", t), None);
        assert_eq!(h.observe(Verdict::Failed, "timeout", t), None);
        assert_eq!(
            h.observe(Verdict::Failed, "timeout", t),
            Some(Health::Unhealthy)
        );
        assert_eq!(
            h.observe(Verdict::Answered, "", t),
            None,
            "one answer is not a recovery"
        );
        assert_eq!(h.observe(Verdict::Failed, "timeout", t), None);
        assert_eq!(h.observe(Verdict::Answered, "", t), None);
        assert_eq!(h.observe(Verdict::Answered, "", t), Some(Health::Healthy));
    }

    #[test]
    fn a_server_that_never_answers_is_unhealthy() {
        let t = Thresholds {
            unhealthy_after: 3,
            healthy_after: 1,
        };
        let mut h = Tracker::default();
        assert_eq!(h.observe(Verdict::Failed, "timeout", t), None);
        assert_eq!(h.observe(Verdict::Failed, "timeout", t), None);
        assert_eq!(
            h.observe(Verdict::Failed, "timeout", t),
            Some(Health::Unhealthy)
        );
        assert_eq!(h.reason(), "timeout");
        assert_eq!(h.observe(Verdict::Answered, "", t), Some(Health::Healthy));
        assert_eq!(h.reason(), "");
    }

    #[test]
    fn a_refusal_is_misconfiguration_at_once_and_one_proper_answer_ends_it() {
        let t = Thresholds::default();
        let wrong_secret = Verdict::Misconfigured("checksum refused");
        for start in [Health::Unknown, Health::Healthy, Health::Unhealthy] {
            let mut h = Tracker::at(start, "");
            assert_eq!(h.observe(wrong_secret, "", t), Some(Health::Misconfigured));
            assert_eq!(h.reason(), "checksum refused");
            assert_eq!(h.observe(wrong_secret, "", t), None, "said once");
            assert_eq!(h.observe(Verdict::Answered, "", t), Some(Health::Healthy));
        }
        let mut h = Tracker::at(Health::Misconfigured, "checksum refused");
        assert_eq!(h.observe(Verdict::Failed, "unreachable", t), None);
        assert_eq!(
            h.observe(Verdict::Failed, "unreachable", t),
            Some(Health::Unhealthy),
            "a misconfigured server that stops answering is down"
        );
        assert_eq!(h.reason(), "unreachable");
        assert_eq!(
            Tracker::at(Health::Unknown, &"x".repeat(500))
                .reason()
                .len(),
            200
        );
    }
}
