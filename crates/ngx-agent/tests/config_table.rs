//! The README's configuration table and the code agree: every variable in
//! the table is read (a bad value stops start-up naming it, a good value
//! changes the configuration), and every variable the code reads is in the
//! table.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use ngx_agent::cache::KeySpace;
use ngx_agent::config::AppConfig;
use ngx_cache::ConfigError;

/// A value the parser must refuse (`None`: every value is accepted) and a
/// value it must accept and apply, per variable.
///
/// Exception: `ADMIN_TOKEN` is a free string, so no value is bad.
const CASES: &[(&str, Option<&str>, &str)] = &[
    ("REDIS_URL", Some("http://x"), "redis://10.0.0.1:7000"),
    (
        "REDIS_TLS_CA_FILE",
        Some("/nonexistent/ca.pem"),
        "Cargo.toml",
    ),
    (
        "REDIS_TLS_CERT_FILE",
        Some("/nonexistent/client.pem"),
        "Cargo.toml",
    ),
    (
        "REDIS_TLS_KEY_FILE",
        Some("/nonexistent/client.key"),
        "Cargo.toml",
    ),
    ("REDIS_POOL_SIZE", Some("many"), "3"),
    ("REDIS_CLUSTER", Some("maybe"), "true"),
    ("REDIS_DECODE_RESPONSES", Some("maybe"), "false"),
    ("CACHE_ENABLED", Some("perhaps"), "false"),
    ("CACHE_DEFAULT_TTL", Some("-1"), "60"),
    ("CACHE_NAMESPACE", Some("a:b"), "app"),
    ("CACHE_CIRCUIT_BREAKER_ENABLED", Some("maybe"), "false"),
    ("CACHE_CIRCUIT_BREAKER_FAILURES", Some("0"), "7"),
    ("CACHE_CIRCUIT_BREAKER_TIMEOUT", Some("soon"), "9"),
    ("CACHE_CODEC", Some("pickle"), "msgpack"),
    ("CACHE_OP_TIMEOUT_MS", Some("0"), "100"),
    ("CACHE_CONNECT_TIMEOUT_MS", Some("fast"), "500"),
    ("CACHE_MAX_VALUE_BYTES", Some("0"), "2048"),
    ("CACHE_MAX_KEY_BYTES", Some("2"), "512"),
    ("CACHE_TTL_JITTER", Some("2"), "0"),
    ("CACHE_COMPRESSION_THRESHOLD", Some("big"), "4096"),
    ("CACHE_HEAL_AFTER_TIMEOUTS", Some("0"), "5"),
    ("CACHE_L1_ENABLED", Some("maybe"), "false"),
    ("CACHE_L1_CAPACITY", Some("0"), "50"),
    ("CACHE_L1_MAX_TTL", Some("0"), "5"),
    ("CACHE_INVALIDATION_ENABLED", Some("maybe"), "false"),
    ("CACHE_MAX_PENDING", Some("0"), "50"),
    ("CACHE_TTL_CONVERSATION", Some("-1"), "60"),
    ("CACHE_TTL_CUSTOMER", Some("0"), "60"),
    ("CACHE_TTL_PREDICTION", Some("x"), "60"),
    ("CACHE_TTL_TIER", Some("-1"), "60"),
    ("CACHE_TTL_PROGRAM", Some("-1"), "60"),
    ("CACHE_TTL_ROI", Some("ten"), "60"),
    ("CACHE_TTL_CONFIG", Some("-1"), "60"),
    ("CACHE_TTL_KNOWLEDGE", Some("-1"), "60"),
    ("CACHE_TTL_CATALOG", Some("-1"), "60"),
    ("CACHE_FAIL_SAFE", Some("long"), "0"),
    ("HTTP_ADDR", Some("localhost"), "0.0.0.0:9000"),
    ("DATABASE_URL", Some("mysql://x"), "postgres://u:p@db/ngx"),
    ("DATABASE_SCHEMA", Some("Bad-Schema"), "ngx_test"),
    ("DATABASE_MAX_CONNECTIONS", Some("0"), "16"),
    ("DATABASE_SEED", Some("maybe"), "false"),
    ("CACHE_WARM", Some("maybe"), "false"),
    ("CACHE_WARM_CUSTOMERS", Some("-1"), "0"),
    ("ADMIN_TOKEN", None, "s3cret"),
    ("LOG_FORMAT", Some("xml"), "json"),
    ("RUST_LOG", Some("ngx_cache=loud"), "debug"),
    ("HTTP_REQUEST_TIMEOUT_MS", Some("0"), "5000"),
    ("HTTP_BODY_LIMIT_BYTES", Some("10"), "4096"),
    ("HTTP_SHUTDOWN_TIMEOUT_MS", Some("soon"), "500"),
    (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        Some("collector:4318"),
        "http://collector:4318",
    ),
    ("OTEL_SERVICE_NAME", None, "agent-a"),
    ("CACHE_L1_MAX_BYTES", Some("lots"), "1048576"),
    ("CACHE_LOAD_SOFT_TIMEOUT_MS", Some("x"), "100"),
    ("CACHE_LOAD_HARD_TIMEOUT_MS", Some("x"), "2000"),
    ("CACHE_NEGATIVE_TTL", Some("soon"), "30"),
    ("DATABASE_STATEMENT_TIMEOUT_MS", Some("-5"), "1000"),
    ("HTTP_HEADER_TIMEOUT_MS", Some("0"), "2000"),
    ("HTTP_IDLE_TIMEOUT_MS", Some("0"), "30000"),
    ("HTTP_MAX_CONNECTIONS", Some("0"), "64"),
    ("CONVERSATION_MAX_MESSAGES", Some("0"), "50"),
    ("CONVERSATION_MAX_BYTES", Some("lots"), "65536"),
    ("HEALTH_DETAILS_PUBLIC", Some("sure"), "true"),
];

