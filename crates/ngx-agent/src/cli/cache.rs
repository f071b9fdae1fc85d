//! `ngx-agent cache ...`: operator commands that read the service's
//! environment and talk to Redis directly.
//!
//! Reads (`stats`, `get`, `keys`) use a plain connection and never change
//! anything. Writes (`invalidate`, `clear`, `warm`) go through the library's
//! [`Cache`], so they publish the same invalidation messages as the service
//! and every running instance drops the entries from its L1.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{ArgGroup, Subcommand};
use futures::future::join_all;
use ngx_agent::cache::{DomainCacheSettings, KeySpace, NgxCacheManager};
use ngx_agent::config::AppConfig;
use ngx_agent::db::{Database, DbOptions};
use ngx_agent::service::Services;
use ngx_cache::{Cache, CacheConfig, KeyedConnection, NodeConnection, escape_glob};

use super::{EnvArgs, Output, entry, progress};

/// The `cache` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum CacheCommand {
    /// Keys per type in Redis, and Redis's own hit and memory counters.
    Stats,
    /// PING latency, Redis version, memory and clients; exit 1 when unhealthy.
    Health,
    /// Decode one entry (any codec) and show its value, TTL, logical expiry
    /// and tags; says when it is stale, invalidated or corrupt.
    Get {
        /// Key space: conversation (conv), customer (cust), prediction (pred),
        /// tier, program (prog:rec), roi, config (conf:agent), knowledge
        /// (know), catalog (prog:catalog).
        #[arg(value_name = "TYPE", value_parser = parse_space)]
        space: KeySpace,
        /// The identifier after the type's prefix, e.g. conv-00001 or objection:<hash>.
        id: String,
    },
    /// List the keys of one type (SCAN, never KEYS).
    Keys {
        /// Key space, as for `get`.
        #[arg(value_name = "TYPE", value_parser = parse_space)]
        space: KeySpace,
        /// Stop after this many keys.
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: usize,
    },
    /// Invalidate one key, one tag, a whole type or a key prefix, in Redis
    /// and in every running instance's L1.
    Invalidate(InvalidateArgs),
    /// Remove every key of the namespace; asks for confirmation unless --yes.
    Clear {
        /// Do not ask.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Load the knowledge base, the agent configuration, the program
    /// catalog, and the profiles and program recommendations of the
    /// `CACHE_WARM_CUSTOMERS` most recently active customers from the
    /// database into the cache.
    Warm,
}

/// What `cache invalidate` removes: exactly one of the four.
#[derive(Debug, clap::Args)]
#[command(group(ArgGroup::new("what").required(true).multiple(false)))]
pub(crate) struct InvalidateArgs {
    /// A key without the namespace, e.g. conv:v1:conv-00001.
    #[arg(long, group = "what", value_name = "KEY")]
    key: Option<String>,
    /// A tag, e.g. customer:cust-00001 (everything derived from that customer).
    #[arg(long, group = "what", value_name = "TAG")]
    tag: Option<String>,
    /// A whole key space, as for `get` (e.g. conv).
    #[arg(long = "type", group = "what", value_name = "TYPE", value_parser = parse_space)]
    space: Option<KeySpace>,
    /// Every key that starts with this prefix (without the namespace).
    #[arg(long, group = "what", value_name = "PREFIX")]
    prefix: Option<String>,
}

/// Parses a key space by name (`conversation`) or prefix (`conv`, `prog:rec`).
pub(crate) fn parse_space(s: &str) -> Result<KeySpace, String> {
    KeySpace::parse(s)
        .or_else(|| {
            KeySpace::ALL.into_iter().find(|k| {
                let prefix = k.prefix();
                let bare = prefix.rsplit_once(':').map_or(prefix, |(p, _)| p);
                s == bare || s == prefix
            })
        })
        .ok_or_else(|| {
            let names: Vec<&str> = KeySpace::ALL.iter().map(|k| k.name()).collect();
            format!("unknown type; expected one of {}", names.join(", "))
        })
}

