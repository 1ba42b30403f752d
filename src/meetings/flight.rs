//! Single flight per meeting: concurrent joins of one meeting share one "ensure it exists on
//! its server" attempt, and a successful attempt is trusted for a short while.
//!
//! A caller that arrives while an attempt is running waits for it and takes its outcome,
//! success or failure, so a thousand joins in the same second cost one BBB create — and a dead
//! server costs them one timeout, not a thousand in a row. A caller that arrives later reuses a
//! success younger than the TTL; older successes and failures start a new attempt.

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// Slots beyond this many are pruned of idle entries, bounding memory by active meetings.
const PRUNE_ABOVE: usize = 4096;

pub struct Flights<T> {
    ttl: Duration,
    slots: Mutex<HashMap<String, Arc<Slot<T>>>>,
}

struct Slot<T> {
    /// Bumped when an attempt finishes; read before queueing to detect attempts that finished
    /// while we waited.
    finished: AtomicU64,
    state: tokio::sync::Mutex<Last<T>>,
}

struct Last<T> {
    finished: u64,
    outcome: Option<(Instant, T)>,
}

impl<T: Clone, E: Clone> Flights<Result<T, E>> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `attempt` for `key`, unless an attempt that finished while we waited, or a recent
    /// success, already answers.
    pub async fn run<F, Fut>(&self, key: &str, attempt: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let slot = self.slot(key);
        let seen = slot.finished.load(Ordering::Acquire);
        let mut last = slot.state.lock().await;
        if let Some((at, outcome)) = &last.outcome {
            let shared = last.finished != seen;
            let fresh = outcome.is_ok() && at.elapsed() < self.ttl;
            if shared || fresh {
                return outcome.clone();
            }
        }
        let outcome = attempt().await;
        last.finished += 1;
        last.outcome = Some((Instant::now(), outcome.clone()));
        slot.finished.store(last.finished, Ordering::Release);
        outcome
    }

    fn slot(&self, key: &str) -> Arc<Slot<Result<T, E>>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = slots.get(key) {
            return slot.clone();
        }
        if slots.len() >= PRUNE_ABOVE {
            let ttl = self.ttl;
            slots.retain(|_, slot| {
                Arc::strong_count(slot) > 1
                    || slot.state.try_lock().map_or(true, |last| {
                        last.outcome
                            .as_ref()
                            .is_some_and(|(at, _)| at.elapsed() < ttl)
                    })
            });
        }
        let slot = Arc::new(Slot {
            finished: AtomicU64::new(0),
            state: tokio::sync::Mutex::new(Last {
                finished: 0,
                outcome: None,
            }),
        });
        slots.insert(key.to_owned(), slot.clone());
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn concurrent_callers_share_one_attempt() {
        let flights = Arc::new(Flights::<Result<u32, String>>::new(Duration::from_secs(2)));
        let attempts = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let (flights, attempts) = (flights.clone(), attempts.clone());
            tasks.push(tokio::spawn(async move {
                flights
                    .run("room", || async {
                        attempts.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, String>(7)
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(7));
        }
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn waiters_share_a_failure_but_later_callers_retry() {
        let flights = Arc::new(Flights::<Result<u32, String>>::new(Duration::from_secs(2)));
        let attempts = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (flights, attempts) = (flights.clone(), attempts.clone());
            tasks.push(tokio::spawn(async move {
                flights
                    .run("room", || async {
                        attempts.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Err::<u32, _>("down".to_owned())
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Err("down".into()));
        }
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
        let again = flights.run("room", || async { Ok::<_, String>(1) }).await;
        assert_eq!(again, Ok(1));
    }

    #[tokio::test]
    async fn successes_expire() {
        let flights = Flights::<Result<u32, String>>::new(Duration::from_millis(100));
        assert_eq!(
            flights.run("m", || async { Ok::<_, String>(1) }).await,
            Ok(1)
        );
        assert_eq!(
            flights.run("m", || async { Ok::<_, String>(2) }).await,
            Ok(1)
        );
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(
            flights.run("m", || async { Ok::<_, String>(3) }).await,
            Ok(3)
        );
        assert_eq!(
            flights.run("other", || async { Ok::<_, String>(5) }).await,
            Ok(5)
        );
    }

    #[tokio::test]
    async fn a_cancelled_attempt_lets_the_next_caller_lead() {
        let flights = Arc::new(Flights::<Result<u32, String>>::new(Duration::from_secs(2)));
        let f = flights.clone();
        let hung = tokio::spawn(async move {
            f.run("m", || async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok::<_, String>(0)
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        hung.abort();
        let next = tokio::time::timeout(
            Duration::from_secs(1),
            flights.run("m", || async { Ok::<_, String>(9) }),
        )
        .await;
        assert_eq!(next.unwrap(), Ok(9));
    }
}
