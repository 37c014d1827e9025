//! `dump` and `dump-sst`: list the records of one vLog segment or the
//! entries of one SSTable, as text or JSON lines, with the damage found.
//!
//! Both read the one file through `wisckey::inspect`, read-only and
//! without opening the database, so a database that no longer opens can
//! still be looked at. Exit status: 0 the file is intact, 1 damage found
//! or the file could not be read, 2 a usage error (clap's).

use crate::units;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use wisckey::inspect::{
    self, EntryKind, RecordInfo, RecordKind, SegmentDump, SegmentItem, SstDump, SstEntryInfo,
};

/// Bytes of a value shown without `--values`.
const PREVIEW_BYTES: usize = 32;

/// What both subcommands share: the filter and the output form.
#[derive(Debug, clap::Args)]
pub struct Shown {
    /// Only the records (entries) whose key is exactly KEY (compared as
    /// bytes). Damaged ranges and blocks are always listed, and with
    /// --json so is every block.
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// Only the records (entries) whose key starts with PREFIX.
    #[arg(long, value_name = "PREFIX", conflicts_with = "key")]
    prefix: Option<String>,
    /// Print whole values (escaped) instead of their first bytes.
    #[arg(long)]
    values: bool,
    /// Print JSON lines: one object per record (entry) and damaged place,
    /// then a summary object; a failure is an object too, `{"type":
    /// "error", "ok": false, "error": ...}`.
    #[arg(long)]
    json: bool,
}

impl Shown {
    fn matches(&self, key: &[u8]) -> bool {
        match (&self.key, &self.prefix) {
            (Some(k), _) => key == k.as_bytes(),
            (None, Some(p)) => key.starts_with(p.as_bytes()),
            (None, None) => true,
        }
    }

    fn filtered(&self) -> bool {
        self.key.is_some() || self.prefix.is_some()
    }

    /// The value as shown: all of it with `--values`, else its first bytes.
    fn value_text(&self, value: &[u8]) -> String {
        inspect::escape(value, (!self.values).then_some(PREVIEW_BYTES))
    }
}

#[derive(Debug, clap::Args)]
pub struct DumpArgs {
    /// The database directory.
    dir: PathBuf,
    /// The segment: a number (12: 000012.vlog, else 000012.gc.vlog), a file
    /// name (000012.gc.vlog) or a path.
    segment: String,
    #[command(flatten)]
    shown: Shown,
}

#[derive(Debug, clap::Args)]
pub struct DumpSstArgs {
    /// The database directory.
    dir: PathBuf,
    /// The SSTable: a number (12: 000012.sst), a file name or a path.
    file: String,
    #[command(flatten)]
    shown: Shown,
}

/// Runs `dump`: 0 intact, 1 damage or failure.
pub fn dump(args: &DumpArgs) -> ExitCode {
    let r = inspect::segment_path(&args.dir, &args.segment).and_then(|p| inspect::segment(&p));
    match r {
        Ok(d) => finish(print_segment(&d, &args.shown), d.is_intact()),
        Err(e) => fail(&e, args.shown.json),
    }
}

/// Runs `dump-sst`: 0 intact, 1 damage or failure.
pub fn dump_sst(args: &DumpSstArgs) -> ExitCode {
    let r = inspect::sst_path(&args.dir, &args.file).and_then(|p| inspect::sst(&p));
    match r {
        Ok(d) => finish(print_sst(&d, &args.shown), d.is_intact()),
        Err(e) => fail(&e, args.shown.json),
    }
}

fn finish(printed: std::io::Result<()>, intact: bool) -> ExitCode {
    match printed {
        // A closed pipe (`| head`) is not a failure of the dump.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("error: writing the output: {e}");
            ExitCode::FAILURE
        }
        _ if intact => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

fn fail(e: &wisckey::Error, json: bool) -> ExitCode {
    if json {
        println!(
            "{}",
            json!({"type": "error", "ok": false, "error": e.to_string()})
        );
    } else {
        eprintln!("error: {e}");
    }
    ExitCode::FAILURE
}

/// Every byte as two hex digits.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn kind_name(k: RecordKind) -> &'static str {
    match k {
        RecordKind::Put => "put",
        RecordKind::Delete => "delete",
        RecordKind::RangeDelete => "range_delete",
        _ => "unknown",
    }
}

fn entry_kind_name(k: EntryKind) -> &'static str {
    match k {
        EntryKind::Inline => "inline",
        EntryKind::Pointer => "pointer",
        EntryKind::Tombstone => "tombstone",
        _ => "unknown",
    }
}

