//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod hybrid;
pub mod proxy;
pub mod server;
pub mod util;
