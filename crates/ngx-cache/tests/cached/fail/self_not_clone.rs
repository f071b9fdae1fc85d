use ngx_cache::{Cache, cached};

struct Service {
    cache: Cache,
}

impl Service {
    #[cached(cache = self.cache)]
    async fn lookup(&self, id: u32) -> u32 {
        id
    }
}

fn main() {}
