//! The two tiers as storage, without coherence: the in-process L1 store
//! ([`l1`]) and Redis reached through the breaker-guarded backend
//! ([`remote`]).

pub(crate) mod l1;
pub(crate) mod remote;
