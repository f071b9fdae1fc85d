//! The keyword and prior tables of tier detection.
//!
//! Weights are per tier in [`crate::domain::Tier::ALL`] order:
//! `[ESSENTIAL, PRO, ELITE, PREMIUM]`. Positive weights pull towards a tier,
//! negative ones push away. Values were set by hand from sales transcripts
//! and are part of the documented, explainable model: change them together
//! with the tests in `tier.rs`.

/// A tier weight vector.
pub(crate) type Weights = [f64; 4];

/// Single words, matched with typo tolerance (see `text::fuzzy_eq`).
pub(crate) const WORDS: &[(&str, &str, Weights)] = &[
    // Price sensitivity: towards the cheapest tier.
    ("cheap", "price sensitivity", [1.2, 0.2, -0.5, -1.0]),
    ("cheaper", "price sensitivity", [1.2, 0.2, -0.5, -1.0]),
    ("budget", "price sensitivity", [1.3, 0.3, -0.6, -1.2]),
    ("afford", "price sensitivity", [1.1, 0.2, -0.5, -1.0]),
    ("expensive", "price sensitivity", [1.0, 0.3, -0.4, -0.9]),
    ("discount", "price sensitivity", [0.9, 0.3, -0.3, -0.6]),
    ("basic", "wants the basics", [1.0, 0.2, -0.4, -0.8]),
    ("basics", "wants the basics", [1.0, 0.2, -0.4, -0.8]),
    ("trial", "wants to try first", [0.8, 0.3, -0.2, -0.5]),
    ("student", "student", [1.0, 0.1, -0.5, -1.0]),
    ("caro", "price sensitivity", [1.0, 0.3, -0.4, -0.9]),
    ("presupuesto", "price sensitivity", [1.3, 0.3, -0.6, -1.2]),
    // Self-directed, data-driven: the middle tier.
    ("app", "self-directed", [0.4, 0.8, 0.1, -0.4]),
    ("track", "tracks progress", [0.1, 0.9, 0.3, -0.2]),
    ("tracking", "tracks progress", [0.1, 0.9, 0.3, -0.2]),
    ("wearable", "uses wearables", [0.0, 1.0, 0.4, 0.0]),
    ("watch", "uses wearables", [0.0, 0.6, 0.3, 0.0]),
    ("data", "data-driven", [0.0, 0.8, 0.5, 0.1]),
    ("monthly", "monthly cadence", [0.3, 0.8, 0.1, -0.2]),
    ("review", "wants reviews", [0.0, 0.8, 0.4, 0.0]),
    ("specialist", "wants a specialist", [0.0, 0.9, 0.5, 0.2]),
    ("progress", "tracks progress", [0.1, 0.6, 0.4, 0.1]),
    // Guidance and accountability: the upper tiers.
    ("coach", "wants coaching", [-0.6, 0.1, 1.0, 0.8]),
    ("coaching", "wants coaching", [-0.6, 0.1, 1.0, 0.8]),
    ("entrenador", "wants coaching", [-0.6, 0.1, 1.0, 0.8]),
    ("weekly", "weekly cadence", [-0.3, 0.2, 1.0, 0.3]),
    (
        "accountability",
        "wants accountability",
        [-0.5, 0.2, 1.1, 0.7],
    ),
    ("labs", "wants lab work", [-0.4, 0.3, 1.0, 0.8]),
    ("bloodwork", "wants lab work", [-0.4, 0.3, 1.0, 0.8]),
    ("performance", "performance focus", [-0.2, 0.4, 0.9, 0.5]),
    ("productivity", "performance focus", [-0.1, 0.5, 0.9, 0.4]),
    ("results", "results focus", [-0.2, 0.3, 0.8, 0.6]),
    ("company", "runs a business", [-0.3, 0.2, 0.7, 0.7]),
    ("travel", "travels for work", [-0.2, 0.3, 0.6, 0.6]),
    // Full service: the top tier.
    (
        "personal",
        "wants personal attention",
        [-0.8, -0.2, 0.6, 1.2],
    ),
    (
        "personalized",
        "wants personal attention",
        [-0.8, -0.1, 0.6, 1.2],
    ),
    (
        "personalizado",
        "wants personal attention",
        [-0.8, -0.1, 0.6, 1.2],
    ),
    (
        "dedicated",
        "wants personal attention",
        [-0.8, -0.2, 0.5, 1.3],
    ),
    ("premium", "asks for premium", [-1.0, -0.3, 0.4, 1.5]),
    ("exclusive", "asks for premium", [-1.0, -0.3, 0.4, 1.4]),
    ("concierge", "asks for premium", [-1.0, -0.4, 0.3, 1.5]),
    ("human", "wants a human coach", [-0.7, -0.1, 0.6, 1.1]),
    (
        "transformation",
        "wants a transformation",
        [-0.5, 0.0, 0.7, 1.1],
    ),
    (
        "investment",
        "sees it as an investment",
        [-0.5, 0.1, 0.7, 1.0],
    ),
];