pub(crate) async fn run(cmd: CacheCommand, env: &EnvArgs, out: Output) -> anyhow::Result<ExitCode> {
    let config = CacheConfig::from_lookup(|n| env.get(n)).context("reading configuration")?;
    if !config.enabled {
        bail!("CACHE_ENABLED=false: there is no cache to work on");
    }
    match cmd {
        CacheCommand::Stats => stats(&config, out).await,
        CacheCommand::Health => health(config, out).await,
        CacheCommand::Get { space, id } => {
            entry::show(&mut keyed(&config).await?, &config, space, &id, out).await
        }
        CacheCommand::Keys { space, limit } => keys(&config, space, limit, out).await,
        CacheCommand::Invalidate(args) => invalidate(config, env, args, out).await,
        CacheCommand::Clear { yes } => clear(config, yes, out).await,
        CacheCommand::Warm => warm(env, out).await,
    }
}

/// Plain connections for reads: one to each primary (the server itself
/// when not clustered) for `SCAN` and `INFO`. A cluster's primaries that do
/// not answer within the connect timeout are left out and listed in
/// [`Reading::unread`].
async fn raw(config: &CacheConfig) -> anyhow::Result<Reading> {
    let nodes = within(config, ngx_cache::redis_nodes(config)).await?;
    let unread = nodes
        .unreachable
        .into_iter()
        .map(|node| Unread {
            address: node.address,
            error: node.error.to_string(),
        })
        .collect();
    Ok(Reading {
        primaries: nodes.primaries,
        unread,
    })
}

/// A connection for commands about a key (on a cluster, routed to the
/// key's node).
async fn keyed(config: &CacheConfig) -> anyhow::Result<KeyedConnection> {
    within(config, ngx_cache::redis_keyed(config)).await
}

/// `open`'s connections, with its errors phrased for the operator.
async fn within<T>(
    config: &CacheConfig,
    open: impl Future<Output = Result<T, ngx_cache::Error>>,
) -> anyhow::Result<T> {
    let url = config.redacted_url();
    // Each step is bounded on its own (on a cluster: the seeds and the
    // nodes of the slot map, the slot map's read, then the primaries); this
    // only backstops them.
    let limit = config.connect_timeout * 3 + config.op_timeout + Duration::from_secs(1);
    tokio::time::timeout(limit, open)
        .await
        .map_err(|_| anyhow::anyhow!("Redis at {url} did not answer within {limit:?}"))?
        .map_err(|e| match e {
            ngx_cache::Error::Config(e) => anyhow::anyhow!("{e}"),
            e => anyhow::anyhow!("cannot connect to Redis at {url}: {e}"),
        })
}

/// The connections of [`raw`], and the primaries not read so far.
struct Reading {
    primaries: Vec<NodeConnection>,
    unread: Vec<Unread>,
}

/// A primary whose keys are missing from a result: it did not answer, or
/// stopped answering part-way.
#[derive(serde::Serialize)]
struct Unread {
    address: String,
    error: String,
}

impl Reading {
    /// Runs `cmd` on every primary still read, side by side (a slow or
    /// hung primary delays the result once, not once per primary); a
    /// primary where it fails is moved to [`unread`](Self::unread).
    async fn each_primary<T>(
        &mut self,
        cmd: impl AsyncFn(&mut NodeConnection) -> anyhow::Result<T>,
    ) -> Vec<T> {
        let results = join_all(self.primaries.iter_mut().map(|node| cmd(node))).await;
        let mut out = Vec::with_capacity(results.len());
        let mut read = Vec::with_capacity(results.len());
        for (node, result) in std::mem::take(&mut self.primaries).into_iter().zip(results) {
            match result {
                Ok(v) => {
                    out.push(v);
                    read.push(node);
                }
                Err(e) => self.unread.push(Unread {
                    address: node.address,
                    error: format!("{e:#}"),
                }),
            }
        }
        self.primaries = read;
        out
    }

