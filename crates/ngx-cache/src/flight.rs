//! Single-flight per key within a process: concurrent misses on one key share
//! one load.
//!
//! A flight is a spawned task wrapped in `futures::future::Shared`, stored
//! type-erased by key. The task, not the callers, drives the loader, so a
//! caller that gives up (cancelled, or answered by a stale value after the
//! soft timeout) does not stop the load, and the others still get its result.

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

#[derive(Debug, Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<String, Slot>>,
    next_id: AtomicU64,
}

/// The outcome of [`Flights::join_or_start`].
pub(crate) enum Joined<T, E> {
    /// A load for the key was already running; wait for it.
    Existing(FlightFuture<T, E>),
    /// This caller started the load.
    Started(FlightFuture<T, E>),
}

impl Flights {
    /// The running flight for `key`, if its result type is `(T, E)`.
    pub(crate) fn get<T, E>(&self, key: &str) -> Option<FlightFuture<T, E>>
    where
        T: Clone + Send + Sync + 'static,
        E: Send + Sync + 'static,
    {
        let map = self.map.lock();
        map.get(key)
            .and_then(|(_, f)| f.downcast_ref::<FlightFuture<T, E>>())
            .cloned()
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.map.lock().contains_key(key)
    }

    /// Joins the flight for `key`, or registers the one `start(id)` builds.
    /// `start` runs under the map's lock: it must only spawn, never block.
    pub(crate) fn join_or_start<T, E>(
        &self,
        key: &str,
        start: impl FnOnce(u64) -> FlightFuture<T, E>,
    ) -> Joined<T, E>
    where
        T: Clone + Send + Sync + 'static,
        E: Send + Sync + 'static,
    {
        let mut map = self.map.lock();
        if let Some(existing) = map
            .get(key)
            .and_then(|(_, f)| f.downcast_ref::<FlightFuture<T, E>>())
        {
            return Joined::Existing(existing.clone());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let flight = start(id);
        map.insert(key.to_owned(), (id, Box::new(flight.clone())));
        Joined::Started(flight)
    }

    /// Removes the flight `id` for `key` (and not a newer one).
    pub(crate) fn finish(&self, key: &str, id: u64) {
        let mut map = self.map.lock();
        if map.get(key).is_some_and(|(current, _)| *current == id) {
            map.remove(key);
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
