//! Single-flight per key within a process: concurrent misses on one key share
//! one load.
//!
//! A flight is a spawned task wrapped in `futures::future::Shared`, stored
//! type-erased by key. The task, not the callers, drives the loader, so a
//! caller that gives up (cancelled, or answered by a stale value after the
//! soft timeout) does not stop the load, and the others still get its result.
//!
//! A flight records the invalidation clock reading of its key when it
//! starts, and a caller joins it only while the reading is the same: a
//! caller that starts after the key was invalidated never joins a load that
//! began before, so a read after a write sees the write. The older load
//! still answers the callers that already joined it; its fill is refused by
//! the lease and the clock.
//!
//! A caller that missed in Redis may reach the map only after the flight for
//! its key has filled the cache and left the map. Starting a new flight then
//! would run the loader twice for one stampede. So the map counts finished
//! flights (per stripe of keys): a caller notes the count before its Redis
//! read, and if a flight finished since, it is told to read again instead.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::{BoxFuture, Shared};
use parking_lot::Mutex;

use crate::options::LoadError;

/// The shared result of one load.
pub(crate) type FlightFuture<T, E> = Shared<BoxFuture<'static, Result<T, LoadError<E>>>>;

/// A registered flight: its id, the clock reading of its key when it
/// started, and its `FlightFuture<T, E>`, type-erased.
#[derive(Debug)]
struct Slot {
    id: u64,
    reading: u64,
    flight: Box<dyn Any + Send + Sync>,
}

impl Slot {
    /// The flight, if it started at `reading` and its result type is `(T, E)`.
    fn joinable<T, E>(&self, reading: u64) -> Option<&FlightFuture<T, E>>
    where
        T: Clone + Send + Sync + 'static,
        E: Send + Sync + 'static,
    {
        (self.reading == reading)
            .then(|| self.flight.downcast_ref::<FlightFuture<T, E>>())
            .flatten()
    }
}

/// Stripes of the finished-flight counters.
const STRIPES: usize = 64;

#[derive(Debug)]
struct Map {
    flights: HashMap<String, Slot>,
    /// Flights finished, per stripe of keys.
    finished: [u64; STRIPES],
}

/// The loads in flight in this process, by key.
#[derive(Debug)]
pub(crate) struct Flights {
    map: Mutex<Map>,
    next_id: AtomicU64,
}

impl Default for Flights {
    fn default() -> Self {
        Self {
            map: Mutex::new(Map {
                flights: HashMap::new(),
                finished: [0; STRIPES],
            }),
            next_id: AtomicU64::new(0),
        }
    }
}

fn stripe(key: &str) -> usize {
    (xxhash_rust::xxh3::xxh3_64(key.as_bytes()) % STRIPES as u64) as usize
}

/// The outcome of [`Flights::join_or_start`].
pub(crate) enum Joined<T, E, L> {
    /// A load for the key was already running; wait for it.
    Existing(FlightFuture<T, E>),
    /// This caller started the load.
    Started(FlightFuture<T, E>),
    /// A flight for the key (or its stripe) finished since the caller's
    /// generation: read the cache again. The loader is handed back.
    Finished(L),
}

impl Flights {
    /// The running flight for `key` that started at clock `reading`, if its
    /// result type is `(T, E)`, and the generation to pass to
    /// [`join_or_start`](Self::join_or_start).
    pub(crate) fn get<T, E>(&self, key: &str, reading: u64) -> (Option<FlightFuture<T, E>>, u64)
    where
        T: Clone + Send + Sync + 'static,
        E: Send + Sync + 'static,
    {
        let map = self.map.lock();
        let flight = map
            .flights
            .get(key)
            .and_then(|slot| slot.joinable::<T, E>(reading))
            .cloned();
        (flight, map.finished[stripe(key)])
    }

    /// Whether a load for `key` that started at clock `reading` runs.
    pub(crate) fn contains(&self, key: &str, reading: u64) -> bool {
        self.map
            .lock()
            .flights
            .get(key)
            .is_some_and(|slot| slot.reading == reading)
    }

    /// Joins the flight for `key` that started at clock `reading`, or
    /// registers the one `start(id, loader)` builds (replacing one that
    /// started before an invalidation). With `seen` (a generation from
    /// [`get`](Self::get)), a flight for the key's stripe that finished since
    /// then returns [`Joined::Finished`] instead of starting another load.
    /// `start` runs under the map's lock: it must only spawn, never block.
    pub(crate) fn join_or_start<T, E, L>(
        &self,
        key: &str,
        reading: u64,
        seen: Option<u64>,
        loader: L,
        start: impl FnOnce(u64, L) -> FlightFuture<T, E>,
    ) -> Joined<T, E, L>
    where
        T: Clone + Send + Sync + 'static,
        E: Send + Sync + 'static,
    {
        let mut map = self.map.lock();
        if let Some(existing) = map
            .flights
            .get(key)
            .and_then(|slot| slot.joinable::<T, E>(reading))
        {
            return Joined::Existing(existing.clone());
        }
        if seen.is_some_and(|g| g != map.finished[stripe(key)]) {
            return Joined::Finished(loader);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let flight = start(id, loader);
        map.flights.insert(
            key.to_owned(),
            Slot {
                id,
                reading,
                flight: Box::new(flight.clone()),
            },
        );
        Joined::Started(flight)
    }

    /// Removes the flight `id` for `key` (and not a newer one).
    pub(crate) fn finish(&self, key: &str, id: u64) {
        let mut map = self.map.lock();
        if map.flights.get(key).is_some_and(|slot| slot.id == id) {
            map.flights.remove(key);
            map.finished[stripe(key)] += 1;
        }
    }
}

/// Removes a flight from the map when the load task ends, even by panic.
#[derive(Debug)]
pub(crate) struct FlightGuard {
    pub(crate) flights: Arc<Flights>,
    pub(crate) key: String,
    pub(crate) id: u64,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        self.flights.finish(&self.key, self.id);
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    fn flight(v: u32) -> FlightFuture<u32, ()> {
        futures::future::ready(Ok(v)).boxed().shared()
    }

    #[tokio::test]
    async fn a_flight_from_before_an_invalidation_is_not_joined_and_does_not_remove_its_successor()
    {
        let flights = Flights::default();
        let mut first_id = None;
        let Joined::Started(old) = flights.join_or_start("k", 0, None, (), |id, ()| {
            first_id = Some(id);
            flight(1)
        }) else {
            panic!("the first caller starts the flight");
        };
        assert!(flights.get::<u32, ()>("k", 0).0.is_some());
        // The key was invalidated: the clock reading moved from 0 to 1.
        assert!(flights.get::<u32, ()>("k", 1).0.is_none());
        let Joined::Started(new) = flights.join_or_start("k", 1, None, (), |_, ()| flight(2))
        else {
            panic!("after an invalidation a new flight starts");
        };
        // The old load ends: it must not unregister the new one.
        flights.finish("k", first_id.unwrap());
        assert!(flights.contains("k", 1));
        assert_eq!(old.await.unwrap(), 1);
        assert_eq!(new.await.unwrap(), 2);
        // Another invalidation: the running flight is no longer joinable.
        assert!(!flights.contains("k", 2));
    }
}
