//! `#[invalidate_cache]` next to the `#[cached]` function it invalidates.
use ngx_cache::{cached, invalidate_cache};
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
struct UserProfile {
    name: String,
}

#[derive(Clone, Serialize, Deserialize)]
struct ProfileUpdate {
    name: String,
}

#[derive(Debug)]
struct DbError;

#[cached(ttl = 300, key_prefix = "user_data")]
async fn get_user_profile(user_id: &str) -> Result<UserProfile, DbError> {
    Ok(UserProfile { name: user_id.into() })
}

#[invalidate_cache(key_prefix = "user_data", args = [user_id])]
async fn update_user_profile(user_id: &str, data: ProfileUpdate) -> Result<UserProfile, DbError> {
    let _ = user_id;
    Ok(UserProfile { name: data.name })
}

#[invalidate_cache(key_prefix = "user_data", key = "{user_id}", tags = ["user:{user_id}"])]
async fn delete_user(user_id: u64) -> bool {
    user_id > 0
}

#[invalidate_cache(tags = ["all-users"])]
async fn rename_all(suffix: &str) -> Result<usize, DbError> {
    if suffix.is_empty() {
        return Err(DbError);
    }
    let n: usize = "3".parse().map_err(|_| DbError)?;
    Ok(n)
}

struct Service {
    cache: ngx_cache::Cache,
}

impl Service {
    #[invalidate_cache(cache = self.cache, key_prefix = "user_data")]
    async fn touch(&mut self, user_id: &str) {
        let _ = (&mut self.cache, user_id);
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    get_user_profile("ana").await.unwrap();
    let p = update_user_profile("ana", ProfileUpdate { name: "Bea".into() }).await.unwrap();
    assert_eq!(p.name, "Bea");
    assert!(delete_user(1).await);
    assert!(rename_all("").await.is_err());
    assert_eq!(rename_all("x").await.unwrap(), 3);
    let mut s = Service { cache: ngx_cache::Cache::disabled() };
    s.touch("ana").await;
}
