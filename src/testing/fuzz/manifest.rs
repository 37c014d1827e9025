//! Fuzz entry points of the manifest: one edit, a whole manifest file.

use super::{corrupt, model::*};
use crate::files::FileName;
use crate::files::CURRENT as CURRENT_FILE;
use crate::io::Fs;
use crate::manifest::{encode_record, record_payloads, Manifest, ManifestState, VersionEdit};
use crate::testing::FaultFs;
use crate::{Db, Error, Result};
use std::path::Path;
use std::sync::Arc;

/// One manifest edit: a decoded edit must re-encode to an equal edit; it is
/// also applied to an empty state.
pub fn manifest_edit(data: &[u8]) -> Result<()> {
    let edit = VersionEdit::decode(data).map_err(|e| corrupt(&e))?;
    let again = VersionEdit::decode(&edit.encode()).expect("re-encoded edit does not decode");
    assert_eq!(again, edit, "edit does not round-trip");
    let mut state = ManifestState::default();
    let _ = state.apply(&edit);
    Ok(())
}

/// A manifest file, recovered through `CURRENT` from a [`FaultFs`]. Mode
/// byte bit 0: the rest is a list of payloads (`u16` length, bytes), framed
/// as records with correct lengths and checksums; otherwise the rest is the
/// file as is.
pub fn manifest_file(data: &[u8]) -> Result<()> {
    let Some((&mode, rest)) = data.split_first() else {
        return Ok(());
    };
    let bytes = if mode & 1 == 1 {
        let mut out = Vec::new();
        let mut r = rest;
        while r.len() >= 2 {
            let n = (usize::from(u16::from_le_bytes([r[0], r[1]]))).min(r.len() - 2);
            out.extend_from_slice(&encode_record(&r[2..2 + n])?);
            r = &r[2 + n..];
        }
        out
    } else {
        rest.to_vec()
    };
    let fs = FaultFs::new();
    let dir = Path::new("/db");
    fs.create_dir_all(dir)
        .map_err(|e| Error::io("fuzz setup", e))?;
    let manifest = crate::files::manifest(1);
    for (name, content) in [
        (manifest.clone(), bytes),
        (
            CURRENT_FILE.to_string(),
            format!("{manifest}\n").into_bytes(),
        ),
    ] {
        let path = dir.join(name);
        fs.create(&path).map_err(|e| Error::io("fuzz setup", e))?;
        fs.set_contents(&path, content)
            .map_err(|e| Error::io("fuzz setup", e))?;
    }
    let fs: Arc<dyn Fs> = Arc::new(fs);
    match Manifest::recover(fs, dir, true)? {
        Some((_m, state)) => {
            // The recovered state must survive a snapshot round trip.
            let snap = state.snapshot_edit();
            let decoded =
                VersionEdit::decode(&snap.encode()).expect("snapshot edit does not decode");
            assert_eq!(decoded, snap);
            let mut again = ManifestState::default();
            again
                .apply(&snap)
                .expect("snapshot of a recovered state does not apply");
            Ok(())
        }
        None => panic!("CURRENT exists but recover found none"),
    }
}

/// A valid manifest payload list (for the mode-1 seed of [`manifest_file`]):
/// the snapshot of a small database's state, as edits.
pub fn sample_manifest_edits() -> Vec<Vec<u8>> {
    let fs = FaultFs::new();
    let dir = Path::new("/db");
    // Flushes at fixed points, no background work while writes go on: the
    // same edits each time.
    let opts = model_options(&fs).memtable_size(256 << 10);
    let db = Db::open(dir, opts).unwrap();
    for i in 0..200u32 {
        db.put(format!("k{i:04}"), vec![b'x'; (i as usize % 7) * 40])
            .unwrap();
        if i % 40 == 39 {
            db.flush().unwrap();
            db.wait_for_background().unwrap();
        }
    }
    db.compact().unwrap();
    db.close().unwrap();
    let mut out = Vec::new();
    for name in fs.list(dir).unwrap() {
        if let Some(FileName::Manifest(_)) = FileName::parse(&name) {
            out.extend(record_payloads(&fs.contents(&dir.join(&name)).unwrap()));
        }
    }
    out
}
