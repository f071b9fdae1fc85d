//! What the macros need to know about the annotated function: its receiver,
//! its named arguments and the shape of its return type.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, Pat, ReceiverKind, ReturnType, Type};

/// How an argument reaches the detached loader.
pub(crate) enum Passing {
    /// `x: &T`: an owned copy via `ToOwned`, re-borrowed for the body.
    Ref(Box<Type>),
    /// `x: T`: a clone.
    Owned,
}

/// One named argument.
pub(crate) struct Arg {
    pub(crate) ident: Ident,
    pub(crate) ty: Type,
    pub(crate) passing: Passing,
}

/// The parts of a signature the expansion uses.
pub(crate) struct Signature {
    /// The span of `self` when the function is a `&self` method.
    pub(crate) receiver: Option<Span>,
    pub(crate) args: Vec<Arg>,
    /// The declared return type (`()` when absent).
    pub(crate) ret: Type,
    /// Whether the return type's last path segment is `Result`.
    pub(crate) fallible: bool,
}

impl Signature {
    /// Checks the function for `macro_name` and extracts its arguments.
    /// `cached` is stricter: receivers must be `&self` and arguments must
    /// be movable into a loader.
    pub(crate) fn analyze(f: &ItemFn, macro_name: &str, cached: bool) -> syn::Result<Self> {
        let sig = &f.sig;
        if sig.asyncness.is_none() {
            return Err(syn::Error::new(
                sig.fn_token.span,
                format!("#[{macro_name}] can only be applied to an `async fn`"),
            ));
        }
        if let Some(v) = &sig.variadic {
            return Err(syn::Error::new_spanned(
                v,
                "variadic functions are not supported",
            ));
        }
        let mut receiver = None;
        let mut args = Vec::new();
        for input in &sig.inputs {
            match input {
                FnArg::Receiver(r) => {
                    let by_shared_ref = matches!(&r.kind, ReceiverKind::Reference(_, _, None))
                        && r.mutability.is_none();
                    if cached && !by_shared_ref {
                        return Err(syn::Error::new_spanned(
                            r,
                            "#[cached] methods must take `&self`: the loader runs detached and works on a clone of `self`",
                        ));
                    }
                    receiver = Some(r.self_token.span);
                }
                FnArg::Typed(pt) => {
                    let ident = match &*pt.pat {
                        Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => {
                            p.ident.clone()
                        }
                        other => {
                            return Err(syn::Error::new(
                                other.span(),
                                format!(
                                    "#[{macro_name}] needs every argument bound to a plain name (it becomes part of the key)"
                                ),
                            ));
                        }
                    };
                    let passing = match &*pt.ty {
                        Type::Reference(r) if r.mutability.is_some() && cached => {
                            return Err(syn::Error::new_spanned(
                                &pt.ty,
                                "#[cached] functions cannot take `&mut` arguments: a cached call may not run the body",
                            ));
                        }
                        Type::Reference(r) => Passing::Ref(r.elem.clone()),
                        _ => Passing::Owned,
                    };
                    args.push(Arg {
                        ident,
                        ty: (*pt.ty).clone(),
                        passing,
                    });
                }
            }
        }
        let ret: Type = match &sig.output {
            ReturnType::Default => syn::parse_quote!(()),
            ReturnType::Type(_, ty) => (**ty).clone(),
        };
        let fallible = is_result(&ret);
        Ok(Signature {
            receiver,
            args,
            ret,
            fallible,
        })
    }

    /// The argument called `name`.
    pub(crate) fn arg(&self, name: &str) -> Option<&Arg> {
        self.args.iter().find(|a| a.ident == name)
    }
}

/// `Result<..>`, `io::Result<..>`, `anyhow::Result<..>`, ...
fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(p) if p.qself.is_none() => {
            p.path.segments.last().is_some_and(|s| s.ident == "Result")
        }
        Type::Group(g) => is_result(&g.elem),
        Type::Paren(p) => is_result(&p.elem),
        _ => false,
    }
}
