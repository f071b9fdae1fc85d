//! The `ngx-agent` binary: the service (`serve`, the default), the load
//! benchmark (`bench`), the container health check (`healthcheck`) and the
//! operator commands (`cache ...`). `ngx-agent --help` lists them all, with
//! every environment variable and its default.

use std::process::ExitCode;

mod cli;

/// mimalloc instead of glibc malloc: the request path allocates a lot of
/// small, short-lived objects, and malloc/free were the largest user-space
/// item in a profile of the cached mix (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    cli::run().await
}
