//! Value dictionaries: zstd dictionaries trained from a table's values, one
//! checksummed file each, and the set of them a database has open.
//!
//! ```text
//! NNNNNN.dict = magic "WKDICT\0\x01" | id u64 | table u32 | len u32
//!               | dictionary (len bytes) | crc32 u32
//! ```
//!
//! Integers are little-endian; the CRC-32 (IEEE, as in vLog records) covers
//! every byte before it. The id is the file number `NNNNNN` (from the
//! database's one counter), and it is what a compressed value names. The
//! last byte of the magic is the file format's version (1). The manifest
//! records which dictionaries are live and which segments use each; a
//! dictionary file is written and synced before the edit that names it.

use crate::coding::Reader;
use crate::error::{Error, Result};
use crate::io::Fs;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use zstd::dict::{DecoderDictionary, EncoderDictionary};

const MAGIC: &[u8; 8] = b"WKDICT\0\x01";
const HEADER_LEN: usize = 8 + 8 + 4 + 4;
/// The largest dictionary a file may hold (a trained one is far smaller).
pub(crate) const MAX_DICT_LEN: usize = 1 << 20;

/// One dictionary: its bytes, prepared for decompression, and prepared for
/// compression at the levels asked for so far.
pub(crate) struct Dictionary {
    id: u64,
    table: u32,
    bytes: Vec<u8>,
    decoder: DecoderDictionary<'static>,
    encoders: Mutex<Vec<(i32, Arc<EncoderDictionary<'static>>)>>,
}

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dictionary")
            .field("id", &self.id)
            .field("table", &self.table)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Dictionary {
    pub(crate) fn new(id: u64, table: u32, bytes: Vec<u8>) -> Dictionary {
        let decoder = DecoderDictionary::copy(&bytes);
        Dictionary {
            id,
            table,
            bytes,
            decoder,
            encoders: Mutex::new(Vec::new()),
        }
    }

    /// The id (its file number), which compressed values name.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The table it was trained for.
    pub(crate) fn table(&self) -> u32 {
        self.table
    }

    /// Its bytes.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn decoder(&self) -> &DecoderDictionary<'static> {
        &self.decoder
    }

    /// The dictionary prepared for compression at `level` (made once per
    /// level, then shared).
    pub(crate) fn encoder(&self, level: i32) -> Arc<EncoderDictionary<'static>> {
        let mut e = self.encoders.lock();
        if let Some((_, d)) = e.iter().find(|(l, _)| *l == level) {
            return d.clone();
        }
        let d = Arc::new(EncoderDictionary::copy(&self.bytes, level));
        e.push((level, d.clone()));
        d
    }

    /// The file's bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEADER_LEN + self.bytes.len() + 4);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&self.id.to_le_bytes());
        b.extend_from_slice(&self.table.to_le_bytes());
        b.extend_from_slice(&(self.bytes.len() as u32).to_le_bytes());
        b.extend_from_slice(&self.bytes);
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a dictionary file (`path`, for the error). Anything but a
    /// whole, checksummed file of dictionary `id` is `Error::Corruption`
    /// naming the file and offset.
    pub(crate) fn decode(path: &Path, id: u64, b: &[u8]) -> Result<Dictionary> {
        let bad = |at: usize, why: &str| Error::corruption(path, at as u64, why.to_string());
        if b.len() < HEADER_LEN + 4 {
            return Err(bad(0, "dictionary file is shorter than its header"));
        }
        if b[..7] != MAGIC[..7] {
            return Err(bad(0, "not a dictionary file (bad magic)"));
        }
        if b[7] != MAGIC[7] {
            return Err(bad(
                7,
                &format!(
                    "dictionary file format version {} is not the one this build reads ({}): open it with the version of wisckey that wrote it",
                    b[7], MAGIC[7]
                ),
            ));
        }
        let body = b.len() - 4;
        let stored = u32::from_le_bytes([b[body], b[body + 1], b[body + 2], b[body + 3]]);
        if crc32fast::hash(&b[..body]) != stored {
            return Err(bad(body, "dictionary file checksum mismatch"));
        }
        let mut r = Reader::new(&b[8..body]);
        let file_id = r.u64().ok_or_else(|| bad(8, "truncated header"))?;
        let table = r.u32().ok_or_else(|| bad(16, "truncated header"))?;
        let len = r.u32().ok_or_else(|| bad(20, "truncated header"))? as usize;
        if file_id != id {
            return Err(bad(
                8,
                &format!("dictionary file holds dictionary {file_id}"),
            ));
        }
        if len > MAX_DICT_LEN || len != body - HEADER_LEN {
            return Err(bad(20, "dictionary length disagrees with the file"));
        }
        Ok(Dictionary::new(id, table, b[HEADER_LEN..body].to_vec()))
    }
}

