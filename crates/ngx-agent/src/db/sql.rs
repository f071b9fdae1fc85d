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
