//! Maglev consistent hashing (Eisenbud et al., NSDI 2016), computed once here in user space and
//! written into the `maglev` map; the kernel programs only index it with [`abi::flow_hash`].
//!
//! Each backend has a permutation of the table positions derived from its identity (its MAC or
//! IP as configured, never its list position or slot), and the backends take turns claiming
//! their next free position — `weight` positions per turn — until the table is full. So every
//! backend owns a share of the table proportional to its weight, and adding or removing one
//! backend changes about that backend's share of the entries and little else.

use super::abi::{self, FLOW_SIZE, NO_BACKEND, TABLE_SIZE};

/// A backend as the table sees it.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// Identity the permutation is derived from.
    pub id: &'a str,
    pub weight: u32,
    /// The value written into the table (the backend's slot in `backends`).
    pub slot: u32,
}

const OFFSET_SEED: u32 = 0x6d61_676c; // "magl"
const SKIP_SEED: u32 = 0x6576_6d61; // "evma"

/// `(offset, skip)` of a backend's permutation: position `j` is `(offset + j * skip) % M`,
/// which visits every position once since M is prime and `skip` in `1..M`.
pub fn permutation(id: &str) -> (u64, u64) {
    let m = u64::from(TABLE_SIZE);
    let offset = u64::from(abi::murmur3_32(id.as_bytes(), OFFSET_SEED)) % m;
    let skip = u64::from(abi::murmur3_32(id.as_bytes(), SKIP_SEED)) % (m - 1) + 1;
    (offset, skip)
}

/// The lookup table: `TABLE_SIZE` slots, or all [`NO_BACKEND`] for no backends. The result
/// depends on the set of (id, weight, slot), not on the order of `entries`.
pub fn build(entries: &[Entry<'_>]) -> Vec<u32> {
    let m = TABLE_SIZE as usize;
    let mut table = vec![NO_BACKEND; m];
    let mut sorted: Vec<Entry<'_>> = entries.iter().copied().filter(|e| e.weight > 0).collect();
    if sorted.is_empty() {
        return table;
    }
    sorted.sort_by(|a, b| a.id.cmp(b.id));
    let perms: Vec<(u64, u64)> = sorted.iter().map(|e| permutation(e.id)).collect();
    let mut next = vec![0u64; sorted.len()];
    let mut filled = 0;
    loop {
        for (i, e) in sorted.iter().enumerate() {
            let (offset, skip) = perms[i];
            for _ in 0..e.weight {
                let mut c = ((offset + next[i] * skip) % m as u64) as usize;
                while table[c] != NO_BACKEND {
                    next[i] += 1;
                    c = ((offset + next[i] * skip) % m as u64) as usize;
                }
                table[c] = e.slot;
                next[i] += 1;
                filled += 1;
                if filled == m {
                    return table;
                }
            }
        }
    }
}

/// The slot the table gives `flow` (what the kernel programs do for a flow not in `conns`).
pub fn lookup(table: &[u32], flow: &[u8; FLOW_SIZE]) -> u32 {
    table[(abi::flow_hash(flow) % TABLE_SIZE) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares(table: &[u32], slots: u32) -> Vec<usize> {
        (0..slots).map(|s| table.iter().filter(|&&t| t == s).count()).collect()
    }

    fn ids(n: u32) -> Vec<String> {
        (0..n).map(|i| format!("02:00:00:00:01:{i:02x}")).collect()
    }

    #[test]
    fn empty_and_even_and_weighted() {
        assert!(build(&[]).iter().all(|&s| s == NO_BACKEND));
        let ids = ids(3);
        let even: Vec<Entry> = ids.iter().enumerate().map(|(i, id)| Entry { id, weight: 1, slot: i as u32 }).collect();
        let s = shares(&build(&even), 3);
        assert_eq!(s.iter().sum::<usize>(), TABLE_SIZE as usize);
        for n in &s {
            assert!(n.abs_diff(TABLE_SIZE as usize / 3) <= 1, "{s:?}");
        }
        let weighted: Vec<Entry> =
            ids.iter().enumerate().map(|(i, id)| Entry { id, weight: i as u32 + 1, slot: i as u32 }).collect();
        let s = shares(&build(&weighted), 3);
        for (i, n) in s.iter().enumerate() {
            let want = TABLE_SIZE as f64 * (i + 1) as f64 / 6.0;
            assert!((*n as f64 - want).abs() / want < 0.001, "{s:?}");
        }
    }

    #[test]
    fn order_independent_and_minimal_disruption() {
        let ids = ids(5);
        let entries: Vec<Entry> =
            ids.iter().enumerate().map(|(i, id)| Entry { id, weight: 1, slot: i as u32 }).collect();
        let a = build(&entries[..4]);
        let mut reversed = entries[..4].to_vec();
        reversed.reverse();
        assert_eq!(a, build(&reversed));
        // Adding a fifth backend: it takes about a fifth; few other entries change hands.
        let b = build(&entries);
        let changed = a.iter().zip(&b).filter(|(x, y)| x != y).count();
        let to_new = b.iter().filter(|&&s| s == 4).count();
        assert!(changed - to_new < TABLE_SIZE as usize / 50, "changed {changed}, to the new one {to_new}");
        // Removing one: its entries move, and only a few others (Maglev trades exact minimal
        // disruption for even shares).
        let c = build(&[entries[0], entries[1], entries[3]]);
        let others_moved = a.iter().zip(&c).filter(|(x, y)| **x != 2 && x != y).count();
        assert!(others_moved < TABLE_SIZE as usize / 50, "{others_moved} entries of other backends moved");
    }
}
