//! The L1 store: a sharded hash map of [`L1Entry`]s, bounded by weight and
//! entry count, evicting with CLOCK (second chance).
//!
//! A hit is on the read path of every L1-served `get`, so the layout is
//! chosen for it: each shard's table holds the entry pointer itself, and
//! the entry holds its key, its hash and its value in one allocation. A
//! lookup reads the table's control bytes, the bucket, the entry and the
//! value: one pointer chase fewer than an index plus a slab of entries.
//!
//! Eviction: each shard keeps its entries in a ring and a hand. A hit sets
//! the entry's `referenced` bit (only when it is clear, so a hot entry's
//! line is not written on every hit). When an insert takes a shard over its
//! part of the bounds, the hand sweeps the ring: a referenced entry loses
//! its bit and is passed, an unreferenced one is evicted, and the entry just
//! inserted is passed over.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use parking_lot::RwLock;

use super::l1::L1Entry;

/// Keys up to this long are held in the entry itself.
const INLINE_KEY: usize = 46;

/// An entry's key, held in the entry's own allocation when it is short (the
/// usual case), so comparing it on a lookup reads no other memory.
pub(crate) struct EntryKey {
    inline: [u8; INLINE_KEY],
    len: u16,
    /// Keys longer than `INLINE_KEY` bytes.
    long: Option<Box<str>>,
}

impl EntryKey {
    pub(crate) fn new(key: &str) -> Self {
        let mut inline = [0; INLINE_KEY];
        match inline.get_mut(..key.len()) {
            Some(head) if key.len() <= usize::from(u16::MAX) => {
                head.copy_from_slice(key.as_bytes());
                Self {
                    inline,
                    len: key.len() as u16,
                    long: None,
                }
            }
            _ => Self {
                inline,
                len: 0,
                long: Some(key.into()),
            },
        }
    }

    /// Whether this is `key`.
    #[inline]
    pub(crate) fn is(&self, key: &str) -> bool {
        match &self.long {
            None => self.inline.get(..usize::from(self.len)) == Some(key.as_bytes()),
            Some(long) => **long == *key,
        }
    }

    fn bytes(&self) -> &[u8] {
        match &self.long {
            None => &self.inline[..usize::from(self.len)],
            Some(long) => long.as_bytes(),
        }
    }
}

impl fmt::Debug for EntryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&String::from_utf8_lossy(self.bytes()), f)
    }
}

/// Shard locks on their own cache lines, so readers of one shard do not
/// invalidate the line of another.
#[repr(align(128))]
#[derive(Debug, Default)]
struct Padded<T>(T);

/// One shard: the map, the CLOCK ring and its weight.
#[derive(Debug, Default)]
struct Shard {
    table: HashTable<Arc<L1Entry>>,
    /// Every entry of `table`, in CLOCK order; an entry's `slot` is its
    /// index here.
    ring: Vec<Arc<L1Entry>>,
    /// The next entry the sweep looks at.
    hand: usize,
    /// Sum of the weights of the entries.
    weight: u64,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct L1Store {
    shards: Box<[Padded<RwLock<Shard>>]>,
    hasher: foldhash::fast::RandomState,
    /// `shards.len() - 1` (the count is a power of two).
    mask: u64,
    /// Each shard's part of the byte bound.
    shard_bytes: u64,
    /// Each shard's part of the entry count.
    shard_entries: usize,
    /// An entry weighs at least this (`max_bytes / capacity`).
    min_weight: u64,
    len: AtomicUsize,
    weight: AtomicU64,
}

impl L1Store {
    /// At most about `capacity` entries and `max_bytes` bytes.
    pub(crate) fn new(capacity: usize, max_bytes: u64) -> Self {
        let capacity = capacity.max(1);
        let max_bytes = max_bytes.max(1);
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        // Enough shards that threads rarely meet on one lock, few enough
        // that each holds a useful share of a small tier.
        let mut shards = (threads * 4).next_power_of_two().min(64);
        while shards > 1 && capacity / shards < 32 {
            shards /= 2;
        }
        Self {
            shards: (0..shards).map(|_| Padded::default()).collect(),
            hasher: foldhash::fast::RandomState::default(),
            mask: shards as u64 - 1,
            shard_bytes: (max_bytes / shards as u64).max(1),
            shard_entries: capacity.div_ceil(shards),
            min_weight: (max_bytes / capacity as u64).max(1),
            len: AtomicUsize::new(0),
            weight: AtomicU64::new(0),
        }
    }

    /// The hash an entry for `key` must carry.
    pub(crate) fn hash(&self, key: &str) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(key)
    }

    fn shard(&self, hash: u64) -> &RwLock<Shard> {
        // hashbrown takes the bucket from the low bits and the control
        // byte from the top 7: the shard comes from bits in between.
        &self.shards[((hash >> 32) & self.mask) as usize].0
    }

    fn weigh(&self, entry: &L1Entry) -> u64 {
        entry.weight.max(self.min_weight)
    }

