use ngx_cache::cached;

#[derive(Clone)]
struct Opaque;

#[cached(key_prefix = "opaque")]
async fn opaque(id: u32) -> Result<Opaque, String> {
    let _ = id;
    Ok(Opaque)
}

fn main() {}
