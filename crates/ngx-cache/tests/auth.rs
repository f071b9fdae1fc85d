//! Connection failures: a wrong password, a refused port and a server that
//! accepts TCP but never answers all fail within the connect timeout, and the
//! password never shows up in errors, `Debug` output or health reports.

mod support;

use std::time::Duration;

use ngx_cache::{Cache, CacheConfig};
use support::server::{RedisServer, free_port};
use support::util::timed;

const PASSWORD: &str = "correct-horse-battery";
const WRONG: &str = "wrong-staple-4711";
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// Slack over the connect timeout for a loaded machine.
const SLACK: Duration = Duration::from_millis(400);

fn config_for(url: String) -> CacheConfig {
    CacheConfig::builder()
        .url(url)
        .namespace("t")
        .pool_size(2)
        .connect_timeout(CONNECT_TIMEOUT)
        .op_timeout(Duration::from_millis(100))
        .build()
        .unwrap()
}

/// Asserts that `secret` appears nowhere in the `Display` and `Debug` forms.
fn assert_hidden(what: &str, value: &(impl std::fmt::Display + std::fmt::Debug), secret: &str) {
    let shown = format!("{value} / {value:?}");
    assert!(
        !shown.contains(secret),
        "{what} leaks the password: {shown}"
    );
}

#[tokio::test]
async fn wrong_password_fails_fast_without_leaking_it() {
    let server = RedisServer::with_password(PASSWORD);
    let url = format!("redis://:{WRONG}@127.0.0.1:{}", server.port());
    let config = config_for(url.clone());
    assert!(!format!("{config:?}").contains(WRONG), "{config:?}");

    let (res, took) = timed(Cache::connect(config)).await;
    let err = res.unwrap_err();
    assert!(took < CONNECT_TIMEOUT + SLACK, "took {took:?}");
    assert_hidden("auth error", &err, WRONG);
    assert!(!err.to_string().is_empty());

    // Same with a user name in the URL.
    let url = format!("redis://default:{WRONG}@127.0.0.1:{}", server.port());
    let err = Cache::connect(config_for(url)).await.unwrap_err();
    assert_hidden("auth error (user)", &err, WRONG);

    // Lazily: operations fail (or miss) and nothing leaks either.
    let cache = Cache::connect_lazy(config_for(format!(
        "redis://:{WRONG}@127.0.0.1:{}",
        server.port()
    )))
    .await
    .unwrap();
    let (res, took) = timed(cache.try_get::<String>("k")).await;
    assert!(took < CONNECT_TIMEOUT + SLACK, "took {took:?}");
    assert_hidden("lazy get error", &res.unwrap_err(), WRONG);
    let health = cache.health_check().await;
    assert!(!health.healthy);
    let report = format!("{health:?} {}", serde_json::to_string(&health).unwrap());
    assert!(!report.contains(WRONG), "{report}");
    assert!(!format!("{cache:?}").contains(WRONG));
}

#[tokio::test]
async fn right_password_works_and_stays_hidden() {
    let server = RedisServer::with_password(PASSWORD);
    let cache = Cache::connect(config_for(server.url())).await.unwrap();
    cache.set("k", &1, None).await.unwrap();
    assert_eq!(cache.get::<i32>("k").await, Some(1));
    let health = cache.health_check().await;
    assert!(health.healthy, "{health:?}");
    let shown = format!(
        "{health:?} {} {:?} {:?} {}",
        serde_json::to_string(&health).unwrap(),
        cache.config(),
        cache,
        cache.config().redacted_url(),
    );
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(shown.contains("***"), "the URL is shown redacted: {shown}");
}

#[tokio::test]
async fn refused_port_fails_fast_without_leaking_the_password() {
    let url = format!("redis://:{WRONG}@127.0.0.1:{}", free_port());
    let (res, took) = timed(Cache::connect(config_for(url))).await;
    let err = res.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(took < CONNECT_TIMEOUT + SLACK, "took {took:?}");
    assert_hidden("refused error", &err, WRONG);
}

