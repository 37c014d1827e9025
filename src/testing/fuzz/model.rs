//! The model target: random operations on the public API over a
//! [`FaultFs`], with faults and power losses, checked against a `BTreeMap`.

use crate::testing::{FailMode, FaultFs, Repeat};
use crate::{Db, Error, GcOptions, Options, Result, TableOptions, WriteBatch, WriteOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

pub(super) fn model_options(fs: &FaultFs) -> Options {
    Options::default()
        .fs(Arc::new(fs.clone()))
        .memtable_size(4 << 10)
        .segment_size(16 << 10)
        .block_size(256)
        .value_threshold(64)
        .l0_compaction_trigger(2)
        .base_level_size(8 << 10)
        .target_file_size(4 << 10)
        .background_gc(false)
}

pub(super) struct Input<'a>(&'a [u8]);
impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
}

/// Both tables of the model database in one map: each key is tagged with
/// its table's byte ([`DEFAULT_TAG`] or [`UNORDERED_TAG`]) in front.
pub(super) type Model = BTreeMap<Vec<u8>, Vec<u8>>;
/// A tagged key and its new value (`None`: deleted).
pub(super) type Write = (Vec<u8>, Option<Vec<u8>>);

pub(super) const DEFAULT_TAG: u8 = b'D';
pub(super) const UNORDERED_TAG: u8 = b'U';
/// The model's keys: `key00` .. `key23`, in each table.
pub(super) const MODEL_KEYS: u8 = 24;

/// The key a key byte names (its low bits), untagged.
pub(super) fn mkey(b: u8) -> Vec<u8> {
    format!("key{:02}", b % MODEL_KEYS).into_bytes()
}

/// Whether a key byte names the unordered table (bit 6).
pub(super) fn in_unordered(b: u8) -> bool {
    b & 0x40 != 0
}

pub(super) fn tagged(unordered: bool, key: &[u8]) -> Vec<u8> {
    let mut t = vec![if unordered {
        UNORDERED_TAG
    } else {
        DEFAULT_TAG
    }];
    t.extend_from_slice(key);
    t
}

pub(super) fn mvalue(key: &[u8], counter: u64, size_byte: u8) -> Vec<u8> {
    let len = match size_byte % 4 {
        0 => 0,
        1 => 10,
        2 => 100,
        _ => 400 + usize::from(size_byte) * 12,
    };
    let unit = format!("{}#{counter};", String::from_utf8_lossy(key));
    unit.bytes().cycle().take(len).collect()
}

/// The allowed outcome of a read while faults may have fired.
pub(super) fn tolerated(e: &Error) -> bool {
    matches!(e, Error::Io { .. } | Error::Poisoned(_))
}

/// The model database: the default (ordered) table and the unordered `u`.
pub(super) struct ModelDb {
    db: Db,
    u: crate::Table,
}

impl ModelDb {
    fn open(fs: &FaultFs, dir: &Path) -> Result<ModelDb> {
        let db = Db::open(dir, model_options(fs))?;
        let u = db.table("u", TableOptions::unordered())?;
        Ok(ModelDb { db, u })
    }

    fn get(&self, unordered: bool, key: &[u8]) -> Result<Option<crate::Value>> {
        if unordered {
            self.u.get(key)
        } else {
            self.db.get(key)
        }
    }

    /// Both tables: the default one by a scan (`reverse`: backwards), the
    /// unordered one by a get of every model key; tagged.
    fn read_all(&self, reverse: bool) -> Result<Model> {
        let mut out = Model::new();
        let mut add = |kv: Result<(Vec<u8>, crate::Value)>| -> Result<()> {
            let (k, v) = kv?;
            out.insert(tagged(false, &k), v.into_vec());
            Ok(())
        };
        if reverse {
            self.db.iter().rev().try_for_each(&mut add)?;
        } else {
            self.db.iter().try_for_each(&mut add)?;
        }
        for i in 0..MODEL_KEYS {
            let k = mkey(i);
            if let Some(v) = self.u.get(&k)? {
                out.insert(tagged(true, &k), v.into_vec());
            }
        }
        Ok(out)
    }
}

