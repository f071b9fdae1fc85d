//! Fuzz target: see `ngx_cache::__fuzz::codec`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ngx_cache::__fuzz::codec(data));
