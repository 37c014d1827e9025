//! The snapshot file: a checkpoint directory packed into one file, and
//! the record of which snapshot is current.
//!
//! Layout (integers little-endian):
//! `WKSNAP\0\x01`, u32 file count, then per file: u16 name length, the
//! name (a plain file name), u64 length, the bytes, u32 CRC-32 of the
//! name, length and bytes; then `WKSNAPND` and a u32 CRC-32 over the
//! count and every file's name, length and CRC. The `CURRENT.meta` file
//! next to the snapshots holds postcard `(SnapshotMeta, file name)` and
//! its CRC-32 (u32 after it).

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::{BasicNode, SnapshotMeta};

const MAGIC: &[u8; 8] = b"WKSNAP\0\x01";
const END: &[u8; 8] = b"WKSNAPND";
const MAX_FILES: u32 = 1 << 20;
const CURRENT: &str = "CURRENT.meta";

fn corrupt(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// A name unique in this process and across restarts.
pub(crate) fn nonce() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{t:x}-{}", N.fetch_add(1, Ordering::Relaxed))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

/// Packs the files of `dir` (no subdirectories) into `out`, synced.
pub(crate) fn pack(dir: &Path, out: &Path) -> io::Result<()> {
    let mut names = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        if !e.file_type()?.is_file() {
            return Err(io::Error::other(format!(
                "{}: a checkpoint holds files only",
                e.path().display()
            )));
        }
        names.push(
            e.file_name()
                .into_string()
                .map_err(|_| corrupt("a file name that is not UTF-8"))?,
        );
    }
    names.sort();
    let mut w = BufWriter::new(File::create(out)?);
    let mut index = crc32fast::Hasher::new();
    w.write_all(MAGIC)?;
    let count = names.len() as u32;
    w.write_all(&count.to_le_bytes())?;
    index.update(&count.to_le_bytes());
    let mut buf = vec![0u8; 1 << 20];
    for name in &names {
        let mut f = File::open(dir.join(name))?;
        let len = f.metadata()?.len();
        let mut crc = crc32fast::Hasher::new();
        let head = [
            &(name.len() as u16).to_le_bytes()[..],
            name.as_bytes(),
            &len.to_le_bytes(),
        ]
        .concat();
        w.write_all(&head)?;
        crc.update(&head);
        let mut left = len;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = f.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::other(format!("{name} shrank while packing")));
            }
            w.write_all(&buf[..n])?;
            crc.update(&buf[..n]);
            left -= n as u64;
        }
        let c = crc.finalize();
        w.write_all(&c.to_le_bytes())?;
        index.update(&head);
        index.update(&c.to_le_bytes());
    }
    w.write_all(END)?;
    w.write_all(&index.finalize().to_le_bytes())?;
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()
}

fn read_exact<R: Read>(r: &mut R, n: usize) -> io::Result<Vec<u8>> {
    let mut v = vec![0u8; n];
    r.read_exact(&mut v).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            corrupt("snapshot file truncated")
        } else {
            e
        }
    })?;
    Ok(v)
}

/// Unpacks `file` into the new directory `dir`, checking every checksum;
/// on any error `dir` is removed and the error is `InvalidData` for bad
/// bytes.
pub(crate) fn unpack(file: &Path, dir: &Path) -> io::Result<()> {
    let r = unpack_inner(file, dir);
    if r.is_err() {
        let _ = fs::remove_dir_all(dir);
    }
    r
}

fn unpack_inner(file: &Path, dir: &Path) -> io::Result<()> {
    let f = File::open(file)?;
    let total = f.metadata()?.len();
    let mut r = BufReader::new(f);
    if read_exact(&mut r, 8)? != MAGIC {
        return Err(corrupt("not a wisckey snapshot file (bad magic)"));
    }
    let count_b = read_exact(&mut r, 4)?;
    let count = u32::from_le_bytes(count_b[..].try_into().unwrap());
    if count > MAX_FILES {
        return Err(corrupt(format!("snapshot names {count} files")));
    }
    let mut index = crc32fast::Hasher::new();
    index.update(&count_b);
    fs::create_dir(dir)?;
    let mut consumed: u64 = 12;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..count {
        let nl = read_exact(&mut r, 2)?;
        let name_len = u16::from_le_bytes([nl[0], nl[1]]) as usize;
        let name_b = read_exact(&mut r, name_len)?;
        let name = String::from_utf8(name_b.clone()).map_err(|_| corrupt("file name not UTF-8"))?;
        if !valid_name(&name) {
            return Err(corrupt(format!("bad file name {name:?} in snapshot")));
        }
        let lb = read_exact(&mut r, 8)?;
        let len = u64::from_le_bytes(lb[..].try_into().unwrap());
        consumed += 2 + name_len as u64 + 8;
        if len > total.saturating_sub(consumed) {
            return Err(corrupt(format!(
                "{name}: length {len} past the end of the snapshot"
            )));
        }
        let head = [&nl[..], &name_b[..], &lb[..]].concat();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head);
        let mut out = BufWriter::new(
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(dir.join(&name))?,
        );
        let mut left = len;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            r.read_exact(&mut buf[..n])
                .map_err(|_| corrupt("snapshot file truncated"))?;
            crc.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            left -= n as u64;
        }
        consumed += len + 4;
        let cb = read_exact(&mut r, 4)?;
        if crc.finalize().to_le_bytes() != cb[..] {
            return Err(corrupt(format!("{name}: checksum mismatch in snapshot")));
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        index.update(&head);
        index.update(&cb);
    }
    if read_exact(&mut r, 8)? != END {
        return Err(corrupt("snapshot trailer missing"));
    }
    let ib = read_exact(&mut r, 4)?;
    if index.finalize().to_le_bytes() != ib[..] {
        return Err(corrupt("snapshot index checksum mismatch"));
    }
    let mut rest = [0u8; 1];
    if r.read(&mut rest)? != 0 {
        return Err(corrupt("bytes after the snapshot trailer"));
    }
    File::open(dir)?.sync_all()
}

