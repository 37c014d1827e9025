//! A batch of writes encoded once, as the vLog records it will be appended
//! as: the group-commit leader only fills in sequence numbers, batch flags
//! and checksums ([`RecordBatch::seal`]) before writing the bytes as they
//! are.

use super::record;

/// Where one write sits in a batch's encoded records.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchOp {
    /// Offset of the record in the batch's bytes.
    pub(crate) offset: usize,
    pub(crate) table: u32,
    pub(crate) is_put: bool,
    /// A range delete: the key is the start, the value the encoded end.
    pub(crate) is_range_delete: bool,
    pub(crate) key_len: usize,
    /// Bytes of the value as stored (compressed, for a compressed value).
    pub(crate) value_len: usize,
    /// The value's raw length when it is stored compressed.
    pub(crate) raw_len: Option<u32>,
    /// The dictionary the value is compressed with (0: none).
    pub(crate) dict: u64,
    /// Compression was tried and the value did not shrink (stored raw).
    pub(crate) incompressible: bool,
}

impl BatchOp {
    /// Bytes of the op's record.
    pub(crate) fn len(&self) -> usize {
        record::record_len(self.key_len, self.value_len)
    }

    /// The value's length before compression.
    pub(crate) fn raw_value_len(&self) -> usize {
        self.raw_len.map_or(self.value_len, |n| n as usize)
    }
}

/// What compression made of one put's value (see
/// [`RecordBatch::compress_values`]).
#[derive(Debug)]
pub(crate) enum Attempt {
    /// Not tried: the value stays as it is.
    Skipped,
    /// Tried; the value did not shrink and stays as it is.
    DidNotShrink,
    /// The stored form, and the dictionary id it names.
    Stored(Vec<u8>, u64),
}

/// Records encoded but not yet sealed.
#[derive(Debug, Clone, Default)]
pub(crate) struct RecordBatch {
    rep: Vec<u8>,
    ops: Vec<BatchOp>,
}

impl RecordBatch {
    /// Appends a put (`is_put`) or a delete of `key` in `table`.
    pub(crate) fn push(&mut self, table: u32, is_put: bool, key: &[u8], value: &[u8]) {
        let offset = record::encode_unsealed(&mut self.rep, is_put, false, table, key, value);
        self.ops.push(BatchOp {
            offset,
            table,
            is_put,
            is_range_delete: false,
            key_len: key.len(),
            value_len: value.len(),
            raw_len: None,
            dict: 0,
            incompressible: false,
        });
    }

    /// Appends a range delete of `[start, end)` in `table` (`end` encoded
    /// by `RangeTombstone::encode_end`).
    pub(crate) fn push_range_delete(&mut self, table: u32, start: &[u8], end: &[u8]) {
        let offset = record::encode_unsealed(&mut self.rep, false, false, table, start, end);
        self.rep[offset] |= record::FLAG_RANGE_DELETE;
        self.ops.push(BatchOp {
            offset,
            table,
            is_put: false,
            is_range_delete: true,
            key_len: start.len(),
            value_len: end.len(),
            raw_len: None,
            dict: 0,
            incompressible: false,
        });
    }

    /// The batch with each put's value replaced by its compressed stored
    /// form where `compress` (given the op and its value) makes one. A batch
    /// where nothing is tried comes back as it was, uncopied.
    pub(crate) fn compress_values(
        self,
        mut compress: impl FnMut(&BatchOp, &[u8]) -> Attempt,
    ) -> RecordBatch {
        let mut out: Option<RecordBatch> = None;
        for (i, op) in self.ops.iter().enumerate() {
            let attempt = if op.is_put && op.raw_len.is_none() {
                compress(op, self.value(op))
            } else {
                Attempt::Skipped
            };
            if matches!(attempt, Attempt::Skipped) && out.is_none() {
                continue;
            }
            let o = out.get_or_insert_with(|| {
                let mut b = RecordBatch {
                    rep: Vec::with_capacity(self.rep.len()),
                    ops: Vec::with_capacity(self.ops.len()),
                };
                for earlier in &self.ops[..i] {
                    b.copy_op(&self, earlier);
                }
                b
            });
            match attempt {
                Attempt::Stored(stored, dict) => {
                    let offset = record::encode_unsealed(
                        &mut o.rep,
                        true,
                        true,
                        op.table,
                        self.key(op),
                        &stored,
                    );
                    o.ops.push(BatchOp {
                        offset,
                        value_len: stored.len(),
                        // A value over u32 is never compressed.
                        raw_len: Some(op.value_len as u32),
                        dict,
                        ..*op
                    });
                }
                Attempt::DidNotShrink => {
                    o.copy_op(&self, op);
                    if let Some(last) = o.ops.last_mut() {
                        last.incompressible = true;
                    }
                }
                Attempt::Skipped => o.copy_op(&self, op),
            }
        }
        out.unwrap_or(self)
    }

