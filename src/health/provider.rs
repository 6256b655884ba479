//! Passive health of one provider: healthy -> degraded -> unhealthy, a
//! half-open trial after the retry delay, recovery after a run of successes.
//!
//! Every field is an atomic so recording an outcome on the request path
//! never takes a lock; only the last-error text (written on failures, read
//! by the health endpoint) sits behind a mutex that the hot path never
//! touches on success.

use super::clock::{now_ms, wall_ms};
use super::event::{EventSink, SharedEvent};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum HealthState {
    Healthy = 0,
    Degraded = 1,
    Unhealthy = 2,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Healthy => "healthy",
            HealthState::Degraded => "degraded",
            HealthState::Unhealthy => "unhealthy",
        }
    }
    fn from_u8(v: u8) -> HealthState {
        match v {
            1 => HealthState::Degraded,
            2 => HealthState::Unhealthy,
            _ => HealthState::Healthy,
        }
    }
}

/// The knobs, from the hot snapshot (so a config change applies at once).
#[derive(Debug, Clone)]
pub struct HealthPolicy {
    /// Consecutive errors that make a provider unhealthy.
    pub max_errors: u32,
    /// Consecutive successes that make a degraded provider healthy again.
    pub recover_successes: u32,
    /// Delay before an unhealthy provider gets a trial request.
    pub retry_after: Duration,
    /// Share of its weight a degraded provider keeps (0..=1).
    pub degraded_weight: f64,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            max_errors: 5,
            recover_successes: 3,
            retry_after: Duration::from_secs(3600),
            degraded_weight: 0.5,
        }
    }
}

/// Whether a request may use the provider now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Yes,
    /// Unhealthy, but this request is the one trial of the half-open state.
    Trial,
    No,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    /// HTTP status, or None for connection errors and timeouts.
    pub status: Option<u16>,
    pub message: String,
    /// Unix milliseconds.
    pub at_ms: u64,
}

#[derive(Debug)]
pub struct ProviderHealth {
    name: String,
    sink: Arc<EventSink>,
    state: AtomicU8,
    consecutive_errors: AtomicU32,
    consecutive_successes: AtomicU32,
    /// Monotonic ms (see [`now_ms`]) from which the next trial may run.
    next_trial_ms: AtomicU64,
    /// Unix ms of the last success, 0 = never.
    last_success_ms: AtomicU64,
    transitions: AtomicU64,
    last_error: Mutex<Option<LastError>>,
    /// Model ids the vendor's own list returned to the last `models` probe
    /// (bounded, see `discovery`); empty until one succeeds.
    discovered: arc_swap::ArcSwap<Vec<String>>,
}

/// What the health endpoint shows.
#[derive(Debug, Clone)]
pub struct HealthView {
    pub state: HealthState,
    pub consecutive_errors: u32,
    pub consecutive_successes: u32,
    pub last_error: Option<LastError>,
    pub last_success_ms: Option<u64>,
    /// Unix ms of the next trial, when unhealthy.
    pub next_trial_ms: Option<u64>,
    pub transitions: u64,
}

impl ProviderHealth {
    pub fn new(name: &str) -> Self {
        Self::with_sink(name, Arc::default())
    }

    pub fn with_sink(name: &str, sink: Arc<EventSink>) -> Self {
        ProviderHealth {
            name: name.to_string(),
            sink,
            state: AtomicU8::new(HealthState::Healthy as u8),
            consecutive_errors: AtomicU32::new(0),
            consecutive_successes: AtomicU32::new(0),
            next_trial_ms: AtomicU64::new(0),
            last_success_ms: AtomicU64::new(0),
            transitions: AtomicU64::new(0),
            last_error: Mutex::new(None),
            discovered: arc_swap::ArcSwap::default(),
        }
    }

    /// The ids the vendor listed at the last `models` probe.
    pub fn discovered(&self) -> Arc<Vec<String>> {
        self.discovered.load_full()
    }

