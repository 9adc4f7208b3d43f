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
        let key = client.map(key_of).unwrap_or_else(|| "-".to_string());
        self.limiter.check_key(&key).map_err(|_| ApiError::Throttled("certificate.too_many_lookups"))
    }
}

/// The allowance's key for an address: IPv6 clients are given a whole /64, so one
/// client cannot reset its allowance by changing the interface part.
fn key_of(address: &str) -> String {
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        _ => address.to_string(),
    }
}

impl Default for Lookups {
    fn default() -> Self {
        Self::per_minute(kite_domain::certificate::LOOKUPS_PER_MINUTE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_has_its_own_allowance_and_ipv6_counts_by_64() {
        let l = Lookups::per_minute(2);
        assert!(l.check(Some("10.0.0.1")).is_ok() && l.check(Some("10.0.0.1")).is_ok());
        assert!(matches!(l.check(Some("10.0.0.1")), Err(ApiError::Throttled("certificate.too_many_lookups"))));
        assert!(l.check(Some("10.0.0.2")).is_ok());
        assert!(l.check(Some("2001:db8::1")).is_ok() && l.check(Some("2001:db8::2")).is_ok());
        assert!(l.check(Some("2001:db8::ffff:3")).is_err(), "the same /64");
        assert!(l.check(Some("2001:db8:0:1::1")).is_ok(), "another /64");
    }
}
