use ngx_cache::invalidate_cache;

#[invalidate_cache(key = "{id}")]
async fn update(id: u32) {
    let _ = id;
}

fn main() {}