    /// Fails when no primary could be read; else the exit code: failure
    /// when some were not, after naming each on stderr.
    fn finish(&self, what: &str) -> anyhow::Result<ExitCode> {
        if self.primaries.is_empty()
            && let Some(first) = self.unread.first()
        {
            bail!(
                "no primary could be read: {} ({})",
                first.address,
                first.error
            );
        }
        for node in &self.unread {
            eprintln!(
                "warning: primary {} was not read ({}); {what} leave out its keys",
                node.address, node.error
            );
        }
        Ok(if self.unread.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}

/// The library handle for writes: no L1 (this process serves nothing), and
/// a connection that must succeed now.
async fn connect(mut config: CacheConfig) -> anyhow::Result<Cache> {
    config.l1_enabled = false;
    let url = config.redacted_url();
    Cache::connect(config)
        .await
        .with_context(|| format!("connecting to Redis at {url}"))
}

/// Every key of `pattern` on every primary (the primaries side by side,
/// each SCAN by SCAN), up to `limit`; whether it stopped at the limit. A
/// primary where SCAN fails is moved to the unread ones, with the keys it
/// gave so far kept.
async fn scan(nodes: &mut Reading, pattern: &str, limit: usize, each: impl FnMut(String)) -> bool {
    // The primaries' scans run on this one task, so these are never
    // borrowed across an await.
    let seen = Cell::new(0);
    let full = Cell::new(false);
    let each = RefCell::new(each);
    nodes
        .each_primary(async |node| {
            let mut cursor: u64 = 0;
            while !full.get() {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut node.connection)
                    .await
                    .context("SCAN")?;
                let mut each = each.borrow_mut();
                for key in keys {
                    if seen.get() == limit {
                        full.set(true);
                        break;
                    }
                    seen.set(seen.get() + 1);
                    each(key);
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            Ok(())
        })
        .await;
    full.get()
}

#[derive(serde::Serialize)]
struct Stats {
    namespace: String,
    redis: String,
    /// Primaries whose keys and INFO are counted (1 on a single server).
    primaries: usize,
    /// Primaries that could not be read: their keys and counters are left
    /// out.
    unreachable: Vec<Unread>,
    keys_by_type: BTreeMap<&'static str, u64>,
    tag_versions: u64,
    other_keys: u64,
    redis_version: Option<String>,
    used_memory: Option<String>,
    keyspace_hits: Option<u64>,
    keyspace_misses: Option<u64>,
    keyspace_hit_rate: Option<f64>,
    expired_keys: Option<u64>,
    evicted_keys: Option<u64>,
    connected_clients: Option<u64>,
}

async fn stats(config: &CacheConfig, out: Output) -> anyhow::Result<ExitCode> {
    let mut conn = raw(config).await?;
    let ns = &config.namespace;
    let mut by_type: BTreeMap<&'static str, u64> =
        KeySpace::ALL.iter().map(|k| (k.name(), 0)).collect();
    let (mut tags, mut other) = (0, 0);
    let tag_prefix = format!("{ns}:__tag:");
    let spaces: Vec<(String, &'static str)> = KeySpace::ALL
        .iter()
        .map(|k| (format!("{ns}:{}:", k.prefix()), k.name()))
        .collect();
    scan(
        &mut conn,
        &format!("{}:*", escape_glob(ns)),
        usize::MAX,
        |key| {
            if key.starts_with(&tag_prefix) {
                tags += 1;
            } else if let Some((_, name)) = spaces.iter().find(|(p, _)| key.starts_with(p.as_str()))
            {
                *by_type.entry(name).or_default() += 1;
            } else {
                other += 1;
            }
        },
    )
    .await;
    // Each primary's INFO; counters are summed over the primaries.
    let infos: Vec<String> = conn
        .each_primary(async |node| {
            let info = redis::cmd("INFO")
                .query_async(&mut node.connection)
                .await
                .context("INFO")?;
            Ok(info)
        })
        .await;
    let code = conn.finish("the figures")?;
    let field = |info: &str, name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(|v| v.trim().to_owned())
    };
    let num = |name: &str| {
        infos
            .iter()
            .map(|i| field(i, name).and_then(|v| v.parse::<u64>().ok()))
            .sum::<Option<u64>>()
    };
    let (hits, misses) = (num("keyspace_hits"), num("keyspace_misses"));
    let first = infos.first().map_or("", String::as_str);
    let s = Stats {
        namespace: ns.clone(),
        redis: config.redacted_url(),
        primaries: infos.len(),
        unreachable: std::mem::take(&mut conn.unread),
        keys_by_type: by_type,
        tag_versions: tags,
        other_keys: other,
        redis_version: field(first, "redis_version"),
        used_memory: match infos.len() {
            1 => field(first, "used_memory_human"),
            _ => num("used_memory").map(human_bytes),
        },
        keyspace_hits: hits,
        keyspace_misses: misses,
        keyspace_hit_rate: match (hits, misses) {
            (Some(h), Some(m)) if h + m > 0 => Some(h as f64 / (h + m) as f64),
            _ => None,
        },
        expired_keys: num("expired_keys"),
        evicted_keys: num("evicted_keys"),
        connected_clients: num("connected_clients"),
    };
    out.print(&s, || {
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
        let n = |v: Option<u64>| v.map_or_else(|| "?".into(), |v| v.to_string());
        println!(
            "namespace {} on {} (Redis {})",
            s.namespace,
            s.redis,
            opt(&s.redis_version)
        );
        println!();
        println!("{:<14} {:>10}", "type", "keys");
        for (name, count) in &s.keys_by_type {
            println!("{name:<14} {count:>10}");
        }
        println!("{:<14} {:>10}", "tag versions", s.tag_versions);
        if s.other_keys > 0 {
            println!("{:<14} {:>10}", "other", s.other_keys);
        }
        println!();
        if s.primaries > 1 {
            println!(
                "Redis Cluster, {} primaries summed (all clients, since their start):",
                s.primaries
            );
        } else {
            println!("Redis server (all clients, since its start):");
        }
        println!(
            "  hit rate      {}",
            s.keyspace_hit_rate
                .map_or_else(|| "n/a".into(), |r| format!("{:.1}%", r * 100.0))
        );
        println!(
            "  hits/misses   {} / {}",
            n(s.keyspace_hits),
            n(s.keyspace_misses)
        );
        println!("  memory        {}", opt(&s.used_memory));
        println!("  expired       {}", n(s.expired_keys));
        println!("  evicted       {}", n(s.evicted_keys));
        println!("  clients       {}", n(s.connected_clients));
    });
    Ok(code)
}

/// `bytes` as Redis's `used_memory_human` writes it: `1.50M`.
fn human_bytes(bytes: u64) -> String {
    let units = ["B", "K", "M", "G", "T"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes}B"),
        _ => format!("{value:.2}{}", units[unit]),
    }
}

async fn health(config: CacheConfig, out: Output) -> anyhow::Result<ExitCode> {
    let mut config = config;
    config.l1_enabled = false;
    config.invalidation = false;
    // When Redis does not answer, a lazy handle still gives the report.
    let cache = match Cache::connect(config.clone()).await {
        Ok(cache) => cache,
        Err(_) => Cache::connect_lazy(config).await?,
    };
    let report = cache.health_check().await;
    out.print(&report, || {
        if report.healthy {
            println!(
                "healthy: Redis {} answered PING in {:.2} ms, memory {}, {} clients",
                report.version.as_deref().unwrap_or("?"),
                report.latency_ms,
                report.used_memory.as_deref().unwrap_or("?"),
                report
                    .connected_clients
                    .map_or_else(|| "?".into(), |c| c.to_string()),
            );
        } else {
            println!(
                "UNHEALTHY ({}): {}",
                report.status,
                report.error.as_deref().unwrap_or("no answer")
            );
        }
    });
    Ok(if report.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[derive(serde::Serialize)]
struct KeyList {
    keys: Vec<String>,
    truncated: bool,
    /// Primaries that could not be read: their keys are left out.
    unreachable: Vec<Unread>,
}

async fn keys(
    config: &CacheConfig,
    space: KeySpace,
    limit: usize,
    out: Output,
) -> anyhow::Result<ExitCode> {
    let mut conn = raw(config).await?;
    let prefix = format!("{}:{}:", config.namespace, space.prefix());
    let mut keys = Vec::new();
    let truncated = scan(
        &mut conn,
        &format!("{}*", escape_glob(&prefix)),
        limit,
        |k| keys.push(k),
    )
    .await;
    let code = conn.finish("the keys listed")?;
    keys.sort_unstable();
    let list = KeyList {
        keys,
        truncated,
        unreachable: conn.unread,
    };
    out.print(&list, || {
        for k in &list.keys {
            println!("{k}");
        }
        if list.truncated {
            eprintln!("(stopped after {limit} keys; raise --limit for more)");
        }
    });
    Ok(code)
}

#[derive(serde::Serialize)]
struct Invalidated {
    target: &'static str,
    value: String,
    /// Keys removed, 1/0 for a key, or the tag's new version.
    removed: u64,
    published: bool,
}

async fn invalidate(
    config: CacheConfig,
    env: &EnvArgs,
    args: InvalidateArgs,
    out: Output,
) -> anyhow::Result<ExitCode> {
    let published = config.invalidation;
    let cache = connect(config).await?;
    let domain = DomainCacheSettings::from_lookup(|n| env.get(n))?;
    let manager = NgxCacheManager::new(cache.clone(), domain);
    let (target, value, removed) = if let Some(key) = args.key {
        let n = u64::from(cache.try_delete(&key).await?);
        ("key", key, n)
    } else if let Some(tag) = args.tag {
        let version = cache.try_invalidate_tag(&tag).await?;
        ("tag", tag, version)
    } else if let Some(space) = args.space {
        let n = manager.clear_space(space).await?;
        ("type", space.name().to_owned(), n)
    } else if let Some(prefix) = args.prefix {
        let n = cache.clear_prefix(&prefix).await?;
        ("prefix", prefix, n)
    } else {
        bail!("give one of --key, --tag, --type or --prefix");
    };
    let result = Invalidated {
        target,
        value,
        removed,
        published,
    };
    out.print(&result, || {
        let what = match result.target {
            "key" if result.removed == 1 => "removed the key".to_owned(),
            "key" => "the key did not exist".to_owned(),
            "tag" => format!("tag version is now {}", result.removed),
            _ => format!("{} keys removed", result.removed),
        };
        println!("invalidated {} {}: {what}", result.target, result.value);
        if result.published {
            println!("every instance's L1 was told (CACHE_INVALIDATION_ENABLED=true)");
        }
    });
    Ok(ExitCode::SUCCESS)
}

#[derive(serde::Serialize)]
struct Cleared {
    namespace: String,
    removed: u64,
}

async fn clear(config: CacheConfig, yes: bool, out: Output) -> anyhow::Result<ExitCode> {
    let ns = config.namespace.clone();
    let where_ = config.redacted_url();
    if !yes {
        if !std::io::stdin().is_terminal() {
            bail!(
                "refusing to clear namespace `{ns}` without --yes: standard input is not a terminal"
            );
        }
        let mut conn = raw(&config).await?;
        let mut count = 0u64;
        scan(
            &mut conn,
            &format!("{}:*", escape_glob(&ns)),
            usize::MAX,
            |_| count += 1,
        )
        .await;
        conn.finish("the count")?;
        eprint!("Remove all {count} keys of namespace `{ns}` on {where_}? Type `yes` to confirm: ");
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            eprintln!("nothing removed");
            return Ok(ExitCode::FAILURE);
        }
    }
    let cache = connect(config).await?;
    let removed = cache.clear_namespace().await?;
    let result = Cleared {
        namespace: ns,
        removed,
    };
    out.print(&result, || {
        println!(
            "cleared namespace {}: {} keys removed, every instance's L1 dropped",
            result.namespace, result.removed
        );
    });
    Ok(ExitCode::SUCCESS)
}

async fn warm(env: &EnvArgs, out: Output) -> anyhow::Result<ExitCode> {
    let config = AppConfig::from_lookup(|n| env.get(n)).context("reading configuration")?;
    let mut options = DbOptions::default().max_connections(config.database_max_connections);
    if let Some(schema) = &config.database_schema {
        options = options.schema(schema.clone());
    }
    let db = Database::connect_with(&config.database_url, options)
        .await
        .with_context(|| format!("connecting to {}", config.redacted_database_url()))?;
    let cache = connect(config.cache.clone()).await?;
    let services = Services::new(db.clone(), Some(NgxCacheManager::new(cache, config.domain)));
    let bar = progress::bar("warming", 0);
    let report = services
        .content
        .warm_with_progress(&services.programs, |p| {
            bar.set_length(p.total as u64);
            bar.set_position((p.done + p.failed) as u64);
        })
        .await
        .context("warming")?;
    bar.finish_and_clear();
    db.close().await;
    out.print(&report, || {
        println!(
            "warmed {} of {} entries ({} failed)",
            report.done, report.total, report.failed
        );
    });
    Ok(if report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
