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
    pub(crate) value_len: usize,
}

impl BatchOp {
    /// Bytes of the op's record.
    pub(crate) fn len(&self) -> usize {
        record::record_len(self.key_len, self.value_len)
    }
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
        let offset = record::encode_unsealed(&mut self.rep, is_put, table, key, value);
        self.ops.push(BatchOp {
            offset,
            table,
            is_put,
            is_range_delete: false,
            key_len: key.len(),
            value_len: value.len(),
        });
    }

    /// Appends a range delete of `[start, end)` in `table` (`end` encoded
    /// by `RangeTombstone::encode_end`).
    pub(crate) fn push_range_delete(&mut self, table: u32, start: &[u8], end: &[u8]) {
        let offset = record::encode_unsealed(&mut self.rep, false, table, start, end);
        self.rep[offset] |= record::FLAG_RANGE_DELETE;
        self.ops.push(BatchOp {
            offset,
            table,
            is_put: false,
            is_range_delete: true,
            key_len: start.len(),
            value_len: end.len(),
        });
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
}
