//! The README's Rust examples are the runnable programs in `examples/`
//! (compiled by `cargo test` and checked by clippy): every block of
//! consecutive lines in a README ```rust block must appear, in one piece,
//! in one of them. Keeps the README free of hidden doctest lines.

fn normalise(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn readme_examples_are_the_compiled_examples() {
    let readme = include_str!("../../../README.md");
    let examples: Vec<Vec<String>> = [
        include_str!("../examples/tour.rs"),
        include_str!("../examples/get_or_load.rs"),
        include_str!("../examples/decorators.rs"),
    ]
    .iter()
    .map(|e| normalise(e).into_iter().filter(|l| !l.is_empty()).collect())
    .collect();

    let mut blocks = 0;
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "```rust" {
            continue;
        }
        blocks += 1;
        let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        let body = normalise(&body.join("\n"));
        assert!(
            body.iter().all(|l| !l.starts_with("# ") && l != "#"),
            "README code block {blocks} has hidden doctest lines"
        );
        for chunk in body.split(|l| l.is_empty()).filter(|c| !c.is_empty()) {
            let found = examples
                .iter()
                .any(|e| e.windows(chunk.len()).any(|w| w == chunk));
            assert!(
                found,
                "README code block {blocks}: these lines are in no example:\n{}",
                chunk.join("\n")
            );
        }
    }
    assert_eq!(blocks, 3, "the README's Rust blocks");
}
