//! The NGX Voice Sales Agent application: domain models, system of record and
//! the computations that the cache layer puts in front of.
//!
//! This crate is the application side of `ngx-cache`. The data layer below is
//! deliberately cache-agnostic: the cache manager and the cache-aside services
//! wrap it without it knowing.
//!
//! # Layout
//! - [`domain`]: validated, serde-ready models (conversations, customers,
//!   predictions, tiers, programs, ROI, agent configuration, knowledge base).
//! - [`db`]: the system of record over sqlx `Any` (SQLite by default,
//!   PostgreSQL on `postgres://` URLs): migrations, repositories, the query
//!   counter and the deterministic seed loader.
//! - [`cache`]: the typed domain cache, [`cache::NgxCacheManager`], key spaces and TTLs.
//! - [`service`]: cache-aside services over the database ([`service::Services`]).
//! - [`compute`]: pure computations (tier detection, logistic predictions,
//!   program recommendation, ROI) and the stable hash used in cache keys.
//! - [`config`]: [`config::AppConfig`], the service's settings from the environment.
//! - [`http`]: the axum API ([`http::app`]), its state, errors, OpenAPI and metrics.
//!
//! The binary adds the command line (`src/cli/`, not part of this library)
//! and the load tool behind `ngx-agent bench` (the `ngx-bench` crate).

pub mod cache;
pub mod compute;
pub mod config;
pub mod db;
pub mod domain;
pub mod http;
pub mod service;
