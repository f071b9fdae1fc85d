//! The cluster's shape as this backend last saw it: which primary serves
//! which slots, and its replicas, parsed from `CLUSTER SLOTS`. Batches are
//! grouped by it (one pipeline per primary), `SCAN` visits its primaries,
//! the subscriber picks a live node from it and health reports it.
//!
//! redis-rs keeps its own slot map for routing and follows `MOVED`; this
//! copy only has to be close: a batch grouped on a stale view still
//! reaches the right node, key by key.

use crate::error::Error;
use crate::key::SLOTS;

use super::super::error::unexpected;

/// One node, by the address the cluster announces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Node {
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// A primary, the slot ranges it serves and its replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shard {
    pub(crate) primary: Node,
    pub(crate) replicas: Vec<Node>,
    /// Inclusive slot ranges, sorted.
    pub(crate) slots: Vec<(u16, u16)>,
}

impl Shard {
    /// How many slots this shard serves.
    pub(crate) fn slot_count(&self) -> u32 {
        self.slots
            .iter()
            .map(|(a, b)| u32::from(*b) - u32::from(*a) + 1)
            .sum()
    }

    /// A slot this shard serves, to route a command to its primary.
    pub(crate) fn any_slot(&self) -> Option<u16> {
        self.slots.first().map(|(a, _)| *a)
    }
}

/// The shards, and the shard of every slot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Topology {
    /// Sorted by primary address, so two views of one cluster compare equal.
    pub(crate) shards: Vec<Shard>,
    /// Shard index per slot; `u16::MAX` for a slot no primary serves.
    owner: Vec<u16>,
}

impl Topology {
    /// Parses a `CLUSTER SLOTS` reply. `queried` stands in for a node that
    /// announces an empty host (the node that answered).
    pub(crate) fn parse(reply: redis::Value, queried: &str) -> Result<Self, Error> {
        let redis::Value::Array(ranges) = reply else {
            return Err(unexpected("CLUSTER SLOTS: not an array"));
        };
        let mut shards: Vec<Shard> = Vec::new();
        for range in ranges {
            let redis::Value::Array(fields) = range else {
                return Err(unexpected("CLUSTER SLOTS: range is not an array"));
            };
            let mut fields = fields.into_iter();
            let (Some(start), Some(end)) = (fields.next(), fields.next()) else {
                return Err(unexpected("CLUSTER SLOTS: short range"));
            };
            let (start, end) = (slot(start)?, slot(end)?);
            let mut nodes = fields.map(|n| node(n, queried));
            let primary = nodes
                .next()
                .ok_or_else(|| unexpected("CLUSTER SLOTS: range without a primary"))??;
            let replicas = nodes.collect::<Result<Vec<_>, _>>()?;
            match shards.iter_mut().find(|s| s.primary == primary) {
                Some(shard) => {
                    shard.slots.push((start, end));
                    for r in replicas {
                        if !shard.replicas.contains(&r) {
                            shard.replicas.push(r);
                        }
                    }
                }
                None => shards.push(Shard {
                    primary,
                    replicas,
                    slots: vec![(start, end)],
                }),
            }
        }
        Ok(Self::from_shards(shards))
    }

    fn from_shards(mut shards: Vec<Shard>) -> Self {
        for s in &mut shards {
            s.slots.sort_unstable();
            s.replicas.sort_unstable();
        }
        shards.sort_unstable_by(|a, b| a.primary.cmp(&b.primary));
        let mut owner = vec![u16::MAX; usize::from(SLOTS)];
        for (i, s) in shards.iter().enumerate() {
            for &(a, b) in &s.slots {
                for slot in a..=b.min(SLOTS - 1) {
                    owner[usize::from(slot)] = i as u16;
                }
            }
        }
        Self { shards, owner }
    }

    /// The shard index serving `slot`, if any.
    pub(crate) fn shard_of(&self, slot: u16) -> Option<usize> {
        match self.owner.get(usize::from(slot)) {
            Some(&i) if i != u16::MAX => Some(usize::from(i)),
            _ => None,
        }
    }

    /// Slots no primary serves.
    pub(crate) fn uncovered(&self) -> usize {
        if self.owner.is_empty() {
            return usize::from(SLOTS);
        }
        self.owner.iter().filter(|&&i| i == u16::MAX).count()
    }

    /// Every node, primaries first.
    pub(crate) fn nodes(&self) -> Vec<Node> {
        let mut out: Vec<Node> = self.shards.iter().map(|s| s.primary.clone()).collect();
        out.extend(self.shards.iter().flat_map(|s| s.replicas.iter().cloned()));
        out
    }

    /// The primary that serves `slot`, if any.
    pub(crate) fn primary_of(&self, slot: u16) -> Option<&Node> {
        self.shard_of(slot).map(|i| &self.shards[i].primary)
    }
}

fn slot(v: redis::Value) -> Result<u16, Error> {
    match v {
        redis::Value::Int(n) if (0..i64::from(SLOTS)).contains(&n) => Ok(n as u16),
        other => Err(unexpected(format_args!(
            "CLUSTER SLOTS: bad slot {other:?}"
        ))),
    }
}

fn node(v: redis::Value, queried: &str) -> Result<Node, Error> {
    let redis::Value::Array(fields) = v else {
        return Err(unexpected("CLUSTER SLOTS: node is not an array"));
    };
    let mut fields = fields.into_iter();
    let host = match fields.next() {
        Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
        Some(redis::Value::SimpleString(s)) => s,
        _ => return Err(unexpected("CLUSTER SLOTS: node without a host")),
    };
    let port = match fields.next() {
        Some(redis::Value::Int(p)) if (1..=65535).contains(&p) => p as u16,
        _ => return Err(unexpected("CLUSTER SLOTS: node without a port")),
    };
    let host = if host.is_empty() || host == "?" {
        queried.to_owned()
    } else {
        host
    };
    Ok(Node { host, port })
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    fn node(host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::BulkString(host.as_bytes().to_vec()),
            Value::Int(port),
            Value::BulkString(b"id".to_vec()),
        ])
    }

    #[test]
    fn parses_cluster_slots() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 7000),
                node("10.0.0.4", 7003),
            ]),
            Value::Array(vec![Value::Int(10923), Value::Int(16383), node("", 7002)]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(10922),
                node("10.0.0.2", 7001),
            ]),
            Value::Array(vec![
                Value::Int(100),
                Value::Int(100),
                node("10.0.0.2", 7001),
            ]),
        ]);
        let t = Topology::parse(reply, "seed").unwrap();
        assert_eq!(t.shards.len(), 3);
        assert_eq!(t.uncovered(), 0);
        assert_eq!(t.primary_of(0).unwrap().to_string(), "10.0.0.1:7000");
        assert_eq!(t.primary_of(100).unwrap().to_string(), "10.0.0.2:7001");
        assert_eq!(t.primary_of(16383).unwrap().to_string(), "seed:7002");
        let first = t.shard_of(0).unwrap();
        assert_eq!(t.shards[first].replicas.len(), 1);
        assert_eq!(t.shards[first].slot_count(), 5461);
        assert_eq!(t.nodes().len(), 4);
        assert!(Topology::parse(Value::Int(1), "x").is_err());
        assert_eq!(Topology::default().uncovered(), usize::from(SLOTS));
    }
}