/// Trains a dictionary of at most `max_len` bytes from `samples`.
///
/// # Errors
/// The trainer's message when it cannot (too few or too small samples).
pub(crate) fn train(samples: &[&[u8]], max_len: usize) -> std::result::Result<Vec<u8>, String> {
    zstd::dict::from_samples(samples, max_len.min(MAX_DICT_LEN)).map_err(|e| e.to_string())
}

/// Writes dictionary `d` as its file (temp file, data sync, rename,
/// directory sync): durable before the manifest edit that names it.
pub(crate) fn write(fs: &Arc<dyn Fs>, dir: &Path, d: &Dictionary) -> Result<()> {
    let name = crate::files::dict(d.id);
    let path = dir.join(&name);
    let tmp = dir.join(crate::files::temp(&name));
    let bytes = d.encode();
    let r = (|| {
        let f = fs.create(&tmp)?;
        f.write_all_at(&bytes, 0)?;
        f.sync_data()?;
        drop(f);
        fs.rename(&tmp, &path)?;
        fs.sync_dir(dir)
    })();
    if let Err(e) = r {
        let _ = fs.remove(&tmp);
        return Err(Error::io(format!("writing {}", path.display()), e));
    }
    Ok(())
}

/// Reads dictionary `id`. A missing file is `Error::Corruption` naming it
/// (the manifest says it is live).
pub(crate) fn read(fs: &Arc<dyn Fs>, dir: &Path, id: u64) -> Result<Dictionary> {
    let path = dir.join(crate::files::dict(id));
    let f = match fs.open(&path, false) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::corruption(
                &path,
                0,
                "a dictionary the manifest names (and compressed values use) is missing",
            ))
        }
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
    };
    let io = |e| Error::io(format!("reading {}", path.display()), e);
    let len = f.len().map_err(io)?;
    if len > (MAX_DICT_LEN + HEADER_LEN + 4) as u64 {
        return Err(Error::corruption(&path, 0, "dictionary file is too large"));
    }
    let mut b = vec![0u8; len as usize];
    f.read_exact_at(&mut b, 0).map_err(io)?;
    Dictionary::decode(&path, id, &b)
}

/// Removes dictionary file `id`; a failure is only logged (the next open
/// removes a dictionary file the manifest does not name).
pub(crate) fn remove(fs: &Arc<dyn Fs>, dir: &Path, id: u64) {
    let p = dir.join(crate::files::dict(id));
    if let Err(e) = fs.remove(&p) {
        if e.kind() != std::io::ErrorKind::NotFound {
            log::warn!("removing {}: {e}", p.display());
        }
    }
}

/// The dictionaries a database has open, by id: what reads decompress with.
#[derive(Debug, Default)]
pub(crate) struct Dictionaries {
    map: RwLock<HashMap<u64, Arc<Dictionary>>>,
}

impl Dictionaries {
    pub(crate) fn get(&self, id: u64) -> Option<Arc<Dictionary>> {
        self.map.read().get(&id).cloned()
    }

    pub(crate) fn insert(&self, d: Arc<Dictionary>) {
        self.map.write().insert(d.id(), d);
    }

    /// Forgets dictionary `id` if nothing but this set holds it (no writer
    /// is compressing with it, no reader decompressing); returns whether it
    /// did.
    pub(crate) fn remove_if_unused(&self, id: u64) -> bool {
        let mut m = self.map.write();
        match m.get(&id) {
            Some(d) if Arc::strong_count(d) == 1 => {
                m.remove(&id);
                true
            }
            _ => false,
        }
    }

    /// The ids, in no order.
    pub(crate) fn ids(&self) -> Vec<u64> {
        self.map.read().keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flipped_bit_and_every_cut_is_refused() {
        let d = Dictionary::new(42, 3, b"some dictionary bytes".to_vec());
        let b = d.encode();
        let p = Path::new("000042.dict");
        let back = Dictionary::decode(p, 42, &b).unwrap();
        assert_eq!((back.id(), back.table(), back.len()), (42, 3, 21));
        assert!(Dictionary::decode(p, 43, &b).is_err(), "another id");
        for i in 0..b.len() * 8 {
            let mut x = b.clone();
            x[i / 8] ^= 1 << (i % 8);
            assert!(Dictionary::decode(p, 42, &x).is_err(), "bit {i}");
        }
        for n in 0..b.len() {
            assert!(Dictionary::decode(p, 42, &b[..n]).is_err(), "cut at {n}");
        }
        let mut newer = b.clone();
        newer[7] = 2;
        let e = Dictionary::decode(p, 42, &newer).unwrap_err().to_string();
        assert!(e.contains("format version 2"), "{e}");
    }
}
