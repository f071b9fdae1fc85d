//! Removal of credentials from URLs and messages.

/// Returns `url` with any password replaced by `***`.
///
/// Handles `redis://user:pass@host`, `redis://:pass@host`, and comma-separated
/// lists of such URLs (cluster node lists).
pub(crate) fn redact_url(url: &str) -> String {
    url.split(',').map(redact_one).collect::<Vec<_>>().join(",")
}

fn redact_one(url: &str) -> String {
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

/// Extracts the password of every URL in a comma-separated list, if any.
pub(crate) fn passwords(url: &str) -> Vec<String> {
    url.split(',')
        .filter_map(|u| {
            let rest = &u[u.find("://")? + 3..];
            let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
            let userinfo = &authority[..authority.rfind('@')?];
            let pass = userinfo.split_once(':').map_or(userinfo, |(_, p)| p);
            (!pass.is_empty()).then(|| pass.to_owned())
        })
        .collect()
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
    fn finds_passwords() {
        assert_eq!(passwords("redis://u:p@h,redis://h2"), vec!["p".to_owned()]);
        assert!(passwords("redis://h").is_empty());
        assert_eq!(scrub("bad p here", Some("p here")), "bad ***");
    }
}
