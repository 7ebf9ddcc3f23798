//! Is there a checksum-valid record anywhere after damage? Answered in linear time.
//!
//! Every byte offset after the damage may start a frame, and the length field of each candidate
//! points at its own payload, which may reach to the end of the file. Checksumming each payload
//! from scratch is quadratic: a crafted 4 MiB tail took 20 s. CRC-32 is linear over GF(2),
//! which lets one pass compute the checksum of every prefix, after which the checksum of any
//! range follows from two prefixes and one multiplication by `x^(8·len)` (zlib's
//! `crc32_combine`). So each byte is fed to the CRC once, and each candidate costs a bounded
//! amount of work whatever its length.

use super::frame::{FRAME_LEN, MAX_PAYLOAD};

/// The CRC-32 polynomial (IEEE, the one `crc32fast` computes), reflected: bit 31 is `x^0`.
const POLY: u32 = 0xEDB8_8320;

/// One CRC step per byte value (the classic table).
const BYTE_STEP: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// `x^0`, the polynomial 1, in the reflected representation.
const ONE: u32 = 1 << 31;

/// What a scan found and how much work it did (the work is what makes it linear; the unit
/// tests check it).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct TailScan {
    /// Offset of the first frame whose checksum matches, if any.
    pub(super) found: Option<usize>,
    /// Bytes fed to the CRC: each byte after `from` at most once.
    pub(super) bytes_hashed: usize,
    /// Candidate frames whose checksum was compared: at most one per offset.
    pub(super) frames_checked: usize,
}

/// Finds the first offset `>= from` holding a frame whose length is in range, that fits in
/// `bytes`, and whose checksum matches (exactly what `format::read_frame` calls `Valid`).
pub(super) fn first_valid_frame(bytes: &[u8], from: usize) -> TailScan {
    let tail = bytes.get(from..).unwrap_or_default();
    let prefix = prefix_crcs(tail);
    let powers = Powers::new(tail.len());
    let mut scan = TailScan {
        found: None,
        bytes_hashed: tail.len(),
        frames_checked: 0,
    };
    for start in 0..tail.len().saturating_sub(FRAME_LEN) {
        let frame = &tail[start..];
        let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        let stored = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
        if len == 0 || len > MAX_PAYLOAD || frame.len() - FRAME_LEN < len {
            continue;
        }
        scan.frames_checked += 1;
        // crc(length ‖ payload) = crc(length)·x^(8·len) + crc(payload), and
        // crc(payload) = crc(..end) + crc(..payload start)·x^(8·len), from the prefixes.
        let payload_start = start + FRAME_LEN;
        let payload_end = payload_start + len;
        let length_crc = crc32fast::hash(&frame[..4]);
        let shifted = multiply(powers.of_bytes(len), length_crc ^ prefix[payload_start]);
        if shifted ^ prefix[payload_end] == stored {
            scan.found = Some(from + start);
            break;
        }
    }
    scan
}

/// `crc[i]` = the CRC-32 of `bytes[..i]`, for every `i` up to `bytes.len()`.
fn prefix_crcs(bytes: &[u8]) -> Vec<u32> {
    let mut crcs = Vec::with_capacity(bytes.len() + 1);
    let mut register = u32::MAX;
    crcs.push(0);
    for &byte in bytes {
        register = BYTE_STEP[((register ^ u32::from(byte)) & 0xFF) as usize] ^ (register >> 8);
        crcs.push(!register);
    }
    crcs
}

/// `a·b mod POLY`, both reflected.
fn multiply(a: u32, mut b: u32) -> u32 {
    let mut product = 0;
    let mut bit = ONE;
    while bit != 0 {
        if a & bit != 0 {
            product ^= b;
        }
        b = if b & 1 == 1 { (b >> 1) ^ POLY } else { b >> 1 };
        bit >>= 1;
    }
    product
}

/// `x^(8·n) mod POLY` for `n` up to a bound, from two small tables (`n = high·2^16 + low`), so the
/// memory does not grow with the file beyond `bound / 2^16` entries.
struct Powers {
    low: Vec<u32>,
    high: Vec<u32>,
}

impl Powers {
    const SPLIT: usize = 16;

    fn new(bound: usize) -> Self {
        let low_len = (bound + 1).min(1 << Self::SPLIT);
        let mut low = Vec::with_capacity(low_len);
        let mut power = ONE;
        for _ in 0..low_len {
            low.push(power);
            power = times_x8(power);
        }
        // `power` is now x^(8·low_len); it is x^(8·2^16) whenever `high` has more than one entry.
        let high_len = (bound >> Self::SPLIT) + 1;
        let mut high = Vec::with_capacity(high_len);
        let mut step = ONE;
        for _ in 0..high_len {
            high.push(step);
            step = multiply(step, power);
        }
        Powers { low, high }
    }

    /// `x^(8·n)`: the factor that moves a checksum past `n` bytes.
    fn of_bytes(&self, n: usize) -> u32 {
        let low = self.low[n & ((1 << Self::SPLIT) - 1)];
        multiply(self.high[n >> Self::SPLIT], low)
    }
}

