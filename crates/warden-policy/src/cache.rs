//! Bounded memo tables of a [`PolicyEngine`](crate::PolicyEngine): what
//! it built or decided for a request, reused for the next request with the
//! same inputs.
//!
//! An engine owns its tables, so a reloaded engine starts with empty ones:
//! nothing decided under old policies or an old schema survives a reload.
//! A key is every input the stored value was computed from (compared in
//! full, never by hash alone), so an input that changed — a registry
//! attribute, a role, the request's time — is a different key, never a
//! stale answer.
//!
//! Bounded: at most `capacity` entries; when full, the oldest insertion is
//! dropped (first in, first out, which for the few hot keys of a gateway
//! is as good as least-recently-used and costs no bookkeeping on a hit).

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};
use std::sync::Mutex;

/// A bounded map from `K` to `V`, looked up by any form `Q` of the key
/// that hashes the same as `K` and compares equal to it.
pub(crate) struct Memo<K, V> {
    inner: Mutex<Table<K, V>>,
    /// Per table, random: a client cannot aim keys at one bucket.
    hasher: RandomState,
    capacity: usize,
}

struct Table<K, V> {
    /// Hash of the key → the key (compared in full on lookup) and value.
    entries: HashMap<u64, (K, V)>,
    /// Hashes in insertion order, for eviction.
    order: VecDeque<u64>,
}

impl<K, V: Clone> Memo<K, V> {
    /// An empty table of at most `capacity` entries (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Memo {
            inner: Mutex::new(Table {
                entries: HashMap::new(),
                order: VecDeque::new(),
            }),
            hasher: RandomState::new(),
            capacity: capacity.max(1),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table<K, V>> {
        // A poisoned lock only means a thread panicked while holding it;
        // every operation leaves the table consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value stored for `key`, if any.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + ?Sized,
        K: PartialEq<Q>,
    {
        let hash = self.hasher.hash_one(key);
        let table = self.table();
        let (stored, value) = table.entries.get(&hash)?;
        (stored == key).then(|| value.clone())
    }

    /// Stores `value` for `key` (replacing what another key of the same
    /// hash stored), dropping the oldest entries beyond the capacity.
    pub(crate) fn insert(&self, key: K, value: V)
    where
        K: Hash,
    {
        let hash = self.hasher.hash_one(&key);
        let mut table = self.table();
        if table.entries.insert(hash, (key, value)).is_none() {
            table.order.push_back(hash);
        }
        while table.entries.len() > self.capacity {
            let Some(oldest) = table.order.pop_front() else {
                break;
            };
            table.entries.remove(&oldest);
        }
    }

    /// Number of entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_first_in_first_out() {
        let memo: Memo<String, u32> = Memo::new(3);
        for (i, k) in ["a", "b", "c", "d"].into_iter().enumerate() {
            memo.insert(k.to_owned(), u32::try_from(i).unwrap());
        }
        assert_eq!(memo.len(), 3);
        assert_eq!(memo.get("a"), None, "the oldest entry went");
        assert_eq!((memo.get("b"), memo.get("d")), (Some(1), Some(3)));
        // Replacing a key keeps one entry for it.
        memo.insert("d".to_owned(), 9);
        assert_eq!((memo.len(), memo.get("d")), (3, Some(9)));
    }
}
