//! Per-API-key request rate limits: a token bucket per key, refilled at `per_second` up to
//! `burst`. A request finding the bucket empty is answered 429 `rate_limited` with `Retry-After`
//! (REST) or `RESOURCE_EXHAUSTED` (gRPC).
//!
//! Unauthenticated routes have no key to count. The payment return pages, `/openapi.json`,
//! `/docs` and `/healthz` read nothing or one row by a random id and are not limited; the
//! public price routes read several rows and run the tariff engine, so they get their own
//! limiter keyed by the client's IP address ([`RateLimiter::public`]), apart from the keys'.
//! `X-Forwarded-For` is not read: anyone can send it, so it would let one client pose as many;
//! behind a proxy all drivers share the proxy's bucket.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The rate limit of every API key; cheap to clone (one shared table).
#[derive(Clone, Debug)]
pub struct RateLimiter {
    inner: Option<Arc<Limiter>>,
}

#[derive(Debug)]
struct Limiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets kept before full (idle) ones are dropped; only authenticated keys get one.
const MAX_BUCKETS: usize = 100_000;

impl RateLimiter {
    /// Default sustained rate per key (requests/s): far above what one client of the API
    /// benchmark reaches on a running session, so only a runaway client meets it.
    pub const DEFAULT_PER_SECOND: u32 = 1_000;
    /// Default burst per key (requests).
    pub const DEFAULT_BURST: u32 = 5_000;

    /// Default sustained rate of the public price routes per client address (requests/s):
    /// a driver's phone asks once per scan, but behind a load balancer every driver shares
    /// one address, so the default leaves room for a site's worth of scans.
    pub const DEFAULT_PUBLIC_PER_SECOND: u32 = 20;
    /// Default burst of the public price routes per client address.
    pub const DEFAULT_PUBLIC_BURST: u32 = 200;

    /// The limiter of the public (unauthenticated) price routes, per client address.
    pub fn public() -> Self {
        Self::new(Self::DEFAULT_PUBLIC_PER_SECOND, Self::DEFAULT_PUBLIC_BURST)
    }

    /// `per_second` requests per second per key, up to `burst` at once; `per_second == 0`
    /// turns limits off.
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            inner: (per_second > 0).then(|| {
                Arc::new(Limiter {
                    per_second: f64::from(per_second),
                    burst: f64::from(burst.max(1)),
                    buckets: Mutex::new(HashMap::new()),
                })
            }),
        }
    }

    /// No limits.
    pub fn off() -> Self {
        Self { inner: None }
    }

    /// Takes one request from `key`'s bucket; `Err` holds how long until one is available.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let Some(l) = &self.inner else {
            return Ok(());
        };
        let mut buckets = l.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            let (rate, burst) = (l.per_second, l.burst);
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: l.burst,
            at: now,
        });
        let refilled = now.saturating_duration_since(bucket.at).as_secs_f64() * l.per_second;
        bucket.tokens = (bucket.tokens + refilled).min(l.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / l.per_second,
            ))
        }
    }
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new(Self::DEFAULT_PER_SECOND, Self::DEFAULT_BURST)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate_then_429_with_the_wait() {
        let limiter = RateLimiter::new(2, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at("a", t0).is_ok());
        }
        let wait = limiter.check_at("a", t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Another key has its own bucket.
        assert!(limiter.check_at("b", t0).is_ok());
        // Half a second refills one request.
        let t1 = t0 + Duration::from_millis(500);
        assert!(limiter.check_at("a", t1).is_ok());
        assert!(limiter.check_at("a", t1).is_err());
        assert!(RateLimiter::off().check_at("a", t0).is_ok());
        assert!(RateLimiter::new(0, 10).check_at("a", t0).is_ok());
    }
}
