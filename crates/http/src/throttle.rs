//! [`Throttle`]: lets a warning through at most once per gap, so a condition that lasts (a full
//! connection table, an overload) is logged loudly but not once per event.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub(crate) struct Throttle {
    gap: Duration,
    last: Mutex<Option<Instant>>,
}

impl Throttle {
    pub(crate) fn new(gap: Duration) -> Self {
        Self {
            gap,
            last: Mutex::new(None),
        }
    }

    /// True when nothing was let through in the last `gap`; then counts this one.
    pub(crate) fn ready(&self) -> bool {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        match *last {
            Some(at) if now.duration_since(at) < self.gap => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn lets_one_through_per_gap() {
        let throttle = Throttle::new(Duration::from_secs(10));
        assert!(throttle.ready());
        assert!(!throttle.ready());
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(!throttle.ready());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(throttle.ready());
        assert!(!throttle.ready());
    }
}