/// Variables another one needs to be valid at all.
fn context(var: &str) -> &'static [(&'static str, &'static str)] {
    match var {
        "DATABASE_SCHEMA" => &[("DATABASE_URL", "postgres://u:p@db/ngx")],
        "REDIS_TLS_CA_FILE" | "REDIS_TLS_CERT_FILE" | "REDIS_TLS_KEY_FILE" => {
            &[("REDIS_URL", "rediss://10.0.0.1:6380")]
        }
        _ => &[],
    }
}

/// The variables of the README's configuration table, in order.
fn readme_variables() -> Vec<String> {
    let readme = include_str!("../../../README.md");
    let mut rows = readme
        .lines()
        .skip_while(|l| !l.starts_with("| variable | default | meaning |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'));
    let mut vars = Vec::new();
    for row in rows.by_ref() {
        let first = row.split('|').nth(1).unwrap_or_default().trim();
        vars.push(first.trim_matches('`').to_owned());
    }
    vars
}

fn config(pairs: &[(&str, &str)]) -> Result<AppConfig, ConfigError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    AppConfig::from_lookup(|name| map.get(name).cloned())
}

/// Everything the configuration holds, comparable.
fn view(c: &AppConfig) -> String {
    let ttls: Vec<_> = KeySpace::ALL.iter().map(|s| c.domain.ttl(*s)).collect();
    format!(
        "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} \
         {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
        c.http_addr,
        c.database_url,
        c.database_schema,
        c.database_max_connections,
        c.seed,
        c.warm,
        c.admin_token,
        c.log_format,
        c.log_filter,
        c.limits,
        c.shutdown_timeout,
        c.cache,
        c.cache.decode_responses,
        ttls,
        c.domain.fail_safe,
        c.otel,
        c.database_statement_timeout,
        c.conversation_limits,
        c.health_details_public,
        c.domain.soft_timeout,
        c.domain.hard_timeout,
        c.domain.negative_ttl,
        c.domain.warm_customers,
    )
}

#[test]
fn every_variable_in_the_table_is_read_and_checked() {
    let table = readme_variables();
    assert!(table.len() > 30, "README table not found: {table:?}");
    let cases: BTreeSet<&str> = CASES.iter().map(|(v, _, _)| *v).collect();
    for var in &table {
        assert!(cases.contains(var.as_str()), "no test case for {var}");
    }
    for var in &cases {
        assert!(
            table.iter().any(|v| v == var),
            "{var} is not in the README table"
        );
    }
    let mut failures = Vec::new();
    for (var, bad, good) in CASES {
        let base: Vec<(&str, &str)> = context(var).to_vec();
        let default = config(&base).expect("the defaults are valid");
        if let Some(bad) = bad {
            let mut pairs = base.clone();
            pairs.push((var, bad));
            match config(&pairs) {
                Ok(_) => failures.push(format!("{var}={bad} was accepted")),
                Err(e) if e.var != *var => {
                    failures.push(format!("{var}={bad} blamed {}: {e}", e.var))
                }
                Err(_) => {}
            }
        }
        let mut pairs = base.clone();
        pairs.push((var, good));
        match config(&pairs) {
            Ok(c) if view(&c) == view(&default) => {
                failures.push(format!("{var}={good} changed nothing"))
            }
            Ok(_) => {}
            Err(e) => failures.push(format!("{var}={good} was refused: {e}")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn every_variable_the_code_reads_is_in_the_table() {
    let read = RefCell::new(BTreeSet::new());
    AppConfig::from_lookup(|name| {
        read.borrow_mut().insert(name.to_owned());
        None
    })
    .expect("the defaults are valid");
    let table = readme_variables();
    let missing: Vec<String> = read
        .into_inner()
        .into_iter()
        .filter(|v| !table.contains(v))
        .collect();
    assert!(
        missing.is_empty(),
        "read but not in the README table: {missing:?}"
    );
}
