use ngx_cache::cached;

#[cached(ttl = 60)]
fn not_async(id: u32) -> u32 {
    id
}

fn main() {}