/// What an unordered table refuses (no key order: ranges, prefixes), and
/// the kind it was created with; none of it touches the disk, so it holds
/// whatever faults are armed.
pub(super) fn check_unordered_refusals(m: &ModelDb, key: &[u8]) {
    let one_unsupported = |mut it: crate::Iter, what: &str, back: bool| {
        let first = if back { it.next_back() } else { it.next() };
        assert!(
            matches!(first, Some(Err(Error::Unsupported(_)))),
            "{what} on an unordered table: {first:?}"
        );
        assert!(it.next().is_none(), "{what}: more after Unsupported");
        assert!(it.next_back().is_none(), "{what}: more after Unsupported");
    };
    one_unsupported(m.u.range(key.to_vec()..), "range", true);
    one_unsupported(m.u.range(..key.to_vec()), "range", false);
    one_unsupported(m.u.prefix(&key[..3]), "prefix", false);
    let snap = m.db.snapshot();
    one_unsupported(
        snap.range_in(&m.u, key.to_vec()..),
        "snapshot range_in",
        false,
    );
    drop(snap);
    let r = m.db.table("u", TableOptions::ordered());
    assert!(
        matches!(r, Err(Error::InvalidArgument(_))),
        "reopening the table as ordered: {r:?}"
    );
}

/// Interprets the bytes as API operations (put, delete, batch, get,
/// multi_get, scan, flush, compact, GC, sync, reopen, failure injection,
/// power loss) on a database over a [`FaultFs`] with two tables, the default
/// (ordered) one and an unordered one (a key byte with bit 6 set names it),
/// checking every read against a model. Without an injected failure reads
/// must match the model exactly; after a power loss the database must hold
/// the state as of its last sync point plus a prefix of the writes after
/// it. While an injected failure may have fired, every failure must be
/// `Io`/`Poisoned`, and reads that succeed must still match the model on
/// every key except those a failed write touched (such a write may or may
/// not have landed); a clean reopen re-learns those keys and a power loss
/// the whole model. Range and prefix scans and snapshot reads of the
/// unordered table must give `Unsupported`. Panics on a disagreement.
pub fn model(data: &[u8]) {
    let mut input = Input(data);
    let fs = FaultFs::new();
    let dir = Path::new("/db");
    let mut m = match ModelDb::open(&fs, dir) {
        Ok(m) => m,
        Err(e) => panic!("opening an empty database failed: {e}"),
    };
    // The state as of the last sync point, and the writes acknowledged since.
    let mut durable = Model::new();
    let mut pending: Vec<Vec<Write>> = Vec::new();
    let mut model = Model::new();
    // A failure was armed since the model was last known exactly.
    let mut faulty = false;
    // Keys (tagged) that a failed write touched: their state is unknown
    // until the next reopen.
    let mut uncertain: BTreeSet<Vec<u8>> = BTreeSet::new();
    // The model without the uncertain keys, for comparing whole states.
    let certain = |m: &Model, unc: &BTreeSet<Vec<u8>>| -> Model {
        m.iter()
            .filter(|(k, _)| !unc.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let mut counter = 0u64;
    let mut steps = 0;
    while let Some(op) = input.byte() {
        steps += 1;
        if steps > 200 {
            break;
        }
        match op % 16 {
            0..=2 => {
                let kb = input.byte().unwrap_or(0);
                let (u, k) = (in_unordered(kb), mkey(kb));
                let tk = tagged(u, &k);
                counter += 1;
                let v = mvalue(&tk, counter, input.byte().unwrap_or(1));
                let sync = op % 16 == 2;
                let mut b = WriteBatch::new();
                if u {
                    b.put_in(&m.u, &k, &v);
                } else {
                    b.put(&k, &v);
                }
                match m.db.write(b, WriteOptions::default().sync(sync)) {
                    Ok(()) => {
                        model.insert(tk.clone(), v.clone());
                        pending.push(vec![(tk, Some(v))]);
                        if sync {
                            durable = model.clone();
                            pending.clear();
                        }
                    }
                    Err(e) => {
                        assert!(faulty && tolerated(&e), "put failed: {e}");
                        uncertain.insert(tk);
                    }
                }
            }
            3 => {
                let kb = input.byte().unwrap_or(0);
                let (u, k) = (in_unordered(kb), mkey(kb));
                let r = if u { m.u.delete(&k) } else { m.db.delete(&k) };
                let tk = tagged(u, &k);
                match r {
                    Ok(()) => {
                        model.remove(&tk);
                        pending.push(vec![(tk, None)]);
                    }
                    Err(e) => {
                        assert!(faulty && tolerated(&e), "delete failed: {e}");
                        uncertain.insert(tk);
                    }
                }
            }
            4 => {
                let n = 1 + input.byte().unwrap_or(0) % 4;
                let mut b = WriteBatch::new();
                let mut ops = Vec::new();
                for _ in 0..n {
                    let x = input.byte().unwrap_or(0);
                    let (u, k) = (in_unordered(x), mkey(x));
                    let tk = tagged(u, &k);
                    if x & 0x80 != 0 {
                        if u {
                            b.delete_in(&m.u, &k);
                        } else {
                            b.delete(&k);
                        }
                        ops.push((tk, None));
                    } else {
                        counter += 1;
                        let v = mvalue(&tk, counter, input.byte().unwrap_or(1));
                        if u {
                            b.put_in(&m.u, &k, &v);
                        } else {
                            b.put(&k, &v);
                        }
                        ops.push((tk, Some(v)));
                    }
                }
                match m.db.write(b, WriteOptions::default()) {
                    Ok(()) => {
                        for (k, v) in &ops {
                            match v {
                                Some(v) => model.insert(k.clone(), v.clone()),
                                None => model.remove(k),
                            };
                        }
                        pending.push(ops);
                    }
                    Err(e) => {
                        assert!(faulty && tolerated(&e), "batch failed: {e}");
                        uncertain.extend(ops.into_iter().map(|(k, _)| k));
                    }
                }
            }
            5 => {
                let kb = input.byte().unwrap_or(0);
                let (u, k) = (in_unordered(kb), mkey(kb));
                match m.get(u, &k) {
                    Ok(v) => {
                        if !uncertain.contains(&tagged(u, &k)) {
                            assert_eq!(
                                v.map(|v| v.into_vec()),
                                model.get(&tagged(u, &k)).cloned(),
                                "get {} (unordered: {u})",
                                String::from_utf8_lossy(&k)
                            );
                        }
                    }
                    Err(e) => assert!(faulty && tolerated(&e), "get: {e}"),
                }
            }
            6 => {
                let reverse = input.byte().unwrap_or(0) & 1 == 1;
                match m.read_all(reverse) {
                    Ok(got) => {
                        assert_eq!(
                            certain(&got, &uncertain),
                            certain(&model, &uncertain),
                            "scan disagrees with the model"
                        );
                    }
                    Err(e) => assert!(faulty && tolerated(&e), "scan: {e}"),
                }
            }
            7 => match m.db.flush() {
                Ok(()) => {
                    if !faulty {
                        durable = model.clone();
                        pending.clear();
                    }
                }
                Err(e) => assert!(faulty && tolerated(&e), "flush failed: {e}"),
            },
            8 => {
                if let Err(e) = m.db.compact() {
                    assert!(faulty && tolerated(&e), "compact failed: {e}");
                }
            }
            9 => {
                if let Err(e) = m.db.gc(GcOptions::default().all_sealed(true)) {
                    assert!(faulty && tolerated(&e), "gc failed: {e}");
                }
            }
            10 => match m.db.sync() {
                Ok(()) => {
                    if !faulty {
                        durable = model.clone();
                        pending.clear();
                    }
                }
                Err(e) => assert!(faulty && tolerated(&e), "sync failed: {e}"),
            },
            11 => {
                // Clean close and reopen.
                let ModelDb { db, u } = m;
                drop(u);
                let r = db.close();
                if !faulty {
                    assert!(r.is_ok(), "close: {r:?}");
                }
                match ModelDb::open(&fs, dir) {
                    Ok(d) => m = d,
                    Err(e) => {
                        assert!(faulty, "reopen failed without a fault: {e}");
                        fs.recover();
                        faulty = false;
                        m = reopen_after_power_loss(&fs, dir, 0);
                        model = relearn(&m);
                        durable = model.clone();
                        pending.clear();
                        uncertain.clear();
                        continue;
                    }
                }
                match m.read_all(false) {
                    Ok(got) => {
                        assert_eq!(
                            certain(&got, &uncertain),
                            certain(&model, &uncertain),
                            "after reopen"
                        );
                        // What the failed writes left is known now.
                        model = got;
                        uncertain.clear();
                    }
                    Err(e) => assert!(faulty && tolerated(&e), "scan after reopen: {e}"),
                }
                if !faulty {
                    durable = model.clone();
                    pending.clear();
                }
            }
            12 => {
                let n = u64::from(input.byte().unwrap_or(0) % 32);
                let how = input.byte().unwrap_or(0);
                let mode = match how % 3 {
                    0 => FailMode::Eio,
                    1 => FailMode::Enospc,
                    _ => FailMode::ShortWrite,
                };
                let repeat = if how & 0x80 != 0 {
                    Repeat::Persistent
                } else {
                    Repeat::Once
                };
                fs.fail_after(n, mode, repeat);
                faulty = true;
            }
            13 => {
                // Power loss: nothing more reaches the disk, then reboot.
                let seed = u64::from(input.byte().unwrap_or(0));
                fs.crash();
                drop(m);
                fs.recover();
                m = reopen_after_power_loss(&fs, dir, seed);
                let got = relearn(&m);
                if !faulty {
                    // durable + a prefix of pending.
                    let mut s = durable.clone();
                    let mut ok = s == got;
                    for ops in &pending {
                        if ok {
                            break;
                        }
                        for (k, v) in ops {
                            match v {
                                Some(v) => s.insert(k.clone(), v.clone()),
                                None => s.remove(k),
                            };
                        }
                        ok = s == got;
                    }
                    assert!(ok, "state after power loss is not a prefix of the writes");
                }
                faulty = false;
                model = got;
                durable = model.clone();
                pending.clear();
                uncertain.clear();
            }
            14 => {
                // multi_get of 1..=6 keys in one table (the first key byte's).
                let n = 1 + usize::from(input.byte().unwrap_or(0) % 6);
                let kbs: Vec<u8> = (0..n).map(|_| input.byte().unwrap_or(0)).collect();
                let u = in_unordered(kbs[0]);
                let keys: Vec<Vec<u8>> = kbs.iter().map(|&b| mkey(b)).collect();
                let r = if u {
                    m.u.multi_get(&keys)
                } else {
                    m.db.multi_get(&keys)
                };
                match r {
                    Ok(vals) => {
                        assert_eq!(vals.len(), keys.len(), "multi_get result count");
                        for (v, k) in vals.into_iter().zip(&keys) {
                            if uncertain.contains(&tagged(u, k)) {
                                continue;
                            }
                            assert_eq!(
                                v.map(|v| v.into_vec()),
                                model.get(&tagged(u, k)).cloned(),
                                "multi_get {} (unordered: {u})",
                                String::from_utf8_lossy(k)
                            );
                        }
                    }
                    Err(e) => assert!(faulty && tolerated(&e), "multi_get: {e}"),
                }
            }
            _ => {
                let k = mkey(input.byte().unwrap_or(0));
                check_unordered_refusals(&m, &k);
            }
        }
    }
    fs.recover();
    drop(m);
}

pub(super) fn reopen_after_power_loss(fs: &FaultFs, dir: &Path, seed: u64) -> ModelDb {
    fs.power_loss(seed);
    match ModelDb::open(fs, dir) {
        Ok(m) => m,
        Err(e) => panic!("open after power loss: {e}"),
    }
}

pub(super) fn relearn(m: &ModelDb) -> Model {
    match m.read_all(false) {
        Ok(got) => got,
        Err(e) => panic!("scan after power loss: {e}"),
    }
}
