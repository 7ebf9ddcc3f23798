//! One owner per budget file, whatever name reaches it.
//!
//! Two locks, because one alone has a hole (`docs/file-format.md`, "One owner"):
//!
//! * the **sidecar** `<canonical path>.lock` is never replaced, so it also guards the moments when
//!   there is no data file to lock (creation) and compaction's rename; every symlink resolves to
//!   the same canonical path and so to the same sidecar;
//! * the **data file itself** is locked (`flock` on its open file description), which follows
//!   the inode: a hard link has another canonical path, but the same inode. Compaction locks the
//!   new file before renaming it over the old one, so the name never points to an unlocked file.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Component, Path, PathBuf};

use super::io_error;
use crate::error::{Error, Result, StoreError};

/// How many symbolic links a chain to a file that does not exist yet may have (Linux's limit).
const MAX_LINKS: usize = 40;

/// The path every name of the file resolves to: symlinks followed, `.` and `..` gone. The file
/// itself may not exist yet (creation); its directory must.
pub(super) fn canonical(path: &Path) -> io::Result<PathBuf> {
    match fs::canonicalize(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        resolved => return resolved,
    }
    // No file yet, or a dangling symlink: follow the links by hand, then resolve the directory.
    let mut path = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        let Ok(target) = fs::read_link(&path) else {
            let name = match path.components().next_back() {
                Some(Component::Normal(name)) => name.to_owned(),
                _ => return Err(io::Error::other("the path does not name a file")),
            };
            let dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => Path::new("."),
            };
            return Ok(fs::canonicalize(dir)?.join(name));
        };
        path = match path.parent() {
            Some(dir) => dir.join(target), // an absolute target replaces `dir`
            None => target,
        };
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

/// Takes the exclusive lock on `<canonical>.lock`, creating the sidecar if needed.
///
/// # Errors
/// `Locked` if another store holds it; `Store` if it cannot be created or locked.
pub(super) fn lock_sidecar(canonical: &Path, shown: &Path) -> Result<File> {
    let mut name = canonical.as_os_str().to_owned();
    name.push(".lock");
    let sidecar = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(PathBuf::from(name))
        .map_err(|e| io_error(shown, "cannot create the lock file", e))?;
    try_lock(&sidecar, shown)?;
    Ok(sidecar)
}

/// Opens the existing data file for reading and writing and locks it; `None` if there is no
/// file yet.
///
/// # Errors
/// * `Locked` if another store (through any name) holds the file;
/// * `Store` if this process may not write the file, if nobody may (no write bit in its mode,
///   checked because the kernel lets root write anything), or if it has more than one name (hard
///   links: compaction replaces the file, which would split the names into diverging copies).
pub(super) fn open_data_file(canonical: &Path, shown: &Path) -> Result<Option<File>> {
    let file = match OpenOptions::new().read(true).write(true).open(canonical) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
            return Err(io_error(
                shown,
                "cannot open the budget file for writing (the store refuses a file it may not \
                 write rather than replacing it; FileStore::inspect reads it)",
                error,
            ));
        }
        Err(error) => return Err(io_error(shown, "cannot open", error)),
    };
    refuse_read_only(&file, shown)?;
    try_lock(&file, shown)?;
    refuse_hard_links(&file, shown)?;
    Ok(Some(file))
}

fn try_lock(file: &File, shown: &Path) -> Result<()> {
    // A lock just given up can still be held for a moment by a child process that another
    // thread of this process is starting: the child gets a copy of every open file (the lock
    // comes with it) until it runs its program, which closes them (`O_CLOEXEC`). So a refusal
    // is retried for up to 200 ms before it is reported; a store that really owns the
    // file keeps it far longer.
    let mut wait = LOCK_RETRY_FIRST;
    let mut waited = std::time::Duration::ZERO;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) if waited < LOCK_RETRY_FOR => {
                std::thread::sleep(wait);
                waited += wait;
                wait = (wait * 2).min(LOCK_RETRY_FOR);
            }
            Err(TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    path: shown.to_path_buf(),
                });
            }
            Err(TryLockError::Error(error)) => return Err(io_error(shown, "cannot lock", error)),
        }
    }
}

/// The first pause before a refused lock is tried again (see `try_lock`).
const LOCK_RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(1);
/// How long a refused lock is retried before `Locked` is reported (see `try_lock`).
const LOCK_RETRY_FOR: std::time::Duration = std::time::Duration::from_millis(200);

/// A file whose mode grants nobody write permission is read-only on purpose, even for root
/// (whom the kernel lets open it for writing anyway).
fn refuse_read_only(file: &File, shown: &Path) -> Result<()> {
    let metadata = file
        .metadata()
        .map_err(|e| io_error(shown, "cannot read the file's metadata", e))?;
    if metadata.permissions().readonly() {
        return Err(Error::Store(StoreError::new(format!(
            "{}: the budget file is read-only{}; the store refuses a file it may not write \
             rather than replacing it (make it writable, or read it with FileStore::inspect)",
            shown.display(),
            mode_text(&metadata),
        ))));
    }
    Ok(())
}

#[cfg(unix)]
fn mode_text(metadata: &fs::Metadata) -> String {
    use std::os::unix::fs::PermissionsExt;
    format!(" (mode {:04o})", metadata.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn mode_text(_: &fs::Metadata) -> String {
    String::new()
}

#[cfg(unix)]
fn refuse_hard_links(file: &File, shown: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let links = file
        .metadata()
        .map_err(|e| io_error(shown, "cannot read the file's metadata", e))?
        .nlink();
    if links > 1 {
        return Err(Error::Store(StoreError::new(format!(
            "{}: the budget file has {links} names (hard links); a budget file must have one, \
             because each compaction replaces the file and would split the names into diverging \
             copies (use a symbolic link instead)",
            shown.display()
        ))));
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_hard_links(_: &File, _: &Path) -> Result<()> {
    Ok(())
}