    pub fn set_discovered(&self, ids: Vec<String>) {
        if **self.discovered.load() != ids {
            self.discovered.store(Arc::new(ids));
        }
    }

    pub fn state(&self) -> HealthState {
        HealthState::from_u8(self.state.load(Relaxed))
    }

    /// May a request use this provider at monotonic time `now`? An
    /// unhealthy provider admits exactly one trial per retry period: the
    /// first caller past the deadline moves it forward atomically.
    pub fn admit(&self, now: u64, policy: &HealthPolicy) -> Admission {
        match self.state() {
            HealthState::Healthy | HealthState::Degraded => Admission::Yes,
            HealthState::Unhealthy => {
                let due = self.next_trial_ms.load(Relaxed);
                if now < due {
                    return Admission::No;
                }
                let next = now + policy.retry_after.as_millis() as u64;
                match self
                    .next_trial_ms
                    .compare_exchange(due, next, Relaxed, Relaxed)
                {
                    Ok(_) => Admission::Trial,
                    Err(_) => Admission::No,
                }
            }
        }
    }

    /// Would `admit` say yes without reserving a trial (for filters)?
    pub fn selectable(&self, now: u64) -> bool {
        self.state() != HealthState::Unhealthy || now >= self.next_trial_ms.load(Relaxed)
    }

    pub fn on_success(&self, policy: &HealthPolicy) {
        self.last_success_ms.store(wall_ms(), Relaxed);
        self.consecutive_errors.store(0, Relaxed);
        let successes = self
            .consecutive_successes
            .fetch_add(1, Relaxed)
            .saturating_add(1);
        match self.state() {
            HealthState::Healthy => {}
            // A trial answered: take traffic again, at reduced weight.
            HealthState::Unhealthy => self.transition(
                HealthState::Unhealthy,
                HealthState::Degraded,
                "trial request succeeded",
            ),
            HealthState::Degraded if successes >= policy.recover_successes.max(1) => self
                .transition(
                    HealthState::Degraded,
                    HealthState::Healthy,
                    "consecutive successes",
                ),
            HealthState::Degraded => {}
        }
    }

