//! Support code for the code that `#[cached]` and `#[invalidate_cache]`
//! generate. Not a public API: anything here may change in any release.
//!
//! The generated code names the library only through `__private`, so the
//! macros keep working when `ngx-cache` is renamed in `Cargo.toml`.

#![allow(missing_docs, missing_debug_implementations, unreachable_pub)]

use std::convert::Infallible;
use std::fmt::{Display, Write as _};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use serde_json::Value;

pub use super::handle::Cache;
pub use crate::options::{EntryOptions, LoadError};
pub use crate::value::Codec;
pub use std::time::Duration;

// ---------------------------------------------------------------- shapes ---

/// How a function's return type splits into the value that is cached and the
/// error that is not. The macro picks [`Fallible`] for a return type whose
/// last path segment is `Result` and [`Plain`] for everything else
/// (`Option<T>` is a plain value whose `None` is JSON `null`).
pub trait Shape<R> {
    type Value;
    type Error;
    fn split(r: R) -> Result<Self::Value, Self::Error>;
    fn join(r: Result<Self::Value, Self::Error>) -> R;
}

/// `T` or `Option<T>`: every value is a candidate for the cache.
pub enum Plain {}

/// `Result<T, E>`: `Ok` values are candidates, `Err` never is.
pub enum Fallible {}

impl<T> Shape<T> for Plain {
    type Value = T;
    type Error = Infallible;
    fn split(r: T) -> Result<T, Infallible> {
        Ok(r)
    }
    fn join(r: Result<T, Infallible>) -> T {
        match r {
            Ok(v) => v,
            Err(never) => match never {},
        }
    }
}

impl<T, E> Shape<Result<T, E>> for Fallible {
    type Value = T;
    type Error = E;
    fn split(r: Result<T, E>) -> Result<T, E> {
        r
    }
    fn join(r: Result<T, E>) -> Result<T, E> {
        r
    }
}

/// Whether an `#[invalidate_cache]` body succeeded (`Ok`, or any value of a
/// non-`Result` function).
pub fn succeeded<S: Outcome<R>, R>(r: &R) -> bool {
    S::is_success(r)
}

/// Success test per shape, without moving the value.
pub trait Outcome<R> {
    fn is_success(r: &R) -> bool;
}

impl<T> Outcome<T> for Plain {
    fn is_success(_: &T) -> bool {
        true
    }
}

impl<T, E> Outcome<Result<T, E>> for Fallible {
    fn is_success(r: &Result<T, E>) -> bool {
        r.is_ok()
    }
}

// ----------------------------------------------------------- assertions ---

/// A value a `#[cached]` function can store: the library's
/// [`Cacheable`](crate::value::Cacheable), with an error message that says which
/// part of the return type is meant.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be stored by #[cached]",
    label = "the cached value must be Serialize + DeserializeOwned + Clone + Send + Sync + 'static",
    note = "for `Result<T, E>` the cached value is `T`; for `T` and `Option<T>` it is the whole return type"
)]
pub trait Cacheable: crate::value::Cacheable {}

impl<T: crate::value::Cacheable> Cacheable for T {}

/// `Cache::get_or_load` behind the bound above, so a value type that cannot
/// be cached is reported once, with the span of the return type.
pub async fn load<V, E, F, Fut>(
    cache: &Cache,
    key: &str,
    opts: &EntryOptions,
    loader: F,
) -> Result<V, LoadError<E>>
where
    V: Cacheable,
    E: Send + Sync + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<V, E>> + Send + 'static,
{
    cache.get_or_load(key, opts, loader).await
}

/// A `&self` receiver that can be moved into a detached loader.
#[diagnostic::on_unimplemented(
    message = "#[cached] on a `&self` method needs `{Self}: Clone + Send + Sync + 'static`",
    label = "the loader runs detached from this call and owns a clone of `self`",
    note = "keep shared state behind an `Arc` and derive `Clone`, or cache a free function instead"
)]
pub trait CachedReceiver {}

impl<T> CachedReceiver for T where T: Clone + Send + Sync + 'static {}

/// Compile-time check emitted with the span of `self`.
pub const fn assert_receiver<T: CachedReceiver + ?Sized>() {}

// ---------------------------------------------------------------- loading ---

