//! Compressed values: the stored form of a value that a vLog record keeps
//! compressed (record flag bit 1), and the codec that makes and reads it.
//!
//! ```text
//! stored value = raw_len varint | dictionary id varint | zstd frame
//! ```
//!
//! `raw_len` is the value's length (1 to 2^32 - 1); the dictionary id is
//! the file number of the `NNNNNN.dict` the frame was compressed with, or 0
//! for none. The record's checksum covers these stored bytes. A value is
//! stored this way only when the whole stored form is shorter than the
//! value; otherwise the record keeps the value as it is (flag clear).
//!
//! Decompression is bounded by `raw_len`, itself bounded by the caller's
//! limit (the largest value the database accepts): hostile bytes can make
//! it fail, never allocate more than that or panic.

use super::dict::Dictionary;
use crate::coding::{put_varint, Reader};
use std::cell::RefCell;
use zstd::zstd_safe::{CCtx, DCtx};

/// A compressed value's stored form, parsed (not yet decompressed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Compressed<'a> {
    /// The value's length once decompressed.
    pub(crate) raw_len: u32,
    /// The dictionary's id (its file number), 0 for none.
    pub(crate) dict: u64,
    /// One zstd frame.
    pub(crate) frame: &'a [u8],
}

impl<'a> Compressed<'a> {
    /// Parses a stored value; `None` when it is not one (bad varints, a raw
    /// length of 0 or past u32, no frame).
    pub(crate) fn parse(stored: &'a [u8]) -> Option<Compressed<'a>> {
        let mut r = Reader::new(stored);
        let raw_len = u32::try_from(r.varint()?).ok().filter(|&n| n > 0)?;
        let dict = r.varint()?;
        let frame = &stored[r.pos()..];
        if frame.is_empty() {
            return None;
        }
        Some(Compressed {
            raw_len,
            dict,
            frame,
        })
    }
}

thread_local! {
    // One compression and one decompression context per thread, reused:
    // making a context costs more than compressing a small value.
    static CCTX: RefCell<Option<CCtx<'static>>> = const { RefCell::new(None) };
    static DCTX: RefCell<Option<DCtx<'static>>> = const { RefCell::new(None) };
}

/// How one table stores new values: a zstd level and, when it has one, the
/// dictionary.
#[derive(Debug, Clone)]
pub(crate) struct Codec {
    pub(crate) level: i32,
    pub(crate) dict: Option<std::sync::Arc<Dictionary>>,
}

impl Codec {
    /// The dictionary's id, 0 for none.
    pub(crate) fn dict_id(&self) -> u64 {
        self.dict.as_ref().map_or(0, |d| d.id())
    }

