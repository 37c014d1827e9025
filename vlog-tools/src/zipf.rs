//! A Zipfian generator over `0..n`, by Gray et al., "Quickly Generating
//! Billion-Record Synthetic Databases" (SIGMOD '94), the method YCSB's
//! `ZipfianGenerator` uses: rank `r` (0-based) is drawn with probability
//! proportional to `1 / (r + 1)^theta`.
//!
//! Ranks are then scrambled through a seeded permutation of `0..n`
//! ([`ScrambledZipf`]), so the hot keys are spread over the key space
//! instead of being the smallest keys (a bijection, unlike YCSB's
//! hash-modulo scrambling, so every key keeps exactly its rank's weight).

use rand::seq::SliceRandom;
use rand::Rng;

/// Draws ranks `0..n` with Zipfian probabilities.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: u64,
    alpha: f64,
    zetan: f64,
    eta: f64,
    /// 1 + 0.5^theta: the second rank's upper bound on `u * zetan`.
    two_bound: f64,
}

/// `sum_{i=1..=n} 1 / i^theta`: O(n), computed once.
fn zeta(n: u64, theta: f64) -> f64 {
    (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum()
}

impl Zipf {
    /// A generator over `0..n` (`n >= 1`) with skew `theta` in `(0, 1)`.
    pub fn new(n: u64, theta: f64) -> Zipf {
        assert!(n >= 1, "a Zipfian generator needs at least one item");
        assert!(
            theta > 0.0 && theta < 1.0,
            "the Zipfian constant must be in (0, 1)"
        );
        let zetan = zeta(n, theta);
        let zeta2 = zeta(2.min(n), theta);
        let eta = if n <= 2 {
            // Unused: every draw ends in one of the first two cases.
            0.0
        } else {
            (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan)
        };
        Zipf {
            n,
            alpha: 1.0 / (1.0 - theta),
            zetan,
            eta,
            two_bound: 1.0 + 0.5f64.powf(theta),
        }
    }

    /// One rank: 0 is the most popular.
    pub fn next_rank<R: Rng>(&self, rng: &mut R) -> u64 {
        let u: f64 = rng.gen();
        let uz = u * self.zetan;
        if uz < 1.0 || self.n == 1 {
            return 0;
        }
        if uz < self.two_bound || self.n == 2 {
            return 1;
        }
        let r = (self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        r.min(self.n - 1)
    }
}

/// A Zipfian generator whose ranks are mapped to items by a random permutation.
#[derive(Debug, Clone)]
pub struct ScrambledZipf {
    zipf: Zipf,
    /// `perm[rank]` is the item of that rank.
    perm: Vec<u64>,
}

impl ScrambledZipf {
    /// Items `0..n`, skew `theta`, the permutation drawn from `rng`.
    pub fn new<R: Rng>(n: u64, theta: f64, rng: &mut R) -> ScrambledZipf {
        let mut perm: Vec<u64> = (0..n).collect();
        perm.shuffle(rng);
        ScrambledZipf {
            zipf: Zipf::new(n, theta),
            perm,
        }
    }

    /// One item.
    pub fn next_item<R: Rng>(&self, rng: &mut R) -> u64 {
        self.perm[self.zipf.next_rank(rng) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn ranks_follow_the_zipf_law() {
        let n = 1000u64;
        let theta = 0.99;
        let z = Zipf::new(n, theta);
        let mut rng = StdRng::seed_from_u64(7);
        let draws = 400_000;
        let mut counts = vec![0u64; n as usize];
        for _ in 0..draws {
            counts[z.next_rank(&mut rng) as usize] += 1;
        }
        let zetan = zeta(n, theta);
        let p = |r: usize| 1.0 / ((r + 1) as f64).powf(theta) / zetan;
        // The method is exact for the first two ranks...
        for (r, &c) in counts.iter().enumerate().take(2) {
            let got = c as f64 / draws as f64;
            assert!(
                (got - p(r)).abs() < 0.05 * p(r),
                "rank {r}: {got:.4} drawn, {:.4} expected",
                p(r)
            );
        }
        // ...and approximate beyond (rank 2 comes out about 15% heavy for
        // n = 1000, theta = 0.99, as in YCSB): the top 10% of ranks' mass
        // is still close to the law's.
        let top: u64 = counts[..(n / 10) as usize].iter().sum();
        let got = top as f64 / draws as f64;
        let want: f64 = (0..(n / 10) as usize).map(p).sum();
        assert!(
            (got - want).abs() < 0.05 * want,
            "top 10%: {got:.4} drawn, {want:.4} expected"
        );
    }

    #[test]
    fn small_n_and_scrambling_stay_in_range() {
        let mut rng = StdRng::seed_from_u64(1);
        for n in 1..5 {
            let z = ScrambledZipf::new(n, 0.5, &mut rng);
            for _ in 0..1000 {
                assert!(z.next_item(&mut rng) < n);
            }
        }
        let z = ScrambledZipf::new(10_000, 0.99, &mut rng);
        let hot = z.next_item(&mut StdRng::seed_from_u64(3));
        assert!(hot < 10_000);
    }
}
