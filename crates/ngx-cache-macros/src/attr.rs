//! Parsing of the attribute arguments: `#[cached(ttl = 300, ...)]` and
//! `#[invalidate_cache(key_prefix = "...", ...)]`.

use std::time::Duration;

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitBool, LitInt, LitStr, Token, bracketed};

use crate::template::Template;

/// The arguments of `#[cached(..)]`.
#[derive(Default)]
pub(crate) struct CachedArgs {
    pub(crate) key_prefix: Option<LitStr>,
    pub(crate) key: Option<Template>,
    pub(crate) key_self: bool,
    pub(crate) cache: Option<Expr>,
    pub(crate) ttl: Option<Duration>,
    pub(crate) l1: Option<bool>,
    pub(crate) fail_safe: Option<Duration>,
    /// Where the deprecated name `stale_if_error` was used for `fail_safe`.
    pub(crate) stale_if_error: Option<Span>,
    pub(crate) msgpack: Option<bool>,
    pub(crate) tags: Vec<Template>,
    pub(crate) cache_none: bool,
    pub(crate) condition: Option<Expr>,
    pub(crate) unless: Option<Expr>,
}

/// The arguments of `#[invalidate_cache(..)]`.
#[derive(Default)]
pub(crate) struct InvalidateArgs {
    pub(crate) key_prefix: Option<LitStr>,
    pub(crate) key: Option<Template>,
    pub(crate) args: Option<Vec<Ident>>,
    pub(crate) key_self: bool,
    pub(crate) cache: Option<Expr>,
    pub(crate) tags: Vec<Template>,
}

const CACHED_OPTIONS: &[&str] = &[
    "key_prefix",
    "key",
    "key_self",
    "cache",
    "ttl",
    "l1",
    "fail_safe",
    "stale_if_error",
    "codec",
    "tags",
    "cache_none",
    "condition",
    "unless",
];

const INVALIDATE_OPTIONS: &[&str] = &["key_prefix", "key", "args", "key_self", "cache", "tags"];

/// Reads `name = value` pairs, rejecting unknown and repeated names.
fn parse_options(
    input: ParseStream<'_>,
    known: &[&str],
    mut each: impl FnMut(&Ident, ParseStream<'_>) -> syn::Result<()>,
) -> syn::Result<()> {
    let mut seen: Vec<String> = Vec::new();
    while !input.is_empty() {
        let name: Ident = input.parse()?;
        let text = name.to_string();
        if !known.contains(&text.as_str()) {
            return Err(syn::Error::new(
                name.span(),
                format!(
                    "unknown option `{text}`; expected one of: {}",
                    known.join(", ")
                ),
            ));
        }
        if seen.contains(&text) {
            return Err(syn::Error::new(
                name.span(),
                format!("duplicate option `{text}`"),
            ));
        }
        seen.push(text);
        input.parse::<Token![=]>()?;
        each(&name, input)?;
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    Ok(())
}

impl Parse for CachedArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut a = CachedArgs::default();
        parse_options(input, CACHED_OPTIONS, |name, input| {
            match name.to_string().as_str() {
                "key_prefix" => a.key_prefix = Some(key_prefix(input)?),
                "key" => a.key = Some(input.parse()?),
                "key_self" => a.key_self = input.parse::<LitBool>()?.value,
                "cache" => a.cache = Some(input.parse()?),
                "ttl" => a.ttl = Some(duration(input)?),
                "l1" => a.l1 = Some(input.parse::<LitBool>()?.value),
                "fail_safe" | "stale_if_error" => {
                    if a.fail_safe.is_some() {
                        return Err(syn::Error::new(
                            name.span(),
                            "`stale_if_error` is the old name of `fail_safe`: give only `fail_safe`",
                        ));
                    }
                    if name == "stale_if_error" {
                        a.stale_if_error = Some(name.span());
                    }
                    a.fail_safe = Some(duration(input)?);
                }
                "codec" => a.msgpack = Some(codec(input)?),
                "tags" => a.tags = templates(input)?,
                "cache_none" => a.cache_none = input.parse::<LitBool>()?.value,
                "condition" => a.condition = Some(input.parse()?),
                "unless" => a.unless = Some(input.parse()?),
                _ => unreachable!("checked against CACHED_OPTIONS"),
            }
            Ok(())
        })?;
        Ok(a)
    }
}