/// Why a loader produced no value for the cache.
pub enum Miss<E, V> {
    /// The function returned `Err`.
    Failed(E),
    /// The function returned a value that `unless` kept out of the cache.
    Unstored(V),
}

/// What the loader returns: the value, or why it is not stored.
pub type LoaderResult<S, R> = Result<CachedValue<S, R>, LoaderMiss<S, R>>;

/// The cached value of shape `S` for return type `R`.
pub type CachedValue<S, R> = <S as Shape<R>>::Value;

/// Why the loader of shape `S` stored nothing.
pub type LoaderMiss<S, R> = Miss<<S as Shape<R>>::Error, CachedValue<S, R>>;

/// Turns the function's result into the loader's result.
pub fn into_load<S: Shape<R>, R>(r: R) -> LoaderResult<S, R> {
    S::split(r).map_err(Miss::Failed)
}

/// Like [`into_load`], but a value for which `unless` is true is returned
/// without being stored.
pub fn into_load_unless<S: Shape<R>, R, F>(r: R, unless: F) -> LoaderResult<S, R>
where
    F: FnOnce(&S::Value) -> bool,
{
    match S::split(r) {
        Ok(v) if unless(&v) => Err(Miss::Unstored(v)),
        Ok(v) => Ok(v),
        Err(e) => Err(Miss::Failed(e)),
    }
}

/// Turns what `get_or_load` returned into the function's result, or `None`
/// when the body must run again uncached: the error is shared with other
/// waiters (so it cannot be moved out), the loader timed out or panicked.
pub fn settle<S: Shape<R>, R>(r: Result<S::Value, LoadError<LoaderMiss<S, R>>>) -> Option<R>
where
    S::Value: Clone,
{
    match r {
        Ok(v) => Some(S::join(Ok(v))),
        Err(LoadError::Loader(shared)) => match Arc::try_unwrap(shared) {
            Ok(Miss::Failed(e)) => Some(S::join(Err(e))),
            Ok(Miss::Unstored(v)) => Some(S::join(Ok(v))),
            Err(shared) => match &*shared {
                Miss::Unstored(v) => Some(S::join(Ok(v.clone()))),
                Miss::Failed(_) => None,
            },
        },
        Err(_) => None,
    }
}

/// Pins the output type of an async block, so `?` inside it converts into
/// the function's own error type.
pub fn body<R, F: Future<Output = R>>(f: F) -> F {
    f
}

/// `cache_none = true`: cache `None` for the entry's TTL (the cache's
/// default TTL when the function sets none).
pub fn cache_none(opts: EntryOptions, cache: &Cache) -> EntryOptions {
    let ttl = opts.ttl.unwrap_or(cache.config().default_ttl);
    opts.negative_ttl(ttl)
}

// ----------------------------------------------------------------- caches ---

/// What `cache = <expr>` may evaluate to.
pub trait AsCache {
    fn as_cache(&self) -> Option<&Cache>;
}

impl AsCache for Cache {
    fn as_cache(&self) -> Option<&Cache> {
        Some(self)
    }
}

impl<T: AsCache + ?Sized> AsCache for &T {
    fn as_cache(&self) -> Option<&Cache> {
        (**self).as_cache()
    }
}

impl<T: AsCache + ?Sized> AsCache for Arc<T> {
    fn as_cache(&self) -> Option<&Cache> {
        (**self).as_cache()
    }
}

impl<T: AsCache> AsCache for Option<T> {
    fn as_cache(&self) -> Option<&Cache> {
        self.as_ref().and_then(AsCache::as_cache)
    }
}

/// A once-per-function flag for the "no cache" warning.
pub struct Warned(AtomicBool);

impl Warned {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Self(AtomicBool::new(false))
    }
}

/// The explicit cache, else the global one, else `None` after one warning
/// per function.
pub fn resolve<'a>(
    explicit: Option<&'a Cache>,
    warned: &Warned,
    function: &str,
) -> Option<&'a Cache> {
    if let Some(c) = explicit.or_else(|| super::global::global().map(|g| g as &Cache)) {
        return Some(c);
    }
    if !warned.0.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            function,
            "no cache for this function (no `cache = ..` value and no ngx_cache::install_global); running it uncached"
        );
    }
    None
}

