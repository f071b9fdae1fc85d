//! Replays the fuzz targets' seed corpus (`fuzz/seeds/<target>/`) through
//! the same entry points the fuzzers call (`fuzz/fuzz_targets/`), so every
//! test run exercises the decoders on hostile input without a nightly
//! toolchain. Inputs that once made a target fail are kept in the seeds.

use std::path::{Path, PathBuf};

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

fn replay(target: &str, run: fn(&[u8])) {
    for (path, bytes) in seeds(target) {
        let outcome = std::panic::catch_unwind(|| run(&bytes));
        assert!(outcome.is_ok(), "{target} fails on {}", path.display());
        // Every prefix too: truncated reads are the common corruption.
        for cut in 0..bytes.len() {
            let outcome = std::panic::catch_unwind(|| run(&bytes[..cut]));
            assert!(
                outcome.is_ok(),
                "{target} fails on the first {cut} bytes of {}",
                path.display()
            );
        }
    }
}

#[test]
fn codec_seeds() {
    replay("codec", ngx_cache::__fuzz::codec);
}

#[test]
fn envelope_seeds() {
    replay("envelope", ngx_cache::__fuzz::envelope);
}

#[test]
fn message_seeds() {
    replay("message", ngx_cache::__fuzz::message);
}

#[test]
fn key_hash_seeds() {
    replay("key_hash", ngx_cache::__fuzz::key_hash);
}
