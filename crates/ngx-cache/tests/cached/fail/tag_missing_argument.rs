use ngx_cache::cached;

#[cached(key_prefix = "user_data", tags = ["user:{id}"])]
async fn profile(user_id: &str) -> String {
    user_id.to_owned()
}

fn main() {}