// ------------------------------------------------------------------- keys ---

/// An argument on its way into a key. Methods are picked by autoref
/// specialisation: `(&&KeyArg(&x)).key_value()` prefers `Serialize` and
/// falls back to `Display`; `.push_text()` prefers `Display`. The preferred
/// impl is on `&KeyArg` (its `&self` receiver is exactly `&&KeyArg`); the
/// fallback on `KeyArg` is only reached by auto-deref.
///
/// An argument that has no JSON (a map with non-string keys) or whose JSON
/// would equal another value's (NaN, +inf and -inf are written as `null`,
/// like `None`) gives `None` / `false`: the call then runs uncached, so two
/// different arguments never share an entry.
pub struct KeyArg<'a, T: ?Sized>(pub &'a T);

pub trait KeyValueBySerialize {
    fn key_value(&self) -> Option<Value>;
}

impl<T: Serialize + ?Sized> KeyValueBySerialize for &KeyArg<'_, T> {
    fn key_value(&self) -> Option<Value> {
        let json = serde_json::to_value(self.0).ok()?;
        (!has_null(&json) || !has_non_finite(self.0)).then_some(json)
    }
}

pub trait KeyValueByDisplay {
    fn key_value(&self) -> Option<Value>;
}

impl<T: Display + ?Sized> KeyValueByDisplay for KeyArg<'_, T> {
    fn key_value(&self) -> Option<Value> {
        Some(Value::String(self.0.to_string()))
    }
}

pub trait KeyTextByDisplay {
    fn push_text(&self, out: &mut String) -> bool;
}

impl<T: Display + ?Sized> KeyTextByDisplay for &KeyArg<'_, T> {
    fn push_text(&self, out: &mut String) -> bool {
        let _ = write!(out, "{}", self.0);
        true
    }
}

pub trait KeyTextBySerialize {
    fn push_text(&self, out: &mut String) -> bool;
}

impl<T: Serialize + ?Sized> KeyTextBySerialize for KeyArg<'_, T> {
    fn push_text(&self, out: &mut String) -> bool {
        match serde_json::to_string(self.0) {
            Ok(s) if !s.contains("null") || !has_non_finite(self.0) => {
                out.push_str(&s);
                true
            }
            _ => false,
        }
    }
}

/// Whether `value` holds a JSON `null` anywhere.
fn has_null(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.iter().any(has_null),
        Value::Object(map) => map.values().any(has_null),
        _ => false,
    }
}

/// Whether serializing `value` meets a NaN or an infinity (JSON writes them
/// as `null`). Only asked when the JSON holds a `null`.
fn has_non_finite<T: Serialize + ?Sized>(value: &T) -> bool {
    matches!(value.serialize(super::finder::Finder), Err(e) if e.found)
}

/// All tag parts, or `None` when one has no key text.
pub fn all_parts<const N: usize>(parts: [Option<String>; N]) -> Option<Vec<String>> {
    parts.into_iter().collect()
}

/// The tag parts that have key text (the others were never cached).
pub fn some_parts<const N: usize>(parts: [Option<String>; N]) -> Vec<String> {
    parts.into_iter().flatten().collect()
}

/// `{prefix}:{hash}` where the hash is [`stable_hash`](crate::key::stable_hash)
/// of the JSON object `{argument name: argument value}`. Argument order does
/// not matter; names and values do. `None` when an argument has no value
/// (see [`KeyArg`]).
///
/// This is on every call's path, so it writes the canonical JSON directly
/// (names sorted as `serde_json::Map` sorts them) instead of building a map
/// and converting it again; a test pins it to `stable_hash`.
pub fn hashed_key<const N: usize>(
    prefix: &str,
    parts: [(&str, Option<Value>); N],
) -> Option<String> {
    if parts.iter().any(|(_, v)| v.is_none()) {
        return None;
    }
    let mut parts = parts.map(|(name, v)| (name, v.unwrap_or(Value::Null)));
    struct Object<'a, const N: usize>(&'a [(&'a str, Value); N]);
    impl<const N: usize> Serialize for Object<'_, N> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = s.serialize_map(Some(N))?;
            for (k, v) in self.0 {
                map.serialize_entry(k, v)?;
            }
            map.end()
        }
    }
    parts.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut json = Vec::with_capacity(64);
    serde_json::to_writer(&mut json, &Object(&parts)).ok()?;
    let mut key = String::with_capacity(prefix.len() + 17);
    key.push_str(prefix);
    key.push(':');
    let _ = write!(key, "{:016x}", xxhash_rust::xxh3::xxh3_64(&json));
    Some(key)
}

