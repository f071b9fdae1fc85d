//! TLS against a real `redis-server --tls-port`, with certificates made by
//! the test: server verification with a CA file, mutual TLS with a client
//! certificate, lazy connections whose reconnect task survives the
//! handshake, settings that are refused at start-up naming the variable,
//! and a Redis Cluster whose nodes are reached with the same TLS files.

mod support;

use std::time::{Duration, Instant};

use ngx_cache::{Cache, CacheConfig};
use support::tls::{Certs, TlsCluster, TlsServer};

fn tls_config(server: &TlsServer) -> ngx_cache::CacheConfigBuilder {
    CacheConfig::builder()
        .url(server.url())
        .namespace("t")
        .pool_size(2)
        .connect_timeout(Duration::from_secs(2))
}

async fn round_trip(cache: &Cache) {
    cache.try_set("k", &"over tls", None).await.unwrap();
    assert_eq!(
        cache.try_get::<String>("k").await.unwrap().as_deref(),
        Some("over tls")
    );
    let health = cache.health_check().await;
    assert!(health.healthy, "{health:?}");
}

#[tokio::test]
async fn rediss_works_with_a_ca_file() {
    let certs = Certs::generate();
    let server = TlsServer::start(&certs, false);
    let config = tls_config(&server).tls_ca_file(certs.ca()).build().unwrap();
    let cache = Cache::connect(config.clone()).await.unwrap();
    round_trip(&cache).await;
    // The invalidation channel runs over TLS too: a delete on another
    // instance reaches this one's L1.
    let other = Cache::connect(config).await.unwrap();
    assert_eq!(cache.get::<String>("k").await.as_deref(), Some("over tls"));
    assert!(other.delete("k").await);
    let deadline = Instant::now() + Duration::from_secs(5);
    while cache.get::<String>("k").await.is_some() {
        assert!(Instant::now() < deadline, "the invalidation never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_server_certificate_is_verified() {
    let certs = Certs::generate();
    let server = TlsServer::start(&certs, false);
    // Neither the system roots nor an unrelated CA trust the test CA.
    for config in [
        tls_config(&server).build().unwrap(),
        tls_config(&server)
            .tls_ca_file(certs.other_ca())
            .build()
            .unwrap(),
    ] {
        let err = Cache::connect(config).await.unwrap_err();
        let text = err.to_string().to_lowercase();
        assert!(
            text.contains("certificate") || text.contains("unknown"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn mutual_tls_needs_the_client_certificate() {
    let certs = Certs::generate();
    let server = TlsServer::start(&certs, true);
    let without = tls_config(&server).tls_ca_file(certs.ca()).build().unwrap();
    // The server refuses the handshake: at connect, or (TLS 1.3 reports a
    // refused client after the client's side of the handshake) at the
    // first command.
    if let Ok(cache) = Cache::connect(without).await {
        assert!(cache.try_set("k", &1, None).await.is_err());
    }
    let with = tls_config(&server)
        .tls_ca_file(certs.ca())
        .tls_cert_file(certs.client_cert())
        .tls_key_file(certs.client_key())
        .build()
        .unwrap();
    let cache = Cache::connect(with).await.unwrap();
    round_trip(&cache).await;
}

/// A lazy cache connects in background tasks; the TLS handshake happens
/// there, and a failed attempt must not end the task.
#[tokio::test]
async fn lazy_connections_come_up_over_tls() {
    let certs = Certs::generate();
    let server = TlsServer::start(&certs, true);
    let config = tls_config(&server)
        .tls_ca_file(certs.ca())
        .tls_cert_file(certs.client_cert())
        .tls_key_file(certs.client_key())
        .build()
        .unwrap();
    let cache = Cache::connect_lazy(config).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while cache.try_set("k", &1, None).await.is_err() {
        assert!(Instant::now() < deadline, "the lazy cache never connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    round_trip(&cache).await;
    assert!(cache.stats().connected);
}

#[test]
fn tls_settings_are_checked_at_start_up() {
    let certs = Certs::generate();
    let lookup = |pairs: Vec<(&'static str, String)>| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        }
    };
    let tls_url = ("REDIS_URL", "rediss://127.0.0.1:6380".to_owned());
    let ca = ("REDIS_TLS_CA_FILE", certs.ca().display().to_string());
    let cert = (
        "REDIS_TLS_CERT_FILE",
        certs.client_cert().display().to_string(),
    );
    let key = (
        "REDIS_TLS_KEY_FILE",
        certs.client_key().display().to_string(),
    );

    let c = CacheConfig::from_lookup(lookup(vec![
        tls_url.clone(),
        ca.clone(),
        cert.clone(),
        key.clone(),
    ]))
    .unwrap();
    assert_eq!(c.tls_ca_file.as_deref(), Some(certs.ca().as_path()));
    assert_eq!(
        c.tls_key_file.as_deref(),
        Some(certs.client_key().as_path())
    );

    // Files must exist.
    let missing = certs.path("missing.pem").display().to_string();
    for var in [
        "REDIS_TLS_CA_FILE",
        "REDIS_TLS_CERT_FILE",
        "REDIS_TLS_KEY_FILE",
    ] {
        let err = CacheConfig::from_lookup(lookup(vec![tls_url.clone(), (var, missing.clone())]))
            .unwrap_err();
        assert_eq!(err.var, var, "{err}");
    }
    // TLS files need a rediss:// URL.
    let err = CacheConfig::from_lookup(lookup(vec![ca.clone()])).unwrap_err();
    assert_eq!(err.var, "REDIS_TLS_CA_FILE", "{err}");
    // Certificate verification cannot be turned off.
    let err = CacheConfig::from_lookup(lookup(vec![(
        "REDIS_URL",
        "rediss://127.0.0.1:6380/#insecure".to_owned(),
    )]))
    .unwrap_err();
    assert_eq!(err.var, "REDIS_URL", "{err}");
    assert!(err.to_string().contains("REDIS_TLS_CA_FILE"), "{err}");
}

#[tokio::test]
async fn unusable_tls_files_name_the_variable() {
    let certs = Certs::generate();
    let server = TlsServer::start(&certs, false);
    let not_pem = certs.path("server.ext");
    for (config, var) in [
        (
            tls_config(&server).tls_ca_file(not_pem.clone()),
            "REDIS_TLS_CA_FILE",
        ),
        // A certificate needs its key and the other way round.
        (
            tls_config(&server).tls_cert_file(certs.client_cert()),
            "REDIS_TLS_KEY_FILE",
        ),
        (
            tls_config(&server).tls_key_file(certs.client_key()),
            "REDIS_TLS_CERT_FILE",
        ),
        (
            tls_config(&server)
                .tls_cert_file(not_pem)
                .tls_key_file(certs.client_key()),
            "REDIS_TLS_CERT_FILE",
        ),
    ] {
        for lazy in [false, true] {
            let config = config.clone().build().unwrap();
            let err = if lazy {
                Cache::connect_lazy(config).await.unwrap_err()
            } else {
                Cache::connect(config).await.unwrap_err()
            };
            assert!(err.to_string().contains(var), "{var}: {err}");
        }
    }
}

/// A cache on `cluster`, over TLS with the test CA and, with `client_cert`,
/// the client certificate.
fn cluster_config(certs: &Certs, cluster: &TlsCluster, client_cert: bool) -> CacheConfig {
    let builder = CacheConfig::builder()
        .url(cluster.urls())
        .cluster(true)
        .namespace("t")
        .connect_timeout(Duration::from_secs(2))
        .tls_ca_file(certs.ca());
    let builder = if client_cert {
        builder
            .tls_cert_file(certs.client_cert())
            .tls_key_file(certs.client_key())
    } else {
        builder
    };
    builder.build().unwrap()
}

#[tokio::test]
async fn a_cluster_is_reached_with_the_tls_files() {
    let certs = Certs::generate();
    let cluster = TlsCluster::start(&certs);
    let config = cluster_config(&certs, &cluster, true);
    let cache = Cache::connect(config.clone()).await.unwrap();
    let keys: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
    let items: Vec<(String, String)> = keys.iter().map(|k| (k.clone(), k.clone())).collect();
    cache.try_set_many(&items, None).await.unwrap();
    let read: Vec<Option<String>> = cache.try_get_many(&keys).await.unwrap();
    assert_eq!(read, keys.iter().cloned().map(Some).collect::<Vec<_>>());
    // The keys are spread over the three primaries, each reached over TLS.
    for node in &cluster.nodes {
        let size: u64 = redis::cmd("DBSIZE").query(&mut node.server.conn()).unwrap();
        assert!(size > 0, "a primary holds none of the 30 keys");
    }
    let health = cache.health_check().await;
    assert!(health.healthy, "{health:?}");

    // The invalidation channel is a TLS connection to one node: a delete
    // on another instance reaches this one's L1.
    let other = Cache::connect(config).await.unwrap();
    assert_eq!(cache.get::<String>("k1").await.as_deref(), Some("k1"));
    assert!(other.delete("k1").await);
    let deadline = Instant::now() + Duration::from_secs(5);
    while cache.stats().invalidations_received == 0 {
        assert!(Instant::now() < deadline, "the invalidation never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cache.get::<String>("k1").await, None);
}

#[tokio::test]
async fn a_cluster_node_is_verified_and_asks_for_the_client_certificate() {
    let certs = Certs::generate();
    let cluster = TlsCluster::start(&certs);
    // The system roots do not trust the test CA.
    let mut config = cluster_config(&certs, &cluster, true);
    config.tls_ca_file = None;
    assert!(Cache::connect(config).await.is_err());
    // The nodes refuse a client without a certificate.
    let config = cluster_config(&certs, &cluster, false);
    assert!(Cache::connect(config).await.is_err());
    // Unusable files name their variable, as for one server.
    let mut config = cluster_config(&certs, &cluster, true);
    config.tls_key_file = None;
    let err = Cache::connect(config).await.unwrap_err();
    assert!(err.to_string().contains("REDIS_TLS_KEY_FILE"), "{err}");
}
