//! Structure-aware hostile input (hardening issue 12, item 4): snapshots and budget-file records
//! that are well formed where a shallow check looks (real trees, valid checksums) and hostile in
//! their numbers (hold indexes, counts, lengths, amounts).
//!
//! Both targets read a tiny edit language instead of `arbitrary` data, so a seed can be written
//! by hand: the input is a list of 12-byte edits
//!
//! ```text
//! kind u8 | target u8 | at u16 (LE) | value u64 (LE)
//! ```
//!
//! applied to a fixed, valid starting point; a trailing partial edit is ignored.

use std::sync::Arc;

use budget_guard::{
    Amount, Cost, Durability, FileStore, HoldId, Limit, Limits, MAX_LIVE_HOLDS, MemoryStore,
    NodeState, Snapshot, Store, Unit,
};

use super::{check_invariants, check_typed, decode_file, scratch_path};

/// One 12-byte edit.
#[derive(Clone, Copy, Debug)]
struct Edit {
    kind: u8,
    target: u8,
    at: u16,
    value: u64,
}

fn edits(data: &[u8]) -> impl Iterator<Item = Edit> + '_ {
    data.chunks_exact(12).map(|chunk| Edit {
        kind: chunk[0],
        target: chunk[1],
        at: u16::from_le_bytes([chunk[2], chunk[3]]),
        value: u64::from_le_bytes(chunk[4..12].try_into().expect("8 bytes")),
    })
}

/// Hold indexes worth trying more often than uniform `u32`s would: small ones (cheap, so the
/// common case of a fuzzer's small numbers stays fast), the sizes from the issue, and around the
/// limit (an index just below it legitimately costs a 100 MB slab, so it is rarer).
fn hold_index(value: u64) -> u32 {
    let pick = value as u32;
    match value >> 61 {
        0 => pick % 64,
        1 => [0x7FFF_FFF0, 4_294_967_294, 10_000_000, u32::MAX][pick as usize % 4],
        2 => MAX_LIVE_HOLDS.wrapping_add(pick % 16).wrapping_sub(8),
        _ => pick,
    }
}

fn with_index(id: HoldId, index: u32) -> HoldId {
    HoldId::from_raw((id.into_raw() & !u64::from(u32::MAX)) | u64::from(index))
}

// ---------------------------------------------------------------------------------------------
// restore

/// The starting point of the `restore` target: `org($100, 1M tokens) → team($40) → {a($10),
/// b(soft $5)}`, five holds (one partly recorded), one hold reclaimed by expiry.
fn restore_fixture() -> Snapshot {
    let store = MemoryStore::new();
    let usd = |cents: i64| Amount::try_from_minor(cents * 10_000_000, Unit::Usd).unwrap();
    let org = store
        .create_node(
            None,
            "org",
            &Limits::from(vec![
                Limit::hard(usd(10_000)),
                Limit::hard(Amount::tokens(1_000_000)),
            ]),
        )
        .unwrap();
    let team = store
        .create_node(Some(org), "team", &Limit::hard(usd(4_000)).into())
        .unwrap();
    let a = store
        .create_node(Some(team), "a", &Limit::hard(usd(1_000)).into())
        .unwrap();
    let b = store
        .create_node(Some(team), "b", &Limit::soft(usd(500)).into())
        .unwrap();
    let mut holds = Vec::new();
    for (node, cents) in [(a, 100), (a, 250), (b, 50), (team, 300), (org, 1)] {
        holds.push(store.reserve(node, &usd(cents).into()).unwrap().hold);
    }
    store.record(holds[1], &usd(50).into()).unwrap();
    let tokens = Cost::from(Amount::tokens(700));
    store.reserve(org, &tokens).unwrap();
    store.commit(holds[4], &usd(1).into()).unwrap();
    store.snapshot().unwrap()
}

fn minor(value: u64) -> i64 {
    // Mostly small figures, so edits land near real limits; sometimes extreme ones.
    match value >> 62 {
        0 => (value % 2_000) as i64 * 10_000_000,
        1 => i64::MAX - (value % 16) as i64,
        2 => -((value % 16) as i64),
        _ => value as i64,
    }
}

fn cost_with(cost: &Cost, unit: Unit, minor: i64) -> Cost {
    let mut out = Cost::new();
    for amount in cost.iter().filter(|a| a.unit() != unit) {
        out = out.with(amount).unwrap_or(out);
    }
    match Amount::try_from_minor(minor, unit) {
        Ok(amount) => out.with(amount).unwrap_or(out),
        Err(_) => out,
    }
}

