//! Fuzz entry points of the SSTable format: whole tables, key/value
//! blocks, bloom filters and footers, each inside a synthetic table.

use crate::io::bytes_file::BytesFile as MemFile;
use crate::io::Fs;
use crate::lsm::ikey;
use crate::lsm::sstable::format::{
    put_stored_block, BlockHandle, Footer, SstProperties, COMPRESSION_NONE, FOOTER_LEN,
};
use crate::lsm::sstable::{BlockBuilder, Sst, SstBuilder, SstBuilderOptions};
use crate::testing::FaultFs;
use crate::Result;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(super) fn open_table(bytes: Vec<u8>) -> Result<Arc<Sst>> {
    let len = bytes.len() as u64;
    Sst::open(Arc::new(MemFile(bytes)), PathBuf::from("/000001.sst"), len)
}

/// Iterates a table forwards and backwards, then gets keys it listed and a
/// few it did not; a get of a listed key must find that key's user part
/// (unless the filter, which no checksum ties to the data's meaning, says no).
pub(super) fn exercise_table(table: &Arc<Sst>, extra_targets: &[Vec<u8>]) -> Result<()> {
    use crate::lsm::iter::InternalIterator;
    let mut it = table.iter();
    it.seek_to_first();
    let mut keys = Vec::new();
    while it.valid() && keys.len() < 10_000 {
        keys.push(it.key().to_vec());
        it.next();
    }
    it.status()?;
    let mut it = table.iter();
    it.seek_to_last();
    let mut n = 0;
    while it.valid() && n < 10_000 {
        n += 1;
        it.prev();
    }
    it.status()?;
    for k in keys.iter().step_by(1 + keys.len() / 64) {
        let mut it = table.iter();
        it.seek(k);
        it.seek_for_prev(k);
        it.status()?;
        let up = ikey::user_part(k);
        let target = ikey::seek_key(up, u64::MAX >> 8);
        table.get(&target)?;
        table.get(k)?;
    }
    for t in extra_targets {
        table.get(t)?;
        let mut it = table.iter();
        it.seek(t);
        it.status()?;
    }
    Ok(())
}

/// An SSTable file: open, full iteration both ways, some gets.
pub fn sstable(data: &[u8]) -> Result<()> {
    let table = open_table(data.to_vec())?;
    let extra: Vec<Vec<u8>> = data
        .chunks(24)
        .take(4)
        .map(|c| ikey::seek_key(c, u64::MAX >> 8))
        .collect();
    exercise_table(&table, &extra)
}

pub(super) fn stored(out: &mut Vec<u8>, payload: &[u8]) -> (u64, u64) {
    let mut block = Vec::new();
    let h = put_stored_block(&mut block, out.len() as u64, payload, COMPRESSION_NONE);
    out.extend_from_slice(&block);
    (h.offset, h.size)
}

/// The encoding of the handle `(offset, size)`, as an index entry holds it.
fn handle_bytes((offset, size): (u64, u64)) -> Vec<u8> {
    let mut b = Vec::new();
    BlockHandle { offset, size }.encode_varint(&mut b);
    b
}

/// A key/value block of restart points only (no prefix compression).
pub(super) fn kv_block(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut b = BlockBuilder::new(1);
    for (k, v) in entries {
        b.add(k, v);
    }
    b.finish()
}

pub(super) fn props_block(
    entries: u64,
    smallest: &[u8],
    largest: &[u8],
    data_blocks: u64,
) -> Vec<u8> {
    SstProperties {
        entries,
        smallest: smallest.to_vec(),
        largest: largest.to_vec(),
        data_blocks,
        ..SstProperties::default()
    }
    .encode()
}

pub(super) fn footer(out: &mut Vec<u8>, index: (u64, u64), filter: (u64, u64), props: (u64, u64)) {
    let handle = |(offset, size)| BlockHandle { offset, size };
    out.extend_from_slice(
        &Footer {
            index: handle(index),
            filter: handle(filter),
            properties: handle(props),
        }
        .encode(),
    );
}

/// The largest internal key used by the synthetic tables' index.
pub(super) fn max_key() -> Vec<u8> {
    ikey::encode(u32::MAX, &[0xff; 16], 0, 0)
}

