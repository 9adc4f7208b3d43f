//! Fellegi–Sunter weights: m and u per field level, the prior, EM estimation, and the
//! explanation of a score.

// m, u and the weights are tables by field and level: index loops read best.
#![allow(clippy::needless_range_loop)]

use serde::{Deserialize, Serialize};

use super::compare::{Vector, FIELDS, LEVELS, MAX_LEVELS, NFIELDS};

/// m (agreement among matches) and u (among non-matches) per field and level, and the
/// share of matches among candidate pairs. Level 0 (missing) is ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub prior: f64,
    pub m: [[f64; MAX_LEVELS]; NFIELDS],
    pub u: [[f64; MAX_LEVELS]; NFIELDS],
}

/// Probabilities are kept inside (FLOOR, 1 - FLOOR) so that no weight is infinite.
const FLOOR: f64 = 1e-7;
/// The prior may be far smaller: one match among a million members.
const PRIOR_FLOOR: f64 = 1e-15;

impl Model {
    /// A model read from outside (set by the user): a prior strictly between 0 and 1 and
    /// every m and u a probability.
    pub fn check(&self) -> Result<(), &'static str> {
        if !(self.prior.is_finite() && self.prior > 0.0 && self.prior < 1.0) {
            return Err("the prior must be strictly between 0 and 1");
        }
        let probability = |p: &f64| p.is_finite() && (0.0..=1.0).contains(p);
        if !self.m.iter().chain(&self.u).flatten().all(probability) {
            return Err("every m and u must be a probability between 0 and 1");
        }
        Ok(())
    }

    /// A starting point for EM: agreement likely among matches, rare among non-matches.
    pub fn initial() -> Model {
        let mut m = [[0.0; MAX_LEVELS]; NFIELDS];
        let mut u = [[0.0; MAX_LEVELS]; NFIELDS];
        for f in 0..NFIELDS {
            let n = LEVELS[f].len() - 1;
            for l in 1..=n {
                // Matches mostly agree at the top level; non-matches mostly differ.
                m[f][l] = if l == 1 { 0.8 } else { 0.2 / (n - 1) as f64 };
                u[f][l] = if l == n { 0.9 } else { 0.1 / (n - 1) as f64 };
            }
        }
        Model { prior: 0.3, m, u }
    }

    fn clamp(&mut self) {
        self.prior = self.prior.clamp(FLOOR, 1.0 - FLOOR);
        for f in 0..NFIELDS {
            for l in 1..LEVELS[f].len() {
                self.m[f][l] = self.m[f][l].clamp(FLOOR, 1.0 - FLOOR);
                self.u[f][l] = self.u[f][l].clamp(FLOOR, 1.0 - FLOOR);
            }
        }
    }

    /// log2(m/u) per field and level; 0 for missing.
    pub fn weights(&self) -> Weights {
        let mut w = [[0.0; MAX_LEVELS]; NFIELDS];
        for f in 0..NFIELDS {
            for l in 1..LEVELS[f].len() {
                w[f][l] = (self.m[f][l].max(FLOOR) / self.u[f][l].max(FLOOR)).log2();
            }
        }
        let p = self.prior.clamp(PRIOR_FLOOR, 1.0 - FLOOR);
        Weights { prior: (p / (1.0 - p)).log2(), w }
    }
}

/// The model's weights, ready for scoring.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// log2 of the prior odds.
    pub prior: f64,
    pub w: [[f64; MAX_LEVELS]; NFIELDS],
}

impl Weights {
    /// The match weight (log2 odds) of a pair.
    pub fn weight(&self, v: Vector) -> f64 {
        self.prior + (0..NFIELDS).map(|f| self.w[f][v.level(f)]).sum::<f64>()
    }

    pub fn explain(&self, v: Vector) -> Explanation {
        let fields: Vec<FieldWeight> = (0..NFIELDS)
            .map(|f| FieldWeight { field: FIELDS[f], level: LEVELS[f][v.level(f)], weight: self.w[f][v.level(f)] })
            .collect();
        let weight = self.weight(v);
        Explanation { prior_weight: self.prior, fields, weight, probability: probability(weight) }
    }
}

/// The probability of a match weight.
pub fn probability(weight: f64) -> f64 {
    1.0 / (1.0 + (-weight).exp2())
}

/// How much one field's level added to (or took from) the score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldWeight {
    pub field: &'static str,
    pub level: &'static str,
    /// log2(m/u); 0 when the field is missing on either side.
    pub weight: f64,
}

