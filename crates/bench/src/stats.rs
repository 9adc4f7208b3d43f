//! Latency samples and their percentiles.
//!
//! Percentiles are nearest-rank (the smallest sample with at least p% of the samples at
//! or below it): always a measured value, never interpolated. Durations are kept in
//! whole microseconds (sub-microsecond parts dropped) and printed as milliseconds with
//! three decimals, so a printed figure is the measured one at microsecond resolution.

use std::future::Future;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Sorted, in microseconds.
    micros: Vec<u64>,
}

impl Stats {
    pub fn from_durations(mut d: Vec<Duration>) -> Self {
        d.sort();
        Stats { micros: d.into_iter().map(|x| x.as_micros() as u64).collect() }
    }

    pub fn n(&self) -> usize {
        self.micros.len()
    }

    /// Nearest-rank percentile, in microseconds.
    pub fn pct(&self, p: f64) -> u64 {
        if self.micros.is_empty() {
            return 0;
        }
        let rank = ((p / 100.0) * self.micros.len() as f64).ceil() as usize;
        self.micros[rank.clamp(1, self.micros.len()) - 1]
    }

    pub fn max(&self) -> u64 {
        self.micros.last().copied().unwrap_or(0)
    }
}

/// Microseconds as milliseconds with three decimals (exact, no rounding).
pub fn ms(us: u64) -> String {
    format!("{}.{:03}", us / 1000, us % 1000)
}

/// Seconds with three decimals, truncated to the millisecond.
pub fn secs(d: Duration) -> String {
    let ms = d.as_millis();
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// How many samples to take and how long a slow case may run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub warmup: usize,
    pub samples: usize,
    /// Stop early once this much time has been spent measuring…
    pub budget: Duration,
    /// …but only with at least this many samples.
    pub min_samples: usize,
}

/// Runs `one` on the items in turn (cycling), first `warmup` times unmeasured, then until
/// `samples` are taken or the budget is spent. `one` returns the duration it measured,
/// so that checking an answer happens outside the timed part.
pub async fn run<T: Clone, F, Fut>(items: &[T], plan: Plan, mut one: F) -> anyhow::Result<Stats>
where
    F: FnMut(T) -> Fut,
    Fut: Future<Output = anyhow::Result<Duration>>,
{
    anyhow::ensure!(!items.is_empty(), "no items to query");
    for i in 0..plan.warmup {
        one(items[i % items.len()].clone()).await?;
    }
    let started = Instant::now();
    let mut out = Vec::with_capacity(plan.samples);
    for i in 0..plan.samples {
        out.push(one(items[(plan.warmup + i) % items.len()].clone()).await?);
        if out.len() >= plan.min_samples && started.elapsed() > plan.budget {
            break;
        }
    }
    Ok(Stats::from_durations(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_are_samples() {
        let s = Stats::from_durations((1..=100).rev().map(Duration::from_micros).collect());
        assert_eq!(s.pct(50.0), 50);
        assert_eq!(s.pct(95.0), 95);
        assert_eq!(s.pct(99.0), 99);
        assert_eq!(s.max(), 100);
        let s = Stats::from_durations(vec![Duration::from_micros(7)]);
        assert_eq!(s.pct(95.0), 7);
    }

    #[test]
    fn figures_are_printed_without_rounding() {
        assert_eq!(ms(19_999), "19.999");
        assert_eq!(ms(5), "0.005");
        assert_eq!(secs(Duration::from_micros(59_999_999)), "59.999");
    }
}
