use ngx_cache::invalidate_cache;

#[invalidate_cache(key_prefix = "user_data")]
fn update(user_id: &str) {
    let _ = user_id;
}

fn main() {}
