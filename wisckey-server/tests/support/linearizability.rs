//! A linearizability checker for histories of one register per key
//! (Wing & Gong's search with Lowe's memoisation, run per key: a history
//! is linearizable when each key's is, as registers compose).
//!
//! An operation has an invocation time and, when its outcome is known, a
//! completion time. A write whose outcome is unknown (a timeout, a lost
//! connection) may take effect at any moment after its invocation or not
//! at all; a read whose outcome is unknown tells nothing and is left out.

use std::collections::{BTreeMap, HashSet};

/// What an operation did to its key's register. Values are ids (each
/// write writes a distinct one), `None` is "absent".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Wrote `Some(id)`, or deleted (`None`).
    Write(Option<u64>),
    /// Read and saw this.
    Read(Option<u64>),
}

/// One operation of the history.
#[derive(Clone, Debug)]
pub struct Op {
    /// The key.
    pub key: String,
    /// What it did.
    pub kind: Kind,
    /// When it was invoked (any monotonic unit).
    pub start: u64,
    /// When it completed; `None` when its outcome is unknown.
    pub end: Option<u64>,
    /// Which client ran it (for messages).
    pub client: usize,
}

/// Why a history is not linearizable (or could not be decided).
#[derive(Debug)]
pub struct Violation {
    /// The key whose history fails.
    pub key: String,
    /// What the search found.
    pub message: String,
}

/// The most search states one key may take before the checker gives up
/// (and reports that it could not decide, which fails the test too).
const MAX_STATES: usize = 20_000_000;

