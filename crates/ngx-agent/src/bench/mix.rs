//! The request mix: which endpoint, with which Zipf-chosen ids.

use rand::Rng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Zipf};
use serde_json::{Value, json};

/// One request to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// Path and query.
    pub path: String,
    /// JSON body of a POST.
    pub body: Option<Value>,
    /// Short label for per-endpoint reporting.
    pub kind: &'static str,
}

/// Share of each request kind, in percent (sums to 100).
pub const MIX: &[(&str, u32)] = &[
    ("conversation_read", 40),
    ("tier_detection", 25),
    ("customer_read", 8),
    ("prediction", 10),
    ("recommendation", 6),
    ("knowledge_read", 8),
    ("message_append", 3),
];

/// Topics of the seeded knowledge base, most asked first.
const TOPICS: &[&str] = &[
    "pricing",
    "objection.price",
    "program.prime",
    "program.longevity",
    "pricing.pro",
    "objection.time",
    "faq.cancel",
    "program.comparison",
    "pricing.elite",
    "objection.trust",
    "sales.roi",
    "faq.medical",
    "science.sleep",
    "pricing.premium",
    "faq.wearables",
    "company.about",
];

/// What prospects typically say when the agent tries to place them.
const TIER_MESSAGES: &[&str] = &[
    "I want more energy, but I need to know the price first",
    "I run my own company and time is my scarcest resource",
    "Is there a cheaper option? I just want the basics",
    "I want a dedicated coach, money is not the issue",
];

const MODELS: &[&str] = &["conversion", "objection", "needs"];

/// Draws calls: ids follow Zipf(s) over the seeded customers and
/// conversations (`cust-00001` is the most popular).
#[derive(Debug, Clone)]
pub struct Generator {
    customers: Zipf<f64>,
    conversations: Zipf<f64>,
    topics: Zipf<f64>,
    total_weight: u32,
}

impl Generator {
    /// A generator over `customers` and `conversations` seeded ids.
    pub fn new(customers: usize, conversations: usize, s: f64) -> Result<Self, String> {
        let zipf = |n: usize| Zipf::new(n.max(1) as f64, s).map_err(|e| format!("zipf: {e}"));
        Ok(Self {
            customers: zipf(customers)?,
            conversations: zipf(conversations)?,
            topics: zipf(TOPICS.len())?,
            total_weight: MIX.iter().map(|(_, w)| w).sum(),
        })
    }

    fn customer(&self, rng: &mut StdRng) -> String {
        format!("cust-{:05}", self.customers.sample(rng) as u64)
    }

    fn conversation(&self, rng: &mut StdRng) -> String {
        format!("conv-{:05}", self.conversations.sample(rng) as u64)
    }

    /// A GET of a Zipf-chosen conversation (the cached-read probe).
    pub fn conversation_read(&self, rng: &mut StdRng) -> Call {
        Call {
            method: "GET",
            path: format!("/conversations/{}", self.conversation(rng)),
            body: None,
            kind: "conversation_read",
        }
    }

    /// The next call of the mix.
    pub fn next(&self, rng: &mut StdRng) -> Call {
        let mut pick = rng.random_range(0..self.total_weight);
        let mut kind = MIX[0].0;
        for (k, w) in MIX {
            if pick < *w {
                kind = k;
                break;
            }
            pick -= w;
        }
        let post = |path: String, body: Value| Call {
            method: "POST",
            path,
            body: Some(body),
            kind,
        };
        let get = |path: String| Call {
            method: "GET",
            path,
            body: None,
            kind,
        };
        match kind {
            "conversation_read" => self.conversation_read(rng),
            "tier_detection" => post(
                "/tier-detection".into(),
                json!({
                    "customer_id": self.customer(rng),
                    "message": TIER_MESSAGES[rng.random_range(0..TIER_MESSAGES.len())],
                }),
            ),
            "customer_read" => get(format!("/customers/{}", self.customer(rng))),
            "prediction" => post(
                format!("/predictions/{}", MODELS[rng.random_range(0..MODELS.len())]),
                json!({ "conversation_id": self.conversation(rng) }),
            ),
            "recommendation" => post(
                "/programs/recommendations".into(),
                json!({ "customer_id": self.customer(rng) }),
            ),
            "knowledge_read" => {
                let topic = TOPICS[(self.topics.sample(rng) as usize - 1).min(TOPICS.len() - 1)];
                get(format!("/knowledge/{topic}"))
            }
            _ => post(
                format!("/conversations/{}/messages", self.conversation(rng)),
                json!({ "role": "user", "content": "Could you tell me more about the results?" }),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn mix_sums_to_100_and_ids_are_in_range() {
        assert_eq!(MIX.iter().map(|(_, w)| w).sum::<u32>(), 100);
        let g = Generator::new(3000, 1000, 1.0).unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        let mut first = 0;
        for _ in 0..5000 {
            let c = g.conversation(&mut rng);
            let n: u32 = c["conv-".len()..].parse().unwrap();
            assert!((1..=1000).contains(&n));
            first += u32::from(n == 1);
            let _ = g.next(&mut rng);
        }
        // Zipf s=1 over 1000: P(1) = 1/H(1000) ~ 13%.
        assert!((400..900).contains(&first), "{first}");
    }
}
