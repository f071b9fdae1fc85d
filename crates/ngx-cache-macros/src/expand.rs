//! Code generation for `#[cached]` and `#[invalidate_cache]`.
//!
//! The generated code names the library only through `<ngx-cache>::__private`,
//! where `<ngx-cache>` is the name the calling crate gives the dependency.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, LitStr, Pat};

use crate::attr::{CachedArgs, InvalidateArgs};
use crate::signature::{Arg, Passing, Signature};
use crate::template::{Piece, Template};

/// `::ngx_cache::__private`, or `::renamed::__private`.
fn private_path() -> TokenStream {
    use proc_macro_crate::{FoundCrate, crate_name};
    match crate_name("ngx-cache") {
        Ok(FoundCrate::Name(name)) => {
            let ident = Ident::new(&name, Span::call_site());
            quote!(::#ident::__private)
        }
        // `Itself` means ngx-cache's own tests, benches or doctests, which
        // see the library as `ngx_cache`; the library never uses its macros.
        Ok(FoundCrate::Itself) | Err(_) => quote!(::ngx_cache::__private),
    }
}

/// How a key is derived from the arguments.
enum KeySpec<'a> {
    /// `{prefix}:{stable hash of {name: value, ..}}`; just `{prefix}` for none.
    Hashed(Vec<&'a Arg>, bool),
    /// `{prefix}:{template}`.
    Template(&'a Template),
}

struct Ctx<'a> {
    p: TokenStream,
    sig: &'a Signature,
    fn_name: String,
}

impl Ctx<'_> {
    /// Checks that every `{name}` in `t` is an argument (or `self` of a method).
    fn check_template(&self, t: &Template, what: &str) -> syn::Result<()> {
        for name in t.args() {
            let ok = if name == "self" {
                self.sig.receiver.is_some()
            } else {
                self.sig.arg(name).is_some()
            };
            if !ok {
                return Err(syn::Error::new(
                    t.span,
                    format!(
                        "`{what}` refers to `{{{name}}}`, but `{}` has no argument named `{name}`",
                        self.fn_name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// An expression that builds an `Option<String>` from a template: `None`
    /// when an argument has no key text that tells it apart (see
    /// `__private::KeyArg`).
    fn template_expr(&self, prefix: Option<&LitStr>, t: &Template) -> TokenStream {
        let p = &self.p;
        let mut pushes = Vec::new();
        if let Some(prefix) = prefix {
            let text = format!("{}:", prefix.value());
            pushes.push(quote!(__ngx_text.push_str(#text);));
        }
        for piece in &t.pieces {
            pushes.push(match piece {
                Piece::Text(s) => quote!(__ngx_text.push_str(#s);),
                Piece::Arg(a) if a == "self" => {
                    quote!(__ngx_ok &= (&&#p::KeyArg(self)).push_text(&mut __ngx_text);)
                }
                Piece::Arg(a) => {
                    let arg = self.sig.arg(a).expect("checked by check_template");
                    let ident = &arg.ident;
                    quote_spanned!(ident.span()=> __ngx_ok &= (&&#p::KeyArg(&#ident)).push_text(&mut __ngx_text);)
                }
            });
        }
        quote!({
            #[allow(unused_imports)]
            use #p::{KeyTextByDisplay as _, KeyTextBySerialize as _};
            let mut __ngx_text = ::std::string::String::with_capacity(64);
            let mut __ngx_ok = true;
            #(#pushes)*
            if __ngx_ok {
                ::core::option::Option::Some(__ngx_text)
            } else {
                ::core::option::Option::None
            }
        })
    }

    fn key_expr(&self, prefix: &LitStr, spec: &KeySpec<'_>) -> TokenStream {
        let p = &self.p;
        match spec {
            KeySpec::Template(t) => self.template_expr(Some(prefix), t),
            KeySpec::Hashed(args, key_self) => {
                let mut parts = Vec::new();
                if *key_self {
                    parts.push(quote!(("self", (&&#p::KeyArg(self)).key_value())));
                }
                for arg in args {
                    let ident = &arg.ident;
                    let name = ident.to_string();
                    let name = name.strip_prefix("r#").unwrap_or(&name);
                    parts.push(
                        quote_spanned!(ident.span()=> (#name, (&&#p::KeyArg(&#ident)).key_value())),
                    );
                }
                if parts.is_empty() {
                    return quote!(::core::option::Option::Some(::std::string::String::from(#prefix)));
                }
                quote!({
                    #[allow(unused_imports)]
                    use #p::{KeyValueByDisplay as _, KeyValueBySerialize as _};
                    #p::hashed_key(#prefix, [#(#parts),*])
                })
            }
        }
    }

    /// `Option<&Cache>`: the explicit cache, the global one, or `None` after
    /// one warning. Binds `__ngx_cache_src` first so a temporary lives on.
    fn resolve(&self, cache: Option<&syn::Expr>) -> (TokenStream, TokenStream) {
        let p = &self.p;
        let name = &self.fn_name;
        let (bind, explicit) = match cache {
            Some(e) => (
                quote_spanned!(e.span()=> let __ngx_cache_src = &(#e);),
                quote!(#p::AsCache::as_cache(__ngx_cache_src)),
            ),
            None => (quote!(), quote!(::core::option::Option::None)),
        };
        let resolve = quote!(#p::resolve(#explicit, {
            static __NGX_WARNED: #p::Warned = #p::Warned::new();
            &__NGX_WARNED
        }, #name));
        (bind, resolve)
    }

    fn shape(&self) -> TokenStream {
        let p = &self.p;
        if self.sig.fallible {
            quote!(#p::Fallible)
        } else {
            quote!(#p::Plain)
        }
    }
}

/// `tokens` with every span set to `span` (so an error on the whole
/// expression points there).
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tt| {
            if let proc_macro2::TokenTree::Group(g) = &tt {
                let mut group = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                tt = proc_macro2::TokenTree::Group(group);
            } else {
                tt.set_span(span);
            }
            tt
        })
        .collect()
}

/// The signature's inputs with `mut` removed from argument patterns.
fn plain_inputs(f: &ItemFn) -> TokenStream {
    let inputs = f.sig.inputs.iter().map(|input| match input {
        FnArg::Typed(pt) => {
            let mut pt = pt.clone();
            if let Pat::Ident(p) = &mut *pt.pat {
                p.mutability = None;
            }
            quote!(#pt)
        }
        FnArg::Receiver(r) => quote!(#r),
    });
    quote!(#(#inputs),*)
}

/// Expands `#[cached]`.
pub(crate) fn cached(args: CachedArgs, item: ItemFn) -> syn::Result<TokenStream> {
    let sig = Signature::analyze(&item, "cached", true)?;
    if let (Some(unless), Some(_)) = (&args.unless, &args.fail_safe) {
        // get_or_load sees an unstored value as a failed load and would
        // answer with the stale value instead of the fresh one.
        return Err(syn::Error::new(
            unless.span(),
            "`unless` cannot be combined with `fail_safe`: a result kept out of the cache would be replaced by a stale value",
        ));
    }
    let name = &item.sig.ident;
    let cx = Ctx {
        p: private_path(),
        sig: &sig,
        fn_name: name.to_string(),
    };
    let p = &cx.p;
    let prefix = args
        .key_prefix
        .clone()
        .unwrap_or_else(|| LitStr::new(&cx.fn_name, name.span()));
    if let Some(t) = &args.key {
        cx.check_template(t, "key")?;
    }
    for t in &args.tags {
        cx.check_template(t, "tags")?;
    }
    let spec = match &args.key {
        Some(t) => KeySpec::Template(t),
        None => KeySpec::Hashed(sig.args.iter().collect(), args.key_self),
    };
    let key_args: Vec<&Arg> = match &args.key {
        Some(t) => sig
            .args
            .iter()
            .filter(|a| t.args().any(|n| a.ident == n))
            .collect(),
        None => sig.args.iter().collect(),
    };

    let uncached = format_ident!("{}_uncached", name);
    let invalidate = format_ident!("{}_invalidate", name);
    let shape = cx.shape();
    let ret = &sig.ret;
    let idents: Vec<&Ident> = sig.args.iter().map(|a| &a.ident).collect();
    let method = sig.receiver.is_some();
    let direct = if method {
        quote!(Self::#uncached(self, #(#idents),*))
    } else {
        quote!(#uncached(#(#idents),*))
    };

    // Owned copies for the detached loader, and how the body gets them back.
    let mut copies = Vec::new();
    let mut loader_args = Vec::new();
    for arg in &sig.args {
        let ident = &arg.ident;
        let owned = format_ident!("__ngx_owned_{}", ident);
        let ty = &arg.ty;
        match &arg.passing {
            Passing::Ref(elem) => {
                copies.push(quote_spanned!(ty.span()=> let #owned = <#elem as ::std::borrow::ToOwned>::to_owned(#ident);));
                loader_args.push(quote!(::core::borrow::Borrow::<#elem>::borrow(&#owned)));
            }
            Passing::Owned => {
                copies.push(
                    quote_spanned!(ty.span()=> let #owned = ::core::clone::Clone::clone(&#ident);),
                );
                loader_args.push(quote!(#owned));
            }
        }
    }
    let (receiver_check, loader_call) = match sig.receiver {
        Some(span) => {
            copies.push(quote!(let __ngx_self = ::core::clone::Clone::clone(self);));
            (
                quote_spanned!(span=> let _ = #p::assert_receiver::<Self>;),
                quote!(Self::#uncached(&__ngx_self, #(#loader_args),*)),
            )
        }
        None => (quote!(), quote!(#uncached(#(#loader_args),*))),
    };
    let into_load = match &args.unless {
        Some(unless) => {
            quote!(#p::into_load_unless::<#shape, #ret, _>(#loader_call.await, #unless))
        }
        None => quote!(#p::into_load::<#shape, #ret>(#loader_call.await)),
    };

    // `load` carries the Cacheable bound; its span is the return type's, so
    // a value that cannot be cached is reported there.
    let p_at_ret = respan(p.clone(), ret.span());
    let load = quote_spanned!(ret.span()=>
        #p_at_ret::load(__ngx_cache, &__ngx_key, &__ngx_opts, __ngx_loader).await
    );
    let condition = args.condition.as_ref().map(|c| {
        quote_spanned!(c.span()=>
            let __ngx_use_cache: bool = #c;
            if !__ngx_use_cache {
                return #direct.await;
            }
        )
    });
    let (bind_cache, resolve) = cx.resolve(args.cache.as_ref());
    let key = cx.key_expr(&prefix, &spec);
    let options = options(&cx, &args);
    let tags_bind = (!args.tags.is_empty()).then(|| {
        let tags = args.tags.iter().map(|t| cx.template_expr(None, t));
        quote!(
            let ::core::option::Option::Some(__ngx_tags) = #p::all_parts([#(#tags),*]) else {
                return #direct.await;
            };
        )
    });
    // The old option name still works, with a deprecation warning at it: a
    // use of a `#[deprecated]` item spanned at the user's `stale_if_error`.
    let deprecation = args.stale_if_error.map(|span| {
        quote_spanned!(span=>
            {
                #[deprecated(note = "`stale_if_error` is renamed `fail_safe`, as in `EntryOptions::fail_safe`")]
                #[allow(non_upper_case_globals)]
                const stale_if_error: () = ();
                let () = stale_if_error;
            }
        )
    });

    // The wrapper keeps the function's name, docs and signature.
    let attrs = &item.attrs;
    let vis = &item.vis;
    let mut outer = item.sig.clone();
    let inputs = plain_inputs(&item);
    outer.inputs = syn::parse_quote!(#inputs);
    let wrapper = quote! {
        #(#attrs)*
        #vis #outer {
            #deprecation
            #receiver_check
            #condition
            #bind_cache
            let ::core::option::Option::Some(__ngx_cache) = #resolve else {
                return #direct.await;
            };
            // Arguments that cannot be told apart in a key run uncached.
            let ::core::option::Option::Some(__ngx_key) = (#key) else {
                return #direct.await;
            };
            #tags_bind
            let __ngx_opts = #options;
            let __ngx_loader = {
                #(#copies)*
                move || async move { #into_load }
            };
            match #p::settle::<#shape, #ret>(
                #load,
            ) {
                ::core::option::Option::Some(__ngx_result) => __ngx_result,
                ::core::option::Option::None => #direct.await,
            }
        }
    };

    // `{fn}_uncached`: the original function, renamed.
    let mut body_fn = item.clone();
    body_fn.sig.ident = uncached.clone();
    body_fn.attrs.retain(|a| !a.path().is_ident("doc"));
    let uncached_doc = format!("Runs `{name}` without the cache: neither reads nor writes it.");

    // `{fn}_invalidate`: removes the entry for these key arguments.
    let invalidate_doc = format!(
        "Removes the cached result of `{name}` for these arguments (in L1, Redis and on other instances). \
         Returns whether an entry was removed."
    );
    let generics = &item.sig.generics;
    let where_clause = &generics.where_clause;
    let receiver = item.sig.receiver().map(|r| quote!(#r,));
    let inv_inputs = key_args.iter().map(|a| {
        let (ident, ty) = (&a.ident, &a.ty);
        quote!(#ident: #ty)
    });
    let (bind_cache2, resolve2) = cx.resolve(args.cache.as_ref());
    let key2 = cx.key_expr(&prefix, &spec);
    let invalidate_fn = quote! {
        #[doc = #invalidate_doc]
        #[allow(dead_code)]
        #vis async fn #invalidate #generics (#receiver #(#inv_inputs),*) -> bool #where_clause {
            #bind_cache2
            let ::core::option::Option::Some(__ngx_cache) = #resolve2 else {
                return false;
            };
            let ::core::option::Option::Some(__ngx_key) = (#key2) else {
                return false;
            };
            __ngx_cache.invalidate(&__ngx_key).await
        }
    };

    Ok(quote! {
        #wrapper

        #[doc = #uncached_doc]
        #[allow(dead_code)]
        #body_fn

        #invalidate_fn
    })
}

/// The `EntryOptions` expression.
fn options(cx: &Ctx<'_>, args: &CachedArgs) -> TokenStream {
    let p = &cx.p;
    let mut chain = Vec::new();
    if let Some(ttl) = args.ttl {
        let ms = ttl.as_millis() as u64;
        chain.push(quote!(.ttl(#p::Duration::from_millis(#ms))));
    }
    if let Some(l1) = args.l1 {
        chain.push(quote!(.l1(#l1)));
    }
    if let Some(d) = args.fail_safe {
        let ms = d.as_millis() as u64;
        chain.push(quote!(.fail_safe(#p::Duration::from_millis(#ms))));
    }
    match args.msgpack {
        Some(true) => chain.push(quote!(.codec(#p::Codec::MessagePack))),
        Some(false) => chain.push(quote!(.codec(#p::Codec::Json))),
        None => {}
    }
    if !args.tags.is_empty() {
        // Bound by the caller, `None` parts already sent around the cache.
        chain.push(quote!(.tags(__ngx_tags)));
    }
    let opts = quote!(#p::EntryOptions::new() #(#chain)*);
    if args.cache_none {
        quote!(#p::cache_none(#opts, __ngx_cache))
    } else {
        opts
    }
}

/// Expands `#[invalidate_cache]`.
pub(crate) fn invalidate(args: InvalidateArgs, item: ItemFn) -> syn::Result<TokenStream> {
    let sig = Signature::analyze(&item, "invalidate_cache", false)?;
    let cx = Ctx {
        p: private_path(),
        sig: &sig,
        fn_name: item.sig.ident.to_string(),
    };
    let p = &cx.p;
    for t in &args.tags {
        cx.check_template(t, "tags")?;
    }
    let key = match &args.key_prefix {
        None => None,
        Some(prefix) => {
            let spec = match (&args.key, &args.args) {
                (Some(_), Some(list)) => {
                    return Err(syn::Error::new_spanned(
                        list.first().map(|i| quote!(#i)).unwrap_or_default(),
                        "use either `key` or `args`, not both",
                    ));
                }
                (Some(t), None) => {
                    cx.check_template(t, "key")?;
                    KeySpec::Template(t)
                }
                (None, Some(list)) => {
                    let mut chosen = Vec::new();
                    for ident in list {
                        let arg = sig.arg(&ident.to_string()).ok_or_else(|| {
                            syn::Error::new(
                                ident.span(),
                                format!("`{}` has no argument named `{ident}`", cx.fn_name),
                            )
                        })?;
                        chosen.push(arg);
                    }
                    KeySpec::Hashed(chosen, args.key_self)
                }
                (None, None) => KeySpec::Hashed(sig.args.iter().collect(), args.key_self),
            };
            Some(cx.key_expr(prefix, &spec))
        }
    };
    let key_bind = key
        .as_ref()
        .map(|k| quote!(let __ngx_key: ::core::option::Option<::std::string::String> = #k;));
    // A key or tag whose arguments cannot be told apart was never cached.
    let key_use = key.as_ref().map(|_| {
        quote!(
            if let ::core::option::Option::Some(__ngx_key) = &__ngx_key {
                __ngx_cache.invalidate(__ngx_key).await;
            }
        )
    });
    let tags = args.tags.iter().map(|t| cx.template_expr(None, t));
    let tag_bind = quote!(let __ngx_tags: ::std::vec::Vec<::std::string::String> = #p::some_parts([#(#tags),*]););
    let (bind_cache, resolve) = cx.resolve(args.cache.as_ref());
    let shape = cx.shape();
    let ret = &sig.ret;
    let block = &item.block;
    let attrs = &item.attrs;
    let vis = &item.vis;
    let outer = &item.sig;
    Ok(quote! {
        #(#attrs)*
        #vis #outer {
            // Keys are derived before the body, which may consume the arguments.
            #key_bind
            #tag_bind
            let __ngx_result: #ret = #p::body::<#ret, _>(async #block).await;
            if #p::succeeded::<#shape, #ret>(&__ngx_result) {
                #bind_cache
                if let ::core::option::Option::Some(__ngx_cache) = #resolve {
                    #key_use
                    for __ngx_tag in &__ngx_tags {
                        __ngx_cache.invalidate_tag(__ngx_tag).await;
                    }
                }
            }
            __ngx_result
        }
    })
}
