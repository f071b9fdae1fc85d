//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod cluster;
pub mod hybrid;
pub mod proxy;
pub mod server;
pub mod target;
pub mod tls;
pub mod util;