    /// The entry for `key`, marked as referenced.
    #[cfg(test)]
    pub(crate) fn get(&self, key: &str) -> Option<Arc<L1Entry>> {
        self.get_with(key, Arc::clone)
    }

    /// `read` applied to the entry for `key` (marked as referenced), under
    /// its shard's read lock.
    ///
    /// This is the hit path: reading the entry in place leaves its
    /// reference count alone. Cloning and dropping the `Arc` are two
    /// locked read-modify-writes on the entry's first cache line, which the
    /// lookup does not otherwise need (2.5% of a hit's paired median in
    /// `docs/benchmarks.md`). `read` must not take a lock that is held
    /// while an L1 shard's lock is taken.
    #[inline]
    pub(crate) fn get_with<R>(
        &self,
        key: &str,
        read: impl FnOnce(&Arc<L1Entry>) -> R,
    ) -> Option<R> {
        let hash = self.hash(key);
        let shard = self.shard(hash).read();
        let entry = shard
            .table
            .find(hash, |e| e.hash == hash && e.key.is(key))?;
        if !entry.referenced.load(Ordering::Relaxed) {
            entry.referenced.store(true, Ordering::Relaxed);
        }
        Some(read(entry))
    }

    /// Stores `entry` (built with [`hash`](Self::hash) of its key), replacing
    /// the key's entry, and evicts until the shard is within its bounds. An
    /// entry heavier than a shard's part of the byte bound is not stored (and
    /// the key's old entry is removed).
    pub(crate) fn insert(&self, entry: Arc<L1Entry>) {
        let hash = entry.hash;
        let weight = self.weigh(&entry);
        let mut shard = self.shard(hash).write();
        let shard = &mut *shard;
        if weight > self.shard_bytes {
            if let Ok(found) = shard.table.find_entry(hash, |e| {
                e.hash == hash && e.key.bytes() == entry.key.bytes()
            }) {
                let (old, _) = found.remove();
                self.unlink(shard, &old);
            }
            return;
        }
        match shard.table.entry(
            hash,
            |e| e.hash == hash && e.key.bytes() == entry.key.bytes(),
            |e| e.hash,
        ) {
            Entry::Occupied(mut found) => {
                let old = std::mem::replace(found.get_mut(), Arc::clone(&entry));
                let slot = old.slot.load(Ordering::Relaxed);
                entry.slot.store(slot, Ordering::Relaxed);
                shard.ring[slot] = Arc::clone(&entry);
                let old_weight = self.weigh(&old);
                shard.weight = shard.weight - old_weight + weight;
                self.weight.fetch_sub(old_weight, Ordering::Relaxed);
                self.weight.fetch_add(weight, Ordering::Relaxed);
            }
            Entry::Vacant(vacant) => {
                vacant.insert(Arc::clone(&entry));
                entry.slot.store(shard.ring.len(), Ordering::Relaxed);
                shard.ring.push(Arc::clone(&entry));
                shard.weight += weight;
                self.weight.fetch_add(weight, Ordering::Relaxed);
                self.len.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.evict(shard, &entry);
    }

    /// Sweeps the ring until `shard` is within its bounds, never evicting
    /// `keep`.
    fn evict(&self, shard: &mut Shard, keep: &Arc<L1Entry>) {
        while shard.ring.len() > 1
            && (shard.weight > self.shard_bytes || shard.ring.len() > self.shard_entries)
        {
            if shard.hand >= shard.ring.len() {
                shard.hand = 0;
            }
            let at = &shard.ring[shard.hand];
            if Arc::ptr_eq(at, keep) || at.referenced.swap(false, Ordering::Relaxed) {
                shard.hand += 1;
                continue;
            }
            let victim = Arc::clone(at);
            if let Ok(found) = shard
                .table
                .find_entry(victim.hash, |e| Arc::ptr_eq(e, &victim))
            {
                found.remove();
            }
            // The last entry moves into the victim's place and is looked at
            // next.
            self.unlink(shard, &victim);
        }
    }

    /// Takes `entry` (already out of the table) out of the ring and the
    /// weights.
    fn unlink(&self, shard: &mut Shard, entry: &Arc<L1Entry>) {
        let slot = entry.slot.load(Ordering::Relaxed);
        shard.ring.swap_remove(slot);
        if let Some(moved) = shard.ring.get(slot) {
            moved.slot.store(slot, Ordering::Relaxed);
        }
        let weight = self.weigh(entry);
        shard.weight -= weight;
        self.weight.fetch_sub(weight, Ordering::Relaxed);
        self.len.fetch_sub(1, Ordering::Relaxed);
    }

    /// Removes the entry for `key`.
    pub(crate) fn remove(&self, key: &str) {
        let hash = self.hash(key);
        let mut shard = self.shard(hash).write();
        let shard = &mut *shard;
        if let Ok(found) = shard
            .table
            .find_entry(hash, |e| e.hash == hash && e.key.is(key))
        {
            let (old, _) = found.remove();
            self.unlink(shard, &old);
        }
    }

    /// Removes every entry.
    pub(crate) fn clear(&self) {
        for shard in &self.shards {
            let mut shard = shard.0.write();
            let (len, weight) = (shard.ring.len(), shard.weight);
            shard.table.clear();
            shard.ring.clear();
            shard.hand = 0;
            shard.weight = 0;
            self.len.fetch_sub(len, Ordering::Relaxed);
            self.weight.fetch_sub(weight, Ordering::Relaxed);
        }
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Current weight, in bytes.
    pub(crate) fn weight(&self) -> u64 {
        self.weight.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::time::Instant;

    use super::*;
    use crate::tier::l1::L1Entry;

    fn entry(store: &L1Store, key: &str, v: u32, weight: u64) -> Arc<L1Entry> {
        Arc::new(L1Entry {
            hash: store.hash(key),
            key: EntryKey::new(key),
            slot: AtomicUsize::new(0),
            referenced: Default::default(),
            fresh_until: Instant::now() + Duration::from_secs(1),
            stale_until: None,
            refresh_at: None,
            epoch: 1,
            tags: Box::new([]),
            throttled: false,
            weight,
            value: v,
        })
    }

    fn value(store: &L1Store, key: &str) -> Option<u32> {
        store.get(key).and_then(|e| e.downcast::<u32>())
    }

    /// Ring slots, the table and the counters agree.
    fn check(store: &L1Store) {
        let mut len = 0;
        let mut weight = 0;
        for shard in &store.shards {
            let shard = shard.0.read();
            assert_eq!(shard.table.len(), shard.ring.len());
            for (i, e) in shard.ring.iter().enumerate() {
                assert_eq!(e.slot.load(Ordering::Relaxed), i);
                let found = shard.table.find(e.hash, |x| Arc::ptr_eq(x, e));
                assert!(found.is_some(), "{:?} in the ring, not the table", e.key);
            }
            let sum: u64 = shard.ring.iter().map(|e| store.weigh(e)).sum();
            assert_eq!(sum, shard.weight);
            len += shard.ring.len();
            weight += shard.weight;
        }
        assert_eq!(len, store.len());
        assert_eq!(weight, store.weight());
    }

    #[test]
    fn keys_short_and_long() {
        for key in [
            "",
            "a",
            &"x".repeat(INLINE_KEY),
            &"y".repeat(INLINE_KEY + 1),
        ] {
            let k = EntryKey::new(key);
            assert!(k.is(key), "{key}");
            assert!(!k.is(&format!("{key}z")));
            assert_eq!(k.bytes(), key.as_bytes());
        }
        assert!(!EntryKey::new("ab").is("a"));
        assert!(!EntryKey::new("a").is("b"));
    }

    #[test]
    fn inserts_replaces_and_removes() {
        let store = L1Store::new(100, 1 << 20);
        store.insert(entry(&store, "a", 1, 10));
        store.insert(entry(&store, "b", 2, 10));
        assert_eq!(value(&store, "a"), Some(1));
        store.insert(entry(&store, "a", 3, 20));
        assert_eq!(value(&store, "a"), Some(3));
        assert_eq!(store.len(), 2);
        check(&store);
        store.remove("a");
        assert_eq!(value(&store, "a"), None);
        assert_eq!(value(&store, "b"), Some(2));
        check(&store);
        store.clear();
        assert_eq!((store.len(), store.weight()), (0, 0));
        assert_eq!(value(&store, "b"), None);
        check(&store);
    }

    #[test]
    fn stays_within_its_entry_count_and_keeps_the_new_entry() {
        let store = L1Store::new(100, 1 << 30);
        for i in 0..10_000 {
            let key = format!("k{i}");
            store.insert(entry(&store, &key, i, 1));
            assert_eq!(value(&store, &key), Some(i), "the entry just inserted");
        }
        assert!(store.len() <= 100 + store.shards.len(), "{}", store.len());
        assert!(store.len() >= 50, "{}", store.len());
        check(&store);
    }

    #[test]
    fn stays_within_its_byte_bound() {
        let store = L1Store::new(10_000, 1 << 20);
        for i in 0..1_000 {
            store.insert(entry(&store, &format!("k{i}"), i, 16 * 1024));
        }
        assert!(store.weight() <= 1 << 20, "{}", store.weight());
        assert!(store.len() >= 16, "{}", store.len());
        check(&store);
        // Heavier than a shard's part: not stored, and the old entry goes.
        store.insert(entry(&store, "k999", 1, 2 << 20));
        assert_eq!(value(&store, "k999"), None);
        check(&store);
    }

    #[test]
    fn a_referenced_entry_outlives_unreferenced_ones() {
        let store = L1Store::new(64, 1 << 30);
        store.insert(entry(&store, "hot", 0, 1));
        for i in 0..10_000 {
            assert_eq!(value(&store, "hot"), Some(0), "after {i} inserts");
            store.insert(entry(&store, &format!("k{i}"), i, 1));
        }
        check(&store);
    }
}
