//! The two tiers as storage, without coherence: the in-process L1 tier
//! ([`l1`], its map in [`store`]) and Redis reached through the
//! breaker-guarded backend ([`remote`]).

pub(crate) mod l1;
pub(crate) mod remote;
pub(crate) mod store;
