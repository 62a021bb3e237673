//! Dedupe by key over a horizon.
//!
//! "Latest reading" APIs return the same reading on consecutive polls. A
//! pipeline with a key function drops a record whose key was accepted within
//! the horizon. **Invariant:** a key is remembered only once the sink has
//! accepted its record, so a refused batch is offered again, never
//! forgotten as a duplicate of itself.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use time::OffsetDateTime;

/// A record's key, hashed to 128 bits so that keys of any type can be held
/// without keeping the records' own values alive.
pub(crate) type KeyHash = u128;

/// Hashes a key twice with differently seeded SipHash: a collision between
/// two distinct keys needs both 64-bit halves to collide.
pub(crate) fn hash_key<K: Hash>(key: &K) -> KeyHash {
    let mut first = DefaultHasher::new();
    key.hash(&mut first);
    let mut second = DefaultHasher::new();
    0x6d65_6174_686f_6f6b_u64.hash(&mut second);
    key.hash(&mut second);
    (u128::from(first.finish()) << 64) | u128::from(second.finish())
}

/// Keys accepted within the horizon.
#[derive(Debug)]
pub(crate) struct Seen {
    horizon: Duration,
    at: HashMap<KeyHash, OffsetDateTime>,
    order: VecDeque<(OffsetDateTime, KeyHash)>,
}

impl Seen {
    pub(crate) fn new(horizon: Duration) -> Self {
        Self {
            horizon,
            at: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub(crate) fn horizon(&self) -> Duration {
        self.horizon
    }

    pub(crate) fn contains(&self, key: KeyHash) -> bool {
        self.at.contains_key(&key)
    }

    /// Remembers `key` as accepted at `now`.
    pub(crate) fn remember(&mut self, key: KeyHash, now: OffsetDateTime) {
        self.at.insert(key, now);
        self.order.push_back((now, key));
    }

    /// Forgets keys accepted more than the horizon before `now`.
    pub(crate) fn expire(&mut self, now: OffsetDateTime) {
        let horizon = time::Duration::try_from(self.horizon).unwrap_or(time::Duration::MAX);
        while let Some(&(at, key)) = self.order.front() {
            if now - at < horizon {
                break;
            }
            self.order.pop_front();
            // Only forget if not remembered again since.
            if self.at.get(&key) == Some(&at) {
                self.at.remove(&key);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.at.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn keys_expire_after_the_horizon_unless_seen_again() {
        let t0 = datetime!(2026-11-23 10:00 UTC);
        let mut seen = Seen::new(Duration::from_secs(60));
        let (a, b) = (hash_key(&("S109", "10:00")), hash_key(&("S109", "10:01")));
        assert_ne!(a, b);
        seen.remember(a, t0);
        seen.remember(b, t0 + time::Duration::seconds(30));
        seen.expire(t0 + time::Duration::seconds(59));
        assert!(seen.contains(a) && seen.contains(b));
        seen.remember(b, t0 + time::Duration::seconds(80));
        seen.expire(t0 + time::Duration::seconds(100));
        assert!(!seen.contains(a));
        assert!(seen.contains(b), "re-remembered key expired early");
        assert_eq!(seen.len(), 1);
    }
}
