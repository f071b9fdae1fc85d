use ngx_cache::cached;

#[cached(ttl = "5 minutes")]
async fn bad_ttl(id: u32) -> u32 {
    id
}

#[cached(codec = "xml")]
async fn bad_codec(id: u32) -> u32 {
    id
}

#[cached(l1 = "no")]
async fn bad_bool(id: u32) -> u32 {
    id
}

fn main() {}
