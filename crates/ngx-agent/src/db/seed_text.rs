//! Fixed text the seed loader draws from: names, occupations, goals,
//! message templates and the knowledge base articles.

/// Given names.
pub(crate) const FIRST_NAMES: &[&str] = &[
    "Ana", "Luis", "Maria", "Carlos", "Sofia", "Javier", "Lucia", "Diego", "Elena", "Pablo",
    "Carmen", "Miguel", "Laura", "Andres", "Paula", "Jorge", "Valeria", "Raul", "Isabel", "Tomas",
    "Emma", "Noah", "Olivia", "Liam", "Grace", "Ethan", "Chloe", "Owen", "Mia", "Lucas",
];

/// Family names.
pub(crate) const LAST_NAMES: &[&str] = &[
    "Garcia",
    "Martinez",
    "Lopez",
    "Sanchez",
    "Perez",
    "Gomez",
    "Fernandez",
    "Diaz",
    "Torres",
    "Ramirez",
    "Flores",
    "Rivera",
    "Smith",
    "Johnson",
    "Brown",
    "Taylor",
    "Wilson",
    "Clark",
    "Moore",
    "Walker",
    "Young",
    "Hall",
    "Allen",
    "King",
];

/// Occupations, a mix of the ones the tier detector recognises and others.
pub(crate) const OCCUPATIONS: &[&str] = &[
    "founder",
    "ceo",
    "surgeon",
    "lawyer",
    "consultant",
    "software engineer",
    "teacher",
    "nurse",
    "sales manager",
    "architect",
    "investor",
    "student",
    "retired",
    "designer",
    "physician",
    "accountant",
    "entrepreneur",
    "director",
    "pilot",
    "coach",
];

/// Goals customers state.
pub(crate) const GOALS: &[&str] = &[
    "more energy during the workday",
    "lose 10 kg",
    "sleep better",
    "build muscle",
    "reduce stress",
    "stay mobile as I age",
    "improve focus",
    "lower blood pressure",
    "run a marathon",
    "keep up with my grandchildren",
    "recover from burnout",
    "optimise hormones",
];

/// Opening and follow-up lines written by customers.
pub(crate) const USER_LINES: &[&str] = &[
    "Hi, I saw your ad and I want to know more about the program.",
    "I'm always tired by 3pm and my productivity is dropping.",
    "How much does it cost per month?",
    "That sounds expensive, I'm not sure I can afford it right now.",
    "I travel a lot for work, will I have time for this?",
    "I want a personal coach, not just an app.",
    "My doctor said I should work on my mobility and bone density.",
    "Can I try it first? I've been burned by programs before.",
    "I run a company and I need my energy and focus back.",
    "What results have people my age seen?",
    "I'm interested in the premium option with the human coach.",
    "Just the basics for now, I'm on a tight budget.",
    "I want to live longer and stay independent.",
    "Let's do it, how do I sign up?",
];

/// Lines written by the agent.
pub(crate) const AGENT_LINES: &[&str] = &[
    "Thanks for reaching out! Tell me a little about your daily routine.",
    "Many executives we work with felt exactly that. PRIME targets energy and focus.",
    "Our plans start at 79 USD a month; the right tier depends on how much guidance you want.",
    "I understand. Let's look at the return: most clients gain back several productive hours a week.",
    "The program adapts to travel; sessions take about 20 minutes a day.",
    "LONGEVITY focuses on strength, mobility and metabolic health after 50.",
    "There's a 14-day guarantee, so you can start without risk.",
    "Great, I'll send you the enrolment link right now.",
];

/// Intents the agent records.
pub(crate) const INTENTS: &[&str] = &[
    "pricing_inquiry",
    "program_info",
    "objection_price",
    "objection_time",
    "ready_to_buy",
    "needs_coach",
];

