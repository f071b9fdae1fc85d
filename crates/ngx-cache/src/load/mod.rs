//! Loading: `get_or_load` over both tiers, with single-flight per key in
//! this process (`flight`), a lease in Redis across instances and a checked
//! fill that refuses stale sets (`lease`), fail-safe, soft and hard
//! timeouts, and eager refresh (`loader`); many keys at once (`batch`).

mod batch;
mod flight;
mod lease;
mod loader;

pub(crate) use loader::Loader;