fn apply_snapshot_edit(snapshot: &mut Snapshot, edit: Edit) {
    let nodes = snapshot.nodes.len();
    let holds = snapshot.holds.len();
    let hold = (holds > 0).then(|| usize::from(edit.target) % holds);
    let node = (nodes > 0).then(|| usize::from(edit.target) % nodes);
    let other = (nodes > 0).then(|| usize::from(edit.at) % nodes);
    let unit = Unit::ALL[usize::from(edit.at) % Unit::ALL.len()];
    match edit.kind % 14 {
        0 => {
            if let Some(h) = hold {
                let id = snapshot.holds[h].id;
                snapshot.holds[h].id = with_index(id, hold_index(edit.value));
            }
        }
        1 => {
            if let Some(h) = hold {
                snapshot.holds[h].id = HoldId::from_raw(edit.value);
            }
        }
        2 => {
            if let (Some(h), Some(n)) = (hold, other) {
                snapshot.holds[h].node = snapshot.nodes[n].path.clone();
            }
        }
        3 => {
            if let Some(h) = hold {
                let held = &mut snapshot.holds[h].held;
                *held = cost_with(held, unit, minor(edit.value));
            }
        }
        4 => {
            if let Some(h) = hold {
                let recorded = &mut snapshot.holds[h].recorded;
                *recorded = cost_with(recorded, unit, minor(edit.value));
            }
        }
        5 => {
            if let Some(h) = hold {
                let copy = snapshot.holds[h].clone();
                snapshot.holds.push(copy);
            }
        }
        6 => {
            if let Some(h) = hold {
                let moved = snapshot.holds.remove(h);
                snapshot.expired_holds.push(moved);
            }
        }
        7 => {
            if let Some(n) = node {
                let accounts = &mut snapshot.nodes[n].accounts;
                if !accounts.is_empty() {
                    let which = usize::from(edit.at) % accounts.len();
                    let account = &mut accounts[which];
                    if let Ok(amount) = Amount::try_from_minor(minor(edit.value), account.unit) {
                        match edit.at / 256 % 3 {
                            0 => account.spent = amount,
                            1 => account.reserved = amount,
                            _ => account.debt = amount,
                        }
                    }
                }
            }
        }
        8 => {
            if let (Some(n), Some(o)) = (node, other) {
                let names = ["x", "team", "a", "", "a/b", "org"];
                let name = names[edit.value as usize % names.len()];
                let path: Arc<str> = match edit.value >> 63 {
                    0 => format!("{}/{name}", snapshot.nodes[o].path).into(),
                    _ => name.into(),
                };
                snapshot.nodes[n].path = path;
            }
        }
        9 => {
            if let Some(n) = node {
                let copy = snapshot.nodes[n].clone();
                snapshot.nodes.push(copy);
            }
        }
        10 => {
            if let Some(n) = node {
                snapshot.nodes.remove(n);
            }
        }
        11 => {
            if let (Some(n), Some(o)) = (node, other) {
                snapshot.nodes.swap(n, o);
            }
        }
        12 => snapshot.next_serial = edit.value as u32,
        _ => {
            if let Some(n) = node {
                snapshot.nodes[n].state = match edit.value % 3 {
                    0 => NodeState::Active,
                    1 => NodeState::Frozen,
                    _ => NodeState::Closed,
                };
            }
        }
    }
}

