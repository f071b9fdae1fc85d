//! The stale-set race, forced with barriers:
//!
//! 1. a reader misses, and its loader reads v1 from the database;
//! 2. a writer commits v2 and invalidates the key;
//! 3. the reader's loader returns v1 and the cache is filled.
//!
//! A naive cache-aside fill (plain `SET`) leaves v1 in Redis for a whole TTL
//! although the database holds v2. The companion `naive_fill_*` tests run the
//! same interleaving with the hidden `unchecked_fill` option (a plain `SET`)
//! and assert that v1 *does* stay in Redis, which proves the interleaving
//! really happens and the checked tests would catch a regression.

mod support;

use std::sync::Arc;
use std::time::Duration;

use ngx_cache::{Cache, EntryOptions, Source};
use parking_lot::Mutex;
use support::hybrid::instance;
use support::server::RedisServer;
use support::util::raw_get;
use tokio::sync::Barrier;

type Db = Arc<Mutex<String>>;

/// How the writer invalidates after committing v2.
#[derive(Clone, Copy)]
enum Write {
    /// `delete` (cache-aside invalidation).
    Delete,
    /// `set` of the new value (write-through).
    Set,
}

fn opts(unchecked: bool) -> EntryOptions {
    let mut o = EntryOptions::new().ttl(Duration::from_secs(60));
    o.unchecked_fill = unchecked;
    o
}

/// A loader that reads the database, then parks until the test lets it go.
fn parked_loader(
    db: &Db,
    read: &Arc<Barrier>,
    release: &Arc<Barrier>,
) -> impl FnOnce() -> futures::future::BoxFuture<'static, Result<String, std::io::Error>> + Send + 'static
{
    let (db, read, release) = (db.clone(), read.clone(), release.clone());
    move || {
        Box::pin(async move {
            let v = db.lock().clone();
            read.wait().await;
            release.wait().await;
            Ok(v)
        })
    }
}

/// Runs the interleaving with `reader` loading and `writer` writing;
/// returns what the reader's call returned.
async fn interleave(
    reader: &Cache,
    writer: &Cache,
    db: &Db,
    write: Write,
    unchecked: bool,
) -> String {
    let read = Arc::new(Barrier::new(2));
    let release = Arc::new(Barrier::new(2));
    let loader = parked_loader(db, &read, &release);
    let task = {
        let reader = reader.clone();
        tokio::spawn(async move { reader.get_or_load("k", &opts(unchecked), loader).await })
    };
    // (1) the reader's loader has read v1 from the database.
    read.wait().await;
    // (2) the writer commits v2 and invalidates the key.
    *db.lock() = "v2".to_owned();
    match write {
        Write::Delete => {
            writer.delete("k").await;
        }
        Write::Set => writer.set("k", &"v2", None).await.unwrap(),
    }
    // (3) the reader's loader returns v1 and fills.
    release.wait().await;
    task.await.unwrap().unwrap()
}

fn raw(server: &RedisServer) -> Option<String> {
    raw_get(server, "t:k").map(|b| String::from_utf8(b).unwrap())
}

/// After the race the cache must never serve v1 again, on either instance.
async fn assert_never_v1(
    server: &RedisServer,
    reader: &Cache,
    writer: &Cache,
    db: &Db,
    write: Write,
) {
    let stored = raw(server);
    match write {
        Write::Delete => assert_eq!(stored, None, "the refused fill left something"),
        Write::Set => assert_eq!(stored.as_deref(), Some("\"v2\"")),
    }
    assert_eq!(reader.stats().fills_rejected, 1, "{:?}", reader.stats());
    for cache in [reader, writer] {
        let db = db.clone();
        let got = cache
            .get_or_load_entry("k", &opts(false), move || async move {
                Ok::<_, std::io::Error>(db.lock().clone())
            })
            .await
            .unwrap();
        assert_eq!(got.value, "v2", "served {got:?}");
        assert_ne!(got.source, Source::Stale);
        assert_eq!(cache.get::<String>("k").await.as_deref(), Some("v2"));
    }
    assert_eq!(raw(server).as_deref(), Some("\"v2\""));
}

async fn setup(two_instances: bool) -> (RedisServer, Cache, Cache, Db) {
    let server = RedisServer::start();
    let reader = instance(&server).await;
    let writer = if two_instances {
        instance(&server).await
    } else {
        reader.clone()
    };
    let db: Db = Arc::new(Mutex::new("v1".to_owned()));
    (server, reader, writer, db)
}

#[tokio::test]
async fn delete_on_another_instance_during_a_load_refuses_the_stale_fill() {
    let (server, reader, writer, db) = setup(true).await;
    let returned = interleave(&reader, &writer, &db, Write::Delete, false).await;
    // The reader's own call returns what it read: it started before the commit.
    assert_eq!(returned, "v1");
    assert_never_v1(&server, &reader, &writer, &db, Write::Delete).await;
}

#[tokio::test]
async fn delete_on_the_same_instance_during_a_load_refuses_the_stale_fill() {
    let (server, reader, writer, db) = setup(false).await;
    interleave(&reader, &writer, &db, Write::Delete, false).await;
    assert_never_v1(&server, &reader, &writer, &db, Write::Delete).await;
}

#[tokio::test]
async fn set_on_another_instance_during_a_load_is_not_overwritten() {
    let (server, reader, writer, db) = setup(true).await;
    interleave(&reader, &writer, &db, Write::Set, false).await;
    assert_never_v1(&server, &reader, &writer, &db, Write::Set).await;
}

/// The same interleaving with a naive fill leaves v1 in Redis: the test
/// above would fail on a cache without the lease check.
#[tokio::test]
async fn naive_fill_leaves_v1_after_delete() {
    let (server, reader, writer, db) = setup(true).await;
    interleave(&reader, &writer, &db, Write::Delete, true).await;
    assert_eq!(
        raw(&server).as_deref(),
        Some("\"v1\""),
        "naive fill must write v1"
    );
    // And another instance serves v1 though the database holds v2.
    let got = writer.get::<String>("k").await;
    assert_eq!(got.as_deref(), Some("v1"));
}

#[tokio::test]
async fn naive_fill_overwrites_a_newer_set() {
    let (server, reader, writer, db) = setup(true).await;
    interleave(&reader, &writer, &db, Write::Set, true).await;
    assert_eq!(
        raw(&server).as_deref(),
        Some("\"v1\""),
        "naive fill must overwrite v2"
    );
}
