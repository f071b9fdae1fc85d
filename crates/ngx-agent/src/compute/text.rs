//! Text primitives shared by tier detection and feature extraction:
//! tokenising, n-grams and typo-tolerant matching.

/// Lowercase alphanumeric tokens of `text` (ASCII letters are folded,
/// other letters kept; everything else separates tokens).
pub(crate) fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .map(|t| t.trim_matches('\'').to_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Adjacent token pairs joined by a space ("personal coach").
pub(crate) fn bigrams(tokens: &[String]) -> Vec<String> {
    tokens
        .windows(2)
        .map(|w| format!("{} {}", w[0], w[1]))
        .collect()
}

/// Adjacent token triples joined by spaces ("one on one").
pub(crate) fn trigrams(tokens: &[String]) -> Vec<String> {
    tokens
        .windows(3)
        .map(|w| format!("{} {} {}", w[0], w[1], w[2]))
        .collect()
}

/// How many edits a word of this length may be away from a keyword and
/// still match: none under 5 characters, one up to 8, two beyond. Voice
/// transcripts misspell long words far more often than short ones.
pub(crate) fn typo_budget(len: usize) -> usize {
    match len {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    }
}

/// True when `word` equals `keyword` within `typo_budget(keyword)` edits.
pub(crate) fn fuzzy_eq(word: &str, keyword: &str) -> bool {
    let budget = typo_budget(keyword.len());
    if budget == 0 {
        return word == keyword;
    }
    word.len().abs_diff(keyword.len()) <= budget && levenshtein(word, keyword, budget) <= budget
}

/// Levenshtein distance over bytes, giving up (returning `limit + 1`) as
/// soon as every cell of a row exceeds `limit`. Keywords are short, so the
/// two rows live on the stack: this runs for every word of every message
/// when features are extracted.
pub(crate) fn levenshtein(a: &str, b: &str, limit: usize) -> usize {
    const STACK: usize = 32;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if b.len() < STACK {
        let (mut prev, mut cur) = ([0; STACK], [0; STACK]);
        return rows(a, b, limit, &mut prev[..=b.len()], &mut cur[..=b.len()]);
    }
    rows(
        a,
        b,
        limit,
        &mut vec![0; b.len() + 1],
        &mut vec![0; b.len() + 1],
    )
}

/// The dynamic-programming rows of [`levenshtein`]; both rows hold
/// `b.len() + 1` cells.
fn rows<'r>(
    a: &[u8],
    b: &[u8],
    limit: usize,
    mut prev: &'r mut [usize],
    mut cur: &'r mut [usize],
) -> usize {
    for (j, cell) in prev.iter_mut().enumerate() {
        *cell = j;
    }
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        let mut row_min = cur[0];
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            row_min = row_min.min(cur[j + 1]);
        }
        if row_min > limit {
            return limit + 1;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenises_and_builds_ngrams() {
        let t = tokens("I can't afford a PERSONAL coach, one-on-one!");
        assert_eq!(
            t,
            [
                "i", "can't", "afford", "a", "personal", "coach", "one", "on", "one"
            ]
        );
        assert!(bigrams(&t).contains(&"personal coach".to_owned()));
        assert!(trigrams(&t).contains(&"one on one".to_owned()));
        assert!(tokens("  ,,, ").is_empty());
    }

    #[test]
    fn levenshtein_is_exact_within_the_limit() {
        assert_eq!(levenshtein("kitten", "sitting", 5), 3);
        assert_eq!(levenshtein("", "abc", 5), 3);
        assert_eq!(levenshtein("same", "same", 0), 0);
        assert_eq!(levenshtein("abcdef", "zzzzzz", 1), 2);
        // Past the stack rows: the heap path gives the same answers.
        let long = "a".repeat(40);
        assert_eq!(levenshtein(&long, &format!("{long}bc"), 5), 2);
        assert_eq!(levenshtein("", &long, 50), 40);
        assert!(levenshtein("b", &long, 1) > 1);
    }

    #[test]
    fn fuzzy_matching_tolerates_typos_on_long_words_only() {
        assert!(fuzzy_eq("expensiv", "expensive"));
        assert!(fuzzy_eq("acountability", "accountability"));
        assert!(!fuzzy_eq("coat", "coach"));
        assert!(fuzzy_eq("cheep", "cheap"));
        assert!(!fuzzy_eq("apt", "app"));
        assert!(fuzzy_eq("cheap", "cheap"));
    }
}