#[cfg(test)]
#[allow(clippy::needless_borrow)] // autoref specialisation needs the exact `&&`
mod tests {
    use super::*;

    #[test]
    fn hashed_key_is_the_stable_hash_of_the_named_arguments() {
        #[derive(Serialize)]
        struct Args<'a> {
            user_id: &'a str,
            page: u32,
        }
        let by_macro = hashed_key(
            "p",
            [
                ("page", (&&KeyArg(&3u32)).key_value()),
                ("user_id", (&&KeyArg(&"42")).key_value()),
            ],
        )
        .unwrap();
        let by_hand = format!(
            "p:{}",
            crate::key::stable_hash(&Args {
                user_id: "42",
                page: 3
            })
        );
        assert_eq!(by_macro, by_hand);

        // Nested maps are canonical too (keys sorted at every level).
        let nested: std::collections::HashMap<&str, u8> = [("z", 1), ("a", 2)].into();
        #[derive(Serialize)]
        struct Nested<'a> {
            filter: &'a std::collections::HashMap<&'a str, u8>,
            id: u8,
        }
        assert_eq!(
            hashed_key(
                "n",
                [
                    ("id", (&&KeyArg(&1u8)).key_value()),
                    ("filter", (&&KeyArg(&nested)).key_value())
                ]
            )
            .unwrap(),
            format!(
                "n:{}",
                crate::key::stable_hash(&Nested {
                    filter: &nested,
                    id: 1
                })
            )
        );
    }

    #[test]
    fn key_parts_prefer_serialize_for_values_and_display_for_text() {
        struct OnlyDisplay;
        impl Display for OnlyDisplay {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("shown")
            }
        }
        assert_eq!((&&KeyArg(&7u8)).key_value(), Some(Value::from(7)));
        assert_eq!(
            (&&KeyArg(&OnlyDisplay)).key_value(),
            Some(Value::from("shown"))
        );
        let mut s = String::new();
        assert!((&&KeyArg(&"a b")).push_text(&mut s));
        assert!((&&KeyArg(&vec![1, 2])).push_text(&mut s));
        assert_eq!(s, "a b[1,2]");
        // Values JSON cannot tell apart, and values without JSON.
        assert_eq!((&&KeyArg(&None::<f64>)).key_value(), Some(Value::Null));
        assert_eq!((&&KeyArg(&Some(f64::NAN))).key_value(), None);
        assert_eq!((&&KeyArg(&[1.0, f64::INFINITY])).key_value(), None);
        let bad: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
        assert_eq!((&&KeyArg(&bad)).key_value(), None);
        assert!(!(&&KeyArg(&Some(f64::NEG_INFINITY))).push_text(&mut s));
        assert!(!(&&KeyArg(&bad)).push_text(&mut s));
        assert!((&&KeyArg(&None::<f64>)).push_text(&mut s));
    }

    #[test]
    fn settle_recovers_values_and_reruns_on_shared_errors() {
        type R = Result<u8, String>;
        let ok = settle::<Fallible, R>(Ok(1));
        assert_eq!(ok, Some(Ok(1)));
        let own = settle::<Fallible, R>(Err(LoadError::Loader(Arc::new(Miss::Failed("e".into())))));
        assert_eq!(own, Some(Err("e".to_owned())));
        let shared = Arc::new(Miss::Failed("e".to_owned()));
        let _other_waiter = shared.clone();
        assert_eq!(settle::<Fallible, R>(Err(LoadError::Loader(shared))), None);
        let unstored = Arc::new(Miss::Unstored(5));
        let _other_waiter = unstored.clone();
        assert_eq!(
            settle::<Fallible, R>(Err(LoadError::Loader(unstored))),
            Some(Ok(5))
        );
        assert_eq!(settle::<Plain, u8>(Err(LoadError::Panicked)), None);
    }
}