    /// A provider-level failure (connect error, timeout, 5xx, stream cut).
    pub fn on_failure(&self, status: Option<u16>, message: &str, policy: &HealthPolicy) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(LastError {
                status,
                message: message.chars().take(500).collect(),
                at_ms: wall_ms(),
            });
        }
        self.consecutive_successes.store(0, Relaxed);
        let errors = self
            .consecutive_errors
            .fetch_add(1, Relaxed)
            .saturating_add(1);
        let now = now_ms();
        match self.state() {
            HealthState::Unhealthy => {
                // A failed trial: wait a full period before the next one.
                self.next_trial_ms
                    .fetch_max(now + policy.retry_after.as_millis() as u64, Relaxed);
            }
            from if errors >= policy.max_errors.max(1) => {
                self.next_trial_ms
                    .store(now + policy.retry_after.as_millis() as u64, Relaxed);
                self.transition(from, HealthState::Unhealthy, "consecutive errors");
            }
            HealthState::Healthy => {
                self.transition(HealthState::Healthy, HealthState::Degraded, "recent errors")
            }
            HealthState::Degraded => {}
        }
    }

    fn transition(&self, from: HealthState, to: HealthState, why: &str) {
        // Only the thread that wins the swap logs, so a burst of concurrent
        // failures produces one line.
        if self
            .state
            .compare_exchange(from as u8, to as u8, Relaxed, Relaxed)
            .is_ok()
        {
            self.transitions.fetch_add(1, Relaxed);
            let errors = self.consecutive_errors.load(Relaxed);
            let next_trial_in = self.next_trial_ms.load(Relaxed).saturating_sub(now_ms());
            self.sink.emit(SharedEvent::provider(
                &self.name,
                to.as_str(),
                next_trial_in,
                why,
            ));
            match to {
                HealthState::Healthy => {
                    tracing::info!(provider = %self.name, from = from.as_str(), to = to.as_str(), reason = why, "provider health changed")
                }
                _ => {
                    tracing::warn!(provider = %self.name, from = from.as_str(), to = to.as_str(), reason = why, consecutive_errors = errors, "provider health changed")
                }
            }
        }
    }

    /// A peer instance reported a state change: adopt it (without
    /// re-publishing). `next_trial_in_ms` matters when unhealthy.
    pub fn apply_remote(&self, to: HealthState, next_trial_in_ms: u64, why: &str) {
        let from = self.state();
        if from == to {
            return;
        }
        if to == HealthState::Unhealthy {
            self.next_trial_ms
                .store(now_ms() + next_trial_in_ms, Relaxed);
        }
        if to == HealthState::Healthy {
            self.consecutive_errors.store(0, Relaxed);
        }
        self.state.store(to as u8, Relaxed);
        self.transitions.fetch_add(1, Relaxed);
        tracing::info!(provider = %self.name, from = from.as_str(), to = to.as_str(), reason = why, "provider health changed (reported by a peer instance)");
    }

    pub fn view(&self) -> HealthView {
        let state = self.state();
        let next = self.next_trial_ms.load(Relaxed);
        HealthView {
            state,
            consecutive_errors: self.consecutive_errors.load(Relaxed),
            consecutive_successes: self.consecutive_successes.load(Relaxed),
            last_error: self.last_error.lock().ok().and_then(|l| l.clone()),
            last_success_ms: Some(self.last_success_ms.load(Relaxed)).filter(|&t| t > 0),
            next_trial_ms: (state == HealthState::Unhealthy)
                .then(|| wall_ms() + next.saturating_sub(now_ms())),
            transitions: self.transitions.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> HealthPolicy {
        HealthPolicy {
            max_errors: 3,
            recover_successes: 2,
            retry_after: Duration::from_secs(60),
            degraded_weight: 0.5,
        }
    }

    #[test]
    fn errors_degrade_then_make_unhealthy() {
        let h = ProviderHealth::new("p");
        let p = policy();
        h.on_failure(Some(503), "down", &p);
        assert_eq!(h.state(), HealthState::Degraded);
        assert_eq!(h.admit(now_ms(), &p), Admission::Yes);
        h.on_failure(None, "timeout", &p);
        h.on_failure(Some(500), "boom", &p);
        assert_eq!(h.state(), HealthState::Unhealthy);
        assert_eq!(h.admit(now_ms(), &p), Admission::No);
        let v = h.view();
        assert_eq!(v.consecutive_errors, 3);
        assert_eq!(v.last_error.map(|e| e.status), Some(Some(500)));
        assert!(v.next_trial_ms.is_some());
        assert_eq!(v.transitions, 2);
    }

    #[test]
    fn one_trial_per_period_and_recovery() {
        let h = ProviderHealth::new("p");
        let p = policy();
        for _ in 0..3 {
            h.on_failure(Some(503), "down", &p);
        }
        let later = now_ms() + 61_000;
        assert_eq!(h.admit(later, &p), Admission::Trial);
        assert_eq!(h.admit(later, &p), Admission::No, "only one trial");
        // The trial fails: another full period.
        h.on_failure(Some(503), "still down", &p);
        assert_eq!(h.admit(later + 1, &p), Admission::No);
        let much_later = now_ms() + 200_000;
        assert_eq!(h.admit(much_later, &p), Admission::Trial);
        h.on_success(&p);
        assert_eq!(h.state(), HealthState::Degraded);
        h.on_success(&p);
        assert_eq!(h.state(), HealthState::Healthy, "recover_successes = 2");
    }

    #[test]
    fn a_success_resets_the_error_run() {
        let h = ProviderHealth::new("p");
        let p = policy();
        h.on_failure(Some(503), "x", &p);
        h.on_failure(Some(503), "x", &p);
        h.on_success(&p);
        h.on_failure(Some(503), "x", &p);
        assert_eq!(
            h.state(),
            HealthState::Degraded,
            "not unhealthy: the run was broken"
        );
    }
}
