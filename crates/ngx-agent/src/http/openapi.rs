//! The OpenAPI 3 document served at `/openapi.json` and browsed at `/docs`
//! (Swagger UI, vendored: no CDN, works offline).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::cache_header::CacheHeader;
use super::{admin, compute, content, conversation, customer, health, metrics, status};

/// The API description, generated from the handlers' annotations.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "NGX Voice Sales Agent",
        description = "Conversations, customers, tier detection, predictions, programs and ROI, \
                       served cache-aside through ngx-cache (L1 + Redis). Errors are \
                       `{\"error\": code, \"detail\": message}`."
    ),
    paths(
        conversation::create, conversation::get, conversation::append,
        customer::get, customer::get_many, customer::update,
        compute::detect_tier, compute::predict, compute::recommend, compute::roi,
        content::agent_config, content::knowledge,
        health::live, health::ready,
        admin::stats, admin::invalidate, admin::warm,
        metrics::metrics,
        status::page, status::snapshot,
    ),
    components(schemas(super::ErrorBody)),
    modifiers(&AdminToken, &CacheHeader),
    tags(
        (name = "conversations", description = "Conversation state"),
        (name = "customers", description = "Customer profiles"),
        (name = "sales", description = "Tier detection, predictions, recommendations, ROI"),
        (name = "content", description = "Agent configuration and knowledge base"),
        (name = "cache", description = "Statistics and admin operations"),
        (name = "operations", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

impl ApiDoc {
    /// The document served at `/openapi.json`: the generated description
    /// plus the contract the handlers enforce (input constraints, every
    /// error status, links; see `contract`).
    pub fn document() -> serde_json::Value {
        let mut doc = serde_json::to_value(Self::openapi()).expect("the document serializes");
        super::contract::apply(&mut doc);
        doc
    }
}

/// Adds the `admin_token` bearer scheme used by the admin endpoints.
#[derive(Debug)]
struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
