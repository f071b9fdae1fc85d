//! Coherence: what keeps L1 and Redis reads current across instances.
//!
//! [`Coherence`] owns the L1 tier and everything that decides whether a
//! copy may still be served: the invalidation clock, tag versions, pending
//! invalidations and their retry task, and the invalidation channel with its
//! publisher and subscriber tasks. Each task holds the `Arc` of the
//! component it serves and stops when the cache is dropped.
//!
//! Files: `clock`, `message`, `pending` and `tags` are plain state;
//! `state` holds the component and its reads; `invalidate`, `retry` and
//! `pubsub` add the invalidations started here, the retry task and the
//! channel's tasks.

mod clock;
mod invalidate;
mod message;
mod pending;
mod pubsub;
mod retry;
mod state;
mod tags;

pub(crate) use message::{Channel, Invalidation};
pub(crate) use state::{Coherence, L1Lookup, Parts, RedisRead};
