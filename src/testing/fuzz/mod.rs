//! Entry points for fuzzing and corruption tests: thin public wrappers over
//! the crate-private decoders. Not part of the API (hidden from the docs, no
//! stability promise).
//!
//! Every decoder entry point takes arbitrary bytes and returns `Ok(())` or
//! an error; it never panics on hostile input. A panic means the engine broke
//! one of its own invariants (a decoded value that does not round-trip, an
//! SSTable get that disagrees with its iterator): a bug for the fuzzer to
//! report. [`model`] drives the public API over a [`FaultFs`] and panics when
//! the database disagrees with a `BTreeMap` model.
//!
//! Several entry points read a *mode byte* first: when its low bit is set,
//! the entry point fixes up checksums, so that the fuzzer can explore what
//! lies behind them (see each function).

#![allow(clippy::unwrap_used, missing_docs)]

mod manifest;
mod model;
mod sample_db;
mod sstable;
mod values;
mod vlog;

pub use manifest::{manifest_edit, manifest_file, sample_manifest_edits};
pub use model::model;
pub use sample_db::{sample_db, sample_db_files, SampleDb};
pub use sstable::{block, bloom, footer_bytes, sample_table, sstable};
pub use values::compressed_value;
pub use vlog::{hint_file, hint_in_db, value_pointer, vlog_record, vlog_segment};

use crate::error::{Error, Result};
use crate::files::FileName;
use crate::lsm::sstable::format::FOOTER_LEN;
use crate::vlog::hint;
use crate::vlog::record;
use crate::vlog::ValuePointer;
use sstable::{kv_block, sample_entries};
use std::path::PathBuf;

/// The error the entry points return for input they refuse.
fn corrupt(what: &str) -> Error {
    Error::corruption(PathBuf::from("<fuzz>"), 0, what.to_owned())
}

/// The fuzz targets, by name (the directory names under `fuzz/corpus`).
pub const TARGETS: &[&str] = &[
    "vlog_record",
    "value_pointer",
    "vlog_segment",
    "sstable",
    "block",
    "bloom",
    "footer",
    "manifest_edit",
    "manifest_file",
    "hint_file",
    "compressed_value",
    "model",
];

/// Runs the named target on `data` (`model` returns `Ok(())` or panics).
pub fn run(target: &str, data: &[u8]) -> Result<()> {
    match target {
        "vlog_record" => vlog_record(data),
        "value_pointer" => value_pointer(data),
        "vlog_segment" => vlog_segment(data),
        "sstable" => sstable(data),
        "block" => block(data),
        "bloom" => bloom(data),
        "footer" => footer_bytes(data),
        "manifest_edit" => manifest_edit(data),
        "manifest_file" => manifest_file(data),
        "hint_file" => hint_file(data),
        "compressed_value" => compressed_value(data),
        "model" => {
            model(data);
            Ok(())
        }
        other => panic!("unknown fuzz target {other}"),
    }
}

