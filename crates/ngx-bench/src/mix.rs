//! The request mix: which endpoint, with which Zipf-chosen ids.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

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

/// Default share of each request kind, in percent (sums to 100). The
/// write share can be changed with [`Generator::write_percent`]; it moves
/// to or from conversation reads.
pub const MIX: &[(&str, u32)] = &[
    ("conversation_read", 41),
    ("tier_detection", 25),
    ("customer_read", 8),
    ("prediction", 10),
    ("recommendation", 6),
    ("knowledge_read", 8),
    ("message_append", 2),
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
/// conversations (`cust-00001` is the most popular). Appends also follow
/// Zipf, up to 40 per conversation. Shared by every worker.
#[derive(Debug, Clone)]
pub struct Generator {
    customers: Zipf<f64>,
    conversations: Zipf<f64>,
    topics: Zipf<f64>,
    mix: Vec<(&'static str, u32)>,
    total_weight: u32,
    /// Messages appended so far, per conversation (index = number - 1).
    appended: Arc<Vec<AtomicU32>>,
    /// Most messages appended to one conversation: a sales call ends. Without
    /// a cap, Zipf sends 13% of all appends to `conv-00001`, which grows to
    /// thousands of messages in a long run and turns every read of it into
    /// a megabyte-sized payload, unlike anything real.
    max_appends: u32,
}

impl Generator {
    /// A generator over `customers` and `conversations` seeded ids.
    pub fn new(customers: usize, conversations: usize, s: f64) -> Result<Self, String> {
        let zipf = |n: usize| Zipf::new(n.max(1) as f64, s).map_err(|e| format!("zipf: {e}"));
        Ok(Self {
            customers: zipf(customers)?,
            conversations: zipf(conversations)?,
            topics: zipf(TOPICS.len())?,
            mix: MIX.to_vec(),
            total_weight: MIX.iter().map(|(_, w)| w).sum(),
            appended: Arc::new(
                (0..conversations.max(1))
                    .map(|_| AtomicU32::new(0))
                    .collect(),
            ),
            max_appends: 40,
        })
    }

    /// A Zipf-chosen conversation that has taken fewer than the maximum
    /// appends (then counted), or `None` when the draws keep hitting full ones.
    fn conversation_for_append(&self, rng: &mut StdRng) -> Option<String> {
        for attempt in 0..16 {
            let n = if attempt < 8 {
                self.conversations.sample(rng) as usize
            } else {
                rng.random_range(1..=self.appended.len())
            };
            let slot = &self.appended[(n - 1).min(self.appended.len() - 1)];
            if slot
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                    (c < self.max_appends).then_some(c + 1)
                })
                .is_ok()
            {
                return Some(format!("conv-{n:05}"));
            }
        }
        None
    }

    /// Sets the share of message appends (0..=43 percent), taken from or
    /// given back to conversation reads.
    #[must_use]
    pub fn write_percent(mut self, percent: u32) -> Self {
        let percent = percent.min(43);
        for (kind, w) in &mut self.mix {
            match *kind {
                "message_append" => *w = percent,
                "conversation_read" => *w = 43 - percent,
                _ => {}
            }
        }
        self
    }

    /// The mix in use, percent by kind.
    pub fn mix(&self) -> &[(&'static str, u32)] {
        &self.mix
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
        let mut kind = self.mix[0].0;
        for (k, w) in &self.mix {
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
            _ => match self.conversation_for_append(rng) {
                Some(id) => post(
                    format!("/conversations/{id}/messages"),
                    json!({ "role": "user", "content": "Could you tell me more about the results?" }),
                ),
                None => self.conversation_read(rng),
            },
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
        let g = Generator::new(3000, 1000, 1.0).unwrap().write_percent(5);
        assert_eq!(g.mix().iter().map(|(_, w)| w).sum::<u32>(), 100);
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
