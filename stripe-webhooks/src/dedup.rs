//! Seen event ids, bounded: Stripe redelivers an event for up to three days, mostly within
//! minutes, so the most recent ids are the ones worth remembering.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;

pub(crate) struct SeenEvents(Mutex<LruCache<String, ()>>);

impl SeenEvents {
    pub(crate) fn new(capacity: NonZeroUsize) -> Self {
        Self(Mutex::new(LruCache::new(capacity)))
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .is_some()
    }

    pub(crate) fn insert(&self, id: String) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .put(id, ());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_ids_are_forgotten_first() {
        let seen = SeenEvents::new(NonZeroUsize::new(2).unwrap());
        seen.insert("evt_1".into());
        seen.insert("evt_2".into());
        assert!(seen.contains("evt_1"));
        seen.insert("evt_3".into());
        assert!(seen.contains("evt_1") && seen.contains("evt_3"));
        assert!(!seen.contains("evt_2"));
    }
}
