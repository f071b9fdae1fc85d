//! The README's caching decorators: `cargo run -p ngx-cache --example
//! decorators` (with a Redis at `REDIS_URL`). `tests/readme.rs` checks that
//! the README shows this code as it is here.

use ngx_cache::{cached, invalidate_cache};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct UserProfile {
    name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ProfileUpdate {
    name: String,
}

#[derive(Debug)]
struct DbError;

/// Stands in for a database read.
async fn db_get_user(user_id: &str) -> Result<UserProfile, DbError> {
    println!("database read of user {user_id}");
    Ok(UserProfile { name: "Ana".into() })
}

/// Stands in for a database write.
async fn db_update_user(_user_id: &str, data: ProfileUpdate) -> Result<UserProfile, DbError> {
    Ok(UserProfile { name: data.name })
}

#[cached(ttl = 300, key_prefix = "user_data")]
async fn get_user_profile(user_id: &str) -> Result<UserProfile, DbError> {
    db_get_user(user_id).await
}

#[invalidate_cache(key_prefix = "user_data", args = [user_id])]
async fn update_user_profile(user_id: &str, data: ProfileUpdate) -> Result<UserProfile, DbError> {
    db_update_user(user_id, data).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Once, at start: the cache the decorated functions use.
    let cache = ngx_cache::Cache::connect(ngx_cache::CacheConfig::from_env()?).await?;
    ngx_cache::install_global(cache);

    get_user_profile("42").await.map_err(|e| format!("{e:?}"))?; // reads the database
    get_user_profile("42").await.map_err(|e| format!("{e:?}"))?; // served from the cache
    let update = ProfileUpdate { name: "Bea".into() };
    update_user_profile("42", update)
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(())
}
