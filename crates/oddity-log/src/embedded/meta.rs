//! The `meta` file: the partition count a log directory was created with.

use std::fs;
use std::io::Write;
use std::path::Path;

use super::partition::{io_error, sync_dir};
use crate::LogError;

const META_FILE: &str = "meta";
const LOCK_FILE: &str = "lock";

/// Takes the exclusive lock of the log directory, held for as long as the returned file is open
/// (the OS releases it when the process dies, so a crash never leaves a stale lock). Two
/// processes appending to the same segments would corrupt them.
pub(crate) fn lock(dir: &Path) -> Result<fs::File, LogError> {
    let path = dir.join(LOCK_FILE);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| io_error(&path, source))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(LogError::Locked { path }),
        Err(fs::TryLockError::Error(source)) => Err(io_error(&path, source)),
    }
}
const HEADER: &str = "oddity-log 1";

/// Checks `dir/meta` against `partitions`, writing it (atomically) if the directory is new.
pub(crate) fn check_or_create(dir: &Path, partitions: u32) -> Result<(), LogError> {
    let path = dir.join(META_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let found = parse(&text).ok_or_else(|| LogError::Corrupt {
                path: path.clone(),
                position: 0,
                reason: format!("expected \"{HEADER}\" and a partition count, found {text:?}"),
            })?;
            if found != partitions {
                return Err(LogError::PartitionMismatch {
                    path,
                    found,
                    configured: partitions,
                });
            }
            Ok(())
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let tmp = dir.join(format!("{META_FILE}.tmp"));
            let write = || -> std::io::Result<()> {
                let mut file = fs::File::create(&tmp)?;
                file.write_all(format!("{HEADER}\npartitions {partitions}\n").as_bytes())?;
                file.sync_all()
            };
            write().map_err(|source| io_error(&tmp, source))?;
            fs::rename(&tmp, &path).map_err(|source| io_error(&path, source))?;
            sync_dir(dir)
        }
        Err(source) => Err(io_error(&path, source)),
    }
}

fn parse(text: &str) -> Option<u32> {
    let mut lines = text.lines();
    if lines.next()? != HEADER {
        return None;
    }
    lines
        .next()?
        .strip_prefix("partitions ")?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_locked_by_one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path()).unwrap();
        assert!(matches!(lock(dir.path()), Err(LogError::Locked { .. })));
        drop(held);
        lock(dir.path()).unwrap();
    }

    #[test]
    fn meta_is_created_then_checked() {
        let dir = tempfile::tempdir().unwrap();
        check_or_create(dir.path(), 3).unwrap();
        check_or_create(dir.path(), 3).unwrap();
        assert!(matches!(
            check_or_create(dir.path(), 4),
            Err(LogError::PartitionMismatch {
                found: 3,
                configured: 4,
                ..
            })
        ));
        fs::write(dir.path().join(META_FILE), "garbage").unwrap();
        assert!(matches!(
            check_or_create(dir.path(), 3),
            Err(LogError::Corrupt { .. })
        ));
    }
}
