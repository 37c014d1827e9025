//! SSTable output: entries written into new SSTables of one level, for a
//! flush, a compaction, or GC's table of moved pointers. The files and the
//! directory are synced before the tables are handed back; nothing names
//! them until the caller's manifest edit does.

use super::Engine;
use crate::error::{Error, Result};
use crate::lsm::ikey;
use crate::lsm::sstable::{Sst, SstBuilder};
use crate::lsm::version::{SstHandle, SstMeta};
use std::path::PathBuf;
use std::sync::Arc;

impl Engine {
    /// Writes the entries `next` yields (in internal-key order) into new
    /// SSTables of `level`, cutting at `cut_at` bytes, only between user
    /// keys so that a level never splits a key's versions across files.
    /// On an error, the files written so far are removed (now, or at the
    /// next open).
    pub(super) fn write_ssts(
        &self,
        level: u32,
        cut_at: u64,
        mut next: impl FnMut() -> Result<Option<(Vec<u8>, Vec<u8>)>>,
    ) -> Result<Vec<Arc<SstHandle>>> {
        let mut out = Vec::new();
        let mut cur: Option<(u64, PathBuf, SstBuilder)> = None;
        let mut last_user: Vec<u8> = Vec::new();
        let result = (|| {
            while let Some((k, v)) = next()? {
                let up = ikey::user_part(&k);
                let cut = matches!(&cur, Some((_, _, b)) if b.estimated_size() >= cut_at && up != last_user.as_slice());
                if cut {
                    if let Some((n, p, b)) = cur.take() {
                        out.push(self.finish_sst(level, n, p, b)?);
                    }
                }
                if cur.is_none() {
                    let number = self.versions.new_file_number();
                    let path = self.dir.join(crate::files::sst(number));
                    let file = self
                        .fs
                        .create(&path)
                        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
                    cur = Some((
                        number,
                        path.clone(),
                        SstBuilder::new(file, path, self.sst_options()),
                    ));
                }
                if let Some((_, _, b)) = cur.as_mut() {
                    b.add(&k, &v)?;
                }
                last_user.clear();
                last_user.extend_from_slice(up);
            }
            if let Some((n, p, b)) = cur.take() {
                out.push(self.finish_sst(level, n, p, b)?);
            }
            if !out.is_empty() {
                self.fs.sync_dir(&self.dir).map_err(|e| {
                    Error::io(format!("syncing directory {}", self.dir.display()), e)
                })?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            for t in &out {
                t.mark_obsolete();
            }
            if let Some((n, _, _)) = cur {
                let _ = self.fs.remove(&self.dir.join(crate::files::sst(n)));
            }
            return Err(e);
        }
        Ok(out)
    }

    /// Finishes (and syncs) one table and opens it for reading.
    fn finish_sst(
        &self,
        level: u32,
        number: u64,
        path: PathBuf,
        b: SstBuilder,
    ) -> Result<Arc<SstHandle>> {
        let summary = b.finish()?;
        let file = self
            .fs
            .open(&path, false)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let sst = Sst::open_cached(
            file,
            path.clone(),
            summary.file_size,
            self.block_cache.clone(),
            number,
        )?;
        let meta = SstMeta {
            level,
            number,
            size: summary.file_size,
            entries: summary.entries,
            smallest: summary.smallest,
            largest: summary.largest,
        };
        Ok(Arc::new(SstHandle::new(meta, sst, self.fs.clone(), path)))
    }
}
