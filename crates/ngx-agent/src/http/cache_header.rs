//! The `X-Cache` response header in the OpenAPI document.
//!
//! The header itself is set by the metrics middleware from
//! [`crate::cache::status`]; this module declares it on the successful
//! responses of the endpoints that read through the cache.

use utoipa::Modify;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{HeaderBuilder, OpenApi, RefOr};

/// Operations whose successful responses carry `X-Cache`: (method, path).
pub(crate) const CACHED: &[(&str, &str)] = &[
    ("get", "/conversations/{id}"),
    ("post", "/conversations/{id}/messages"),
    ("get", "/customers/{id}"),
    ("post", "/tier-detection"),
    ("post", "/predictions/{model}"),
    ("post", "/programs/recommendations"),
    ("post", "/roi"),
    ("get", "/config/agent"),
    ("get", "/knowledge/{topic}"),
];

const DESCRIPTION: &str = "Where the cached data behind this response came from: \
`HIT-L1` (in-process tier), `HIT-L2` (Redis), `MISS` (loaded from the database or computed) \
or `STALE` (a value past its TTL, served because the database failed or was slow). When a \
request reads several cached values, the weakest wins (`STALE` over `MISS` over `HIT-L2` \
over `HIT-L1`). With the cache disabled (`CACHE_ENABLED=false`) every value is loaded, so it is \
`MISS`.";

/// Adds `X-Cache` to the 2xx responses of [`CACHED`].
#[derive(Debug)]
pub(crate) struct CacheHeader;

impl Modify for CacheHeader {
    fn modify(&self, openapi: &mut OpenApi) {
        let schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["HIT-L1", "HIT-L2", "MISS", "STALE"]))
            .build();
        let header = HeaderBuilder::new()
            .schema(Some(schema))
            .description(Some(DESCRIPTION))
            .build();
        for (method, path) in CACHED {
            let Some(item) = openapi.paths.paths.get_mut(*path) else {
                continue;
            };
            let op = match *method {
                "get" => item.get.as_mut(),
                "post" => item.post.as_mut(),
                _ => None,
            };
            let Some(op) = op else { continue };
            for (status, response) in &mut op.responses.responses {
                if let (true, RefOr::T(r)) = (status.starts_with('2'), response) {
                    r.headers
                        .insert("X-Cache".to_owned(), RefOr::T(header.clone()));
                }
            }
        }
    }
}
