use ngx_cache::cached;

#[cached(fail_safe = "1h", unless = |v: &u32| *v == 0)]
async fn count(id: u32) -> Result<u32, String> {
    Ok(id)
}

fn main() {}