fn file_label(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn record_json(r: &RecordInfo, shown: &Shown) -> Value {
    let mut o = json!({
        "type": "record",
        "offset": r.offset,
        "len": r.len,
        "kind": kind_name(r.kind),
        "continues": r.continues,
        "table": r.table,
        "seq": r.seq,
        "key": inspect::escape(&r.key, None),
        "key_hex": hex(&r.key),
        "value_len": r.value_len,
        "checksum": "ok",
        "crc": r.checksum,
    });
    if r.kind == RecordKind::Put {
        o["value"] = json!(shown.value_text(&r.value));
        o["value_complete"] = json!(shown.values || r.value.len() <= PREVIEW_BYTES);
    }
    if let Some(n) = r.raw_len {
        o["raw_len"] = json!(n);
        o["dictionary"] = json!(r.dictionary);
        o["decompress_error"] = json!(r.decompress_error);
    }
    o
}

fn record_text(r: &RecordInfo, shown: &Shown) -> String {
    let mut line = format!(
        "@{} len {} {} table {} seq {} key \"{}\"",
        r.offset,
        r.len,
        kind_name(r.kind),
        r.table,
        r.seq,
        inspect::escape(&r.key, None)
    );
    if r.kind == RecordKind::Put {
        let v = u64::from(r.value_len);
        if shown.values {
            line += &format!(
                " value {} \"{}\"",
                units::bytes(v),
                shown.value_text(&r.value)
            );
        } else {
            line += &format!(
                " value {} {}",
                units::bytes(v),
                inspect::hex_preview(&r.value)
            );
        }
        if let Some(n) = r.raw_len {
            line += &format!(" (stored compressed; raw {}", units::bytes(u64::from(n)));
            if let Some(d) = r.dictionary {
                line += &format!(", dictionary {d}");
            }
            if let Some(e) = &r.decompress_error {
                line += &format!(", not decompressed: {e}");
            }
            line.push(')');
        }
    }
    if r.continues {
        line += " batch-continues";
    }
    line + " ok"
}

fn print_segment(d: &SegmentDump, shown: &Shown) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut listed = 0u64;
    for item in &d.items {
        match item {
            SegmentItem::Record(r) => {
                if !shown.matches(&r.key) {
                    continue;
                }
                listed += 1;
                if shown.json {
                    writeln!(out, "{}", record_json(r, shown))?;
                } else {
                    writeln!(out, "{}", record_text(r, shown))?;
                }
            }
            SegmentItem::Damaged(x) => {
                if shown.json {
                    let claimed = x.header.map(|h| {
                        json!({"kind": kind_name(h.kind), "continues": h.continues,
                               "table": h.table, "seq": h.seq,
                               "key_len": h.key_len, "value_len": h.value_len})
                    });
                    writeln!(
                        out,
                        "{}",
                        json!({"type": "damaged", "offset": x.offset, "len": x.len,
                               "reason": x.reason, "checksum": "bad", "header": claimed})
                    )?;
                } else {
                    let mut line = format!("@{} len {} DAMAGED: {}", x.offset, x.len, x.reason);
                    if let Some(h) = x.header {
                        line += &format!(
                            " (its header says {} table {} seq {} key {} B value {} B)",
                            kind_name(h.kind),
                            h.table,
                            h.seq,
                            h.key_len,
                            h.value_len
                        );
                    }
                    writeln!(out, "{line}")?;
                }
            }
            _ => {}
        }
    }
    let records = d.records().count();
    let damage: Vec<_> = d.damage().collect();
    if shown.json {
        let ranges: Vec<Value> = damage
            .iter()
            .map(|x| json!({"offset": x.offset, "len": x.len, "reason": x.reason}))
            .collect();
        let kind = d.kind.map(|k| match k {
            inspect::SegmentKind::User => "user",
            inspect::SegmentKind::Gc => "gc",
            _ => "unknown",
        });
        let summary = json!({
            "type": "summary", "file": d.path, "segment": d.number, "kind": kind,
            "size": d.size, "records": records, "listed": listed,
            "damaged": ranges, "unfinished_batch": d.unfinished_batch,
            "intact": d.is_intact(),
        });
        writeln!(out, "{summary}")?;
    } else {
        let mut line = format!("{}: {} records", file_label(&d.path), records);
        if shown.filtered() {
            line += &format!(" ({listed} listed)");
        }
        line += &format!(", {}", units::bytes(d.size));
        if damage.is_empty() {
            line += ", no damage";
        } else {
            let at: Vec<String> = damage
                .iter()
                .map(|x| format!("@{}+{}", x.offset, x.len))
                .collect();
            line += &format!(", {} damaged range(s): {}", damage.len(), at.join(" "));
        }
        if let Some(at) = d.unfinished_batch {
            line += &format!(", ends inside the batch that starts @{at}");
        }
        writeln!(out, "{line}")?;
    }
    out.flush()
}