/// Exact two- and three-word phrases; they weigh more than words because
/// they are less ambiguous.
pub(crate) const PHRASES: &[(&str, &str, Weights)] = &[
    ("tight budget", "price sensitivity", [2.0, 0.3, -1.0, -1.8]),
    ("can't afford", "price sensitivity", [2.0, 0.3, -1.0, -1.8]),
    ("too expensive", "price sensitivity", [1.6, 0.4, -0.7, -1.5]),
    (
        "just the basics",
        "wants the basics",
        [1.8, 0.2, -0.8, -1.5],
    ),
    ("for now", "cautious start", [0.6, 0.3, -0.2, -0.4]),
    ("try it", "wants to try first", [0.8, 0.4, -0.2, -0.6]),
    ("on my own", "self-directed", [0.7, 0.9, -0.3, -0.8]),
    ("human coach", "wants a human coach", [-1.0, -0.3, 0.8, 1.8]),
    (
        "personal coach",
        "wants a human coach",
        [-1.0, -0.3, 0.9, 1.8],
    ),
    ("one on one", "wants a human coach", [-1.0, -0.3, 0.9, 1.7]),
    (
        "whatever it takes",
        "high commitment",
        [-0.8, 0.0, 0.8, 1.5],
    ),
    ("best option", "wants the best", [-0.8, 0.0, 0.7, 1.4]),
    ("premium option", "asks for premium", [-1.2, -0.3, 0.5, 2.0]),
    ("run a company", "runs a business", [-0.4, 0.2, 0.8, 1.0]),
    ("sign up", "ready to buy", [0.0, 0.3, 0.4, 0.3]),
    ("let's do it", "ready to buy", [0.0, 0.3, 0.5, 0.4]),
];

/// Occupation keywords and their pull, matched against the profile's
/// occupation tokens.
pub(crate) const OCCUPATIONS: &[(&str, Weights)] = &[
    ("founder", [-0.5, 0.1, 0.8, 1.0]),
    ("ceo", [-0.6, 0.0, 0.8, 1.2]),
    ("director", [-0.4, 0.2, 0.9, 0.6]),
    ("investor", [-0.5, 0.0, 0.7, 1.1]),
    ("entrepreneur", [-0.4, 0.2, 0.8, 0.8]),
    ("surgeon", [-0.5, 0.1, 0.9, 0.9]),
    ("physician", [-0.4, 0.2, 0.9, 0.7]),
    ("lawyer", [-0.4, 0.2, 0.9, 0.7]),
    ("consultant", [-0.2, 0.4, 0.8, 0.4]),
    ("engineer", [0.0, 0.8, 0.5, 0.0]),
    ("architect", [0.0, 0.7, 0.5, 0.1]),
    ("manager", [0.0, 0.7, 0.6, 0.1]),
    ("accountant", [0.1, 0.8, 0.4, 0.0]),
    ("pilot", [0.0, 0.6, 0.6, 0.2]),
    ("teacher", [0.7, 0.6, -0.1, -0.6]),
    ("nurse", [0.6, 0.7, 0.0, -0.6]),
    ("student", [1.2, 0.3, -0.6, -1.2]),
    ("retired", [0.3, 0.6, 0.4, 0.1]),
];

/// Pull of each income band, in `IncomeBand::ALL` order.
pub(crate) const INCOME: [Weights; 5] = [
    [0.0, 0.0, 0.0, 0.0],   // unknown
    [1.5, 0.3, -0.8, -1.5], // low
    [0.5, 0.9, 0.1, -0.8],  // middle
    [-0.3, 0.4, 0.9, 0.3],  // upper_middle
    [-0.8, -0.1, 0.6, 1.2], // high
];

/// Words in goals or messages that point to LONGEVITY rather than PRIME.
pub(crate) const LONGEVITY_WORDS: &[&str] = &[
    "aging",
    "ageing",
    "longevity",
    "mobility",
    "bone",
    "density",
    "independent",
    "grandchildren",
    "retired",
    "joints",
    "balance",
    "longer",
    "healthspan",
];

/// Words that point to PRIME.
pub(crate) const PRIME_WORDS: &[&str] = &[
    "energy",
    "focus",
    "productivity",
    "performance",
    "muscle",
    "marathon",
    "burnout",
    "stress",
    "career",
    "hormones",
    "company",
];