/// A few valid inputs for the named target (the seed corpus).
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let with_mode = |mode: u8, b: &[u8]| {
        let mut v = vec![mode];
        v.extend_from_slice(b);
        v
    };
    let files = sample_db_files();
    let file = |kind: fn(&FileName) -> bool| -> Vec<Vec<u8>> {
        files
            .iter()
            .filter(|(n, _)| FileName::parse(n).as_ref().is_some_and(kind))
            .map(|(_, c)| c.clone())
            .collect()
    };
    let segments = |f: &FileName| matches!(f, FileName::Segment(_) | FileName::GcSegment(_));
    let ssts = |f: &FileName| matches!(f, FileName::Sst(_));
    let manifests = |f: &FileName| matches!(f, FileName::Manifest(_));
    let hints = |f: &FileName| matches!(f, FileName::Hint(_));
    match target {
        "vlog_record" => {
            let mut out = Vec::new();
            for (i, (k, v)) in [
                (&b"k"[..], &b""[..]),
                (b"key", b"value"),
                (b"", &[7u8; 300]),
            ]
            .iter()
            .enumerate()
            {
                let mut buf = Vec::new();
                record::encode(&mut buf, i != 1, i == 2, i as u32, 42 + i as u64, k, v);
                out.push(with_mode(0, &buf));
            }
            out
        }
        "value_pointer" => [(1u64, 0u64, 30u32), (7, 1 << 20, 4096), (u64::MAX, 3, 25)]
            .iter()
            .map(|&(segment, offset, len)| {
                ValuePointer {
                    segment,
                    offset,
                    len,
                    raw_len: None,
                }
                .encode()
            })
            .collect(),
        "vlog_segment" => file(segments)
            .into_iter()
            .filter(|c| c.len() <= 20 << 10)
            .take(2)
            .collect(),
        "sstable" => {
            let mut v = vec![sample_table(40, 256, 10), sample_table(120, 1024, 0)];
            v.extend(file(ssts).into_iter().take(1));
            v
        }
        "block" => vec![
            kv_block(&sample_entries()),
            vec![0, 0, 0, 0],
            kv_block(&sample_entries()[..1]),
        ],
        "bloom" => {
            let mut a = vec![0xffu8; 16];
            a.push(7);
            let mut b = vec![0x5au8; 64];
            b.push(3);
            vec![a, b]
        }
        "footer" => {
            let t = sample_table(40, 256, 10);
            let f = &t[t.len() - FOOTER_LEN..];
            vec![with_mode(0, f), with_mode(1, &f[..FOOTER_LEN - 4])]
        }
        "manifest_edit" => sample_manifest_edits(),
        "compressed_value" => values::seeds(),
        "manifest_file" => {
            let mut out: Vec<Vec<u8>> = file(manifests).iter().map(|m| with_mode(0, m)).collect();
            let mut framed = vec![1u8];
            for p in sample_manifest_edits() {
                framed.extend_from_slice(&(p.len() as u16).to_le_bytes());
                framed.extend_from_slice(&p);
            }
            out.push(framed);
            out
        }
        "hint_file" => {
            let sample = sample_db();
            let mut out: Vec<Vec<u8>> = file(hints).iter().map(|h| with_mode(0, h)).collect();
            out.push(with_mode(0, &hint::encode(5, 0, &[])));
            if let Some(h) = file(hints).first() {
                out.push(with_mode(1, &h[..h.len() - hint::CHECKSUM_LEN]));
            }
            // Installed in the sample database: each segment's own hint, and
            // for the segments without one (the open heads) the hint a scan
            // would give, which must be as good as the scan.
            for (i, (n, name, entries)) in sample.segments.iter().enumerate() {
                let len = files.iter().find(|(f, _)| f == name).unwrap().1.len();
                let h = hint::encode(*n, len as u64, entries);
                out.push(with_mode(2 | ((i as u8) << 2), &h));
                // The same with the checksum left to the entry point, so
                // that mutations of the entries stay well checksummed.
                out.push(with_mode(3 | ((i as u8) << 2), &h[..h.len() - 4]));
            }
            out
        }
        "model" => vec![
            // put x3, get, scan, flush, put, reopen, scan
            vec![0, 1, 3, 1, 2, 3, 2, 5, 5, 1, 6, 0, 7, 0, 9, 3, 11, 6, 1],
            // puts, batch, sync, power loss
            vec![0, 4, 3, 4, 3, 7, 130, 9, 3, 10, 1, 5, 3, 13, 5, 6, 0],
            // many large puts, compact, gc, fault, writes, power loss
            (0..40u8)
                .flat_map(|i| [0, i, 3])
                .chain([8, 9, 12, 3, 0, 0, 1, 3, 0, 2, 3, 13, 7, 6, 0])
                .collect(),
            // The unordered table (key bytes with bit 6): puts, delete, a
            // batch across both tables, get, multi_get, refusals, scan,
            // flush, gc, reopen, scan
            vec![
                0, 0x40, 1, 0, 0x41, 3, 1, 0x42, 2, 3, 0x41, 4, 3, 0x43, 2, 0x03, 1, 0xc0, 0x44, 3,
                5, 0x40, 14, 3, 0x40, 0x41, 0x42, 0x43, 15, 0x40, 6, 0, 7, 9, 11, 6, 1,
            ],
            // Large overwrites in the unordered table over several segments,
            // gc, reopen (keydir from hints), sync, power loss, gc, reopen
            (0..60u8)
                .flat_map(|i| [0, 0x40 | (i % 24), 3])
                .chain([
                    9, 11, 6, 0, 3, 0x45, 10, 0, 0x46, 3, 13, 7, 6, 0, 9, 11, 6, 0,
                ])
                .collect(),
            // Both tables, then a persistent failure, writes, reads, power
            // loss, gc, reopen
            (0..30u8)
                .flat_map(|i| [1, 0x40 | i, 3, 0, i, 2])
                .chain([
                    12, 5, 0x80, 0, 0x40, 3, 4, 1, 0x41, 2, 0x02, 1, 5, 0x40, 14, 1, 0x40,
                ])
                .chain([13, 9, 6, 0, 11, 6, 1, 15, 0x47])
                .collect(),
        ],
        other => panic!("unknown fuzz target {other}"),
    }
}
