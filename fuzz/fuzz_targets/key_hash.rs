//! Fuzz target: see `ngx_cache::__fuzz::key_hash`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ngx_cache::__fuzz::key_hash(data));
