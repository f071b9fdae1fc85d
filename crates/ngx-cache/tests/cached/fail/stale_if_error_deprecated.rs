#![deny(deprecated)]

use ngx_cache::cached;

// The old name of `fail_safe` still works, with a deprecation warning
// (denied here, so the warning shows as an error).
#[cached(stale_if_error = "1h")]
async fn lookup(id: u32) -> Result<u32, String> {
    Ok(id)
}

#[cached(fail_safe = "1h", stale_if_error = "1h")]
async fn both(id: u32) -> Result<u32, String> {
    Ok(id)
}

fn main() {}
