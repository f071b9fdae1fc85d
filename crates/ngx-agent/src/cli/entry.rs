//! `ngx-agent cache get <type> <id>`: one entry, decoded whatever codec
//! wrote it ([`ngx_cache::value::inspect`]), with its Redis TTL, logical expiry and
//! tags, and a verdict: fresh, stale, invalidated by a tag, or corrupt.

use std::process::ExitCode;

use anyhow::Context;
use ngx_agent::cache::KeySpace;
use ngx_cache::CacheConfig;
use ngx_cache::KeyedConnection;
use ngx_cache::value::inspect::{self, Format, Inspection};
use serde::Serialize;

use super::Output;

/// What the service would do with the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum State {
    /// Served as a hit.
    Fresh,
    /// Past its logical expiry: served only by fail-safe, reloaded otherwise.
    Stale,
    /// A tag was invalidated after it was written: a miss.
    Invalidated,
    /// Cannot be decoded: a miss, deleted on the next read.
    Corrupt,
}

#[derive(Serialize)]
struct Tag {
    tag: String,
    version: u64,
    current: u64,
}

#[derive(Serialize)]
struct Shown {
    key: String,
    state: State,
    /// Remaining Redis TTL, milliseconds; `None` for a key without expiry.
    ttl_ms: Option<u64>,
    format: Option<Format>,
    stored_bytes: usize,
    logical_expiry_ms: Option<u64>,
    /// Logical expiry minus now, milliseconds (negative: stale for that long).
    logical_expiry_in_ms: Option<i64>,
    tags: Vec<Tag>,
    value: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub(crate) async fn show(
    conn: &mut KeyedConnection,
    config: &CacheConfig,
    space: KeySpace,
    id: &str,
    out: Output,
) -> anyhow::Result<ExitCode> {
    let key = format!("{}:{}", config.namespace, space.key(&[id]));
    let (bytes, pttl): (Option<Vec<u8>>, i64) = redis::pipe()
        .cmd("GET")
        .arg(&key)
        .cmd("PTTL")
        .arg(&key)
        .query_async(conn)
        .await
        .with_context(|| format!("GET {key}"))?;
    let Some(bytes) = bytes else {
        if out.json {
            println!("{}", serde_json::json!({ "key": key, "found": false }));
        } else {
            println!("{key}: no such entry");
        }
        return Ok(ExitCode::FAILURE);
    };
    let ttl_ms = u64::try_from(pttl).ok();
    let shown = match inspect::inspect(&bytes, config.max_value_bytes) {
        Ok(found) => judge(conn, config, key, ttl_ms, found).await?,
        Err(e) => Shown {
            key,
            state: State::Corrupt,
            ttl_ms,
            format: None,
            stored_bytes: bytes.len(),
            logical_expiry_ms: None,
            logical_expiry_in_ms: None,
            tags: Vec::new(),
            value: None,
            error: Some(e.to_string()),
        },
    };
    out.print(&shown, || print_human(&shown));
    Ok(ExitCode::SUCCESS)
}

async fn judge(
    conn: &mut KeyedConnection,
    config: &CacheConfig,
    key: String,
    ttl_ms: Option<u64>,
    found: Inspection,
) -> anyhow::Result<Shown> {
    let now = inspect::now_ms();
    let mut tags = Vec::new();
    if let Some(env) = &found.envelope {
        for (tag, version) in &env.tags {
            let tag_key = format!("{}:__tag:{tag}", config.namespace);
            let current: Option<u64> = redis::cmd("GET")
                .arg(&tag_key)
                .query_async(conn)
                .await
                .with_context(|| format!("GET {tag_key}"))?;
            tags.push(Tag {
                tag: tag.clone(),
                version: *version,
                current: current.unwrap_or(0),
            });
        }
    }
    let state = if tags.iter().any(|t| t.current > t.version) {
        State::Invalidated
    } else if found.is_stale_at(now) {
        State::Stale
    } else {
        State::Fresh
    };
    let expiry = found.envelope.as_ref().map(|e| e.logical_expiry_ms);
    Ok(Shown {
        key,
        state,
        ttl_ms,
        format: Some(found.format),
        stored_bytes: found.stored_bytes,
        logical_expiry_ms: expiry,
        logical_expiry_in_ms: expiry.map(|e| e as i64 - now as i64),
        tags,
        value: Some(found.value),
        error: None,
    })
}

fn print_human(s: &Shown) {
    let label = |name: &str| format!("{name:<10}");
    println!("{}{}", label("key"), s.key);
    let verdict = match s.state {
        State::Fresh => "fresh: served as a hit".to_owned(),
        State::Stale => {
            "STALE: past its logical expiry; served only as a fail-safe fallback".to_owned()
        }
        State::Invalidated => "INVALIDATED: a tag moved on since it was written; a miss".to_owned(),
        State::Corrupt => format!(
            "CORRUPT: {}; the service counts it as a miss and deletes it",
            s.error.as_deref().unwrap_or("undecodable")
        ),
    };
    println!("{}{verdict}", label("state"));
    let format = match s.format {
        Some(Format::Json) => "JSON",
        Some(Format::MessagePack) => "MessagePack",
        Some(Format::Lz4Json) => "LZ4-compressed JSON",
        Some(Format::Lz4MessagePack) => "LZ4-compressed MessagePack",
        Some(_) => "other",
        None => "unknown",
    };
    let envelope = if s.logical_expiry_ms.is_some() {
        " in an envelope"
    } else {
        ""
    };
    println!(
        "{}{format}{envelope}, {} bytes",
        label("format"),
        s.stored_bytes
    );
    println!(
        "{}{}",
        label("ttl"),
        s.ttl_ms
            .map_or_else(|| "none (persistent)".to_owned(), |ms| duration(ms as i64))
    );
    if let (Some(at), Some(left)) = (s.logical_expiry_ms, s.logical_expiry_in_ms) {
        let when = if left >= 0 {
            format!("in {}", duration(left))
        } else {
            format!("{} ago", duration(-left))
        };
        println!("{}{} ({when})", label("expires"), utc(at));
    }
    for t in &s.tags {
        let mark = if t.current > t.version {
            format!("invalidated (now v{})", t.current)
        } else {
            "current".to_owned()
        };
        println!("{}{} v{} {mark}", label("tag"), t.tag, t.version);
    }
    if let Some(v) = &s.value {
        println!("{}", label("value"));
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    }
}

/// `1h 02m 03s`, `4m 05s`, `6.2s`.
fn duration(ms: i64) -> String {
    let secs = ms / 1000;
    match secs {
        0..60 => format!("{:.1}s", ms as f64 / 1000.0),
        60..3600 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m {:02}s", secs / 3600, secs / 60 % 60, secs % 60),
    }
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Days to civil date (proleptic Gregorian), after H. Hinnant.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_well() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_735_689_600_000), "2025-01-01 00:00:00 UTC");
        assert_eq!(utc(1_709_210_096_000), "2024-02-29 12:34:56 UTC");
        assert_eq!(duration(6_200), "6.2s");
        assert_eq!(duration(245_000), "4m 05s");
        assert_eq!(duration(3_723_000), "1h 02m 03s");
    }
}