/// The `restore` target: a valid snapshot edited by `data` (see the module docs; kinds 0–13:
/// hold index, raw hold id, hold node, held, recorded, duplicate hold, expire hold, account
/// figure, node path, duplicate node, remove node, swap nodes, next serial, node state).
///
/// `MemoryStore::restore` either refuses it with a typed error and changes nothing, or accepts
/// it; then the books keep the ledger invariants, and a `FileStore` restored from it writes a
/// file that reads back to the same books (the writer never writes what the reader refuses).
///
/// # Panics
/// On any broken rule (and, before the fix, the process aborted on a hostile hold index).
pub fn restore_hostile(data: &[u8]) {
    let mut snapshot = restore_fixture();
    for edit in edits(data) {
        apply_snapshot_edit(&mut snapshot, edit);
    }
    let store = MemoryStore::new();
    store
        .create_node(None, "before", &Limit::hard(Amount::tokens(5)).into())
        .unwrap();
    let before = store.snapshot().unwrap();
    match store.restore(&snapshot) {
        Err(error) => {
            check_typed(&error, &"restore");
            assert_eq!(
                store.snapshot().unwrap(),
                before,
                "a refused restore ({error}) changed the books"
            );
        }
        Ok(()) => {
            let restored = store.snapshot().unwrap();
            check_invariants(&restored);
            let path = scratch_path("restore");
            let _ = std::fs::remove_file(&path);
            let file = FileStore::options()
                .durability(Durability::Unsynced)
                .open(&path)
                .expect("open a fresh scratch file");
            file.restore(&snapshot)
                .expect("a snapshot the memory store takes, the file store takes");
            assert_eq!(file.snapshot().unwrap(), restored, "stores disagree");
            drop(file);
            let reopened = FileStore::inspect(&path).expect("the file store's own file reads");
            assert_eq!(reopened, restored, "the file reads back different books");
            let _ = std::fs::remove_file(&path);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// records

/// The valid budget files the `records` target starts from (the `file_decode` seeds).
const SEED_FILES: [&[u8]; 5] = [
    include_bytes!("../corpus/file_decode/empty"),
    include_bytes!("../corpus/file_decode/tree"),
    include_bytes!("../corpus/file_decode/activity_log"),
    include_bytes!("../corpus/file_decode/expired_log"),
    include_bytes!("../corpus/file_decode/compacted"),
];

/// Splits a budget file into its 16-byte header and its record payloads (stopping at the first
/// frame that does not parse; the seeds have none).
fn records_of(file: &[u8]) -> (&[u8], Vec<Vec<u8>>) {
    let (header, mut rest) = file.split_at(16.min(file.len()));
    let mut records = Vec::new();
    while rest.len() >= 8 {
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let Some(payload) = rest.get(8..8 + len) else {
            break;
        };
        records.push(payload.to_vec());
        rest = &rest[8 + len..];
    }
    (header, records)
}

/// Frames `payload` as the file store does: length, crc32 of the length bytes and the payload.
fn push_frame(file: &mut Vec<u8>, payload: &[u8]) {
    let len = u32::try_from(payload.len())
        .expect("below 4 GiB")
        .to_le_bytes();
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len);
    hasher.update(payload);
    file.extend_from_slice(&len);
    file.extend_from_slice(&hasher.finalize().to_le_bytes());
    file.extend_from_slice(payload);
}

/// `value` as a postcard (LEB128) varint.
fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
    out
}

/// The length of the varint at the start of `bytes` (at most 10 bytes, at least 1; the rest
/// of `bytes` if it ends inside one).
fn varint_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take(10)
        .position(|byte| byte & 0x80 == 0)
        .map_or(bytes.len().min(10), |last| last + 1)
}

fn apply_record_edit(records: &mut Vec<Vec<u8>>, edit: Edit) {
    if records.is_empty() {
        return;
    }
    let index = usize::from(edit.target) % records.len();
    let payload = &mut records[index];
    let at = if payload.is_empty() {
        0
    } else {
        usize::from(edit.at) % payload.len()
    };
    // Payloads are postcard: integers, counts and lengths are LEB128 varints, so a hostile
    // number replaces the varint at `at` (whatever length it had) with another one.
    let mut splice = |value: u64| {
        let old = varint_len(&payload[at..]);
        payload.splice(at..at + old, varint(value));
    };
    match edit.kind % 8 {
        // A hold id with a hostile index (ids are u64: serial high, index low).
        0 => splice((1 << 32) | u64::from(hold_index(edit.value))),
        // A count or length.
        1 => splice(u64::from(edit.value as u32)),
        2 => splice(edit.value),
        3 => {
            if let Some(byte) = payload.get_mut(at) {
                *byte = edit.value as u8;
            }
        }
        4 => {
            let copy = records[index].clone();
            records.insert(index, copy);
        }
        5 => {
            records.remove(index);
        }
        6 => payload.truncate(at),
        _ => payload.extend_from_slice(&edit.value.to_le_bytes()[..usize::from(edit.at % 9)]),
    }
}

/// The `records` target: one of the seed files (first byte), its record payloads (postcard) edited
/// by the rest of `data` (see the module docs; kinds 0–7: the varint at `at` replaced by a hold
/// id with a hostile index, a u32 or a u64; a byte; duplicate record, remove record, truncate
/// payload, extend payload), every frame given a valid
/// checksum again, and the result opened as [`decode_file`] does: `Ok` with sound books or a
/// typed error, never a panic or an abort.
///
/// # Panics
/// On any broken rule.
pub fn records_hostile(data: &[u8]) {
    let Some((&seed, rest)) = data.split_first() else {
        return;
    };
    let (header, mut records) = records_of(SEED_FILES[usize::from(seed) % SEED_FILES.len()]);
    for edit in edits(rest) {
        apply_record_edit(&mut records, edit);
    }
    let mut file = header.to_vec();
    for payload in records.iter().filter(|payload| !payload.is_empty()) {
        push_frame(&mut file, payload);
    }
    decode_file(&file);
}
