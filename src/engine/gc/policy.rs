//! GC policies: which sealed segments a pass takes.

use crate::options::GcPolicy;

/// A segment GC may take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Candidate {
    pub(crate) number: u64,
    pub(crate) bytes: u64,
    pub(crate) garbage: u64,
    /// Segments written since this one (plus one).
    pub(crate) age: u64,
    /// Whether GC wrote it (its records are already in key order).
    pub(crate) gc: bool,
}

impl Candidate {
    fn garbage_ratio(&self) -> f64 {
        if self.bytes == 0 {
            1.0
        } else {
            self.garbage as f64 / self.bytes as f64
        }
    }
}

/// Up to `max` victims by `policy` among `candidates`. Segments without
/// garbage are never taken; below `min_ratio` garbage only `Tail` takes them.
pub(crate) fn pick(
    policy: GcPolicy,
    candidates: &[Candidate],
    max: usize,
    min_ratio: f64,
) -> Vec<u64> {
    let mut c: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.garbage > 0 || c.bytes == 0)
        .collect();
    match policy {
        GcPolicy::Tail => c.sort_by_key(|c| c.number),
        GcPolicy::Greedy => {
            c.retain(|c| c.garbage_ratio() >= min_ratio);
            c.sort_by(|a, b| {
                b.garbage_ratio()
                    .total_cmp(&a.garbage_ratio())
                    .then(a.number.cmp(&b.number))
            });
        }
        GcPolicy::CostBenefit => {
            c.retain(|c| c.garbage_ratio() >= min_ratio);
            let score = |c: &Candidate| {
                let u = 1.0 - c.garbage_ratio();
                (1.0 - u) * c.age as f64 / (1.0 + u)
            };
            c.sort_by(|a, b| score(b).total_cmp(&score(a)).then(a.number.cmp(&b.number)));
        }
    }
    c.into_iter().take(max).map(|c| c.number).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(number: u64, garbage: u64, age: u64) -> Candidate {
        Candidate {
            number,
            bytes: 100,
            garbage,
            age,
            gc: false,
        }
    }

    #[test]
    fn policies_pick_as_documented() {
        let c = [
            cand(1, 10, 9),
            cand(2, 80, 2),
            cand(3, 50, 8),
            cand(4, 0, 7),
        ];
        assert_eq!(pick(GcPolicy::Tail, &c, 1, 0.5), vec![1]);
        assert_eq!(pick(GcPolicy::Greedy, &c, 1, 0.2), vec![2]);
        // (1-u)·age/(1+u): #2: 0.8·2/1.2 = 1.33; #3: 0.5·8/1.5 = 2.67.
        assert_eq!(pick(GcPolicy::CostBenefit, &c, 1, 0.2), vec![3]);
        assert_eq!(pick(GcPolicy::Greedy, &c, 10, 0.6), vec![2]);
        assert_eq!(pick(GcPolicy::Tail, &c, 10, 0.0), vec![1, 2, 3]);
        assert!(pick(GcPolicy::Greedy, &[cand(5, 0, 1)], 1, 0.0).is_empty());
    }
}
