//! `cutover serve --reset-state`: starting over deliberately. The old state file is moved
//! aside with a UTC timestamp suffix (`cutover.db.reset-20260426T101500Z`), never deleted:
//! its audit log may still be wanted, and a reset by mistake can be undone by moving it
//! back. Its WAL and shared-memory files go with it, so that the new file cannot pick up
//! the old file's unwritten pages.

use std::path::{Path, PathBuf};

use crate::{FileError, StoreError};

/// Moves `path` (and its `-wal`, `-shm`) aside; the new name, or `None` when there was
/// no file. The caller holds the state file's lock.
pub fn move_aside(path: &Path, now_unix_secs: u64) -> Result<Option<PathBuf>, StoreError> {
    let exists = std::fs::symlink_metadata(path).is_ok();
    let siblings = ["-wal", "-shm"].map(|suffix| with_suffix(path, suffix));
    if !exists && siblings.iter().all(|sibling| !sibling.exists()) {
        return Ok(None);
    }
    let stamp = format!(".reset-{}", utc_stamp(now_unix_secs));
    let aside = (1..)
        .map(|n| if n == 1 { with_suffix(path, &stamp) } else { with_suffix(path, &format!("{stamp}-{n}")) })
        .find(|candidate| !candidate.exists() && !with_suffix(candidate, "-wal").exists())
        .unwrap_or_else(|| with_suffix(path, &stamp));
    let rename = |from: &Path, to: &Path| {
        std::fs::rename(from, to)
            .map_err(|source| StoreError::from(FileError::Io { path: from.display().to_string(), source }))
    };
    // The WAL first: a new file must never start beside the old file's WAL.
    for (sibling, suffix) in siblings.iter().zip(["-wal", "-shm"]) {
        if sibling.exists() {
            rename(sibling, &with_suffix(&aside, suffix))?;
        }
    }
    if exists {
        rename(path, &aside)?;
    }
    Ok(Some(aside))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// `20260426T101500Z` for a Unix time.
fn utc_stamp(unix_secs: u64) -> String {
    let millis = i64::try_from(unix_secs).unwrap_or(i64::MAX / 1000).saturating_mul(1000);
    let [year, month, day, hour, minute, second] = cutover_model::utc_fields(millis);
    format!("{year:04}{month:02}{day:02}T{hour:02}{minute:02}{second:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timestamp_suffix_is_the_utc_date_and_time() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(951_782_400), "20000229T000000Z");
        assert_eq!(utc_stamp(1_777_198_500), "20260426T101500Z");
    }
}
