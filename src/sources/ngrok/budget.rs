//! The client-side request budget: a token bucket whose burst is a whole minute's allowance.
//!
//! The account allows 120 requests per rolling 60 s and other tools share the key, so the
//! watchdog spends at most `requests_per_minute` of them: a full bucket lets a sync or a
//! rotation go at full speed, and a long listing then proceeds at the refill rate.

use std::num::NonZeroU32;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Debug)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket of `per_minute` tokens, refilled at `per_minute / 60` tokens a second.
    pub fn per_minute(per_minute: NonZeroU32) -> Self {
        let capacity = f64::from(per_minute.get());
        Self {
            capacity,
            per_second: capacity / 60.0,
            state: Mutex::new(BucketState {
                tokens: capacity,
                updated: Instant::now(),
            }),
        }
    }

    /// Takes one token, waiting for the refill when the bucket is empty.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut state = self.state.lock().await;
                let now = Instant::now();
                let elapsed = now.saturating_duration_since(state.updated).as_secs_f64();
                state.tokens = (state.tokens + elapsed * self.per_second).min(self.capacity);
                state.updated = now;
                if state.tokens >= 1.0 {
                    state.tokens -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - state.tokens) / self.per_second)
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Tokens available now (for tests and diagnostics).
    pub async fn available(&self) -> f64 {
        let state = self.state.lock().await;
        let elapsed = Instant::now()
            .saturating_duration_since(state.updated)
            .as_secs_f64();
        (state.tokens + elapsed * self.per_second).min(self.capacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_is_the_whole_minute_then_refill_rate() {
        let bucket = TokenBucket::per_minute(NonZeroU32::new(60).unwrap());
        let start = Instant::now();
        for _ in 0..60 {
            bucket.acquire().await;
        }
        assert!(
            start.elapsed() < Duration::from_millis(1),
            "the burst must not wait"
        );
        bucket.acquire().await;
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(999) && waited <= Duration::from_millis(1001),
            "the 61st request waits one refill interval, waited {waited:?}"
        );
        for _ in 0..10 {
            bucket.acquire().await;
        }
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(10_999) && waited <= Duration::from_millis(11_001),
            "then one request a second, waited {waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn refills_up_to_capacity_only() {
        let bucket = TokenBucket::per_minute(NonZeroU32::new(6).unwrap());
        for _ in 0..6 {
            bucket.acquire().await;
        }
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!((bucket.available().await - 6.0).abs() < 1e-9);
    }
}
