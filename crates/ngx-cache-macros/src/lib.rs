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

/// Caches an async function's results. See `ngx_cache::cached`.
#[proc_macro_attribute]
pub fn cached(attr: TokenStream, item: TokenStream) -> TokenStream {
    run(attr, item, |a, f| expand::cached(syn::parse2(a)?, f))
}

/// Invalidates cached results after an async function succeeds. See
/// `ngx_cache::invalidate_cache`.
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
            let err = syn::Error::new(e.span(), "this attribute can only be applied to an `async fn`");
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