/// Checks every key's history; `Ok(n)` with the number of operations
/// checked.
pub fn check(history: &[Op]) -> Result<usize, Violation> {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in history {
        if matches!(op.kind, Kind::Read(_)) && op.end.is_none() {
            continue;
        }
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    let mut n = 0;
    for (key, ops) in by_key {
        n += ops.len();
        check_key(key, &ops)?;
    }
    Ok(n)
}

fn check_key(key: &str, ops: &[&Op]) -> Result<(), Violation> {
    let n = ops.len();
    let words = n.div_ceil(64);
    let end = |i: usize| ops[i].end.unwrap_or(u64::MAX);
    // Operations in order of invocation, for the candidate scan.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| ops[i].start);
    let required: Vec<usize> = (0..n).filter(|&i| ops[i].end.is_some()).collect();

    let mut seen: HashSet<(Vec<u64>, Option<u64>)> = HashSet::new();
    // Depth-first over (linearized set, register state).
    let mut stack: Vec<(Vec<u64>, Option<u64>)> = vec![(vec![0; words], None)];
    let mut best = 0usize;
    while let Some((done, state)) = stack.pop() {
        let is_done = |i: usize| done[i / 64] >> (i % 64) & 1 == 1;
        let count = required.iter().filter(|&&i| is_done(i)).count();
        best = best.max(count);
        if count == required.len() {
            return Ok(());
        }
        if seen.len() >= MAX_STATES {
            return Err(Violation {
                key: key.to_string(),
                message: format!("undecided after {MAX_STATES} states ({n} operations)"),
            });
        }
        // An operation can go next if it was invoked before every pending
        // operation's completion.
        let horizon = (0..n)
            .filter(|&i| !is_done(i))
            .map(end)
            .min()
            .unwrap_or(u64::MAX);
        for &i in &order {
            if ops[i].start > horizon {
                break;
            }
            if is_done(i) {
                continue;
            }
            let next = match ops[i].kind {
                Kind::Write(v) => v,
                Kind::Read(v) if v == state => state,
                Kind::Read(_) => continue,
            };
            let mut d = done.clone();
            d[i / 64] |= 1 << (i % 64);
            if seen.insert((d.clone(), next)) {
                stack.push((d, next));
            }
        }
    }
    // Explain with the operations around the point where every search died.
    let mut detail: Vec<String> = ops
        .iter()
        .map(|o| {
            format!(
                "  client {} {:?} [{}, {}]",
                o.client,
                o.kind,
                o.start,
                o.end.map_or("?".into(), |e| e.to_string())
            )
        })
        .collect();
    detail.sort();
    let shown = detail.len().min(40);
    Err(Violation {
        key: key.to_string(),
        message: format!(
            "not linearizable: at most {best} of {} completed operations can be ordered; \
             {shown} of {n} operations:\n{}",
            required.len(),
            detail[..shown].join("\n")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: Kind, start: u64, end: Option<u64>) -> Op {
        Op {
            key: "k".into(),
            kind,
            start,
            end,
            client: 0,
        }
    }

    #[test]
    fn sequential_and_concurrent_histories_pass() {
        let h = vec![
            op(Kind::Write(Some(1)), 0, Some(1)),
            op(Kind::Read(Some(1)), 2, Some(3)),
            // concurrent write and read: the read may see either
            op(Kind::Write(Some(2)), 4, Some(8)),
            op(Kind::Read(Some(1)), 5, Some(6)),
            op(Kind::Read(Some(2)), 7, Some(9)),
            op(Kind::Write(None), 10, Some(11)),
            op(Kind::Read(None), 12, Some(13)),
        ];
        assert_eq!(check(&h).unwrap(), 7);
    }

    #[test]
    fn a_stale_read_fails() {
        let h = vec![
            op(Kind::Write(Some(1)), 0, Some(1)),
            op(Kind::Write(Some(2)), 2, Some(3)),
            op(Kind::Read(Some(1)), 4, Some(5)),
        ];
        let v = check(&h).unwrap_err();
        assert!(v.message.contains("not linearizable"), "{}", v.message);
    }

    #[test]
    fn a_lost_acknowledged_write_fails() {
        let h = vec![
            op(Kind::Write(Some(1)), 0, Some(1)),
            op(Kind::Read(None), 2, Some(3)),
        ];
        assert!(check(&h).is_err());
    }

    #[test]
    fn a_value_never_written_fails_and_reads_cannot_flip_back() {
        assert!(check(&[op(Kind::Read(Some(9)), 0, Some(1))]).is_err());
        // 1 then 2 observed, then 1 again: no order explains it.
        let h = vec![
            op(Kind::Write(Some(1)), 0, Some(10)),
            op(Kind::Write(Some(2)), 0, Some(10)),
            op(Kind::Read(Some(1)), 1, Some(2)),
            op(Kind::Read(Some(2)), 3, Some(4)),
            op(Kind::Read(Some(1)), 5, Some(6)),
        ];
        assert!(check(&h).is_err());
    }

    #[test]
    fn unknown_writes_may_apply_late_or_never() {
        // The timed-out write of 2 shows up long after its client gave up.
        let late = vec![
            op(Kind::Write(Some(1)), 0, Some(1)),
            op(Kind::Write(Some(2)), 2, None),
            op(Kind::Read(Some(1)), 3, Some(4)),
            op(Kind::Read(Some(2)), 100, Some(101)),
        ];
        assert!(check(&late).is_ok());
        // ... or never.
        let never = vec![
            op(Kind::Write(Some(1)), 0, Some(1)),
            op(Kind::Write(Some(2)), 2, None),
            op(Kind::Read(Some(1)), 100, Some(101)),
        ];
        assert!(check(&never).is_ok());
        // But it cannot apply before it was invoked.
        let early = vec![
            op(Kind::Read(Some(2)), 0, Some(1)),
            op(Kind::Write(Some(2)), 2, None),
        ];
        assert!(check(&early).is_err());
    }

    #[test]
    fn keys_are_checked_apart_and_a_long_history_is_fast() {
        let mut h = Vec::new();
        let mut t = 0;
        for i in 0..2_000u64 {
            // Four clients overlapping: write i, three reads that see i-1 or i.
            h.push(Op {
                key: format!("k{}", i % 5),
                kind: Kind::Write(Some(i)),
                start: t,
                end: Some(t + 10),
                client: 0,
            });
            for c in 1..4u64 {
                let prev = i.checked_sub(5);
                let seen = if c % 2 == 0 { Some(i) } else { prev };
                h.push(Op {
                    key: format!("k{}", i % 5),
                    kind: Kind::Read(seen),
                    start: t + c,
                    end: Some(t + 9),
                    client: c as usize,
                });
            }
            t += 20;
        }
        assert_eq!(check(&h).unwrap(), 8_000);
    }
}