/// `value · x^8`: what feeding one zero byte does to a CRC register.
fn times_x8(value: u32) -> u32 {
    BYTE_STEP[(value & 0xFF) as usize] ^ (value >> 8)
}

#[cfg(test)]
mod tests {
    use super::super::frame::{Frame, read_frame};
    use super::*;

    /// The search this module replaced: every offset, each payload checksummed from scratch.
    fn naive(bytes: &[u8], from: usize) -> (Option<usize>, usize) {
        let mut hashed = 0;
        for start in from..bytes.len().saturating_sub(FRAME_LEN) {
            let len = u32::from_le_bytes(bytes[start..start + 4].try_into().unwrap()) as usize;
            if len != 0 && len <= MAX_PAYLOAD && bytes.len() - start - FRAME_LEN >= len {
                hashed += 4 + len;
            }
            if let Frame::Valid { .. } = read_frame(bytes, start) {
                return (Some(start), hashed);
            }
        }
        (None, hashed)
    }

    /// splitmix64.
    fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                (z ^ (z >> 31)) as u8
            })
            .collect()
    }

    /// A frame with a correct checksum around `payload`.
    fn frame(payload: &[u8]) -> Vec<u8> {
        let len = (payload.len() as u32).to_le_bytes();
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&len);
        hasher.update(payload);
        let mut frame = len.to_vec();
        frame.extend_from_slice(&hasher.finalize().to_le_bytes());
        frame.extend_from_slice(payload);
        frame
    }

    /// Garbage in which every fourth offset announces a payload reaching almost to the end of
    /// the file: the worst case for checksumming each candidate from scratch.
    fn crafted_tail(len: usize) -> Vec<u8> {
        let mut tail = vec![0u8; len];
        for start in (0..len.saturating_sub(FRAME_LEN)).step_by(4) {
            let payload = (len - start - FRAME_LEN) as u32;
            tail[start..start + 4].copy_from_slice(&payload.to_le_bytes());
        }
        tail
    }

    #[test]
    fn prefix_crcs_agree_with_crc32fast() {
        let bytes = random_bytes(7, 300);
        let prefix = prefix_crcs(&bytes);
        for end in [0, 1, 2, 17, 255, 256, 300] {
            assert_eq!(
                prefix[end],
                crc32fast::hash(&bytes[..end]),
                "prefix of {end}"
            );
        }
    }

    #[test]
    fn powers_move_a_checksum_past_zero_bytes_like_crc32fast() {
        // crc(a ‖ b) = crc(a)·x^(8·|b|) + crc(b) for lengths on both sides of the table split.
        let powers = Powers::new(200_000);
        let a = random_bytes(1, 40);
        for len in [0usize, 1, 5, 65_535, 65_536, 65_537, 131_072, 199_999] {
            let b = random_bytes(len as u64, len);
            let whole = crc32fast::hash(&[a.as_slice(), b.as_slice()].concat());
            let combined =
                multiply(powers.of_bytes(len), crc32fast::hash(&a)) ^ crc32fast::hash(&b);
            assert_eq!(combined, whole, "|b| = {len}");
        }
    }

    #[test]
    fn finds_the_same_frame_as_checking_every_offset() {
        for seed in 0..40u64 {
            let mut bytes = random_bytes(seed, 64 + (seed as usize * 37) % 700);
            let at = (seed as usize * 13) % bytes.len();
            if seed % 4 != 0 {
                // plant a valid frame (sometimes past the end: then there is none)
                let planted = frame(&random_bytes(seed + 100, 1 + seed as usize % 90));
                bytes.splice(at..at, planted);
            }
            for from in [0, 1, at.saturating_sub(3), at, at + 1] {
                let from = from.min(bytes.len());
                let fast = first_valid_frame(&bytes, from);
                assert_eq!(
                    fast.found,
                    naive(&bytes, from).0,
                    "seed {seed}, from {from}"
                );
                if seed % 4 != 0 && from <= at {
                    assert_eq!(fast.found, Some(at), "seed {seed}, from {from}");
                }
            }
        }
    }

    #[test]
    fn a_crafted_tail_is_scanned_in_linear_work() {
        for len in [4 << 10, 8 << 10, 16 << 10] {
            let tail = crafted_tail(len);
            let scan = first_valid_frame(&tail, 0);
            assert_eq!(scan.found, None);
            // Each byte hashed once and each offset checked at most once, whatever the lengths
            // announced: doubling the tail doubles the work.
            assert_eq!(scan.bytes_hashed, len);
            assert!(scan.frames_checked <= len, "{} checks", scan.frames_checked);
            assert!(
                scan.frames_checked >= len / 4 - 2,
                "{} checks",
                scan.frames_checked
            );
            // The search it replaced hashed about len²/8 bytes on the same input.
            let (found, naive_hashed) = naive(&tail, 0);
            assert_eq!(found, None);
            assert!(
                naive_hashed > len * len / 9,
                "{naive_hashed} bytes for {len}"
            );
        }
    }
}
