//! Single-flight per key within a process: concurrent misses on one key share
//! one load.
//!
//! A flight is a spawned task wrapped in `futures::future::Shared`, stored
//! type-erased by key. The task, not the callers, drives the loader, so a
//! caller that gives up (cancelled, or answered by a stale value after the
//! soft timeout) does not stop the load, and the others still get its result.
//!
//! A caller that missed in Redis may reach the map only after the flight for
//! its key has filled the cache and left the map. Starting a new flight then
//! would run the loader twice for one stampede. So the map counts finished
//! flights (per stripe of keys): a caller notes the count before its Redis
//! read, and if a flight finished since, it is told to read again instead.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::{BoxFuture, Shared};
use parking_lot::Mutex;

use crate::options::LoadError;

/// The shared result of one load.
pub(crate) type FlightFuture<T, E> = Shared<BoxFuture<'static, Result<T, LoadError<E>>>>;

/// A registered flight: its id and its `FlightFuture<T, E>`, type-erased.
type Slot = (u64, Box<dyn Any + Send + Sync>);

/// Stripes of the finished-flight counters.
const STRIPES: usize = 64;

#[derive(Debug)]
struct Map {
    flights: HashMap<String, Slot>,
    /// Flights finished, per stripe of keys.
    finished: [u64; STRIPES],
}

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
    /// The running flight for `key`, if its result type is `(T, E)`, and the
    /// generation to pass to [`join_or_start`](Self::join_or_start).
    pub(crate) fn get<T, E>(&self, key: &str) -> (Option<FlightFuture<T, E>>, u64)
    where
        T: Clone + Send + Sync + 'static,
        E: Send + Sync + 'static,
    {
        let map = self.map.lock();
        let flight = map
            .flights
            .get(key)
            .and_then(|(_, f)| f.downcast_ref::<FlightFuture<T, E>>())
            .cloned();
        (flight, map.finished[stripe(key)])
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.map.lock().flights.contains_key(key)
    }

    /// Joins the flight for `key`, or registers the one `start(id, loader)`
    /// builds. With `seen` (a generation from [`get`](Self::get)), a flight
    /// for the key's stripe that finished since then returns
    /// [`Joined::Finished`] instead of starting another load. `start` runs
    /// under the map's lock: it must only spawn, never block.
    pub(crate) fn join_or_start<T, E, L>(
        &self,
        key: &str,
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
            .and_then(|(_, f)| f.downcast_ref::<FlightFuture<T, E>>())
        {
            return Joined::Existing(existing.clone());
        }
        if seen.is_some_and(|g| g != map.finished[stripe(key)]) {
            return Joined::Finished(loader);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let flight = start(id, loader);
        map.flights
            .insert(key.to_owned(), (id, Box::new(flight.clone())));
        Joined::Started(flight)
    }

    /// Forgets the flight for `key`, so later callers start a new load
    /// instead of joining one that began before an invalidation (and may
    /// return pre-write data). The detached load still answers the callers
    /// that already joined it; its fill is refused by the lease and the
    /// invalidation snapshot.
    pub(crate) fn detach(&self, key: &str) {
        self.map.lock().flights.remove(key);
    }

    /// Forgets every flight (a tag invalidation or clear touches keys the
    /// flights cannot name).
    pub(crate) fn detach_all(&self) {
        self.map.lock().flights.clear();
    }

    /// Removes the flight `id` for `key` (and not a newer one).
    pub(crate) fn finish(&self, key: &str, id: u64) {
        let mut map = self.map.lock();
        if map
            .flights
            .get(key)
            .is_some_and(|(current, _)| *current == id)
        {
            map.flights.remove(key);
            map.finished[stripe(key)] += 1;
        }
    }
}

/// Removes a flight from the map when the load task ends, even by panic.
pub(crate) struct FlightGuard {
    pub(crate) cache: crate::Cache,
    pub(crate) key: String,
    pub(crate) id: u64,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        self.cache.inner.flights.finish(&self.key, self.id);
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
    async fn a_detached_flight_is_not_joined_and_does_not_remove_its_successor() {
        let flights = Flights::default();
        let mut first_id = None;
        let Joined::Started(old) = flights.join_or_start("k", None, (), |id, ()| {
            first_id = Some(id);
            flight(1)
        }) else {
            panic!("the first caller starts the flight");
        };
        flights.detach("k");
        assert!(flights.get::<u32, ()>("k").0.is_none());
        let Joined::Started(new) = flights.join_or_start("k", None, (), |_, ()| flight(2)) else {
            panic!("after detach a new flight starts");
        };
        // The old load ends: it must not unregister the new one.
        flights.finish("k", first_id.unwrap());
        assert!(flights.contains("k"));
        assert_eq!(old.await.unwrap(), 1);
        assert_eq!(new.await.unwrap(), 2);
        flights.detach_all();
        assert!(!flights.contains("k"));
    }
}
