//! `#[cached]` and `#[invalidate_cache]`: attribute macros that put an
//! async function's results in an [`ngx-cache`](https://docs.rs/ngx-cache)
//! cache. Use them through `ngx_cache::{cached, invalidate_cache}`, whose
//! documentation describes the options, keys and generated code.
//!
//! # Layout
//! - `attr`: parsing of the attribute options.
//! - `template`: key and tag templates (`"user:{user_id}"`).
//! - `signature`: checks on the annotated function and its arguments.
//! - `expand`: code generation.

#![forbid(unsafe_code)]

mod attr;
mod expand;
mod signature;
mod template;

use proc_macro::TokenStream;

/// Caches an async function's results in Redis (and the in-process L1 tier)
/// through `Cache::get_or_load`.
///
/// ```no_run
/// use ngx_cache::{cached, invalidate_cache};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Clone, Serialize, Deserialize)] struct UserProfile { name: String }
/// # #[derive(Clone, Serialize, Deserialize)] struct ProfileUpdate { name: String }
/// # #[derive(Debug)] struct DbError;
/// # async fn db_get_user(_: &str) -> Result<UserProfile, DbError> { Err(DbError) }
/// # async fn db_update_user(_: &str, _: ProfileUpdate) -> Result<UserProfile, DbError> { Err(DbError) }
///
/// #[cached(ttl = 300, key_prefix = "user_data")]
/// async fn get_user_profile(user_id: &str) -> Result<UserProfile, DbError> {
///     db_get_user(user_id).await
/// }
///
/// #[invalidate_cache(key_prefix = "user_data", args = [user_id])]
/// async fn update_user_profile(user_id: &str, data: ProfileUpdate) -> Result<UserProfile, DbError> {
///     db_update_user(user_id, data).await
/// }
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let cache = ngx_cache::Cache::connect(ngx_cache::CacheConfig::from_env()?).await?;
/// ngx_cache::install_global(cache); // once, at start-up
///
/// let p = get_user_profile("42").await;    // runs the body, stores ngx:user_data:<hash> for 300 s
/// let p = get_user_profile("42").await;    // served from the cache
/// get_user_profile_invalidate("42").await; // the next call runs the body again
/// let fresh = get_user_profile_uncached("42").await; // never touches the cache
/// # Ok(()) }
/// ```
///
/// # Options
/// | option | meaning | default |
/// |---|---|---|
/// | `key_prefix = "user_data"` | first part of the key (after the namespace) | the function's name |
/// | `key = "{user_id}:{page}"` | a readable key from named arguments (and `{self}`) instead of the hash | hash of all arguments |
/// | `key_self = true` | puts `self` in the hashed key (`Serialize` or `Display`) | `self` is not in the key |
/// | `ttl = 300` or `ttl = "5m"` | lifetime in Redis (seconds, or `ms` `s` `m` `h` `d`, e.g. `"1h30m"`) | the cache's default TTL |
/// | `cache = self.cache` | the cache to use: a `Cache`, `&Cache`, `Arc<Cache>` or `Option<..>` of them | `ngx_cache::global()` |
/// | `tags = ["user:{user_id}"]` | tags for `Cache::invalidate_tag`, with argument interpolation | none |
/// | `l1 = false` | skip the in-process tier for this function | `true` |
/// | `fail_safe = "5m"` | serve the last value for this long past its TTL when the body fails (`EntryOptions::fail_safe`); the old name `stale_if_error` still works, with a deprecation warning | off |
/// | `codec = "msgpack"` | `"json"` or `"msgpack"` | the cache's codec |
/// | `cache_none = true` | also cache `None` (for the same TTL) | `None` is not cached |
/// | `condition = <expr>` | evaluated on the arguments before anything else; `false` runs the body uncached | always cache |
/// | `unless = <closure>` | `FnOnce(&Value) -> bool` on a fresh result; `true` returns it without storing it | store every value |
///
/// # Keys
/// The key is `{namespace}:{key_prefix}:{hash}`. The hash is
/// `ngx_cache::stable_hash` of the JSON object `{"argument name": value, ..}`,
/// so the key depends on argument **names and values**, not on their order
/// or on `&str` versus `String`. You can rebuild it by hand:
/// `stable_hash(&Args { user_id: "42" })` with a `#[derive(Serialize)] struct
/// Args<'a> { user_id: &'a str }`. A function without arguments uses
/// `{namespace}:{key_prefix}`. With `key = "..."` the key is
/// `{namespace}:{key_prefix}:{the template}`, each `{name}` written with
/// `Display`. Arguments go into keys through `Serialize` when they have it
/// and `Display` otherwise.
///
/// Two different arguments never share an entry. JSON writes NaN and the
/// infinities as `null`, like `None`, and some values have no JSON at all
/// (a map with non-string keys): a call with such an argument in its key or
/// tags runs the function uncached, and `{fn}_invalidate` returns `false`.
///
/// # Return types
/// `T`, `Option<T>` and `Result<T, E>` (any type whose last path segment is
/// `Result`, such as `io::Result<T>`). The cached value (`T`, `Option<T>`,
/// or the `Ok` value) must be `Serialize + DeserializeOwned + Clone + Send +
/// Sync + 'static`; this is checked at compile time with an error on the
/// return type. `Err` is never cached. `None` is cached only with
/// `cache_none = true`.
///
/// # Behaviour
/// - Concurrent calls with the same key run the body once (single flight in
///   `get_or_load`); the others wait for its result.
/// - A cache failure never changes the result: when Redis is slow or down,
///   the body runs. When the load fails in a way this call cannot take the
///   error out of (the error is shared with other waiters, the body timed
///   out or panicked), the body is run again directly, without the cache.
/// - If there is neither a `cache = ..` value nor a global cache at call time,
///   the function runs uncached and logs one warning per function.
///
/// # Companions
/// - `{fn}_uncached(args)`: the original body, never touching the cache.
/// - `{fn}_invalidate(key args) -> bool`: removes the entry (L1, Redis and
///   the other instances' L1). It takes the arguments that make the key: all
///   of them, or those named in `key = ".."`.
///
/// # Arguments and methods
/// The body runs in a loader that `get_or_load` may keep running after the
/// caller has gone, so it owns its inputs: `&T` arguments are copied with
/// `ToOwned` and lent back to the body, and by-value arguments must be
/// `Clone`. Every argument must be a plain name. `&mut` arguments are refused.
///
/// Methods must take `&self`, and `Self` must be `Clone + Send + Sync +
/// 'static` (the loader owns a clone of `self`); keep shared state behind an
/// `Arc`. The companions are added to the same `impl` block, so `#[cached]`
/// does not work inside `impl Trait for Type` blocks, and associated
/// functions without `self` are not supported (use free functions).
///
/// # Generated code (sketch)
/// ```text
/// async fn get_user_profile(user_id: &str) -> Result<UserProfile, DbError> {
///     let Some(cache) = resolve(<cache expr>, global) else { return get_user_profile_uncached(user_id).await };
///     let key = hashed_key("user_data", [("user_id", user_id as JSON)]);
///     let owned = user_id.to_owned();
///     let loader = move || async move { split(get_user_profile_uncached(&owned).await) };
///     match settle(cache.get_or_load(&key, &options, loader).await) {
///         Some(result) => result,
///         None => get_user_profile_uncached(user_id).await,
///     }
/// }
/// async fn get_user_profile_uncached(user_id: &str) -> Result<UserProfile, DbError> { /* the body */ }
/// async fn get_user_profile_invalidate(user_id: &str) -> bool { /* cache.invalidate(&key) */ }
/// ```
/// It names `ngx-cache` only through its hidden `__private` module, under
/// whatever name the calling crate gives the dependency.
#[proc_macro_attribute]
pub fn cached(attr: TokenStream, item: TokenStream) -> TokenStream {
    run(attr, item, |a, f| expand::cached(syn::parse2(a)?, f))
}

