//! Every environment variable the service reads, as clap arguments: each
//! one can be given as a variable or as a flag (the flag wins), and
//! `--help` lists them all with their defaults.
//!
//! The defaults shown are documentation only: a value that comes from the
//! default is not passed on, so the configuration code keeps the one real
//! default (a test checks the two agree).

use std::collections::HashMap;

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};

/// One variable: name, default shown in `--help` (`None`: unset), whether
/// its value may hold a secret (then `--help` never prints its value), help.
pub(crate) struct Var {
    pub(crate) name: &'static str,
    pub(crate) default: Option<&'static str>,
    pub(crate) secret: bool,
    pub(crate) help: &'static str,
}

const fn var(name: &'static str, default: &'static str, help: &'static str) -> Var {
    Var {
        name,
        default: Some(default),
        secret: false,
        help,
    }
}

/// The variables, in the README's order.
pub(crate) const VARS: &[Var] = &[
    Var {
        name: "REDIS_URL",
        default: Some("redis://localhost:6379"),
        secret: true,
        help: "redis:// or rediss:// (TLS) URL, with optional user and password",
    },
    Var {
        name: "REDIS_TLS_CA_FILE",
        default: None,
        secret: false,
        help: "PEM CA certificates that verify a rediss:// server (instead of the system roots)",
    },
    Var {
        name: "REDIS_TLS_CERT_FILE",
        default: None,
        secret: false,
        help: "PEM client certificate for mutual TLS (with REDIS_TLS_KEY_FILE)",
    },
    Var {
        name: "REDIS_TLS_KEY_FILE",
        default: None,
        secret: false,
        help: "PEM private key of REDIS_TLS_CERT_FILE",
    },
    var("REDIS_POOL_SIZE", "10", "Multiplexed Redis connections"),
    var(
        "REDIS_CLUSTER",
        "false",
        "Redis Cluster: REDIS_URL lists seed nodes, comma-separated",
    ),
    var(
        "REDIS_DECODE_RESPONSES",
        "true",
        "Accepted; values are always decoded into typed values",
    ),
    var("CACHE_ENABLED", "true", "false runs with no cache at all"),
    var("CACHE_DEFAULT_TTL", "3600", "Seconds"),
    var("CACHE_NAMESPACE", "ngx", "Prefix of every key"),
    var(
        "CACHE_CIRCUIT_BREAKER_ENABLED",
        "true",
        "Circuit breaker in front of Redis",
    ),
    var(
        "CACHE_CIRCUIT_BREAKER_FAILURES",
        "5",
        "Consecutive transient failures that open the breaker",
    ),
    var(
        "CACHE_CIRCUIT_BREAKER_TIMEOUT",
        "30",
        "Seconds the breaker stays open before one probe",
    ),
    var(
        "CACHE_CODEC",
        "json",
        "Codec for writes: json or msgpack; reads accept both",
    ),
    var(
        "CACHE_OP_TIMEOUT_MS",
        "250",
        "Timeout of one Redis operation",
    ),
    var(
        "CACHE_CONNECT_TIMEOUT_MS",
        "1000",
        "Timeout of opening a connection",
    ),
    var(
        "CACHE_MAX_VALUE_BYTES",
        "1048576",
        "Larger encoded values are refused",
    ),
    var("CACHE_MAX_KEY_BYTES", "1024", "Longer keys are refused"),
    var(
        "CACHE_TTL_JITTER",
        "0.1",
        "Fraction of a TTL removed at random (0 = off)",
    ),
    var(
        "CACHE_COMPRESSION_THRESHOLD",
        "0",
        "LZ4-compress values above this many bytes (0 = off)",
    ),
    var(
        "CACHE_HEAL_AFTER_TIMEOUTS",
        "2",
        "Consecutive timeouts after which a connection is rebuilt",
    ),
    var(
        "CACHE_L1_ENABLED",
        "true",
        "In-process L1 tier in front of Redis",
    ),
    var("CACHE_L1_CAPACITY", "10000", "L1 entries"),
    var(
        "CACHE_MAX_PENDING",
        "10000",
        "Pending deletes, tag invalidations and messages (each) remembered while Redis is unreachable",
    ),
    var(
        "CACHE_L1_MAX_TTL",
        "60",
        "Seconds; upper bound of any L1 lifetime",
    ),
    var(
        "CACHE_L1_MAX_BYTES",
        "67108864",
        "L1 weight bound in bytes (stored size of each value plus key)",
    ),
    var(
        "CACHE_INVALIDATION_ENABLED",
        "true",
        "Keep every instance's L1 coherent over pub/sub",
    ),
    var("CACHE_TTL_CONVERSATION", "1800", "Seconds"),
    var("CACHE_TTL_CUSTOMER", "3600", "Seconds"),
    var("CACHE_TTL_PREDICTION", "300", "Seconds"),
    var("CACHE_TTL_TIER", "1800", "Seconds"),
    var("CACHE_TTL_PROGRAM", "3600", "Seconds"),
    var("CACHE_TTL_ROI", "600", "Seconds"),
    var("CACHE_TTL_CONFIG", "7200", "Seconds"),
    var("CACHE_TTL_KNOWLEDGE", "86400", "Seconds"),
    var("CACHE_TTL_CATALOG", "3600", "Seconds"),
    var(
        "CACHE_FAIL_SAFE",
        "3600",
        "Seconds a domain entry outlives its TTL as a fallback (0 = off)",
    ),
    var(
        "CACHE_LOAD_SOFT_TIMEOUT_MS",
        "250",
        "A domain load slower than this answers with the stale value (0 = off)",
    ),
    var(
        "CACHE_LOAD_HARD_TIMEOUT_MS",
        "3000",
        "A domain load is abandoned after this; below HTTP_REQUEST_TIMEOUT_MS (0 = off)",
    ),
    var(
        "CACHE_NEGATIVE_TTL",
        "10",
        "Seconds an unknown id is remembered as not found (0 = off)",
    ),
    var(
        "HTTP_ADDR",
        "127.0.0.1:8000",
        "Listen address of the service",
    ),
    Var {
        name: "DATABASE_URL",
        default: Some("sqlite://data/ngx.db"),
        secret: true,
        help: "sqlite://path or postgres://user:pass@host/db",
    },
    Var {
        name: "DATABASE_SCHEMA",
        default: None,
        secret: false,
        help: "PostgreSQL only: use (and create) this schema",
    },
    var("DATABASE_MAX_CONNECTIONS", "8", "Database pool size"),
    var(
        "DATABASE_STATEMENT_TIMEOUT_MS",
        "5000",
        "PostgreSQL statement_timeout, SQLite busy timeout (0 = none)",
    ),
    var(
        "DATABASE_SEED",
        "true",
        "Seed demo data into empty tables at start",
    ),
    var(
        "CACHE_WARM",
        "true",
        "Warm knowledge base, agent configuration, catalog and recently active customers at start",
    ),
    var(
        "CACHE_WARM_CUSTOMERS",
        "10000",
        "Customers whose profile and recommendation are warmed, most recently active first (0 = none)",
    ),
    Var {
        name: "ADMIN_TOKEN",
        default: None,
        secret: true,
        help: "Bearer token of the admin endpoints; unset disables them",
    },
    var("LOG_FORMAT", "text", "text or json"),
    var("RUST_LOG", "info,sqlx=warn", "Log filter"),
    var(
        "HTTP_REQUEST_TIMEOUT_MS",
        "10000",
        "Request deadline; past it the answer is 503",
    ),
    var(
        "HTTP_BODY_LIMIT_BYTES",
        "262144",
        "Larger request bodies get 413",
    ),
    var(
        "HTTP_SHUTDOWN_TIMEOUT_MS",
        "10000",
        "How long shutdown waits for in-flight requests",
    ),
    Var {
        name: "OTEL_EXPORTER_OTLP_ENDPOINT",
        default: None,
        secret: false,
        help: "http://host:port of an OTLP/HTTP receiver; set, spans are exported",
    },
    var(
        "OTEL_SERVICE_NAME",
        "ngx-agent",
        "service.name of the exported spans",
    ),
    var(
        "HTTP_HEADER_TIMEOUT_MS",
        "5000",
        "A connection must send a request's headers within this",
    ),
    var(
        "HTTP_IDLE_TIMEOUT_MS",
        "60000",
        "A keep-alive connection idle this long is closed",
    ),
    var("HTTP_MAX_CONNECTIONS", "1024", "Open connections at most"),
    var(
        "CONVERSATION_MAX_MESSAGES",
        "500",
        "Messages one conversation may hold (422 beyond)",
    ),
    var(
        "CONVERSATION_MAX_BYTES",
        "262144",
        "Bytes of message text one conversation may hold (422 beyond)",
    ),
    var(
        "HEALTH_DETAILS_PUBLIC",
        "false",
        "Show readiness details without the admin token",
    ),
];