/// Knowledge base articles: (topic, title, tags, content).
pub(crate) const KNOWLEDGE: &[(&str, &str, &[&str], &str)] = &[
    (
        "pricing",
        "Pricing overview",
        &["pricing"],
        "Four tiers per program: Essential 79 USD, Pro 149 USD, Elite 199 USD per month, and Premium hybrid coaching at 3,997 USD.",
    ),
    (
        "pricing.essential",
        "Essential tier",
        &["pricing", "tier"],
        "AI agents only: daily plans for training, nutrition and sleep with weekly check-ins.",
    ),
    (
        "pricing.pro",
        "Pro tier",
        &["pricing", "tier"],
        "Everything in Essential plus monthly reviews with a specialist and wearable integration.",
    ),
    (
        "pricing.elite",
        "Elite tier",
        &["pricing", "tier"],
        "Everything in Pro plus weekly coaching calls and quarterly lab panels.",
    ),
    (
        "pricing.premium",
        "Premium hybrid coaching",
        &["pricing", "tier"],
        "A dedicated human coach with the AI agents, full lab work-up and 20-week transformation plan.",
    ),
    (
        "pricing.guarantee",
        "Guarantee",
        &["pricing", "trust"],
        "14-day money-back guarantee on every tier, no questions asked.",
    ),
    (
        "pricing.annual",
        "Annual billing",
        &["pricing"],
        "Annual billing saves two months on Essential, Pro and Elite.",
    ),
    (
        "program.prime",
        "NGX PRIME",
        &["program"],
        "Performance program for professionals aged 25 to 50: energy, focus, body composition and stress resilience.",
    ),
    (
        "program.longevity",
        "NGX LONGEVITY",
        &["program"],
        "Healthy-ageing program for people over 50: strength, mobility, bone density, metabolic and cognitive health.",
    ),
    (
        "program.comparison",
        "PRIME or LONGEVITY",
        &["program"],
        "PRIME optimises performance now; LONGEVITY protects independence and healthspan. Age and goals decide.",
    ),
    (
        "program.agents",
        "The AI agents",
        &["program", "technology"],
        "Specialised agents cover training, nutrition, recovery, mindset and progress analytics.",
    ),
    (
        "program.onboarding",
        "Onboarding",
        &["program"],
        "A 30-minute assessment, wearable pairing and a first week plan delivered within 24 hours.",
    ),
    (
        "objection.price",
        "Objection: price",
        &["objection"],
        "Reframe cost as investment: compare with the value of regained productive hours; offer a lower tier.",
    ),
    (
        "objection.time",
        "Objection: no time",
        &["objection"],
        "Sessions take 20 minutes; plans adapt to travel and meetings.",
    ),
    (
        "objection.trust",
        "Objection: tried before",
        &["objection", "trust"],
        "Point to the guarantee, measurable biomarkers and weekly progress reports.",
    ),
    (
        "objection.spouse",
        "Objection: need to ask my partner",
        &["objection"],
        "Offer a joint call and the family plan discount.",
    ),
    (
        "objection.age",
        "Objection: too old to start",
        &["objection"],
        "LONGEVITY is designed for starting after 50, with progressive, joint-friendly training.",
    ),
    (
        "objection.results",
        "Objection: will it work for me",
        &["objection"],
        "Share typical outcomes by age group and the personalised assessment.",
    ),
    (
        "faq.cancel",
        "Cancelling",
        &["faq"],
        "Cancel any time from the app; no fees after the first month.",
    ),
    (
        "faq.wearables",
        "Wearables",
        &["faq", "technology"],
        "Apple Watch, Garmin, Oura and Whoop are supported.",
    ),
    (
        "faq.diet",
        "Dietary preferences",
        &["faq", "nutrition"],
        "Vegetarian, vegan, keto and allergy-aware plans are available.",
    ),
    (
        "faq.medical",
        "Medical conditions",
        &["faq", "health"],
        "Plans adapt to common conditions; clients with serious conditions need a doctor's clearance.",
    ),
    (
        "faq.languages",
        "Languages",
        &["faq"],
        "The agents speak English and Spanish.",
    ),
    (
        "faq.data",
        "Data privacy",
        &["faq", "trust"],
        "Health data is encrypted and never sold; clients can export or delete it at any time.",
    ),
    (
        "science.sleep",
        "Sleep",
        &["science"],
        "Sleep regularity is the first lever for energy; plans start with a consistent wake time.",
    ),
    (
        "science.strength",
        "Strength training",
        &["science"],
        "Two to three resistance sessions a week preserve muscle and bone density at any age.",
    ),
    (
        "science.zone2",
        "Zone 2 cardio",
        &["science"],
        "Low-intensity cardio builds mitochondrial capacity and metabolic health.",
    ),
    (
        "science.nutrition",
        "Protein and nutrition",
        &["science", "nutrition"],
        "Adequate protein and fibre support body composition and satiety.",
    ),
    (
        "science.stress",
        "Stress and HRV",
        &["science"],
        "Heart-rate variability guides training load and recovery days.",
    ),
    (
        "sales.discovery",
        "Discovery questions",
        &["sales"],
        "Ask about daily energy, goals, past attempts and what success looks like in 90 days.",
    ),
    (
        "sales.closing",
        "Closing",
        &["sales"],
        "Summarise the customer's goals, recommend one tier, and ask for the decision.",
    ),
    (
        "sales.transfer",
        "Human transfer",
        &["sales"],
        "Transfer to a human for medical questions, complaints or explicit requests.",
    ),
    (
        "sales.roi",
        "ROI for consultants",
        &["sales", "roi"],
        "Regained billable hours times hourly rate, compared with the yearly price of the tier.",
    ),
    (
        "company.about",
        "About NGX",
        &["company"],
        "NGX combines AI agents with human coaches to deliver personalised health programs.",
    ),
];