/// Why a pair got its score: the prior plus each field's weight, in log2 odds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    pub prior_weight: f64,
    pub fields: Vec<FieldWeight>,
    pub weight: f64,
    pub probability: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EmOptions {
    pub max_iterations: usize,
    /// Stop when no parameter moves more than this.
    pub tolerance: f64,
    /// Re-estimate u too (classic EM); otherwise u stays as given (estimated from random
    /// pairs, as Splink does) and only m and the prior move.
    pub estimate_u: bool,
    /// Re-estimate m (off when only the prior is wanted).
    pub estimate_m: bool,
}

impl Default for EmOptions {
    fn default() -> Self {
        EmOptions { max_iterations: 100, tolerance: 1e-5, estimate_u: false, estimate_m: true }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmResult {
    pub model: Model,
    pub iterations: usize,
    pub converged: bool,
}

/// EM on comparison vectors with their counts (pairs with the same vector are counted
/// once: a million pairs have at most a few thousand distinct vectors).
pub fn estimate(patterns: &[(Vector, f64)], start: &Model, options: &EmOptions) -> EmResult {
    let mut model = start.clone();
    model.clamp();
    let mut iterations = 0;
    let mut converged = false;
    while iterations < options.max_iterations {
        iterations += 1;
        let mut am = [[0.0; MAX_LEVELS]; NFIELDS];
        let mut au = [[0.0; MAX_LEVELS]; NFIELDS];
        let (mut matches, mut total) = (0.0, 0.0);
        for &(v, count) in patterns {
            let (mut pm, mut pu) = (model.prior, 1.0 - model.prior);
            for f in 0..NFIELDS {
                let l = v.level(f);
                if l > 0 {
                    pm *= model.m[f][l];
                    pu *= model.u[f][l];
                }
            }
            let p = if pm + pu > 0.0 { pm / (pm + pu) } else { 0.0 };
            matches += count * p;
            total += count;
            for f in 0..NFIELDS {
                let l = v.level(f);
                if l > 0 {
                    am[f][l] += count * p;
                    au[f][l] += count * (1.0 - p);
                }
            }
        }
        if total == 0.0 {
            break;
        }
        let mut next = model.clone();
        next.prior = matches / total;
        for f in 0..NFIELDS {
            let n = LEVELS[f].len();
            let (sm, su): (f64, f64) = (am[f][1..n].iter().sum(), au[f][1..n].iter().sum());
            for l in 1..n {
                if options.estimate_m && sm > 0.0 {
                    next.m[f][l] = am[f][l] / sm;
                }
                if options.estimate_u && su > 0.0 {
                    next.u[f][l] = au[f][l] / su;
                }
            }
        }
        next.clamp();
        let mut delta = (next.prior - model.prior).abs();
        for f in 0..NFIELDS {
            for l in 0..MAX_LEVELS {
                delta = delta.max((next.m[f][l] - model.m[f][l]).abs()).max((next.u[f][l] - model.u[f][l]).abs());
            }
        }
        model = next;
        if delta < options.tolerance {
            converged = true;
            break;
        }
    }
    EmResult { model, iterations, converged }
}

/// u from pairs drawn at random: nearly all of them are non-matches. Levels never
/// seen get half a count so that their weight stays finite.
pub fn u_from_random_pairs(vectors: impl IntoIterator<Item = Vector>) -> [[f64; MAX_LEVELS]; NFIELDS] {
    u_from_counts(vectors.into_iter().map(|v| (v, 1.0)))
}

/// [`u_from_random_pairs`] from each distinct vector with its count.
pub fn u_from_counts(patterns: impl IntoIterator<Item = (Vector, f64)>) -> [[f64; MAX_LEVELS]; NFIELDS] {
    let mut counts = [[0.0f64; MAX_LEVELS]; NFIELDS];
    for (v, n) in patterns {
        for (f, c) in counts.iter_mut().enumerate() {
            c[v.level(f)] += n;
        }
    }
    let mut u = [[0.0; MAX_LEVELS]; NFIELDS];
    for f in 0..NFIELDS {
        let n = LEVELS[f].len();
        let total: f64 = counts[f][1..n].iter().map(|c| c.max(0.5)).sum();
        for l in 1..n {
            u[f][l] = counts[f][l].max(0.5) / total;
        }
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn draw(rng: &mut ChaCha8Rng, p: &[f64]) -> u8 {
        let mut x = rng.gen::<f64>();
        for (l, q) in p.iter().enumerate().skip(1) {
            if x < *q {
                return l as u8;
            }
            x -= q;
        }
        (p.len() - 1) as u8
    }

    /// A model with distinct m and u on every field, and 5% missing values.
    fn truth() -> Model {
        let mut m = [[0.0; MAX_LEVELS]; NFIELDS];
        let mut u = [[0.0; MAX_LEVELS]; NFIELDS];
        for f in 0..NFIELDS {
            let n = LEVELS[f].len() - 1;
            // m falls with the level, u rises; normalised.
            let ms: Vec<f64> = (1..=n).map(|l| 0.5f64.powi(l as i32 * 2 - 1) + 0.01 * f as f64).collect();
            let us: Vec<f64> = (1..=n).map(|l| 0.4f64.powi((n - l) as i32 * 2) + 0.005).collect();
            let (sm, su): (f64, f64) = (ms.iter().sum(), us.iter().sum());
            for l in 1..=n {
                m[f][l] = ms[l - 1] / sm;
                u[f][l] = us[l - 1] / su;
            }
        }
        Model { prior: 0.2, m, u }
    }

    fn sample(model: &Model, n: usize) -> Vec<(Vector, f64)> {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut counts = std::collections::HashMap::new();
        for _ in 0..n {
            let is_match = rng.gen_bool(model.prior);
            let levels: [u8; NFIELDS] = std::array::from_fn(|f| {
                if rng.gen_bool(0.05) {
                    0
                } else {
                    let p = if is_match { &model.m[f] } else { &model.u[f] };
                    draw(&mut rng, &p[..LEVELS[f].len()])
                }
            });
            *counts.entry(Vector::from_levels(levels)).or_insert(0.0) += 1.0;
        }
        counts.into_iter().collect()
    }

    fn assert_close(got: &Model, want: &Model, tol: f64) {
        assert!((got.prior - want.prior).abs() < tol, "prior {} vs {}", got.prior, want.prior);
        for f in 0..NFIELDS {
            for l in 1..LEVELS[f].len() {
                assert!((got.m[f][l] - want.m[f][l]).abs() < tol, "m[{f}][{l}] {} vs {}", got.m[f][l], want.m[f][l]);
                assert!((got.u[f][l] - want.u[f][l]).abs() < tol, "u[{f}][{l}] {} vs {}", got.u[f][l], want.u[f][l]);
            }
        }
    }

    #[test]
    fn em_recovers_known_m_u_and_prior() {
        let want = truth();
        let patterns = sample(&want, 200_000);
        let r = estimate(&patterns, &Model::initial(), &EmOptions { estimate_u: true, ..EmOptions::default() });
        assert!(r.converged, "{} iterations", r.iterations);
        assert_close(&r.model, &want, 0.015);
    }

    #[test]
    fn em_with_fixed_u_recovers_m_and_prior() {
        let want = truth();
        let patterns = sample(&want, 200_000);
        let start = Model { u: want.u, ..Model::initial() };
        let r = estimate(&patterns, &start, &EmOptions::default());
        assert_close(&r.model, &want, 0.015);
        assert_eq!(r.model.u, want.u);
    }

    #[test]
    fn u_from_random_pairs_counts_levels_and_never_reaches_zero() {
        let v = |levels| Vector::from_levels(levels);
        let u = u_from_random_pairs([v([4, 4, 5, 1, 3, 3]), v([4, 4, 5, 2, 3, 0]), v([1, 4, 5, 1, 3, 3])]);
        assert!((u[0][4] - 0.5).abs() < 1e-9, "{:?}", u[0]);
        assert!(u[1][1] > 0.0 && u[1][1] < 0.2);
        assert!((u[5][3] - 2.0 / 3.0).abs() < 1e-9, "{:?}", u[5]);
    }

    #[test]
    fn weights_and_explanations_add_up() {
        let model = truth();
        let w = model.weights();
        let v = Vector::from_levels([1, 0, 2, 1, 3, 1]);
        let e = w.explain(v);
        let sum: f64 = e.prior_weight + e.fields.iter().map(|f| f.weight).sum::<f64>();
        assert!((sum - e.weight).abs() < 1e-9);
        assert_eq!(e.fields[1].level, "missing");
        assert_eq!(e.fields[1].weight, 0.0);
        assert!(e.fields[0].weight > 0.0 && e.fields[4].weight < 0.0);
        assert!((probability(0.0) - 0.5).abs() < 1e-12 && probability(20.0) > 0.999);
    }
}
