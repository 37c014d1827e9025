//! What the power-loss simulation and the I/O error sweep share: the three
//! tables over a [`FaultFs`] (the default table, the ordered table "t" and
//! the unordered table "u"), keys and self-describing values, batches and
//! their model, and a reader of hint files that counts what they list.
#![allow(dead_code)] // each test file uses its own part

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use wisckey::io::Fs;
use wisckey::testing::FaultFs;
use wisckey::{Db, Table, TableOptions, WriteBatch, WriteOptions};

/// The database directory. Neither it nor its parent exists when a workload
/// starts: creating them is part of what must survive a power loss.
pub const DIR: &str = "/data/db";
pub const NUM_KEYS: u32 = 40;
/// Table 0 is the default table, table 1 the ordered table "t", table 2 the
/// unordered table "u".
pub const TABLES: u8 = 3;
pub const UNORDERED: u8 = 2;

pub fn key(k: u32) -> Vec<u8> {
    format!("key{k:03}").into_bytes()
}

/// A value of `size` bytes that names its generation.
pub fn value(gen: u64, size: usize) -> Vec<u8> {
    let mut v = format!("{gen}:").into_bytes();
    let mut x = gen.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while v.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    v.truncate(size);
    v
}

/// The generation and size of a value read back from table `tbl`, checking
/// that it is exactly a value this test writes (`ctx` starts the panic
/// message).
pub fn decode(ctx: &str, tbl: u8, k: u32, v: &[u8]) -> (u64, usize) {
    let text = String::from_utf8_lossy(&v[..v.len().min(24)]).into_owned();
    let g: u64 = text
        .split(':')
        .next()
        .and_then(|g| g.parse().ok())
        .unwrap_or_else(|| panic!("{ctx}: table {tbl} key {k}: unknown value {text:?}"));
    assert!(
        v == value(g, v.len()),
        "{ctx}: table {tbl} key {k}: value of gen {g} damaged"
    );
    (g, v.len())
}

/// One write: table, key, and the value's (generation, size) or a delete.
pub type Item = (u8, u32, Option<(u64, usize)>);
pub type Batch = Vec<Item>;
pub type State = BTreeMap<(u8, u32), (u64, usize)>;

pub fn apply(state: &mut State, batch: &[Item]) {
    for &(t, k, w) in batch {
        match w {
            Some(v) => {
                state.insert((t, k), v);
            }
            None => {
                state.remove(&(t, k));
            }
        }
    }
}

/// The named tables the workload writes to.
pub struct Tables {
    pub t: Table,
    pub u: Table,
}

impl Tables {
    /// Opens (or, on a fresh database, creates) "t" and "u".
    pub fn open(db: &Db) -> wisckey::Result<Tables> {
        Ok(Tables {
            t: db.table("t", TableOptions::ordered())?,
            u: db.table("u", TableOptions::unordered())?,
        })
    }

    /// The named table of index `tbl`; `None` for the default table.
    pub fn get(&self, tbl: u8) -> Option<&Table> {
        match tbl {
            0 => None,
            1 => Some(&self.t),
            _ => Some(&self.u),
        }
    }
}

/// Writes `batch`: a single unsynced write through the table's own
/// `put`/`delete`, anything else as one `WriteBatch`.
pub fn write(db: &Db, tabs: &Tables, batch: &Batch, sync: bool) -> wisckey::Result<()> {
    if batch.len() == 1 && !sync {
        let (tbl, k, w) = batch[0];
        return match (tabs.get(tbl), w) {
            (None, Some((g, s))) => db.put(key(k), value(g, s)),
            (None, None) => db.delete(key(k)),
            (Some(t), Some((g, s))) => t.put(key(k), value(g, s)),
            (Some(t), None) => t.delete(key(k)),
        };
    }
    let mut b = WriteBatch::new();
    for &(tbl, k, w) in batch {
        match (tabs.get(tbl), w) {
            (None, Some((g, s))) => b.put(key(k), value(g, s)),
            (None, None) => b.delete(key(k)),
            (Some(t), Some((g, s))) => b.put_in(t, key(k), value(g, s)),
            (Some(t), None) => b.delete_in(t, key(k)),
        };
    }
    db.write(b, WriteOptions::default().sync(sync))
}