    /// The stored form of `value`, or `None` when it would not be shorter
    /// than the value (random bytes: the attempt is all it costs) or the
    /// value is empty or 4 GiB or more.
    pub(crate) fn compress(&self, value: &[u8]) -> Option<Vec<u8>> {
        let raw_len = u32::try_from(value.len()).ok().filter(|&n| n > 0)?;
        let mut out = Vec::new();
        put_varint(&mut out, u64::from(raw_len));
        put_varint(&mut out, self.dict_id());
        let head = out.len();
        // Room for a frame that makes the stored form shorter; zstd fails
        // with "destination too small" rather than write past it.
        let room = value.len().checked_sub(head + 1)?;
        if room == 0 {
            return None;
        }
        out.reserve_exact(room);
        let r = CCTX.with(|c| {
            let mut c = c.borrow_mut();
            let cctx = c.get_or_insert_with(CCtx::create);
            let mut frame: Vec<u8> = Vec::with_capacity(room);
            let n = match &self.dict {
                Some(d) => {
                    cctx.compress_using_cdict(&mut frame, value, d.encoder(self.level).as_cdict())
                }
                None => cctx.compress(&mut frame, value, self.level),
            };
            n.map(|_| frame)
        });
        let frame = r.ok()?;
        if head + frame.len() >= value.len() {
            return None;
        }
        out.extend_from_slice(&frame);
        Some(out)
    }
}

/// Decompresses `c` with `dict` (which must be the dictionary `c` names, or
/// `None` when it names none) into a value of exactly `c.raw_len` bytes, at
/// most `max_len`. The error says what was wrong, for a corruption message.
pub(crate) fn decompress(
    c: &Compressed<'_>,
    dict: Option<&Dictionary>,
    max_len: usize,
) -> Result<Vec<u8>, String> {
    let want = c.raw_len as usize;
    if want > max_len {
        return Err(format!(
            "compressed value claims {want} bytes, over the limit of {max_len}"
        ));
    }
    match (c.dict, dict) {
        (0, None) => {}
        (id, Some(d)) if id == d.id() => {}
        (id, _) => {
            return Err(format!(
                "compressed value names dictionary {id}, not the one given"
            ))
        }
    }
    let mut out: Vec<u8> = Vec::with_capacity(want);
    let r = DCTX.with(|cell| {
        let mut cell = cell.borrow_mut();
        let dctx = cell.get_or_insert_with(DCtx::create);
        match dict {
            Some(d) => dctx.decompress_using_ddict(&mut out, c.frame, d.decoder().as_ddict()),
            None => dctx.decompress(&mut out, c.frame),
        }
    });
    match r {
        Ok(n) if n == want && out.len() == want => Ok(out),
        Ok(n) => Err(format!(
            "compressed value decompresses to {n} bytes, not the {want} it records"
        )),
        Err(code) => Err(format!(
            "compressed value does not decompress: {}",
            zstd::zstd_safe::get_error_name(code)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(n: usize) -> Vec<u8> {
        let words = ["alpha", "beta", "gamma", "delta", "\"name\":", "\"id\":"];
        let mut v = Vec::new();
        let mut i = 0usize;
        while v.len() < n {
            v.extend_from_slice(words[(i * 7 + i / 3) % words.len()].as_bytes());
            v.push(b' ');
            i += 1;
        }
        v.truncate(n);
        v
    }

    #[test]
    fn round_trip_without_a_dictionary() {
        let codec = Codec {
            level: 3,
            dict: None,
        };
        let v = text(4000);
        let stored = codec.compress(&v).unwrap();
        assert!(stored.len() < v.len() / 4, "{}", stored.len());
        let c = Compressed::parse(&stored).unwrap();
        assert_eq!((c.raw_len, c.dict), (4000, 0));
        assert_eq!(decompress(&c, None, 1 << 20).unwrap(), v);
        // A limit below the raw length refuses before allocating.
        assert!(decompress(&c, None, 3999)
            .unwrap_err()
            .contains("over the limit"));
    }

    #[test]
    fn values_that_do_not_shrink_are_left_alone() {
        let codec = Codec {
            level: 3,
            dict: None,
        };
        let mut x = 0x1234_5678_9abc_def0u64;
        let random: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert_eq!(codec.compress(&random), None);
        assert_eq!(codec.compress(b""), None);
        assert_eq!(codec.compress(b"ab"), None);
    }

    #[test]
    fn a_lying_raw_length_is_refused() {
        let codec = Codec {
            level: 1,
            dict: None,
        };
        let stored = codec.compress(&text(3000)).unwrap();
        let c = Compressed::parse(&stored).unwrap();
        for raw_len in [2999, 3001, 1] {
            let c = Compressed { raw_len, ..c };
            assert!(decompress(&c, None, 1 << 20).is_err(), "{raw_len}");
        }
        let c = Compressed { dict: 7, ..c };
        assert!(decompress(&c, None, 1 << 20)
            .unwrap_err()
            .contains("dictionary 7"));
    }

    proptest! {
        #[test]
        fn hostile_stored_values_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Some(c) = Compressed::parse(&bytes) {
                let _ = decompress(&c, None, 1 << 16);
            }
        }
    }
}
