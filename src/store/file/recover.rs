//! Recovery: read a budget file, check it, load its image and replay its commands through the
//! ledger's interpreter, comparing each result with the writer's.

use std::path::Path;

use super::frame::{self, Frame, HeaderCheck};
use super::record::{Logged, Record, answer_digest, applied_digest};

#[path = "tail.rs"]
mod tail;
use crate::clock::Timestamp;
use crate::error::Error;
use crate::idempotency::KeyRetention;
use crate::ledger::{INTERPRETER_VERSION, Ledger};

/// The state rebuilt from a file.
#[derive(Debug)]
pub(super) struct Recovered {
    pub(super) ledger: Ledger,
    /// Records read (the image included).
    pub(super) records: usize,
    /// Bytes after the last valid record that were ignored as a torn tail (the zeros of
    /// prepared space after it are not counted: they are no damage).
    pub(super) torn_bytes: usize,
}

/// Rebuilds the ledger from the complete contents of the file at `path`.
///
/// # Errors
/// `NotABudgetFile`, `UnsupportedVersion`, `ObsoleteVersion` or `Corrupted` naming `path` and
/// the byte offset.
pub(super) fn recover(path: &Path, bytes: &[u8]) -> Result<Recovered, Error> {
    let corrupted = |offset: usize, reason: String| Error::Corrupted {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    match frame::check_header(bytes) {
        HeaderCheck::Ok => {}
        HeaderCheck::Foreign(reason) => {
            return Err(Error::NotABudgetFile {
                path: path.to_path_buf(),
                reason,
            });
        }
        HeaderCheck::Newer(found) => {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                found,
                supported: frame::VERSION,
            });
        }
        HeaderCheck::Older(found) => {
            return Err(Error::ObsoleteVersion {
                path: path.to_path_buf(),
                found,
                supported: frame::VERSION,
            });
        }
        HeaderCheck::Damaged(reason) => return Err(corrupted(0, reason.to_owned())),
    }
    let mut books: Option<(Ledger, KeyRetention)> = None;
    let mut offset = frame::HEADER_LEN;
    let mut records = 0;
    loop {
        match frame::read_frame(bytes, offset) {
            // Every file gets its name with a synced image in it: a header alone is a cut file
            // (or a stale hard link cut off at compaction), not an empty budget.
            Frame::End if records == 0 => {
                return Err(corrupted(
                    offset,
                    "the file ends after its header, without the image record every budget \
                     file starts with"
                        .into(),
                ));
            }
            // The end of the file, or prepared space (zeros) after the last record.
            Frame::End => break,
            Frame::Valid { payload, next } => {
                let record = Record::decode(payload).map_err(|why| corrupted(offset, why))?;
                books =
                    Some(replay(books, record).map_err(|why| corrupted(offset, why.to_string()))?);
                records += 1;
                offset = next;
            }
            // A torn record over prepared space is a torn tail like one at the end of the
            // file: the zeros after it hold no valid record.
            Frame::Invalid(why) => {
                // The image at the start is written and synced before the file gets its name,
                // so it is never torn; damage there is corruption.
                if records == 0 {
                    return Err(corrupted(offset, format!("{why} (the image record)")));
                }
                // Appends only ever happen at the end: damage followed by any checksum-valid
                // record is corruption in the middle, never a torn tail.
                if let Some(valid) = tail::first_valid_frame(bytes, offset + 1).found {
                    return Err(corrupted(
                        offset,
                        format!("{why}, and a valid record follows at byte {valid}"),
                    ));
                }
                break;
            }
        }
    }
    let (ledger, _) = books.expect("at least one record was replayed");
    Ok(Recovered {
        ledger,
        records,
        torn_bytes: frame::end_of_nonzero(bytes).saturating_sub(offset),
    })
}

/// Why a record does not replay.
#[derive(Debug)]
enum Unreplayable {
    /// The record cannot be decoded into a command or books.
    Invalid(String),
    /// The first record is not an image.
    NoImage,
    /// The interpreter answered otherwise than it answered the writer.
    Diverged { written_by: u32 },
}

impl std::fmt::Display for Unreplayable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreplayable::Invalid(why) => write!(f, "{why}"),
            Unreplayable::NoImage => write!(f, "the file does not start with an image record"),
            Unreplayable::Diverged { written_by } if *written_by == INTERPRETER_VERSION => write!(
                f,
                "the command replays to another result than the writer's (both interpreter \
                 version {INTERPRETER_VERSION}): the books before it differ from the writer's"
            ),
            Unreplayable::Diverged { written_by } => write!(
                f,
                "the command replays to another result than the writer's: it was written by \
                 interpreter version {written_by}, this build runs version \
                 {INTERPRETER_VERSION}; open the file with the build that wrote it, export a \
                 snapshot and restore it here"
            ),
        }
    }
}

/// The books after `record`, given the books before it (`None` before the first record).
fn replay(
    books: Option<(Ledger, KeyRetention)>,
    record: Record,
) -> Result<(Ledger, KeyRetention), Unreplayable> {
    let invalid = Unreplayable::Invalid;
    if let Record::Image(image) = record {
        let retention = image.retention().map_err(invalid)?;
        let ledger = Ledger::from_image(image.ledger).map_err(invalid)?;
        return Ok((ledger, retention));
    }
    let (mut ledger, retention) = books.ok_or(Unreplayable::NoImage)?;
    match record {
        Record::Image(_) => unreachable!("handled above"),
        Record::Apply(Logged {
            interpreter,
            command,
            now,
            digest,
        }) => {
            let op = command.into_op().map_err(invalid)?;
            let result = ledger.apply(&op, now.map(Timestamp::from_unix_nanos), &retention);
            if applied_digest(&result) != digest {
                return Err(Unreplayable::Diverged {
                    written_by: interpreter,
                });
            }
        }
        Record::Read(Logged {
            interpreter,
            command,
            now,
            digest,
        }) => {
            let query = command.into_query().map_err(invalid)?;
            let (answer, _) = ledger.read_noting(&query, now.map(Timestamp::from_unix_nanos));
            if answer_digest(&answer) != digest {
                return Err(Unreplayable::Diverged {
                    written_by: interpreter,
                });
            }
        }
    }
    Ok((ledger, retention))
}
