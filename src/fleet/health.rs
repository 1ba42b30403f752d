//! Whether a server answers, with hysteresis: one failed call is not a dead server, and one
//! answer is not a recovered one.

/// A server's health as placement sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not probed yet: takes no meetings until it has answered once.
    Unknown,
    Healthy,
    Unhealthy,
}

impl Health {
    pub fn name(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
        }
    }
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracker {
    health: Health,
    failures: u32,
    successes: u32,
}

impl Default for Tracker {
    fn default() -> Self {
        Self {
            health: Health::Unknown,
            failures: 0,
            successes: 0,
        }
    }
}

impl Tracker {
    /// A tracker that starts from a health another replica's poller established.
    pub fn at(health: Health) -> Self {
        Self {
            health,
            failures: 0,
            successes: 0,
        }
    }

    pub fn health(&self) -> Health {
        self.health
    }

    /// Records an answer. An unknown server is trusted at its first answer (that is the probe
    /// a new server must pass); an unhealthy one after `healthy_after` in a row.
    pub fn success(&mut self, t: Thresholds) -> Option<Health> {
        self.failures = 0;
        self.successes = self.successes.saturating_add(1);
        let next = match self.health {
            Health::Unknown => Health::Healthy,
            Health::Unhealthy if self.successes >= t.healthy_after => Health::Healthy,
            other => other,
        };
        self.change(next)
    }

    /// Records a failure to answer. Returns the new health when it changed.
    pub fn failure(&mut self, t: Thresholds) -> Option<Health> {
        self.successes = 0;
        self.failures = self.failures.saturating_add(1);
        let next = match self.health {
            Health::Healthy if self.failures >= t.unhealthy_after => Health::Unhealthy,
            Health::Unknown if self.failures >= t.unhealthy_after => Health::Unhealthy,
            other => other,
        };
        self.change(next)
    }

    fn change(&mut self, next: Health) -> Option<Health> {
        (next != self.health).then(|| {
            self.health = next;
            next
        })
    }
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
            h.success(t),
            Some(Health::Healthy),
            "a probe's answer admits a server"
        );
        assert_eq!(h.failure(t), None, "one failure is not a dead server");
        assert_eq!(h.success(t), None);
        assert_eq!(h.failure(t), None);
        assert_eq!(h.failure(t), Some(Health::Unhealthy));
        assert_eq!(h.success(t), None, "one answer is not a recovery");
        assert_eq!(h.failure(t), None);
        assert_eq!(h.success(t), None);
        assert_eq!(h.success(t), Some(Health::Healthy));
    }

    #[test]
    fn a_server_that_never_answers_is_unhealthy() {
        let t = Thresholds {
            unhealthy_after: 3,
            healthy_after: 1,
        };
        let mut h = Tracker::default();
        assert_eq!(h.failure(t), None);
        assert_eq!(h.failure(t), None);
        assert_eq!(h.failure(t), Some(Health::Unhealthy));
        assert_eq!(h.success(t), Some(Health::Healthy));
    }
}
