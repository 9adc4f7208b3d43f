//! Public lookups (certificate verification) per client address and minute, so that the
//! registry cannot be walked by trying numbers.

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota};

use crate::error::ApiError;

pub struct Lookups {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl Lookups {
    pub fn per_minute(n: u32) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        Self { limiter: DefaultKeyedRateLimiter::keyed(quota) }
    }

    /// One lookup for `client`; requests without an address share one allowance.
    pub fn check(&self, client: Option<&str>) -> Result<(), ApiError> {
        // Forget clients whose allowance is whole again, so the map does not grow forever.
        if self.limiter.len() > 10_000 {
            self.limiter.retain_recent();
        }
        let key = client.unwrap_or("-").to_string();
        self.limiter.check_key(&key).map_err(|_| ApiError::Throttled("certificate.too_many_lookups"))
    }
}

impl Default for Lookups {
    fn default() -> Self {
        Self::per_minute(kite_domain::certificate::LOOKUPS_PER_MINUTE)
    }
}
