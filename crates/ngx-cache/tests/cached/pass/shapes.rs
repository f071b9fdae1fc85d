//! Every supported return shape and argument kind compiles, and with no
//! cache installed the functions run uncached and return their values.
use std::fmt;

use ngx_cache::cached;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
struct Profile {
    name: String,
}

#[derive(Debug)]
struct DbError;

#[derive(Clone, Serialize)]
struct Query {
    page: u32,
}

/// Display-only arguments go into keys through `to_string()`.
#[derive(Clone)]
struct Slug(&'static str);

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[cached(ttl = 300, key_prefix = "user_data")]
async fn get_user_profile(user_id: &str) -> Result<Profile, DbError> {
    Ok(Profile { name: user_id.to_owned() })
}

#[cached(key_prefix = "plain", ttl = "5m")]
async fn plain(n: u64, q: Query, bytes: &[u8], slug: Slug) -> u64 {
    n + u64::from(q.page) + bytes.len() as u64 + slug.to_string().len() as u64
}

#[cached(key_prefix = "opt", cache_none = true, l1 = false, codec = "msgpack")]
async fn optional(id: String) -> Option<String> {
    (!id.is_empty()).then_some(id)
}

#[cached(key = "{id}:{slug}", tags = ["item:{id}", "all"], fail_safe = "1h")]
async fn io_result(id: u32, slug: Slug) -> std::io::Result<Vec<u8>> {
    Ok(format!("{id}{slug}").into_bytes())
}

#[cached(condition = n > 0, unless = |v: &u32| *v == 0)]
async fn guarded(mut n: u32) -> u32 {
    n -= 1;
    n
}

#[cached]
async fn no_arguments() -> Result<String, DbError> {
    Ok("config".into())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(get_user_profile("ana").await.unwrap().name, "ana");
    assert_eq!(plain(1, Query { page: 2 }, b"abc", Slug("xy")).await, 8);
    assert_eq!(optional(String::new()).await, None);
    assert_eq!(io_result(1, Slug("a")).await.unwrap(), b"1a");
    assert_eq!(guarded(3).await, 2);
    assert_eq!(no_arguments().await.unwrap(), "config");
    // The companions exist with the expected signatures.
    assert_eq!(get_user_profile_uncached("bo").await.unwrap().name, "bo");
    assert!(!get_user_profile_invalidate("ana").await);
    assert!(!io_result_invalidate(1, Slug("a")).await);
    assert!(!no_arguments_invalidate().await);
}