pub(super) fn sample_entries() -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..8u32)
        .map(|i| {
            let k = ikey::encode(0, format!("key{i:03}").as_bytes(), 10 + u64::from(i), 1);
            (k, vec![b'v'; i as usize])
        })
        .collect()
}

/// A key/value block (data or index): the bytes are stored (with a correct
/// checksum) as the only data block of a synthetic table, which is then
/// opened, iterated and searched; and as the index block of another.
pub fn block(data: &[u8]) -> Result<()> {
    let mk = max_key();
    // As a data block.
    let mut f = Vec::new();
    let d = stored(&mut f, data);
    let index_entry = handle_bytes(d);
    let ih = stored(&mut f, &kv_block(&[(mk.clone(), index_entry)]));
    let ph = stored(&mut f, &props_block(1, &mk, &mk, 1));
    footer(&mut f, ih, (0, 0), ph);
    let first = match open_table(f) {
        Ok(t) => {
            let extra: Vec<Vec<u8>> = sample_entries().into_iter().map(|e| e.0).collect();
            exercise_table(&t, &extra)
        }
        Err(e) => Err(e),
    };
    // As an index block in front of one real data block.
    let mut f = Vec::new();
    stored(&mut f, &kv_block(&sample_entries()));
    let ih = stored(&mut f, data);
    let ph = stored(&mut f, &props_block(1, &mk, &mk, 1));
    footer(&mut f, ih, (0, 0), ph);
    if let Ok(t) = open_table(f) {
        exercise_table(&t, &[])?;
    }
    first
}

/// A bloom filter block: stored as the filter of a synthetic table holding
/// eight keys, which are then looked up (each lookup probes the filter).
pub fn bloom(data: &[u8]) -> Result<()> {
    let entries = sample_entries();
    let last = entries.last().map(|e| e.0.clone()).unwrap_or_default();
    let mut f = Vec::new();
    let d = stored(&mut f, &kv_block(&entries));
    let fh = stored(&mut f, data);
    let index_entry = handle_bytes(d);
    let ih = stored(&mut f, &kv_block(&[(last.clone(), index_entry)]));
    let ph = stored(&mut f, &props_block(8, &entries[0].0, &last, 1));
    footer(&mut f, ih, fh, ph);
    let t = open_table(f)?;
    for (k, _) in &entries {
        let up = ikey::user_part(k);
        if let Some((found, _)) = t.get(&ikey::seek_key(up, u64::MAX >> 8))? {
            assert_eq!(ikey::user_part(&found), up, "get returned another key");
        }
    }
    for probe in data.chunks(12).take(8) {
        t.get(&ikey::seek_key(probe, u64::MAX >> 8))?;
    }
    Ok(())
}

/// A valid table (from [`SstBuilder`]) used as the body in front of fuzzed
/// footers, and as a seed.
pub fn sample_table(entries: usize, block_size: usize, bloom_bits: u32) -> Vec<u8> {
    let fs = FaultFs::new();
    let path = Path::new("/t.sst");
    let file = fs.create(path).unwrap();
    let mut b = SstBuilder::new(
        file,
        path.to_path_buf(),
        SstBuilderOptions {
            block_size,
            restart_interval: 4,
            bloom_bits_per_key: bloom_bits,
            ..SstBuilderOptions::default()
        },
    );
    for i in 0..entries {
        let k = ikey::encode(
            (i / 50) as u32,
            format!("k{i:05}").as_bytes(),
            i as u64 + 1,
            1,
        );
        b.add(&k, format!("value-{i}").as_bytes()).unwrap();
    }
    b.finish().unwrap();
    fs.contents(path).unwrap()
}

/// A table footer. Mode byte bit 0: the next 60 bytes are the footer body
/// and its checksum is computed; otherwise the rest is the footer as is. The
/// footer follows the body of a valid 40-entry table.
pub fn footer_bytes(data: &[u8]) -> Result<()> {
    let Some((&mode, rest)) = data.split_first() else {
        return Ok(());
    };
    let full = sample_table(40, 256, 10);
    let mut f = full[..full.len() - FOOTER_LEN].to_vec();
    if mode & 1 == 1 {
        f.extend_from_slice(&Footer::with_checksum(
            &rest[..rest.len().min(FOOTER_LEN - 4)],
        ));
    } else {
        f.extend_from_slice(rest);
    }
    let t = open_table(f)?;
    exercise_table(&t, &[])
}
