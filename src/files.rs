//! Files in and out. Every file qnn writes goes through [`write_atomic`], so nothing a user saved
//! is lost; every file it reads goes through [`open_regular`] (or [`read_regular`]), so a device,
//! a FIFO or a file far larger than its format allows is refused instead of read without end.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::Error;

/// Writes `bytes` to `path` through a temporary file and a rename, so a crash leaves either the
/// old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_atomic_parts(path, &[bytes])
}

/// [`write_atomic`] of the concatenation of `parts`, without joining them in memory first (a
/// cache of 100,000 images is not held twice to be written).
pub fn write_atomic_parts(path: &Path, parts: &[&[u8]]) -> Result<(), Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp{}", std::process::id()));
    let result = (|| {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        for part in parts {
            f.write_all(part)?;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// The most a small input (a sweep's grid, an energy profile, a metrics file, a note) may hold.
pub const TEXT_MAX_BYTES: u64 = 16 << 20;

fn refused(path: &Path, why: String) -> Error {
    Error::io(path, std::io::Error::other(why))
}

/// Opens the regular file at `path` (links followed) for reading, with its length. A folder, a
/// device, a FIFO or a socket is refused before it is opened: reading `/dev/zero` never ends,
/// and opening a FIFO that has no writer blocks.
pub fn open_regular(path: &Path) -> Result<(File, u64), Error> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(refused(path, "a folder, not a file".into()));
    }
    if !meta.is_file() {
        return Err(refused(
            path,
            "not a regular file (a device, a FIFO or a socket): give the path of a file".into(),
        ));
    }
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    // what was opened, in case the path changed since
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(refused(path, "not a regular file".into()));
    }
    Ok((file, meta.len()))
}

/// Reads the regular file at `path` ([`open_regular`]) whole, refusing one of more than `max`
/// bytes; `what` says what the file should be, for that message. Never reads more than `max`
/// bytes, even from a file that grows meanwhile.
pub fn read_regular(path: &Path, max: u64, what: &str) -> Result<Vec<u8>, Error> {
    let (file, len) = open_regular(path)?;
    let too_large = |n: u64| {
        refused(
            path,
            format!("{n} bytes or more, more than {what} holds (at most {max} bytes)"),
        )
    };
    if len > max {
        return Err(too_large(len));
    }
    let mut out = Vec::with_capacity(len as usize);
    file.take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::io(path, e))?;
    if out.len() as u64 > max {
        return Err(too_large(out.len() as u64));
    }
    Ok(out)
}

/// [`read_regular`] of a UTF-8 text file.
pub fn read_text(path: &Path, max: u64, what: &str) -> Result<String, Error> {
    String::from_utf8(read_regular(path, max, what)?)
        .map_err(|_| refused(path, format!("not text (UTF-8), so not {what}")))
}

/// Takes an exclusive lock on the file at `path` (made if missing, never truncated), held until
/// the returned file is dropped (the OS releases it when the process dies); `Ok(None)` when
/// another process or handle holds it.
pub fn try_lock(path: &Path) -> std::io::Result<Option<File>> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}
