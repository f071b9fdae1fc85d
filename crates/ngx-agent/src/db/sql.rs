//! Small SQL builders shared by the repositories and the seed loader.

/// `($1, $2), ($3, $4)` for `rows` rows of `cols` columns, numbering from
/// `$1`. Used for multi-row `INSERT ... VALUES`.
pub(crate) fn values(rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(r * cols + c + 1).to_string());
        }
        out.push(')');
    }
    out
}

/// `$1, $2, ..., $n`: the placeholders of an `IN (...)` list of `n` values.
pub(crate) fn list(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A query over `Any` with its arguments.
pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds an optional `f64` so PostgreSQL always sees a FLOAT8 parameter.
///
/// sqlx 0.9.0's `Any` driver turns a `None::<f64>` into a FLOAT4 null (the
/// Real and Double arms of `AnyArguments::convert_into` are swapped). The
/// statement cache then keeps FLOAT4 for that parameter, and the next
/// execution with an 8-byte value fails with "incorrect binary data format".
/// `None::<f32>` comes out as a FLOAT8 null, which matches `Some(f64)`.
/// `tests/db_repos.rs` exercises None-then-Some on the same statement.
pub(crate) fn bind_opt_f64(query: AnyQuery<'_>, value: Option<f64>) -> AnyQuery<'_> {
    match value {
        Some(v) => query.bind(v),
        None => query.bind(None::<f32>),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_placeholders_row_by_row() {
        assert_eq!(super::values(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(super::values(0, 3), "");
    }

    #[test]
    fn numbers_list_placeholders() {
        assert_eq!(super::list(3), "$1, $2, $3");
        assert_eq!(super::list(1), "$1");
        assert_eq!(super::list(0), "");
    }
}
