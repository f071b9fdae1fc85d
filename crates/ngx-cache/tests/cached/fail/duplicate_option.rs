use ngx_cache::cached;

#[cached(ttl = 60, key_prefix = "a", ttl = "5m")]
async fn twice(id: u32) -> u32 {
    id
}

fn main() {}
