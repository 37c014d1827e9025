//! wisckey behind the [`Store`] interface: the default (ordered) table, or
//! a named unordered table with `--table-kind unordered`.

use super::store::{EngineBytes, EngineKind, Store, StoreConfig, Visit};
use anyhow::{Context, Result};
use wisckey::{Db, Table, TableOptions, WriteBatch, WriteOptions};

/// The name of the table `--table-kind unordered` writes to.
pub const UNORDERED_TABLE: &str = "bench";

/// wisckey, opened for a benchmark.
pub struct WisckeyStore {
    db: Db,
    table: Table,
    sync: bool,
    describe: String,
}

impl WisckeyStore {
    /// Opens the database in `cfg.dir` with `cfg.wisckey`, and the table
    /// the workload runs against (`unordered`: the table `bench`).
    pub fn open_table(cfg: &StoreConfig, unordered: bool) -> Result<WisckeyStore> {
        let opts = cfg
            .wisckey
            .clone()
            .memtable_size(cfg.memtable_size)
            .value_threshold(cfg.value_threshold);
        let opts = if cfg.compression {
            opts.compression(wisckey::Compression::Zstd(1))
        } else {
            opts
        };
        let db = match Db::open(&cfg.dir, opts) {
            Ok(db) => db,
            Err(e @ wisckey::Error::Unsupported(_)) => {
                return Err(e).context("this build of the engine does not support the I/O backend")
            }
            Err(e) => return Err(e).with_context(|| format!("opening {}", cfg.dir.display())),
        };
        let vc = cfg.value_compression;
        let table = if unordered {
            db.table(
                UNORDERED_TABLE,
                TableOptions::unordered().value_compression(vc),
            )
            .with_context(|| format!("creating the unordered table {UNORDERED_TABLE}"))?
        } else {
            db.table("default", TableOptions::ordered().value_compression(vc))
                .context("setting the default table's value compression")?
        };
        let dictionary = if cfg.dictionary_samples.is_empty() {
            String::new()
        } else {
            let id = table
                .train_dictionary_from(&cfg.dictionary_samples)
                .context("training the value dictionary")?;
            let bytes = db
                .stats()
                .dictionaries
                .iter()
                .find(|d| d.id == id)
                .map_or(0, |d| d.bytes);
            format!(
                " + dictionary of {} from {} samples",
                crate::units::bytes(bytes),
                cfg.dictionary_samples.len()
            )
        };
        let st = db.stats();
        let describe = format!(
            "wisckey: {} table{}, memtable {}, value threshold {}, SSTable blocks {}, values {}{}, block cache {}, I/O backend {}, writes {}, fsync per write {}",
            if unordered { "unordered" } else { "ordered" },
            if unordered {
                format!(" `{UNORDERED_TABLE}`")
            } else {
                String::new()
            },
            crate::units::bytes(cfg.memtable_size as u64),
            crate::units::bytes(cfg.value_threshold as u64),
            if cfg.compression { "zstd 1" } else { "uncompressed" },
            match vc {
                wisckey::ValueCompression::Zstd { level } => format!("zstd {level}"),
                _ => "uncompressed".to_string(),
            },
            dictionary,
            if st.block_cache_capacity == 0 {
                "off".to_string()
            } else {
                crate::units::bytes(st.block_cache_capacity)
            },
            st.io_backend,
            match st.write_mode.as_str() {
                "writeback" => format!("writeback every {}", crate::units::bytes(st.bytes_per_sync)),
                other => other.to_string(),
            },
            if cfg.sync { "on" } else { "off" }
        );
        Ok(WisckeyStore {
            db,
            table,
            sync: cfg.sync,
            describe,
        })
    }

    /// [`WisckeyStore::open_table`] on the default table.
    pub fn open(cfg: &StoreConfig) -> Result<WisckeyStore> {
        Self::open_table(cfg, false)
    }
}

impl Store for WisckeyStore {
    fn kind(&self) -> EngineKind {
        EngineKind::Wisckey
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        if self.sync {
            let mut wb = WriteBatch::new();
            wb.put_in(&self.table, key, value);
            return Ok(self.db.write(wb, WriteOptions::default().sync(true))?);
        }
        Ok(self.table.put(key, value)?)
    }

    fn put_batch(&self, items: &[(&[u8], &[u8])]) -> Result<()> {
        let mut wb = WriteBatch::new();
        for (k, v) in items {
            wb.put_in(&self.table, k, v);
        }
        Ok(self.db.write(wb, WriteOptions::default().sync(self.sync))?)
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        if self.sync {
            let mut wb = WriteBatch::new();
            wb.delete_in(&self.table, key);
            return Ok(self.db.write(wb, WriteOptions::default().sync(true))?);
        }
        Ok(self.table.delete(key)?)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.table.get(key)?.map(|v| v.to_vec()))
    }

    fn multi_get(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        Ok(self
            .table
            .multi_get(keys)?
            .into_iter()
            .map(|v| v.map(|v| v.to_vec()))
            .collect())
    }

    fn scan(&self, start: &[u8], limit: usize, f: &mut Visit) -> Result<u64> {
        let mut n = 0u64;
        for kv in self.table.range(start..) {
            if n as usize >= limit {
                break;
            }
            let (k, v) = kv?;
            n += 1;
            if !f(&k, &v)? {
                break;
            }
        }
        Ok(n)
    }

    fn flush(&self) -> Result<()> {
        self.db.flush().context("flush")?;
        self.db.sync().context("sync")?;
        Ok(())
    }

    fn settle(&self) -> Result<()> {
        Ok(self.db.wait_for_background()?)
    }

    fn engine_bytes(&self) -> Option<EngineBytes> {
        let s = self.db.stats();
        Some(EngineBytes {
            written: crate::timeline::all_written(&s),
            gc_written: Some(s.gc_bytes_written),
        })
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn close(self: Box<Self>) -> Result<()> {
        let WisckeyStore { db, table, .. } = *self;
        drop(table);
        Ok(db.close()?)
    }

    fn wisckey(&self) -> Option<&Db> {
        Some(&self.db)
    }
}

#[cfg(test)]
mod tests {
    use super::super::peers::smoke;
    use super::*;

    /// wisckey passes the peers' smoke test of the interface (CI runs this
    /// one; the peers' need their features).
    #[test]
    fn wisckey_passes_the_store_smoke_test() -> Result<()> {
        for unordered in [false, true] {
            let bytes = smoke::run(EngineKind::Wisckey, &|cfg| {
                Ok(Box::new(WisckeyStore::open_table(cfg, unordered)?) as Box<dyn Store>)
            });
            if unordered {
                // No key order: the smoke test's scans are refused.
                assert!(bytes.is_err());
                continue;
            }
            let bytes = bytes?.expect("wisckey counts its bytes");
            assert!(bytes.written >= smoke::user_bytes(), "{bytes:?}");
        }
        Ok(())
    }
}
