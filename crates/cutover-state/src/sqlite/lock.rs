//! Who owns a state file: one process at a time, by an exclusive OS lock on a sidecar
//! file beside it (`cutover.db.lock`), held for as long as the store is open.
//!
//! Why a sidecar lock and not `PRAGMA locking_mode = EXCLUSIVE`: SQLite's exclusive mode
//! also locks out readers, so an operator could no longer inspect a running gateway's
//! state with `sqlite3 cutover.db` (WAL readers never block the writer, and reading is
//! harmless), and it is only taken at the first write, so two gateways could still both
//! start. The sidecar is taken before the state file is even looked at, so that
//! `--reset-state` cannot move a running gateway's file aside either. The lock is
//! `flock`-style: released by the kernel when the process dies (a `kill -9` leaves no
//! stale lock), and advisory: it keeps other gateways out, not `sqlite3`. It needs a
//! local file system (network file systems may not honour it).

use std::fs::{File, TryLockError};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::{FileError, StoreError};

/// The held lock; dropping it (with the store) releases it.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

/// `cutover.db` → `cutover.db.lock`.
pub fn lock_path(state: &Path) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the lock of `state`, or says which process holds it.
pub fn acquire(state: &Path) -> Result<StateLock, StoreError> {
    let path = lock_path(state);
    let io = |source| FileError::Io { path: path.display().to_string(), source };
    // Never truncated on open: the holder's pid in it is what a refused gateway reports.
    let mut file = File::options().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).ok().and_then(|text| text.trim().parse::<u32>().ok());
            return Err(FileError::Locked { path: state.display().to_string(), holder }.into());
        }
        Err(TryLockError::Error(source)) => return Err(io(source).into()),
    }
    // Only for the message above; the lock itself is what keeps others out.
    file.set_len(0).map_err(io)?;
    write!(file, "{}", std::process::id()).map_err(io)?;
    Ok(StateLock { _file: file })
}