fn entry_json(e: &SstEntryInfo, shown: &Shown) -> Value {
    let mut o = json!({
        "type": "entry",
        "block": e.block,
        "table": e.table,
        "key": inspect::escape(&e.key, None),
        "key_hex": hex(&e.key),
        "seq": e.seq,
        "kind": entry_kind_name(e.kind),
        "value_len": e.value_len,
        "pointer": e.pointer.map(|p| json!({"segment": p.segment, "offset": p.offset, "len": p.len, "raw_len": p.raw_len})),
        "problem": e.problem,
    });
    if e.kind == EntryKind::Inline {
        o["value"] = json!(shown.value_text(&e.value));
        o["value_complete"] = json!(shown.values || e.value.len() <= PREVIEW_BYTES);
    }
    o
}

fn entry_text(e: &SstEntryInfo, shown: &Shown) -> String {
    let mut line = format!(
        "  table {} seq {} key \"{}\" {}",
        e.table,
        e.seq,
        inspect::escape(&e.key, None),
        entry_kind_name(e.kind)
    );
    match (e.kind, e.pointer) {
        (EntryKind::Inline, _) if shown.values => {
            line += &format!(
                " value {} \"{}\"",
                units::bytes(e.value_len),
                shown.value_text(&e.value)
            );
        }
        (EntryKind::Inline, _) => {
            line += &format!(
                " value {} {}",
                units::bytes(e.value_len),
                inspect::hex_preview(&e.value)
            );
        }
        (EntryKind::Pointer, Some(p)) => {
            line += &format!(
                " segment {} @{} len {} (value {})",
                p.segment,
                p.offset,
                p.len,
                units::bytes(e.value_len)
            );
        }
        _ => {}
    }
    if let Some(problem) = &e.problem {
        line += &format!(" PROBLEM: {problem}");
    }
    line
}

fn print_sst(d: &SstDump, shown: &Shown) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let block_offsets: Vec<u64> = d.blocks.iter().map(|b| b.offset).collect();
    // Damage outside the data blocks: the footer, index, filter, properties.
    for x in d
        .damage
        .iter()
        .filter(|x| !block_offsets.contains(&x.offset))
    {
        if shown.json {
            writeln!(
                out,
                "{}",
                json!({"type": "damaged", "offset": x.offset, "reason": x.what, "checksum": "bad"})
            )?;
        } else {
            writeln!(out, "@{} DAMAGED: {}", x.offset, x.what)?;
        }
    }
    let mut entries = d.entries.iter().peekable();
    let mut listed = 0u64;
    for b in &d.blocks {
        if shown.json {
            let state = if b.damage.is_some() { "bad" } else { "ok" };
            writeln!(
                out,
                "{}",
                json!({"type": "block", "index": b.index, "offset": b.offset, "size": b.size,
                       "entries": b.entries, "checksum": state, "damage": b.damage})
            )?;
        } else if let Some(why) = &b.damage {
            writeln!(
                out,
                "block {} @{} size {} DAMAGED: {why}",
                b.index, b.offset, b.size
            )?;
        } else if !shown.filtered() {
            writeln!(
                out,
                "block {} @{} size {}: {} entries ok",
                b.index, b.offset, b.size, b.entries
            )?;
        }
        while let Some(e) = entries.next_if(|e| e.block == b.index) {
            if !shown.matches(&e.key) {
                continue;
            }
            listed += 1;
            if shown.json {
                writeln!(out, "{}", entry_json(e, shown))?;
            } else {
                writeln!(out, "{}", entry_text(e, shown))?;
            }
        }
    }
    let damaged_blocks = d.blocks.iter().filter(|b| b.damage.is_some()).count();
    if shown.json {
        let damage: Vec<Value> = d
            .damage
            .iter()
            .map(|x| json!({"offset": x.offset, "reason": x.what}))
            .collect();
        let summary = json!({
            "type": "summary", "file": d.path, "number": d.number, "size": d.size,
            "blocks": d.blocks.len(), "damaged_blocks": damaged_blocks,
            "entries": d.entries.len(), "listed": listed, "damage": damage,
            "intact": d.is_intact(),
        });
        writeln!(out, "{summary}")?;
    } else {
        let mut line = format!(
            "{}: {} entries in {} data blocks",
            file_label(&d.path),
            d.entries.len(),
            d.blocks.len()
        );
        if shown.filtered() {
            line += &format!(" ({listed} listed)");
        }
        line += &format!(", {}", units::bytes(d.size));
        if d.damage.is_empty() {
            line += ", no damage";
        } else {
            line += &format!(
                ", {} damaged place(s), {damaged_blocks} of them data blocks",
                d.damage.len()
            );
        }
        writeln!(out, "{line}")?;
    }
    out.flush()
}
