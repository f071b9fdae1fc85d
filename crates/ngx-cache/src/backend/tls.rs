//! The redis-rs client for a URL and the TLS settings: the process-wide
//! rustls crypto provider (ring), a CA file that replaces the system roots,
//! and an optional client certificate (mutual TLS).
//!
//! redis-rs enables rustls without a crypto provider, and rustls panics at
//! the first `rediss://` handshake when none was installed ("Could not
//! automatically determine the process-level CryptoProvider"). Every client
//! is built here, after the provider is installed.

use std::sync::Once;

use super::Tls;
use crate::error::{ConfigError, Error};

/// Installs ring as the process's rustls provider, unless the application
/// installed one already.
pub(super) fn install_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An error means another provider is installed: that one is used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Reads a PEM file named by `var`, checking that it holds PEM blocks.
fn pem(var: &'static str, path: &std::path::Path) -> Result<Vec<u8>, Error> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::Config(ConfigError::new(
            var,
            format!("cannot read {}: {e}", path.display()),
        ))
    })?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(Error::Config(ConfigError::new(
            var,
            format!("{} holds no PEM block", path.display()),
        )));
    }
    Ok(bytes)
}

/// The certificates of `tls` read from their files, for a client that
/// verifies its server against them (and shows a client certificate, with
/// mutual TLS); `None` when no TLS file is set (the system roots verify).
pub(super) fn certificates(tls: &Tls) -> Result<Option<redis::TlsCertificates>, Error> {
    if tls.is_empty() {
        return Ok(None);
    }
    let root_cert = match &tls.ca_file {
        Some(path) => Some(pem("REDIS_TLS_CA_FILE", path)?),
        None => None,
    };
    let client_tls = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: pem("REDIS_TLS_CERT_FILE", cert)?,
            client_key: pem("REDIS_TLS_KEY_FILE", key)?,
        }),
        (Some(_), None) => {
            return Err(Error::Config(ConfigError::new(
                "REDIS_TLS_KEY_FILE",
                "must be set with REDIS_TLS_CERT_FILE (a client certificate needs its key)",
            )));
        }
        (None, Some(_)) => {
            return Err(Error::Config(ConfigError::new(
                "REDIS_TLS_CERT_FILE",
                "must be set with REDIS_TLS_KEY_FILE (a key needs its certificate)",
            )));
        }
        (None, None) => None,
    };
    Ok(Some(redis::TlsCertificates {
        client_tls,
        root_cert,
    }))
}

/// A redis-rs error building a client with the certificates of `tls`, as
/// the configuration error of the variable it is about (the URL's when it
/// names none); `secret` is removed from the message.
pub(super) fn certificate_error(e: &redis::RedisError, tls: &Tls, secret: Option<&str>) -> Error {
    let text = e.to_string();
    let var = if tls.ca_file.is_some() && text.contains("root") {
        "REDIS_TLS_CA_FILE"
    } else if tls.cert_file.is_some() && text.contains("client") {
        "REDIS_TLS_CERT_FILE"
    } else if tls.key_file.is_some() && text.contains("key") {
        "REDIS_TLS_KEY_FILE"
    } else {
        "REDIS_URL"
    };
    Error::Config(ConfigError::new(var, crate::redact::scrub(&text, secret)))
}

/// The client for `url` with the TLS settings; `secret` is removed from
/// error messages.
pub(super) fn client(url: &str, tls: &Tls, secret: Option<&str>) -> Result<redis::Client, Error> {
    install_provider();
    let bad_url = |e: redis::RedisError| {
        Error::Config(ConfigError::new(
            "REDIS_URL",
            crate::redact::scrub(&e.to_string(), secret),
        ))
    };
    // No `CLIENT SETINFO` on connect: one command less for an ACL user to
    // be granted (and Redis 7.0 has no such subcommand to grant).
    let info = redis::IntoConnectionInfo::into_connection_info(url).map_err(bad_url)?;
    let settings = info.redis_settings().clone().set_skip_set_lib_name();
    let info = info.set_redis_settings(settings);
    match certificates(tls)? {
        None => redis::Client::open(info).map_err(bad_url),
        Some(certs) => redis::Client::build_with_tls(info, certs)
            .map_err(|e| certificate_error(&e, tls, secret)),
    }
}
