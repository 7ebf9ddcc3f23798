//! Atomic file replacement: a compaction's new file is written under a temporary name,
//! synced, renamed over the old one and its directory synced, keeping the old file's mode and
//! owner.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::frame;

/// The temporary name a new file is written under before it replaces `path`.
pub(super) fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Writes `bytes` to `path` atomically: temp file, fsync, rename over `path`, fsync the
/// directory. Returns the new file, open for appending and locked (see `lock.rs`): it is locked
/// before it gets the name, so the name never points to a file another store could lock.
///
/// `path` must be canonical (symlinks resolved), so the rename replaces the file a symlink
/// points to, not the symlink. The new file gets the old one's mode and, where this process may
/// give it, its owner and group. If the old file has another name (a hard link made while the
/// store was open), that name would keep a stale copy a second store could spend again: the old
/// file is cut to its header, which recovery refuses as `Corrupted`.
pub(super) fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<File> {
    let old = match fs::metadata(path) {
        Ok(metadata) => Some(metadata),
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(error) => return Err(error),
    };
    let stale = match &old {
        Some(metadata) if other_names(metadata) => Some(OpenOptions::new().write(true).open(path)?),
        _ => None,
    };
    let temp = temp_path(path);
    let mut file = create_temp(&temp, old.as_ref())?;
    file.try_lock().map_err(|error| match error {
        fs::TryLockError::WouldBlock => {
            io::Error::other(format!("{} is locked by another process", temp.display()))
        }
        fs::TryLockError::Error(error) => error,
    })?;
    file.write_all(bytes)?;
    file.sync_all()?; // (1) the new contents are durable under the temporary name
    fs::rename(&temp, path)?; // (2) atomic switch
    sync_dir(path)?; // (3) the rename itself is durable
    if let Some(stale) = stale {
        stale.set_len(frame::HEADER_LEN as u64)?;
        stale.sync_all()?;
        tracing::warn!(
            path = %path.display(),
            "the budget file had another name (a hard link); that name was cut to its header \
             so no second store can spend its stale copy"
        );
    }
    Ok(file)
}

/// Creates the temporary file with the old file's mode from the start (a 0600 budget is never
/// readable by others, even briefly), then gives it the old owner where permitted.
fn create_temp(temp: &Path, old: Option<&fs::Metadata>) -> io::Result<File> {
    // A temp file left by a crash may have any mode: start from a new one.
    match fs::remove_file(temp) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if let Some(old) = old {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(old.permissions().mode() & 0o777); // the umask may still clear bits
    }
    let file = options.open(temp)?;
    if let Some(old) = old {
        keep_owner_and_mode(&file, old)?;
    }
    Ok(file)
}

#[cfg(unix)]
fn keep_owner_and_mode(file: &File, old: &fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, fchown};
    // Only a privileged process may give a file away: elsewhere the copy stays this process's
    // (which, for a file this process may write, is usually the same owner).
    match fchown(file, Some(old.uid()), Some(old.gid())) {
        Err(error) if error.kind() != io::ErrorKind::PermissionDenied => return Err(error),
        _ => {}
    }
    // After chown, which may clear set-id bits; this also undoes the umask.
    file.set_permissions(old.permissions())
}

#[cfg(not(unix))]
fn keep_owner_and_mode(file: &File, old: &fs::Metadata) -> io::Result<()> {
    file.set_permissions(old.permissions())
}

#[cfg(unix)]
fn other_names(metadata: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    metadata.nlink() > 1
}

#[cfg(not(unix))]
fn other_names(_: &fs::Metadata) -> bool {
    false
}

/// Syncs the directory that holds `path`, so a rename or create in it survives power loss.
pub(super) fn sync_dir(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
