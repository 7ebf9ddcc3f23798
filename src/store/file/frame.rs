//! The byte layout of a budget file around its records: the header, and the frame (length,
//! checksum) of each record. What is inside a frame is `record.rs`'s business.
//!
//! Everything is little-endian. See `docs/file-format.md` for the drawing.

/// First eight bytes of every budget file.
pub(super) const MAGIC: [u8; 8] = *b"BGLEDGER";
/// The format version this build writes, and the only one it reads: 2 (records are postcard
/// payloads: a ledger image, then commands). Version 1 (hand-written per-operation records)
/// was a pre-release format.
pub(super) const VERSION: u16 = 2;
/// Header: magic (8), version (2), flags (2), crc32 of the first 12 bytes (4).
pub(super) const HEADER_LEN: usize = 16;
/// Record frame: payload length (4), crc32 of the length bytes and the payload (4).
pub(super) const FRAME_LEN: usize = 8;
/// Largest payload, shared by both sides: the reader takes anything longer for damage, so the
/// writer refuses to write it ([`push_frame`]) instead of leaving an unreadable file.
pub(super) const MAX_PAYLOAD: usize = 1 << 30;

/// The 16-byte file header.
pub(super) fn header() -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(&MAGIC);
    header[8..10].copy_from_slice(&VERSION.to_le_bytes());
    // bytes 10..12: flags, zero in version 2
    let crc = crc32fast::hash(&header[..12]);
    header[12..16].copy_from_slice(&crc.to_le_bytes());
    header
}

/// What the first bytes of a file say about it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum HeaderCheck {
    /// A budget file of this build's version.
    Ok,
    /// Not a budget file at all.
    Foreign(&'static str),
    /// A budget file of a newer version.
    Newer(u16),
    /// A budget file of an older, pre-release version.
    Older(u16),
    /// The magic matches but the header is damaged.
    Damaged(&'static str),
}

pub(super) fn check_header(bytes: &[u8]) -> HeaderCheck {
    if bytes.is_empty() {
        return HeaderCheck::Foreign("the file is empty");
    }
    let magic_len = bytes.len().min(MAGIC.len());
    if bytes[..magic_len] != MAGIC[..magic_len] {
        return HeaderCheck::Foreign("the magic bytes do not match");
    }
    if bytes.len() < HEADER_LEN {
        return HeaderCheck::Damaged("the header is cut short");
    }
    let stored = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
    if crc32fast::hash(&bytes[..12]) != stored {
        return HeaderCheck::Damaged("the header checksum does not match");
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version == 0 || bytes[10..12] != [0, 0] {
        return HeaderCheck::Damaged("unknown version 0 or flags");
    }
    match version.cmp(&VERSION) {
        std::cmp::Ordering::Greater => HeaderCheck::Newer(version),
        std::cmp::Ordering::Less => HeaderCheck::Older(version),
        std::cmp::Ordering::Equal => HeaderCheck::Ok,
    }
}

/// A record whose payload would pass the reader's limit; nothing of it was kept.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct TooLarge {
    /// Payload bytes encoded.
    pub(super) written: usize,
    /// The limit passed.
    pub(super) limit: usize,
}

/// Appends one framed record to `buf` unless its payload (what `write` appends) is longer than
/// `limit` bytes (production passes [`MAX_PAYLOAD`], the reader's limit) or empty. On `Err`,
/// `buf` is as it was. Nothing is allocated once `buf` has grown to its working size.
pub(super) fn push_frame(
    buf: &mut Vec<u8>,
    limit: usize,
    write: impl FnOnce(&mut Vec<u8>),
) -> Result<(), TooLarge> {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; FRAME_LEN]);
    write(buf);
    let written = buf.len() - start - FRAME_LEN;
    if written > limit || written == 0 {
        buf.truncate(start);
        return Err(TooLarge { written, limit });
    }
    let len = u32::try_from(written).expect("MAX_PAYLOAD is below 4 GiB");
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&buf[start..start + 4]);
    hasher.update(&buf[start + FRAME_LEN..]);
    let crc = hasher.finalize();
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// A frame read from `bytes` at `offset`.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Frame<'a> {
    /// A record whose checksum matches; `next` is the offset after it.
    Valid { payload: &'a [u8], next: usize },
    /// The end of the data: `offset == bytes.len()`, or every byte from `offset` on is zero
    /// (space the writer prepared for later records, see `log.rs`). No frame starts with zeros:
    /// a payload length of 0 is never written ([`push_frame`]) and never read as a record.
    End,
    /// Fewer bytes than the frame announces, or a checksum mismatch.
    Invalid(&'static str),
}

pub(super) fn read_frame(bytes: &[u8], offset: usize) -> Frame<'_> {
    let rest = &bytes[offset..];
    if is_zero(rest) {
        return Frame::End;
    }
    if rest.len() < FRAME_LEN {
        return Frame::Invalid("a record frame is cut short");
    }
    let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
    let stored = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    if len == 0 || len > MAX_PAYLOAD {
        return Frame::Invalid("a record length is out of range");
    }
    if rest.len() - FRAME_LEN < len {
        return Frame::Invalid("a record is cut short");
    }
    let payload = &rest[FRAME_LEN..FRAME_LEN + len];
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&rest[..4]);
    hasher.update(payload);
    if hasher.finalize() != stored {
        return Frame::Invalid("a record checksum does not match");
    }
    Frame::Valid {
        payload,
        next: offset + FRAME_LEN + len,
    }
}

/// Whether `bytes` holds nothing but zeros (true when empty): prepared space, the end of the
/// log. It stops at the first non-zero byte, which a record's length field is (its first or
/// second byte), so it costs more than a byte or two only where the log ends.
pub(super) fn is_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&byte| byte == 0)
}

/// Where the data of `bytes` ends once its zero tail (prepared space) is left off.
pub(super) fn end_of_nonzero(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .rposition(|&byte| byte != 0)
        .map_or(0, |last| last + 1)
}
