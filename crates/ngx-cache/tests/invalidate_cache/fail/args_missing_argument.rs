use ngx_cache::invalidate_cache;

#[invalidate_cache(key_prefix = "user_data", args = [user])]
async fn update(user_id: &str, name: String) {
    let _ = (user_id, name);
}

fn main() {}