    /// Appends `op`'s record (from `from`) as it is.
    fn copy_op(&mut self, from: &RecordBatch, op: &BatchOp) {
        let offset = self.rep.len();
        self.rep
            .extend_from_slice(&from.rep[op.offset..op.offset + op.len()]);
        self.ops.push(BatchOp { offset, ..*op });
    }

    /// The writes, in order.
    pub(crate) fn ops(&self) -> &[BatchOp] {
        &self.ops
    }

    /// The key of `op`.
    pub(crate) fn key(&self, op: &BatchOp) -> &[u8] {
        let k = op.offset + record::HEADER_LEN;
        &self.rep[k..k + op.key_len]
    }

    /// The value of `op` (empty for a delete).
    pub(crate) fn value(&self, op: &BatchOp) -> &[u8] {
        let v = op.offset + record::HEADER_LEN + op.key_len;
        &self.rep[v..v + op.value_len]
    }

    /// Bytes the batch's records take in the vLog.
    pub(crate) fn bytes(&self) -> usize {
        self.rep.len()
    }

    /// Whether the batch holds no write.
    pub(crate) fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Removes every write.
    pub(crate) fn clear(&mut self) {
        self.ops.clear();
        self.rep.clear();
    }

    /// Gives the records sequence numbers from `first_seq` on, sets the
    /// continuation flag on all but the last, and computes their checksums.
    #[inline]
    pub(crate) fn seal(&mut self, first_seq: u64) {
        let n = self.ops.len();
        for (i, op) in self.ops.iter().enumerate() {
            let rec = &mut self.rep[op.offset..op.offset + op.len()];
            record::seal(rec, first_seq + i as u64, i + 1 < n);
        }
    }

    /// The encoded records (sealed once [`RecordBatch::seal`] ran).
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.rep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_records_decode_with_their_sequence_numbers() {
        let mut b = RecordBatch::default();
        b.push(3, true, b"k1", b"value");
        b.push(0, false, b"k2", b"");
        assert_eq!(b.key(&b.ops()[1]), b"k2");
        assert_eq!(b.value(&b.ops()[0]), b"value");
        b.seal(41);
        let ops = b.ops().to_vec();
        let bytes = b.into_bytes();
        let first = record::decode(&bytes[ops[0].offset..]).unwrap();
        assert_eq!((first.header.seq, first.header.continues), (41, true));
        assert_eq!(
            (first.header.table, first.key, first.value),
            (3, &b"k1"[..], &b"value"[..])
        );
        let second = record::decode(&bytes[ops[1].offset..]).unwrap();
        assert_eq!((second.header.seq, second.header.continues), (42, false));
        assert!(!second.header.is_put);
    }

    #[test]
    fn compressed_values_replace_their_records() {
        let mut b = RecordBatch::default();
        b.push(1, true, b"a", b"aaaaaaaaaaaaaaaa");
        b.push(1, false, b"b", b"");
        b.push(2, true, b"c", b"random");
        let b = b.compress_values(|op, v| match op.table {
            1 => Attempt::Stored(v[..3].to_vec(), 9),
            _ => Attempt::DidNotShrink,
        });
        let ops = b.ops().to_vec();
        assert_eq!(
            (ops[0].raw_len, ops[0].value_len, ops[0].dict),
            (Some(16), 3, 9)
        );
        assert_eq!((ops[1].raw_len, ops[1].is_put), (None, false));
        assert!(ops[2].incompressible && ops[2].raw_len.is_none());
        assert_eq!(b.value(&ops[2]), b"random");
        let mut b = b;
        b.seal(1);
        let bytes = b.into_bytes();
        let r = record::decode(&bytes[ops[0].offset..]).unwrap();
        assert!(r.header.compressed);
        assert_eq!((r.key, r.value), (&b"a"[..], &b"aaa"[..]));
        let r = record::decode(&bytes[ops[2].offset..]).unwrap();
        assert!(!r.header.compressed);
        // Nothing tried: the same batch back.
        let mut b = RecordBatch::default();
        b.push(1, true, b"a", b"v");
        let b = b.compress_values(|_, _| Attempt::Skipped);
        assert_eq!(b.ops().len(), 1);
    }
}
