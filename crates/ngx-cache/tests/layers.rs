//! The source layout keeps its promises (see "Layout" in `src/lib.rs`):
//! imports run one way through the layers, only `backend/` uses the `redis`
//! crate, and only `cache/` names the `Cache` handle and its `Inner` state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may use its own layer and lower ones.
const LAYERS: &[&[&str]] = &[
    &[
        "error",
        "redact",
        "key",
        "breaker",
        "telemetry",
        "stats",
        "health",
        "time",
    ],
    &["value"],
    &["config", "options"],
    &["backend"],
    &["tier"],
    &["coherence"],
    &["load"],
    &["cache"],
];

/// Every `.rs` file under `src/`, by path relative to it, with test modules
/// and comments removed.
fn sources() -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]\nmod ").next().unwrap_or_default();
            let code: String = code
                .lines()
                .map(|l| l.split("//").next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n");
            let rel = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, code)
        })
        .collect()
}

/// The top-level module a source file belongs to (`lib` for `lib.rs`).
fn top(rel: &str) -> &str {
    rel.split('/').next().unwrap().trim_end_matches(".rs")
}

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

#[test]
fn imports_only_go_down_the_layers() {
    let mut wrong = Vec::new();
    for (rel, code) in sources() {
        let own = top(&rel);
        let Some(own_layer) = layer(own) else {
            assert!(
                matches!(own, "lib" | "tour"),
                "{rel} is in no layer: add it to LAYERS and to the Layout in lib.rs"
            );
            continue;
        };
        for (at, _) in code.match_indices("crate::") {
            let target: String = code[at + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            match layer(&target) {
                Some(l) if l > own_layer => wrong.push(format!("{rel} uses crate::{target}")),
                Some(_) => {}
                None => wrong.push(format!("{rel} uses crate::{target}, which is in no layer")),
            }
        }
    }
    assert!(wrong.is_empty(), "imports going up: {wrong:#?}");
}

#[test]
fn only_the_backend_uses_the_redis_crate() {
    let users: Vec<String> = sources()
        .into_iter()
        .filter(|(rel, code)| top(rel) != "backend" && code.contains("redis::"))
        .map(|(rel, _)| rel)
        .collect();
    assert!(users.is_empty(), "redis:: outside backend/: {users:?}");
}

#[test]
fn only_the_cache_folder_names_the_handle() {
    let named = |code: &str, word: &str| {
        code.match_indices(word).any(|(at, _)| {
            let before = code[..at].chars().next_back();
            let after = code[at + word.len()..].chars().next();
            let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            // A path to the name (`quick_cache::sync::Cache`) is another
            // crate's type unless it starts in this crate.
            let path_start = code[..at]
                .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(0, |i| i + 1);
            let path = &code[path_start..at];
            let foreign = !path.is_empty()
                && !["crate::", "super::", "self::"]
                    .iter()
                    .any(|own| path.starts_with(own));
            !ident(before) && !ident(after) && !foreign
        })
    };
    let users: Vec<String> = sources()
        .into_iter()
        .filter(|(rel, code)| {
            !matches!(top(rel), "cache" | "lib" | "tour")
                && (named(code, "Cache") || named(code, "Inner"))
        })
        .map(|(rel, _)| rel)
        .collect();
    assert!(
        users.is_empty(),
        "Cache or Inner named outside cache/: {users:?}"
    );
}
