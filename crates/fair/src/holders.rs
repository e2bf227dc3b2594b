//! Who holds something now: a count per key, the key present exactly while one of its holds
//! lives. The ingest workers use it for the tenants whose batches they hold, the embedder for the
//! tenants whose batches it embeds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::Lane;

type Counts<K> = Arc<Mutex<HashMap<K, usize>>>;

/// See the module docs. Cheap to share: holds keep a handle of their own.
#[derive(Debug)]
pub struct Holders<K: Lane> {
    counts: Counts<K>,
}

impl<K: Lane> Default for Holders<K> {
    fn default() -> Self {
        Self {
            counts: Arc::default(),
        }
    }
}

impl<K: Lane> Holders<K> {
    /// The keys held now, locked: what is looked at and held through one guard cannot change
    /// in between.
    pub fn lock(&self) -> HeldKeys<'_, K> {
        HeldKeys {
            // Counter updates only: nothing under this lock can panic half-way.
            counts: self.counts.lock().unwrap_or_else(PoisonError::into_inner),
            handle: &self.counts,
        }
    }

    /// Whether `key` is held now.
    pub fn holds(&self, key: &K) -> bool {
        self.lock().contains(key)
    }

    /// A hold on `key`, counted until it is dropped.
    pub fn hold(&self, key: &K) -> Hold<K> {
        self.lock().hold(key)
    }
}

/// [`Holders`], locked.
pub struct HeldKeys<'a, K: Lane> {
    counts: MutexGuard<'a, HashMap<K, usize>>,
    handle: &'a Counts<K>,
}

impl<K: Lane> HeldKeys<'_, K> {
    pub fn contains(&self, key: &K) -> bool {
        self.counts.contains_key(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.counts.keys()
    }

    /// A hold on `key`, counted until it is dropped (which waits for this guard to go).
    pub fn hold(&mut self, key: &K) -> Hold<K> {
        *self.counts.entry(key.clone()).or_default() += 1;
        Hold {
            counts: Arc::clone(self.handle),
            key: key.clone(),
        }
    }
}

/// One hold on a key; the key is forgotten when its last hold is dropped.
#[derive(Debug)]
pub struct Hold<K: Lane> {
    counts: Counts<K>,
    key: K,
}

impl<K: Lane> Hold<K> {
    pub fn key(&self) -> &K {
        &self.key
    }
}

impl<K: Lane> Drop for Hold<K> {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_held_while_any_of_its_holds_lives() {
        let holders = Holders::<&'static str>::default();
        let first = holders.hold(&"a");
        let second = holders.hold(&"a");
        let other = holders.hold(&"b");
        assert_eq!(first.key(), &"a");
        drop(first);
        assert!(holders.holds(&"a"), "one hold of a is left");
        drop(second);
        assert!(!holders.holds(&"a"), "a is forgotten with its last hold");
        assert_eq!(holders.lock().keys().collect::<Vec<_>>(), vec![&"b"]);
        drop(other);
        assert_eq!(holders.lock().keys().count(), 0, "nothing is left behind");
    }
}