impl Parse for InvalidateArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut a = InvalidateArgs::default();
        parse_options(input, INVALIDATE_OPTIONS, |name, input| {
            match name.to_string().as_str() {
                "key_prefix" => a.key_prefix = Some(key_prefix(input)?),
                "key" => a.key = Some(input.parse()?),
                "args" => {
                    let content;
                    bracketed!(content in input);
                    let list = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?;
                    a.args = Some(list.into_iter().collect());
                }
                "key_self" => a.key_self = input.parse::<LitBool>()?.value,
                "cache" => a.cache = Some(input.parse()?),
                "tags" => a.tags = templates(input)?,
                _ => unreachable!("checked against INVALIDATE_OPTIONS"),
            }
            Ok(())
        })?;
        if a.key_prefix.is_none() && a.tags.is_empty() {
            return Err(syn::Error::new(
                Span::call_site(),
                "#[invalidate_cache] needs `key_prefix = \"..\"` (the same as the #[cached] function's) or `tags = [..]`",
            ));
        }
        if a.key_prefix.is_none() && (a.key.is_some() || a.args.is_some()) {
            return Err(syn::Error::new(
                Span::call_site(),
                "`key` and `args` need `key_prefix`",
            ));
        }
        Ok(a)
    }
}

fn key_prefix(input: ParseStream<'_>) -> syn::Result<LitStr> {
    let lit: LitStr = input.parse()?;
    let v = lit.value();
    if v.is_empty() || v.chars().any(|c| c.is_control() || c == '{' || c == '}') {
        return Err(syn::Error::new(
            lit.span(),
            "`key_prefix` must be non-empty, without braces or control characters",
        ));
    }
    Ok(lit)
}

/// `ttl = 300` (seconds) or `ttl = "5m"`.
fn duration(input: ParseStream<'_>) -> syn::Result<Duration> {
    if input.peek(LitInt) {
        let lit: LitInt = input.parse()?;
        return Ok(Duration::from_secs(lit.base10_parse()?));
    }
    let lit: LitStr = input.parse()?;
    let d = parse_duration(&lit.value()).map_err(|e| syn::Error::new(lit.span(), e))?;
    if d.is_zero() {
        return Err(syn::Error::new(lit.span(), "a duration must be positive"));
    }
    Ok(d)
}

/// `"250ms"`, `"30s"`, `"5m"`, `"1h30m"`, `"2d"`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration {s:?}: use a number of seconds or units like \"250ms\", \"30s\", \"5m\", \"1h30m\", \"2d\""
        )
    };
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            "d" => Duration::from_secs(n * 86_400),
            _ => return Err(bad()),
        };
        total += part;
        rest = &rest[unit..];
    }
    Ok(total)
}

/// `codec = "json" | "msgpack"`; true for MessagePack.
fn codec(input: ParseStream<'_>) -> syn::Result<bool> {
    let lit: LitStr = input.parse()?;
    match lit.value().as_str() {
        "json" => Ok(false),
        "msgpack" | "messagepack" => Ok(true),
        other => Err(syn::Error::new(
            lit.span(),
            format!("unknown codec {other:?}; expected \"json\" or \"msgpack\""),
        )),
    }
}

/// `["literal", "user:{user_id}", ..]`.
fn templates(input: ParseStream<'_>) -> syn::Result<Vec<Template>> {
    let content;
    bracketed!(content in input);
    let list = Punctuated::<Template, Token![,]>::parse_terminated(&content)?;
    Ok(list.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn options() {
        let a: CachedArgs = syn::parse_str(
            r#"ttl = "5m", key_prefix = "user_data", l1 = false, cache = self.cache, tags = ["u:{id}"], codec = "msgpack""#,
        )
        .unwrap();
        assert_eq!(a.ttl, Some(Duration::from_secs(300)));
        assert_eq!(a.l1, Some(false));
        assert_eq!(a.msgpack, Some(true));
        assert_eq!(a.tags.len(), 1);
        assert!(a.cache.is_some());
        let e = syn::parse_str::<CachedArgs>("ttl = 1, ttl = 2")
            .err()
            .unwrap();
        assert_eq!(e.to_string(), "duplicate option `ttl`");
        let e = syn::parse_str::<CachedArgs>("tll = 1").err().unwrap();
        assert!(e.to_string().starts_with("unknown option `tll`"));
        assert!(syn::parse_str::<InvalidateArgs>("").is_err());
        let i: InvalidateArgs = syn::parse_str(r#"key_prefix = "p", args = [a, b]"#).unwrap();
        assert_eq!(i.args.unwrap().len(), 2);
    }
}
