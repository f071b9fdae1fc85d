//! Removal of credentials from URLs and messages, for the cache's
//! `REDIS_URL` and for any other connection URL an application logs (a
//! database URL, say).

/// Query parameters that carry a password (redis-rs reads `pass` for
/// `unix://` sockets; PostgreSQL clients read `password`).
const SECRET_PARAMS: [&str; 2] = ["pass", "password"];

/// Returns `url` with every password replaced by `***`: the password of the
/// user info (the user name stays; a lone user-info part is hidden, since
/// some clients read it as a password) and the value of a `pass` or
/// `password` query parameter.
///
/// Handles `redis://user:pass@host`, `redis://:pass@host`,
/// `unix:///path.sock?pass=..`, `postgres://user@host/db?password=..`, and
/// comma-separated lists of such URLs (cluster node lists).
///
/// ```
/// use ngx_cache::redact::redact_url;
///
/// assert_eq!(redact_url("redis://app:s3cret@cache:6379/0"), "redis://app:***@cache:6379/0");
/// assert_eq!(
///     redact_url("postgres://db/ngx?user=app&password=s3cret"),
///     "postgres://db/ngx?user=app&password=***"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    url.split(',').map(redact_one).collect::<Vec<_>>().join(",")
}

fn redact_one(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = redact_user_info(base);
    if let Some(query) = query {
        out.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, _)) if is_secret_param(name) => format!("{name}=***"),
                _ => param.to_owned(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    out
}

fn is_secret_param(name: &str) -> bool {
    SECRET_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(name))
}

fn redact_user_info(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let user = userinfo.split(':').next().unwrap_or("");
    let redacted = if userinfo.contains(':') {
        format!("{user}:***")
    } else {
        // `redis://secret@host` puts the password in the user slot for some clients.
        "***".to_owned()
    };
    format!("{}://{}@{}", &url[..scheme_end], redacted, &rest[at + 1..])
}

/// Extracts every password of the URLs in a comma-separated list: user-info
/// passwords and `pass` / `password` query parameters.
pub(crate) fn passwords(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    for u in url.split(',') {
        let (base, query) = u.split_once('?').unwrap_or((u, ""));
        let user_info = base.find("://").and_then(|start| {
            let rest = &base[start + 3..];
            let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
            let userinfo = &authority[..authority.rfind('@')?];
            Some(userinfo.split_once(':').map_or(userinfo, |(_, p)| p))
        });
        found.extend(user_info.filter(|p| !p.is_empty()).map(str::to_owned));
        found.extend(query.split('&').filter_map(|param| {
            let (name, value) = param.split_once('=')?;
            (is_secret_param(name) && !value.is_empty()).then(|| value.to_owned())
        }));
    }
    found
}

/// Replaces every occurrence of `secret` in `message` with `***`.
pub(crate) fn scrub(message: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() => message.replace(s, "***"),
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("redis://localhost:6379"),
            "redis://localhost:6379"
        );
        assert_eq!(
            redact_url("redis://user:s3cret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact_url("rediss://:pw@h"), "rediss://:***@h");
        assert_eq!(
            redact_url("redis://:a@h1:1,redis://:b@h2:2"),
            "redis://:***@h1:1,redis://:***@h2:2"
        );
    }

    #[test]
    fn redacts_passwords_in_query_parameters() {
        for url in [
            "unix:///run/redis.sock?pass=hunter2",
            "redis+unix:///run/redis.sock?db=1&pass=hunter2",
            "postgres://app@db/ngx?password=hunter2&sslmode=require",
            "redis://h:6379/0?password=hunter2",
        ] {
            let shown = redact_url(url);
            assert!(!shown.contains("hunter2"), "{url} -> {shown}");
            assert!(shown.contains("=***"), "{url} -> {shown}");
        }
        // A lone user-info part may be a password: it is hidden too.
        assert_eq!(
            redact_url("postgres://app@db/ngx?password=hunter2&sslmode=require"),
            "postgres://***@db/ngx?password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("unix:///s.sock?pass=p&db=2"),
            "unix:///s.sock?pass=***&db=2"
        );
        assert_eq!(
            passwords("unix:///s.sock?pass=hunter2"),
            vec!["hunter2".to_owned()]
        );
    }

    #[test]
    fn keeps_the_user_and_cuts_at_the_last_at_of_the_authority() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/ngx"),
            "postgres://app:***@db:5432/ngx"
        );
        assert_eq!(
            redact_url("redis://u:p@ss@h:1/0?x=a@b"),
            "redis://u:***@h:1/0?x=a@b"
        );
    }

    #[test]
    fn finds_passwords() {
        assert_eq!(passwords("redis://u:p@h,redis://h2"), vec!["p".to_owned()]);
        assert!(passwords("redis://h").is_empty());
        assert_eq!(scrub("bad p here", Some("p here")), "bad ***");
    }
}