/// Invalidates `#[cached]` results after an async function succeeds.
///
/// ```no_run
/// use ngx_cache::{cached, invalidate_cache};
/// # #[derive(Debug)] struct DbError;
///
/// #[cached(key_prefix = "user_data")]
/// async fn get_user_profile(user_id: &str) -> Result<String, DbError> { Ok(user_id.into()) }
///
/// // Same key_prefix, same argument name and type: the same key.
/// #[invalidate_cache(key_prefix = "user_data")]
/// async fn delete_user(user_id: &str) -> Result<(), DbError> { Ok(()) }
///
/// // Extra arguments: name the ones that make the key.
/// #[invalidate_cache(key_prefix = "user_data", args = [user_id])]
/// async fn rename_user(user_id: &str, name: String) -> Result<(), DbError> { Ok(()) }
///
/// // Readable keys and tags.
/// #[invalidate_cache(key_prefix = "orders", key = "{customer}", tags = ["customer:{customer}"])]
/// async fn place_order(customer: u64, total: u32) -> Result<u64, DbError> { Ok(1) }
/// ```
///
/// # Options
/// | option | meaning |
/// |---|---|
/// | `key_prefix = ".."` | the `#[cached]` function's `key_prefix` (its name if it set none) |
/// | `args = [a, b]` | the arguments that make the key; default: all arguments |
/// | `key = "{a}"` | the `#[cached]` function's `key` template, for readable keys |
/// | `key_self = true` | include `self`, as the `#[cached]` method did |
/// | `tags = [".."]` | tags to invalidate too (argument interpolation allowed); alone, without `key_prefix`, only tags are invalidated |
/// | `cache = <expr>` | as for `#[cached]`; default: the global cache |
///
/// # Matching the cached function
/// The key is derived exactly as `#[cached]` derives it: a hash of the JSON
/// object `{argument name: value}`. The arguments it is made of must have the
/// **same names** as the cached function's and values that **serialize the
/// same** (`&str` and `String` do; `u32` and `u64` do; a renamed argument
/// does not). Order does not matter. Arguments that are not part of the
/// cached function's key must be left out with `args = [..]`; without it,
/// every argument is used.
///
/// # When it runs
/// The keys are computed before the body (which may consume the arguments).
/// After the body returns, the entry is removed from L1, Redis and the other
/// instances, but only on success: `Ok(..)`, or any value of a function that
/// does not return `Result`. After `Err` nothing is invalidated. A cache
/// failure never changes the function's result.
#[proc_macro_attribute]
pub fn invalidate_cache(attr: TokenStream, item: TokenStream) -> TokenStream {
    run(attr, item, |a, f| expand::invalidate(syn::parse2(a)?, f))
}

/// Parses the function and expands it; on misuse, emits the error next to
/// the untouched function so no further errors follow from its absence.
fn run(
    attr: TokenStream,
    item: TokenStream,
    expand: impl FnOnce(proc_macro2::TokenStream, syn::ItemFn) -> syn::Result<proc_macro2::TokenStream>,
) -> TokenStream {
    let item2 = proc_macro2::TokenStream::from(item.clone());
    let f: syn::ItemFn = match syn::parse2(item2.clone()) {
        Ok(f) => f,
        Err(e) => {
            let err = syn::Error::new(
                e.span(),
                "this attribute can only be applied to an `async fn`",
            );
            let err = err.to_compile_error();
            return quote::quote!(#err #item2).into();
        }
    };
    match expand(attr.into(), f) {
        Ok(ts) => ts.into(),
        Err(e) => {
            let err = e.to_compile_error();
            quote::quote!(#err #item2).into()
        }
    }
}
