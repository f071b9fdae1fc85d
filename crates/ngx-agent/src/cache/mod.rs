//! The typed domain cache over `ngx_cache`: key spaces, TTL settings and
//! [`NgxCacheManager`].

mod keyspace;
mod manager;
mod settings;
pub mod status;

pub use keyspace::{KeySpace, customer_tag};
pub use manager::NgxCacheManager;
pub use settings::DomainCacheSettings;
