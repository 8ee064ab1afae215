//! The one duplicate-target detector, in flat memory: a fixed Bloom filter says which targets may have
//! been seen; every keyed row's (key, row, line) is spilled (to a file for a stream, to memory for a
//! small table) and the candidates are confirmed exactly once the whole input is read. Memory grows
//! only with the number of duplicate rows.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};

use crate::results::{Outcome, Status};

/// A duplicate row, with the first row (and its line) that had the same target.
pub type Firsts = HashMap<u64, (u64, u64)>;

/// The index key of a target: its 128-bit xxh3 hash (two different targets share one with a
/// chance of about 10⁻²⁶ in a million rows). Pure, so it can be computed on any thread.
pub fn target_key(target: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(target.as_bytes())
}

/// A fixed-size Bloom filter over target keys: a key it says was never seen is new for certain; one
/// it says may have been seen is checked exactly afterwards. Its 16 MB do not grow with the file.
/// Blocked: all of a key's bits lie in one 64-byte block, so a key costs one cache miss, not seven
/// (at a million rows, about one key in a billion is a false alarm; at ten million, one in a
/// hundred, each costing 16 bytes until the exact check).
struct Bloom {
    bits: Vec<u64>,
}

impl Bloom {
    const BITS: u64 = 1 << 27;
    const HASHES: u64 = 7;

    fn new() -> Self {
        Bloom {
            bits: vec![0; (Self::BITS / 64) as usize],
        }
    }

    /// Adds a key; returns whether it may have been added before. The key's low half picks the
    /// block, 9 bits of its high half at a time pick each bit in it (the key is a hash already).
    fn insert(&mut self, key: u128) -> bool {
        const BLOCK_WORDS: u64 = 8;
        let (low, high) = (key as u64, (key >> 64) as u64);
        let block = (low % (Self::BITS / 64 / BLOCK_WORDS) * BLOCK_WORDS) as usize;
        let mut seen = true;
        for i in 0..Self::HASHES {
            let bit = (high >> (i * 9)) & 511;
            let (word, mask) = (block + (bit / 64) as usize, 1u64 << (bit % 64));
            if self.bits[word] & mask == 0 {
                seen = false;
                self.bits[word] |= mask;
            }
        }
        seen
    }
}

/// Collects target keys in input order; [`Detector::confirm`] names the duplicates.
pub struct Detector<W: Write> {
    bloom: Bloom,
    candidates: HashSet<u128>,
    spill: W,
}

impl<W: Write> Detector<W> {
    pub fn new(spill: W) -> Self {
        Detector {
            bloom: Bloom::new(),
            candidates: HashSet::new(),
            spill,
        }
    }

    /// Notes that `row` (on `line`) changes the target with this key.
    pub fn note(&mut self, key: u128, row: usize, line: u64) -> io::Result<()> {
        if self.bloom.insert(key) {
            self.candidates.insert(key);
        }
        self.spill.write_all(&key.to_le_bytes())?;
        self.spill.write_all(&(row as u64).to_le_bytes())?;
        self.spill.write_all(&line.to_le_bytes())
    }

    /// Whether any row may repeat a target (if not, [`Detector::confirm`] has nothing to read).
    pub fn any_candidates(&self) -> bool {
        !self.candidates.is_empty()
    }

    /// Ends the collection and returns the spill (to be read back by [`Detector::confirm`]).
    pub fn into_parts(self) -> (HashSet<u128>, W) {
        (self.candidates, self.spill)
    }
}

/// The exact check over the spilled keys, for candidate keys only: each duplicate row and the
/// first row (and line) that had its target.
pub fn confirm(spilled: impl Read, candidates: &HashSet<u128>) -> io::Result<Firsts> {
    let mut first: HashMap<u128, (u64, u64)> = HashMap::new();
    let mut dups = HashMap::new();
    if candidates.is_empty() {
        return Ok(dups);
    }
    let mut r = io::BufReader::new(spilled);
    let mut rec = [0u8; 32];
    loop {
        match r.read_exact(&mut rec) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        let word = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&rec[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let key = u128::from(word(0)) | (u128::from(word(8)) << 64);
        if !candidates.contains(&key) {
            continue;
        }
        let (row, line) = (word(16), word(24));
        match first.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => {
                dups.insert(row, *e.get());
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert((row, line));
            }
        }
    }
    Ok(dups)
}

/// The code a duplicate row's outcome carries.
pub const CODE: &str = "duplicate_target";

/// What a row that repeats an earlier row's target gets instead of being sent (`invalid`, naming
/// the first row), or `None` when it repeats none. The one place a duplicate is marked: validate's
/// results, the sending pass and in-memory plans all take it from here.
pub fn outcome(dups: &Firsts, row: usize, line: u64, target: Option<&str>) -> Option<Outcome> {
    let (first_row, first_line) = dups.get(&(row as u64))?;
    let message = message(*first_row, *first_line, target.unwrap_or("same target"));
    Some(Outcome::unsent(row, line, Status::Invalid, CODE, &message))
}

/// The message a duplicate row gets.
fn message(first_row: u64, first_line: u64, target: &str) -> String {
    format!(
        "row {first_row} (line {first_line}) already changes the {target}; only the first row is \
         applied: merge the two rows or remove one"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_candidate_is_a_duplicate_only_if_its_key_came_before() {
        let mut spill = Vec::new();
        for (key, row, line) in [(7u128, 1u64, 2u64), (9, 2, 3), (7, 3, 5), (11, 4, 6)] {
            spill.extend_from_slice(&key.to_le_bytes());
            spill.extend_from_slice(&row.to_le_bytes());
            spill.extend_from_slice(&line.to_le_bytes());
        }
        // 9 is a false alarm of the filter; 11 was never a candidate.
        let candidates = [7u128, 9].into_iter().collect();
        let dups = confirm(&spill[..], &candidates).unwrap();
        assert_eq!(dups.len(), 1);
        assert_eq!(dups[&3], (1, 2), "row 3 repeats row 1, line 2");
    }

    #[test]
    fn the_filter_never_forgets_a_key() {
        let mut b = Bloom::new();
        let keys: Vec<u128> = (0..50_000u128)
            .map(|i| target_key(&format!("subscription {i}")))
            .collect();
        assert!(
            keys.iter().all(|k| !b.insert(*k)),
            "new keys are new (no false alarm at this size)"
        );
        assert!(
            keys.iter().all(|k| b.insert(*k)),
            "every key added is seen again"
        );
    }

    #[test]
    fn the_filter_keeps_false_alarms_rare_at_a_million_keys() {
        let mut b = Bloom::new();
        let alarms = (0..1_000_000u64)
            .filter(|i| b.insert(target_key(&format!("subscription {i}"))))
            .count();
        // Each false alarm costs 16 bytes until the exact check: a few are fine, thousands not.
        assert!(alarms < 100, "{alarms} false alarms");
    }

    #[test]
    fn the_detector_finds_a_repeat_across_a_spill() {
        let mut d = Detector::new(Vec::new());
        for (row, key) in [(1usize, 5u128), (2, 6), (3, 5), (4, 5)] {
            d.note(key, row, row as u64 + 1).unwrap();
        }
        assert!(d.any_candidates());
        let (candidates, spill) = d.into_parts();
        let dups = confirm(&spill[..], &candidates).unwrap();
        assert_eq!(dups[&3], (1, 2));
        assert_eq!(dups[&4], (1, 2));
        assert!(!dups.contains_key(&2));
    }
}