/// Records `path` (in `snaps`) as the current snapshot with `meta`, then
/// removes every other snapshot file.
pub(crate) fn set_current(
    snaps: &Path,
    meta: &SnapshotMeta<u64, BasicNode>,
    path: &Path,
) -> io::Result<()> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::other("snapshot path without a name"))?
        .to_string();
    let mut bytes = postcard::to_stdvec(&(meta, &name)).map_err(io::Error::other)?;
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    let tmp = snaps.join(format!("{CURRENT}.tmp"));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, snaps.join(CURRENT))?;
    File::open(snaps)?.sync_all()?;
    for e in fs::read_dir(snaps)?.flatten() {
        let n = e.file_name();
        let n = n.to_string_lossy();
        if n.ends_with(".snap") && n != name.as_str() {
            let _ = fs::remove_file(e.path());
        } else if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            // leftovers of a build or install that crashed
            let _ = fs::remove_dir_all(e.path());
        }
    }
    Ok(())
}

/// The current snapshot recorded in `snaps`, if any.
pub(crate) fn read_current(
    snaps: &Path,
) -> io::Result<Option<(SnapshotMeta<u64, BasicNode>, PathBuf)>> {
    let bytes = match fs::read(snaps.join(CURRENT)) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if bytes.len() < 4 {
        return Err(corrupt("CURRENT.meta truncated"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err(corrupt("CURRENT.meta checksum mismatch"));
    }
    let (meta, name): (SnapshotMeta<u64, BasicNode>, String) =
        postcard::from_bytes(body).map_err(|e| corrupt(format!("CURRENT.meta: {e}")))?;
    if !valid_name(&name) {
        return Err(corrupt("CURRENT.meta names a bad file"));
    }
    Ok(Some((meta, snaps.join(name))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips_and_every_damage_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        fs::create_dir(&src).unwrap();
        fs::write(src.join("a"), vec![1u8; 5000]).unwrap();
        fs::write(src.join("b"), b"").unwrap();
        fs::write(src.join("CURRENT"), b"MANIFEST-1\n").unwrap();
        let snap = t.path().join("s.snap");
        pack(&src, &snap).unwrap();
        unpack(&snap, &t.path().join("ok")).unwrap();
        assert_eq!(fs::read(t.path().join("ok/a")).unwrap(), vec![1u8; 5000]);
        assert_eq!(
            fs::read(t.path().join("ok/CURRENT")).unwrap(),
            b"MANIFEST-1\n"
        );
        let good = fs::read(&snap).unwrap();
        // every single-byte flip and every truncation is an error, never a panic
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x41;
            fs::write(&snap, &bad).unwrap();
            let out = t.path().join(format!("flip{i}"));
            assert!(unpack(&snap, &out).is_err(), "flip at {i} accepted");
            assert!(!out.exists(), "a failed unpack leaves nothing");
        }
        for cut in [0, 5, 12, 30, good.len() / 2, good.len() - 1] {
            fs::write(&snap, &good[..cut]).unwrap();
            assert!(unpack(&snap, &t.path().join(format!("cut{cut}"))).is_err());
        }
        // random bytes
        let mut x = 0x9e3779b97f4a7c15u64;
        for n in 0..300 {
            let mut bytes = MAGIC.to_vec();
            for _ in 0..(n % 64) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                bytes.push(x as u8);
            }
            fs::write(&snap, &bytes).unwrap();
            assert!(unpack(&snap, &t.path().join(format!("rnd{n}"))).is_err());
        }
    }
}
