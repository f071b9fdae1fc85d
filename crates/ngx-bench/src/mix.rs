//! The request mix: which endpoint, with which Zipf-chosen ids.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
    /// Hashes of the cache keys the calls drawn so far read (customer,
    /// conversation, tier detection, prediction, recommendation and topic
    /// keys, as the service names them), to count first reads.
    seen: Arc<Mutex<HashSet<u64>>>,
    /// Keys read for the first time since [`Generator::take_first_reads`].
    first_reads: Arc<AtomicUsize>,
    /// Keys read since [`Generator::take_first_reads`].
    reads: Arc<AtomicUsize>,
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
            seen: Arc::default(),
            first_reads: Arc::default(),
            reads: Arc::default(),
        })
    }

    /// Notes that a call reads the cache key `key`.
    fn read(&self, key: &str) {
        let hash = xxhash_rust::xxh3::xxh3_64(key.as_bytes());
        self.reads.fetch_add(1, Ordering::Relaxed);
        let first = match self.seen.lock() {
            Ok(mut seen) => seen.insert(hash),
            Err(_) => false,
        };
        if first {
            self.first_reads.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `(first reads, reads)` of cache keys by the calls drawn since the
    /// last call, and starts counting again. A key's first read misses in
    /// a cache that holds only what was read before (a compulsory miss), so
    /// `1 - first / reads` is the best hit rate such a cache allows for the
    /// drawn sequence; entries warmed at start beat it. Prediction keys are
    /// counted per conversation and model; a prediction after an append
    /// reads a new key the count does not see, so the bound is generous.
    pub fn take_first_reads(&self) -> (usize, usize) {
        (
            self.first_reads.swap(0, Ordering::Relaxed),
            self.reads.swap(0, Ordering::Relaxed),
        )
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
        let conversation = self.conversation(rng);
        self.read(&format!("conv:{conversation}"));
        Call {
            method: "GET",
            path: format!("/conversations/{conversation}"),
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
            "tier_detection" => {
                let customer = self.customer(rng);
                let message = rng.random_range(0..TIER_MESSAGES.len());
                self.read(&format!("cust:{customer}"));
                self.read(&format!("tier:{customer}:{message}"));
                post(
                    "/tier-detection".into(),
                    json!({ "customer_id": customer, "message": TIER_MESSAGES[message] }),
                )
            }
            "customer_read" => {
                let customer = self.customer(rng);
                self.read(&format!("cust:{customer}"));
                get(format!("/customers/{customer}"))
            }
            "prediction" => {
                let model = MODELS[rng.random_range(0..MODELS.len())];
                let conversation = self.conversation(rng);
                self.read(&format!("conv:{conversation}"));
                self.read(&format!("pred:{conversation}:{model}"));
                post(
                    format!("/predictions/{model}"),
                    json!({ "conversation_id": conversation }),
                )
            }
            "recommendation" => {
                let customer = self.customer(rng);
                self.read(&format!("cust:{customer}"));
                self.read("catalog");
                self.read(&format!("prog:{customer}"));
                post(
                    "/programs/recommendations".into(),
                    json!({ "customer_id": customer }),
                )
            }
            "knowledge_read" => {
                let topic = TOPICS[(self.topics.sample(rng) as usize - 1).min(TOPICS.len() - 1)];
                self.read(&format!("know:{topic}"));
                get(format!("/knowledge/{topic}"))
            }
            _ => match self.conversation_for_append(rng) {
                Some(id) => {
                    self.read(&format!("conv:{id}"));
                    post(
                        format!("/conversations/{id}/messages"),
                        json!({ "role": "user", "content": "Could you tell me more about the results?" }),
                    )
                }
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

    #[test]
    fn first_reads_are_counted_once_per_key() {
        let g = Generator::new(10, 10, 1.0).unwrap();
        g.read("cust:cust-00001");
        g.read("cust:cust-00001");
        g.read("tier:cust-00001:0");
        assert_eq!(g.take_first_reads(), (2, 3));
        g.read("cust:cust-00001");
        assert_eq!(g.take_first_reads(), (0, 1), "seen keys stay seen");
        // Every drawn call reads at least one key.
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..100 {
            let _ = g.next(&mut rng);
        }
        let (first, reads) = g.take_first_reads();
        assert!(reads >= 100 && first <= reads, "{first} {reads}");
    }
}