/// Every key of the three tables, read back and checked: point reads of
/// the ordered tables against a full scan (which must hold no other key),
/// point reads of the unordered table against one `multi_get` and its
/// full walk (in no order). `ctx` starts every panic message.
pub fn read_state(db: &Db, tabs: &Tables, ctx: &str) -> State {
    let mut state = State::new();
    let mut by_scan = BTreeMap::new();
    for tbl in 0..TABLES {
        if tbl == UNORDERED {
            // Its full walk (in no order) must agree with the point reads.
            let walked: BTreeMap<Vec<u8>, Vec<u8>> = tabs
                .u
                .iter()
                .map(|kv| {
                    let (k, v) = kv.unwrap_or_else(|e| panic!("{ctx}: walk of table {tbl}: {e}"));
                    (k, v.into_vec())
                })
                .collect();
            let mut found = 0;
            let keys: Vec<Vec<u8>> = (0..NUM_KEYS).map(key).collect();
            let multi = tabs
                .u
                .multi_get(&keys)
                .unwrap_or_else(|e| panic!("{ctx}: multi_get of table {tbl}: {e}"));
            assert_eq!(
                multi.len(),
                keys.len(),
                "{ctx}: multi_get answers every key"
            );
            for (k, m) in (0..NUM_KEYS).zip(multi) {
                let got = tabs
                    .u
                    .get(key(k))
                    .unwrap_or_else(|e| panic!("{ctx}: get of table {tbl} key {k}: {e}"))
                    .map(|v| v.into_vec());
                assert!(
                    got == m.map(|v| v.into_vec()),
                    "{ctx}: table {tbl} key {k}: get and multi_get disagree"
                );
                assert!(
                    walked.get(&key(k)) == got.as_ref(),
                    "{ctx}: table {tbl} key {k}: the walk and get disagree"
                );
                if let Some(v) = got {
                    found += 1;
                    state.insert((tbl, k), decode(ctx, tbl, k, &v));
                }
            }
            assert_eq!(
                walked.len(),
                found,
                "{ctx}: the walk of table {tbl} holds other keys"
            );
            continue;
        }
        let iter = match tabs.get(tbl) {
            None => db.iter(),
            Some(t) => t.iter(),
        };
        for kv in iter {
            let (k, v) = kv.unwrap_or_else(|e| panic!("{ctx}: scan of table {tbl}: {e}"));
            by_scan.insert((tbl, k), v.into_vec());
        }
        for k in 0..NUM_KEYS {
            let got = match tabs.get(tbl) {
                None => db.get(key(k)),
                Some(t) => t.get(key(k)),
            }
            .unwrap_or_else(|e| panic!("{ctx}: get of table {tbl} key {k}: {e}"))
            .map(|v| v.into_vec());
            let scanned = by_scan.remove(&(tbl, key(k)));
            assert_eq!(
                got.as_ref().map(|v| v.len()),
                scanned.as_ref().map(|v| v.len()),
                "{ctx}: table {tbl} key {k}: get and scan disagree"
            );
            assert!(
                got == scanned,
                "{ctx}: table {tbl} key {k}: get and scan disagree"
            );
            if let Some(v) = got {
                state.insert((tbl, k), decode(ctx, tbl, k, &v));
            }
        }
    }
    assert!(
        by_scan.is_empty(),
        "{ctx}: scan found unknown keys: {:?}",
        by_scan.keys()
    );
    state
}

/// What the hint file of one sealed segment lists: its unordered puts and
/// tombstones.
#[derive(Clone, Copy, Default)]
pub struct HintCount {
    pub puts: u64,
    pub tombstones: u64,
}

/// Decodes the entry flags of a hint file (format in `src/vlog/hint.rs` and
/// docs/format.md); `None` for a hint that is torn or not one.
pub fn parse_hint(b: &[u8]) -> Option<HintCount> {
    if b.len() < 32 || &b[..8] != b"WKHINT\0\x01" {
        return None;
    }
    let end = b.len() - 4;
    if crc32fast::hash(&b[..end]) != u32::from_le_bytes(b[end..].try_into().unwrap()) {
        return None;
    }
    let count = u32::from_le_bytes(b[24..28].try_into().unwrap());
    let mut pos = 28;
    let varint = |pos: &mut usize| -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = *b[..end].get(*pos)?;
            *pos += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(v);
            }
        }
        None
    };
    let mut c = HintCount::default();
    for _ in 0..count {
        let flags = *b[..end].get(pos)?;
        pos += 1 + 4 + 8;
        varint(&mut pos)?;
        varint(&mut pos)?;
        pos += usize::try_from(varint(&mut pos)?).ok()?;
        if pos > end {
            return None;
        }
        if flags & 1 == 1 {
            c.puts += 1;
        } else {
            c.tombstones += 1;
        }
    }
    (pos == end).then_some(c)
}

/// The hint files in the database directory, by segment number. Hints that
/// are torn or being written are left out.
pub fn hint_counts(fs: &FaultFs) -> HashMap<u64, HintCount> {
    let dir = Path::new(DIR);
    let Ok(names) = fs.list(dir) else {
        return HashMap::new();
    };
    names
        .iter()
        .filter_map(|n| {
            let seg: u64 = n.strip_suffix(".hint")?.parse().ok()?;
            Some((seg, parse_hint(&fs.contents(&dir.join(n))?)?))
        })
        .collect()
}

/// Panics anywhere in the process (background threads included), counted by
/// a hook installed with [`count_panics`]: a failure must reach the caller as
/// an error, never as a panic on a worker thread.
pub static PANICS: AtomicU64 = AtomicU64::new(0);

pub fn count_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));
}