/// `REDIS_URL` -> `redis-url`.
fn flag(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// The values given as a flag or in the environment (defaults excluded).
#[derive(Debug, Clone, Default)]
pub(crate) struct EnvArgs {
    given: HashMap<&'static str, String>,
}

impl EnvArgs {
    /// The value of `name`: the flag, else the variable, else `None` (the
    /// configuration code applies its default). Variables this table does
    /// not know come straight from the environment.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        match self.given.get(name) {
            Some(v) => Some(v.clone()),
            None if VARS.iter().any(|v| v.name == name) => None,
            None => std::env::var(name).ok(),
        }
    }

    /// Overrides one value (used by `serve --addr`).
    pub(crate) fn set(&mut self, name: &'static str, value: String) {
        self.given.insert(name, value);
    }
}

impl FromArgMatches for EnvArgs {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut given = HashMap::new();
        for v in VARS {
            let from_user = matches!(
                m.value_source(v.name),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            );
            if let (true, Some(value)) = (from_user, m.get_one::<String>(v.name)) {
                given.insert(v.name, value.clone());
            }
        }
        Ok(Self { given })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        let new = Self::from_arg_matches(m)?;
        self.given.extend(new.given);
        Ok(())
    }
}

impl Args for EnvArgs {
    fn augment_args(cmd: Command) -> Command {
        let mut cmd =
            cmd.next_help_heading("Environment (each variable is also a flag; the flag wins)");
        for v in VARS {
            let mut arg = Arg::new(v.name)
                .long(flag(v.name))
                .env(v.name)
                .value_name("VALUE")
                .help(v.help)
                .global(true)
                .hide_env_values(v.secret);
            if let Some(default) = v.default {
                arg = arg.default_value(default);
            }
            cmd = cmd.arg(arg);
        }
        cmd
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ngx_agent::config::AppConfig;

    /// The defaults `--help` prints are the ones the configuration applies.
    #[test]
    fn shown_defaults_are_the_real_defaults() {
        let shown: HashMap<&str, &str> = VARS
            .iter()
            .filter_map(|v| Some((v.name, v.default?)))
            .collect();
        let with_shown = AppConfig::from_lookup(|n| shown.get(n).map(|s| (*s).to_owned())).unwrap();
        let with_nothing = AppConfig::from_lookup(|_| None).unwrap();
        // The domain TTLs sit in a map: compare them one by one.
        let (mut a, b) = (with_shown, with_nothing);
        for space in ngx_agent::cache::KeySpace::ALL {
            assert_eq!(a.domain.ttl(space), b.domain.ttl(space), "{space:?}");
        }
        assert_eq!(a.domain.fail_safe, b.domain.fail_safe);
        a.domain = b.domain.clone();
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }

    /// The README's configuration table lists exactly these variables.
    #[test]
    fn readme_lists_every_variable() {
        let readme = include_str!("../../../../README.md");
        let mut documented: Vec<&str> = readme
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .filter(|n| {
                n.chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
            })
            .collect();
        documented.sort_unstable();
        let mut ours: Vec<&str> = VARS.iter().map(|v| v.name).collect();
        ours.sort_unstable();
        assert_eq!(documented, ours);
    }
}
