//! Salvage: the live records of a pass's victims found from the index, not
//! by reading the segments through, so that a segment whose garbage is
//! damaged can still be collected.
//!
//! The sorted index is walked whole (keys and pointers only, no value
//! read): the newest version of each key visible now, when it is a pointer
//! into a victim, is a survivor. The keydirs list their keys whose newest
//! record is in a victim. Then every live record is read and checked before
//! anything moves: one that lies in damaged bytes is data loss, and the
//! pass fails with `Error::Corruption` naming its keys, changing nothing (a
//! segment a live pointer references is never freed).

use super::{DroppedTombstone, GcReport, Survivor};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::vlog::{Segment, ValuePointer};
use std::sync::Arc;

/// Live records read and checked in one batch.
const CHECK_BATCH: usize = 256;
/// The keys a salvage error lists, at most.
const KEYS_SHOWN: usize = 20;

impl Engine {
    /// The survivors of `victims` (open as `segs`), from the index.
    pub(super) fn survivors_from_index(
        &self,
        segs: &[Arc<Segment>],
        victims: &[u64],
        report: &mut GcReport,
    ) -> Result<(Vec<Survivor>, Vec<DroppedTombstone>)> {
        let mut survivors = self.ordered_pointers_into(victims)?;
        let mut dropped = Vec::new();
        for (table, key, e) in self.keydirs.entries_in(victims) {
            if !e.put && self.keydirs.tombstone_droppable(e.seq, victims) {
                dropped.push((table, key, e.ptr));
                continue;
            }
            survivors.push(Survivor {
                table,
                key,
                seq: e.seq,
                old: e.ptr,
                new: None,
                put: e.put,
                unordered: true,
                moved: Default::default(),
            });
        }
        report.segments_read = segs.len() as u64;
        report.records_read = (survivors.len() + dropped.len()) as u64;
        self.check_survivors(&survivors, report)?;
        Ok((survivors, dropped))
    }

    /// Every key of an ordered table whose newest visible version points
    /// into one of `victims`.
    fn ordered_pointers_into(&self, victims: &[u64]) -> Result<Vec<Survivor>> {
        let mut out = Vec::new();
        self.for_each_live_pointer(|table, key, seq, ptr| {
            if victims.contains(&ptr.segment) {
                out.push(Survivor {
                    table,
                    key: key.to_vec(),
                    seq,
                    old: ptr,
                    new: None,
                    put: true,
                    unordered: false,
                    moved: Default::default(),
                });
            }
        })?;
        Ok(out)
    }

    /// Reads every live put among `survivors` and checks it; fails, naming
    /// the keys, when any is damaged.
    fn check_survivors(&self, survivors: &[Survivor], report: &mut GcReport) -> Result<()> {
        let set = self.vlog.live_set();
        let puts: Vec<&Survivor> = survivors.iter().filter(|s| s.put).collect();
        let mut damaged: Vec<(&Survivor, Error)> = Vec::new();
        for chunk in puts.chunks(CHECK_BATCH) {
            let reqs: Vec<(ValuePointer, u32, &[u8])> = chunk
                .iter()
                .map(|s| (s.old, s.table, s.key.as_slice()))
                .collect();
            for (s, r) in chunk.iter().zip(self.vlog.read_many(&set, &reqs)) {
                match r {
                    Ok(_) => report.bytes_read += u64::from(s.old.len),
                    Err(e @ Error::Corruption { .. }) => damaged.push((s, e)),
                    Err(e) => return Err(e),
                }
            }
        }
        let Some((first, first_err)) = damaged.first() else {
            return Ok(());
        };
        let file = match first_err {
            Error::Corruption { file, .. } => file.clone(),
            _ => self.dir.clone(),
        };
        let keys: Vec<String> = damaged
            .iter()
            .take(KEYS_SHOWN)
            .map(|(s, _)| format!("table {} key {}", s.table, show(&s.key)))
            .collect();
        Err(Error::corruption(
            file,
            first.old.offset,
            format!(
                "salvage: {} live record(s) lie in damaged bytes (data lost; the segment is kept): {}{} (first: {first_err})",
                damaged.len(),
                keys.join(", "),
                if damaged.len() > KEYS_SHOWN { ", ..." } else { "" }
            ),
        ))
    }
}

/// A key for messages: text when printable, hex otherwise.
fn show(k: &[u8]) -> String {
    match std::str::from_utf8(k) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{s:?}"),
        _ => k.iter().map(|b| format!("{b:02x}")).collect(),
    }
}
