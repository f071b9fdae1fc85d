//! The [`Cache`] handle and its public operations. Only this folder names
//! `Cache` and its shared `Inner`; every operation delegates to the
//! components below (`load`, `coherence`, `tier`).
//!
//! Files: `handle` (construction and the components), `ops` (single keys),
//! `batch` (several keys), `admin` (tags and clears), `load`
//! (`get_or_load`), `warm`, `report` (statistics and health), `global`
//! (the process-wide cache of the macros), `private` (support code the
//! macros' generated code calls, exported hidden as `__private`), `finder`
//! (non-finite floats in key arguments), `fuzz` (the decoders' fuzz entry
//! points, exported hidden as `__fuzz`).

mod admin;
mod batch;
mod finder;
#[doc(hidden)]
pub mod fuzz;
mod global;
mod handle;
mod load;
mod ops;
#[doc(hidden)]
pub mod private;
mod report;
mod warm;

pub use global::{global, install_global};
pub use handle::Cache;
pub use warm::{WarmEntry, WarmReport};
