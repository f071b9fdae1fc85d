use ngx_cache::{Cache, cached};

#[derive(Clone)]
struct Service {
    cache: Cache,
}

impl Service {
    #[cached(cache = self.cache)]
    async fn lookup(&mut self, id: u32) -> u32 {
        id
    }
}

fn main() {}