#[tokio::test]
async fn a_server_that_never_answers_fails_within_the_connect_timeout() {
    // A SIGSTOPped server accepts TCP (the kernel queues the connection) but
    // never completes the handshake: only the connect timeout ends the wait.
    let server = RedisServer::with_password(PASSWORD);
    server.pause();
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}", server.port());
    let (res, took) = timed(Cache::connect(config_for(url.clone()))).await;
    let err = res.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(
        took >= CONNECT_TIMEOUT,
        "cannot fail before the timeout: {took:?}"
    );
    assert!(took < CONNECT_TIMEOUT + SLACK, "took {took:?}");
    assert_hidden("blackhole error", &err, PASSWORD);

    // A lazy cache starts anyway and misses quickly meanwhile.
    let (cache, took) = timed(Cache::connect_lazy(config_for(url))).await;
    let cache = cache.unwrap();
    assert!(
        took < Duration::from_millis(100),
        "lazy connect blocked: {took:?}"
    );
    let (got, took) = timed(cache.get::<i32>("k")).await;
    assert_eq!(got, None);
    assert!(took < Duration::from_millis(100), "get blocked: {took:?}");
    let (health, took) = timed(cache.health_check()).await;
    assert!(!health.healthy);
    assert!(
        took < Duration::from_millis(300),
        "health check blocked: {took:?}"
    );
    server.resume();
}

/// Everything logged on this thread while the guard lives, at every level.
struct Logs {
    buf: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Logs {
    fn capture() -> Self {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Writer(sink.clone()))
            .finish();
        Self {
            buf,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }
}

struct Writer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// redis-rs reads a unix socket's password from `?pass=`: it is hidden like
/// a user-info password, in errors, `Debug`, health and the logs.
#[tokio::test]
async fn a_unix_socket_password_stays_hidden() {
    let logs = Logs::capture();
    let sock_dir = tempfile::Builder::new()
        .prefix("ngx")
        .tempdir_in("/tmp")
        .unwrap();
    let sock = sock_dir.path().join("r.sock").display().to_string();
    let _server = RedisServer::start_with(
        Some(PASSWORD.to_owned()),
        &["--unixsocket", &sock, "--unixsocketperm", "700"],
    );

    // The wrong password: eager and lazy.
    let wrong = config_for(format!("unix://{sock}?pass={WRONG}"));
    assert_hidden_debug("config", &wrong, WRONG);
    assert!(wrong.redacted_url().contains("pass=***"));
    let err = Cache::connect(wrong.clone()).await.unwrap_err();
    assert_hidden("unix auth error", &err, WRONG);
    let cache = Cache::connect_lazy(wrong).await.unwrap();
    let res = cache.try_get::<String>("k").await;
    assert_hidden("lazy unix error", &res.unwrap_err(), WRONG);
    let health = cache.health_check().await;
    assert!(!health.healthy);
    let report = format!("{health:?} {}", serde_json::to_string(&health).unwrap());
    assert!(!report.contains(WRONG), "{report}");
    assert_hidden_debug("cache", &cache, WRONG);
    drop(cache);

    // The right one.
    let cache = Cache::connect(config_for(format!("unix://{sock}?pass={PASSWORD}")))
        .await
        .unwrap();
    cache.set("k", &1, None).await.unwrap();
    assert_eq!(cache.get::<i32>("k").await, Some(1));
    let health = cache.health_check().await;
    assert!(health.healthy, "{health:?}");
    let shown = format!(
        "{health:?} {} {:?} {:?} {} {:?}",
        serde_json::to_string(&health).unwrap(),
        cache.config(),
        cache,
        cache.config().redacted_url(),
        cache.stats(),
    );
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(shown.contains("pass=***"), "{shown}");
    drop(cache);

    let logged = logs.text();
    assert!(
        !logged.contains(PASSWORD) && !logged.contains(WRONG),
        "{logged}"
    );
}

fn assert_hidden_debug(what: &str, value: &impl std::fmt::Debug, secret: &str) {
    let shown = format!("{value:?}");
    assert!(
        !shown.contains(secret),
        "{what} leaks the password: {shown}"
    );
}
