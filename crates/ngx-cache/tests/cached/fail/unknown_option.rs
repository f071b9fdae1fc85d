use ngx_cache::cached;

#[cached(tll = 60)]
async fn typo(id: u32) -> u32 {
    id
}

fn main() {}
