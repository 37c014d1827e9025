//! Fuzz entry point of the compressed-value formats: a dictionary file and
//! a compressed value's stored form, decompressed with that dictionary.

use super::corrupt;
use crate::error::Result;
use crate::vlog::compress::{self, Codec, Compressed};
use crate::vlog::dict::{self, Dictionary};
use std::path::Path;
use std::sync::Arc;

/// The most a fuzzed value may decompress to.
const MAX_LEN: usize = 1 << 20;

/// `mode u8 | dict_len u16 | dictionary file (dict_len bytes) | stored value`.
/// Mode bit 0: recompute the dictionary file's checksum first. The file is
/// decoded (as dictionary id 7 when it says 7, else as the id it names);
/// the stored value is parsed and decompressed with the dictionary when it
/// names it, without one otherwise. A value that decompresses must have
/// exactly the length it records, and compress back to something that
/// decompresses to it.
pub fn compressed_value(data: &[u8]) -> Result<()> {
    let (Some(&mode), Some(len)) = (data.first(), data.get(1..3)) else {
        return Ok(());
    };
    let dict_len = usize::from(u16::from_le_bytes([len[0], len[1]])).min(data.len() - 3);
    let mut file = data[3..3 + dict_len].to_vec();
    let stored = &data[3 + dict_len..];
    if mode & 1 == 1 && file.len() >= 4 {
        let body = file.len() - 4;
        let crc = crc32fast::hash(&file[..body]);
        file[body..].copy_from_slice(&crc.to_le_bytes());
    }
    let id = file
        .get(8..16)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
    let d = Dictionary::decode(Path::new("<fuzz>.dict"), id, &file)
        .ok()
        .map(Arc::new);
    if let Some(d) = &d {
        assert_eq!(d.encode(), file, "dictionary file does not round-trip");
    }
    let c = Compressed::parse(stored).ok_or_else(|| corrupt("bad stored value"))?;
    let with = d.as_ref().filter(|d| d.id() == c.dict);
    let raw = compress::decompress(&c, with.map(|d| &**d), MAX_LEN).map_err(|e| corrupt(&e))?;
    assert_eq!(raw.len(), c.raw_len as usize);
    let codec = Codec {
        level: 1,
        dict: with.cloned(),
    };
    if let Some(again) = codec.compress(&raw) {
        let c2 = Compressed::parse(&again).expect("a stored form parses");
        let back = compress::decompress(&c2, with.map(|d| &**d), MAX_LEN).expect("round trip");
        assert_eq!(back, raw, "compressed value does not round-trip");
    }
    Ok(())
}

/// Seeds: a trained dictionary with a value compressed with it, and a value
/// compressed without one.
pub(super) fn seeds() -> Vec<Vec<u8>> {
    let doc = |i: usize| {
        format!(
            r#"{{"id":{i},"name":"user{i}","tags":["red","green"],"score":{}}}"#,
            i % 13
        )
        .repeat(4)
        .into_bytes()
    };
    let samples: Vec<Vec<u8>> = (0..300).map(doc).collect();
    let refs: Vec<&[u8]> = samples.iter().map(|s| &s[..]).collect();
    let frame = |file: &[u8], stored: &[u8]| {
        let mut v = vec![0u8];
        v.extend_from_slice(&(file.len() as u16).to_le_bytes());
        v.extend_from_slice(file);
        v.extend_from_slice(stored);
        v
    };
    let mut out = Vec::new();
    if let Ok(bytes) = dict::train(&refs, 4096) {
        let d = Arc::new(Dictionary::new(7, 1, bytes));
        let codec = Codec {
            level: 3,
            dict: Some(d.clone()),
        };
        if let Some(stored) = codec.compress(&doc(1000)) {
            out.push(frame(&d.encode(), &stored));
        }
    }
    let plain = Codec {
        level: 3,
        dict: None,
    };
    if let Some(stored) = plain.compress(&doc(5)) {
        out.push(frame(&[], &stored));
    }
    out
}
