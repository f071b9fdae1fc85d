//! Key and tag templates: `"user:{user_id}"` with `{{`/`}}` escapes.

use proc_macro2::Span;
use syn::LitStr;
use syn::parse::{Parse, ParseStream};

/// One piece of a template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Piece {
    Text(String),
    Arg(String),
}

/// A parsed template and the literal it came from (for error spans).
#[derive(Clone)]
pub(crate) struct Template {
    pub(crate) pieces: Vec<Piece>,
    pub(crate) span: Span,
}

impl Parse for Template {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let lit: LitStr = input.parse()?;
        let pieces = split(&lit.value()).map_err(|e| syn::Error::new(lit.span(), e))?;
        Ok(Template {
            pieces,
            span: lit.span(),
        })
    }
}

impl Template {
    /// The argument names the template interpolates, in order.
    pub(crate) fn args(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Arg(a) => Some(a.as_str()),
            Piece::Text(_) => None,
        })
    }
}

/// Splits `"a:{x}:{{b}}"` into text and argument pieces.
pub(crate) fn split(s: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => return Err(format!("unclosed `{{` in {s:?}")),
                    }
                }
                let name = name.trim().to_owned();
                let valid = name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_alphanumeric() || c == '_');
                if !valid {
                    return Err(format!(
                        "`{{{name}}}` is not an argument name; templates interpolate arguments by name, like \"{{user_id}}\""
                    ));
                }
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Arg(name));
            }
            '}' => {
                return Err(format!(
                    "unmatched `}}` in {s:?}; write `}}}}` for a literal brace"
                ));
            }
            c if c.is_control() => {
                return Err("templates must not contain control characters".into());
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    if pieces.is_empty() {
        return Err("a template must not be empty".into());
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_text_and_arguments() {
        assert_eq!(
            split("u:{user_id}:{{x}}").unwrap(),
            vec![
                Piece::Text("u:".into()),
                Piece::Arg("user_id".into()),
                Piece::Text(":{x}".into())
            ]
        );
        assert!(split("{a.b}").is_err());
        assert!(split("{a").is_err());
        assert!(split("a}").is_err());
        assert!(split("").is_err());
    }
}
