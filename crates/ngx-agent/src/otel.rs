//! OpenTelemetry tracing, off by default: when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! is set, the service's `tracing` spans are exported over OTLP/HTTP
//! (protobuf) to `{endpoint}/v1/traces`.
//!
//! The span tree of a request that misses the cache:
//! ```text
//! request (GET /customers/{id})
//! └── cache.lookup (key_type = cust, source = loader)
//!     └── cache.load
//!         └── db.query (customers.get)
//! ```
//! Spans are batched and sent from a background thread; [`OtelGuard`]
//! flushes what is left when it is dropped.

use std::time::Duration;

use ngx_cache::ConfigError;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// Where and as what to export traces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtelConfig {
    /// Base URL of the OTLP/HTTP receiver (`OTEL_EXPORTER_OTLP_ENDPOINT`),
    /// for example `http://otel-collector:4318`; `None`: export off.
    pub endpoint: Option<String>,
    /// `service.name` of the exported spans (`OTEL_SERVICE_NAME`, default
    /// `ngx-agent`).
    pub service_name: String,
}

impl Default for OtelConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            service_name: "ngx-agent".to_owned(),
        }
    }
}

impl OtelConfig {
    /// Reads `OTEL_EXPORTER_OTLP_ENDPOINT` and `OTEL_SERVICE_NAME` through
    /// `lookup`; export is off when no endpoint is set.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let service_name = get("OTEL_SERVICE_NAME").unwrap_or_else(|| "ngx-agent".to_owned());
        let Some(endpoint) = get("OTEL_EXPORTER_OTLP_ENDPOINT") else {
            return Ok(Self {
                endpoint: None,
                service_name,
            });
        };
        let endpoint = endpoint.trim().trim_end_matches('/').to_owned();
        let rest = endpoint.strip_prefix("http://").ok_or_else(|| {
            ConfigError::invalid(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "expected an http:// URL of an OTLP/HTTP receiver, e.g. http://localhost:4318",
            )
        })?;
        if rest.contains('@') {
            return Err(ConfigError::invalid(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "credentials in the URL are not supported",
            ));
        }
        if rest.is_empty() || rest.contains(char::is_whitespace) {
            return Err(ConfigError::invalid(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "expected host[:port] after http://",
            ));
        }
        Ok(Self {
            endpoint: Some(endpoint),
            service_name,
        })
    }

    /// The URL spans are posted to, when export is on.
    pub fn traces_url(&self) -> Option<String> {
        self.endpoint.as_ref().map(|e| format!("{e}/v1/traces"))
    }
}

/// Flushes and stops the exporter when dropped.
#[derive(Debug)]
pub struct OtelGuard {
    provider: SdkTracerProvider,
}

impl OtelGuard {
    /// Sends every finished span now (blocking; call it off the async
    /// runtime's worker threads, e.g. in `spawn_blocking`).
    pub fn flush(&self) {
        if let Err(e) = self.provider.force_flush() {
            tracing::warn!(error = %e, "flushing traces failed");
        }
    }
}

impl Drop for OtelGuard {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "stopping the trace exporter failed");
        }
    }
}

/// Why the exporter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the OTLP trace exporter: {0}")]
pub struct OtelError(String);

/// A `tracing` layer exporting spans as configured, and the guard that
/// flushes them; `None` when export is off (no endpoint).
#[allow(clippy::type_complexity)]
pub fn layer<S>(
    config: &OtelConfig,
) -> Result<Option<(impl Layer<S> + use<S>, OtelGuard)>, OtelError>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    let Some(url) = config.traces_url() else {
        return Ok(None);
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url)
        .with_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| OtelError(e.to_string()))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(config.service_name.clone())
                .build(),
        )
        .build();
    let tracer = provider.tracer("ngx-agent");
    let layer = tracing_opentelemetry::layer().with_tracer(tracer);
    Ok(Some((layer, OtelGuard { provider })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<OtelConfig, ConfigError> {
        OtelConfig::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn off_unless_an_endpoint_is_set() {
        assert_eq!(read(&[]).unwrap(), OtelConfig::default());
        assert_eq!(
            read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])
                .unwrap()
                .traces_url(),
            None
        );
        let c = read(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            ("OTEL_SERVICE_NAME", "agent-a"),
        ])
        .unwrap();
        assert_eq!(
            c.traces_url().as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        assert_eq!(c.service_name, "agent-a");
    }

    #[test]
    fn a_bad_endpoint_names_the_variable() {
        for bad in [
            "collector:4318",
            "grpc://x",
            "http://",
            "https://collector:4318",
            "http://u:p@c:4318",
        ] {
            let e = read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", bad)]).unwrap_err();
            assert_eq!(e.var, "OTEL_EXPORTER_OTLP_ENDPOINT", "{bad}");
        }
    }
}
