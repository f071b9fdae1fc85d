//! The invalidation channel and its wire format: messages on a Redis
//! pub/sub channel that keep every instance's L1 coherent.
//!
//! Every `set`, `delete`, tag invalidation and namespace clear publishes one
//! line on `{namespace}:__invalidation`:
//!
//! ```text
//! v1|{origin}|{seq}|{sent_unix_ms}|{kind}|{payload}
//! ```
//!
//! `origin` identifies the sending instance (its own messages are ignored),
//! `seq` increases by one per message of that origin, so a receiver detects a
//! gap and flushes its L1. Sequence numbers are assigned and sent by one
//! publisher task per instance, in batches that are each acknowledged before
//! the next is sent: the pool spreads commands over several connections, so
//! publishing from each caller would deliver messages out of order, and every
//! reordering would look like a gap (and flush L1). `kind` is `k` (payload: the key), `t` (payload:
//! `{version}|{tag}`), `c` (namespace cleared) or `h` (a heartbeat, payload:
//! `{lost_ms}`). The send time gives the invalidation lag.
//!
//! A message that could not be published leaves a gap only the next message
//! of its origin reveals. So every instance also sends a heartbeat every
//! [`HEARTBEAT`]: it carries the sequence number of the last message
//! numbered (without taking a new one), so a receiver sees the gap within a
//! heartbeat, and the time the origin last failed to publish (`lost_ms`,
//! sender clock, 0 for never). A receiver that meets an origin for the first
//! time has no sequence to compare with; it treats a loss later than
//! [`SKEW`] before its own subscription as missed. Either way it flushes
//! L1. Instances that do not know `h` ignore it.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use crate::stats::LagPercentiles;
use crate::value::envelope::now_ms;

/// What a message invalidates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Invalidation {
    Key(String),
    Tag {
        tag: String,
        version: u64,
    },
    Clear,
    /// Not an invalidation: the origin's heartbeat, with the time it last
    /// failed to publish (unix ms, 0 for never).
    Heartbeat {
        lost_ms: u64,
    },
}

/// How often every instance sends its heartbeat.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(1);

/// Clock skew allowed between instances when judging the losses of an
/// origin met for the first time.
const SKEW: Duration = Duration::from_secs(5);

/// What a receiver knows of one origin.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// The highest sequence number received.
    seq: u64,
    /// The latest loss of the origin already accounted for (sender clock).
    lost_ms: u64,
}

/// A parsed message from another instance.
#[derive(Debug, PartialEq)]
pub(crate) struct Received {
    pub(crate) origin: u64,
    pub(crate) seq: u64,
    pub(crate) sent_ms: u64,
    pub(crate) what: Invalidation,
}

/// What the receiver should do with a message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Our own message: ignore it.
    Own,
    /// Apply it.
    Apply,
    /// Apply it, and flush L1 too: messages from this origin were missed.
    Gap,
}

/// The invalidation channel of one instance: its name, the sender identity
/// and sequence numbers, what was seen from other instances, lag samples,
/// and the outbox of the publisher task.
#[derive(Debug)]
pub(crate) struct Channel {
    pub(crate) name: String,
    origin: u64,
    seq: AtomicU64,
    /// What was seen per origin since the subscription began.
    seen: Mutex<HashMap<u64, Seen>>,
    /// When the current subscription began (unix ms).
    listening_since_ms: AtomicU64,
    /// When this instance last failed to publish (unix ms, 0 for never).
    lost_ms: AtomicU64,
    /// The most recent lag samples, in milliseconds.
    lag: Mutex<VecDeque<f64>>,
    /// The subscription is up; while false, L1 serves no fresh hits.
    pub(crate) subscribed: AtomicBool,
    /// Messages for the publisher task, which numbers and sends them in order.
    outbox: mpsc::UnboundedSender<Outgoing>,
    /// The publisher task's end of `outbox`, until the task takes it.
    inbox: Mutex<Option<mpsc::UnboundedReceiver<Outgoing>>>,
    /// Set once the publisher task runs; before that, `send` is unavailable.
    publishing: AtomicBool,
}

/// One message waiting for the publisher task; `done` learns whether it
/// reached Redis.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) what: Invalidation,
    pub(crate) done: oneshot::Sender<bool>,
}

const LAG_SAMPLES: usize = 1024;

impl Channel {
    pub(crate) fn new(namespace: &str) -> Self {
        let (outbox, inbox) = mpsc::unbounded_channel();
        Self {
            outbox,
            inbox: Mutex::new(Some(inbox)),
            publishing: AtomicBool::new(false),
            name: crate::key::channel_name(namespace),
            origin: rand::random::<u64>() | 1,
            seq: AtomicU64::new(0),
            seen: Mutex::new(HashMap::new()),
            listening_since_ms: AtomicU64::new(now_ms()),
            lost_ms: AtomicU64::new(0),
            lag: Mutex::new(VecDeque::with_capacity(LAG_SAMPLES)),
            subscribed: AtomicBool::new(false),
        }
    }

    /// Takes the publisher task's receiving end (once).
    pub(crate) fn take_inbox(&self) -> Option<mpsc::UnboundedReceiver<Outgoing>> {
        let inbox = self.inbox.lock().take();
        if inbox.is_some() {
            self.publishing.store(true, Ordering::Release);
        }
        inbox
    }

    /// Queues `what` for the publisher task; gives it back when no task runs.
    pub(crate) fn send(&self, what: Invalidation) -> Result<oneshot::Receiver<bool>, Invalidation> {
        if !self.publishing.load(Ordering::Acquire) {
            return Err(what);
        }
        let (done, sent) = oneshot::channel();
        match self.outbox.send(Outgoing { what, done }) {
            Ok(()) => Ok(sent),
            Err(e) => Err(e.0.what),
        }
    }

    pub(crate) fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    /// Records that messages of this instance could not be published.
    pub(crate) fn lost(&self) {
        self.lost_ms.store(now_ms(), Ordering::Release);
    }

    /// This instance's heartbeat.
    pub(crate) fn heartbeat(&self) -> Invalidation {
        Invalidation::Heartbeat {
            lost_ms: self.lost_ms.load(Ordering::Acquire),
        }
    }

    /// Formats the next message of this instance. A heartbeat repeats the
    /// last sequence number instead of taking a new one.
    pub(crate) fn encode(&self, what: &Invalidation) -> String {
        let seq = match what {
            Invalidation::Heartbeat { .. } => self.seq.load(Ordering::Relaxed),
            _ => self.seq.fetch_add(1, Ordering::Relaxed) + 1,
        };
        let (kind, payload) = match what {
            Invalidation::Key(k) => ("k", k.clone()),
            Invalidation::Tag { tag, version } => ("t", format!("{version}|{tag}")),
            Invalidation::Clear => ("c", String::new()),
            Invalidation::Heartbeat { lost_ms } => ("h", lost_ms.to_string()),
        };
        format!("v1|{}|{seq}|{}|{kind}|{payload}", self.origin, now_ms())
    }

    /// Parses a message; `None` for anything malformed.
    pub(crate) fn parse(text: &str) -> Option<Received> {
        let mut parts = text.splitn(6, '|');
        if parts.next()? != "v1" {
            return None;
        }
        let origin = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        let sent_ms = parts.next()?.parse().ok()?;
        let kind = parts.next()?;
        let payload = parts.next()?;
        let what = match kind {
            "k" if !payload.is_empty() => Invalidation::Key(payload.to_owned()),
            "t" => {
                let (version, tag) = payload.split_once('|')?;
                Invalidation::Tag {
                    tag: tag.to_owned(),
                    version: version.parse().ok()?,
                }
            }
            "c" => Invalidation::Clear,
            "h" => Invalidation::Heartbeat {
                lost_ms: payload.parse().ok()?,
            },
            _ => return None,
        };
        Some(Received {
            origin,
            seq,
            sent_ms,
            what,
        })
    }

    /// Checks origin, sequence and losses, and records the lag.
    pub(crate) fn judge(&self, msg: &Received) -> Verdict {
        if msg.origin == self.origin {
            return Verdict::Own;
        }
        let heartbeat = match msg.what {
            Invalidation::Heartbeat { lost_ms } => Some(lost_ms),
            _ => None,
        };
        if heartbeat.is_none() {
            self.record_lag(msg.sent_ms);
        }
        let floor = self
            .listening_since_ms
            .load(Ordering::Acquire)
            .saturating_sub(SKEW.as_millis() as u64);
        let mut seen = self.seen.lock();
        let (seen, mut gap) = match seen.entry(msg.origin) {
            Entry::Occupied(e) => {
                let s = e.into_mut();
                // A heartbeat repeats the last number; a message takes the next.
                let expected = s.seq.saturating_add(u64::from(heartbeat.is_none()));
                let gap = msg.seq > expected;
                if gap {
                    // The loss happened before this message was sent: a
                    // heartbeat reporting it needs no second flush.
                    s.lost_ms = s.lost_ms.max(msg.sent_ms);
                }
                s.seq = s.seq.max(msg.seq);
                (s, gap)
            }
            Entry::Vacant(v) => (
                v.insert(Seen {
                    seq: msg.seq,
                    lost_ms: floor,
                }),
                false,
            ),
        };
        if let Some(lost_ms) = heartbeat
            && lost_ms > seen.lost_ms
        {
            seen.lost_ms = lost_ms;
            gap = true;
        }
        if gap { Verdict::Gap } else { Verdict::Apply }
    }

    fn record_lag(&self, sent_ms: u64) {
        let lag_ms = now_ms().saturating_sub(sent_ms);
        crate::telemetry::invalidation_lag(std::time::Duration::from_millis(lag_ms));
        let mut samples = self.lag.lock();
        if samples.len() == LAG_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(lag_ms as f64);
    }

    /// Forgets what was seen (after a resubscribe every origin restarts)
    /// and notes when the new subscription began.
    pub(crate) fn reset_seen(&self) {
        self.seen.lock().clear();
        self.listening_since_ms.store(now_ms(), Ordering::Release);
    }

    /// p50 and p99 of the recent lag samples, in milliseconds.
    pub(crate) fn lag_percentiles(&self) -> LagPercentiles {
        let mut samples: Vec<f64> = self.lag.lock().iter().copied().collect();
        if samples.is_empty() {
            return LagPercentiles::default();
        }
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        LagPercentiles {
            p50: at(0.5),
            p99: at(0.99),
            samples: samples.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_kind() {
        let channel = Channel::new("ngx");
        for what in [
            Invalidation::Key("conv:v1:a|b".into()),
            Invalidation::Tag {
                tag: "customer:1".into(),
                version: 7,
            },
            Invalidation::Clear,
            Invalidation::Heartbeat { lost_ms: 12 },
        ] {
            let msg = Channel::parse(&channel.encode(&what)).unwrap();
            assert_eq!(msg.what, what);
        }
        assert!(Channel::parse("garbage").is_none());
        assert!(Channel::parse("v1|1|2|3|k|").is_none());
        assert!(Channel::parse("v1|x|2|3|c|").is_none());
    }

    #[test]
    fn own_messages_and_gaps() {
        let a = Channel::new("ngx");
        let b = Channel::new("ngx");
        let own = Channel::parse(&b.encode(&Invalidation::Clear)).unwrap();
        assert_eq!(b.judge(&own), Verdict::Own);
        let m1 = Channel::parse(&a.encode(&Invalidation::Clear)).unwrap();
        let m2 = Channel::parse(&a.encode(&Invalidation::Clear)).unwrap();
        let _m3 = a.encode(&Invalidation::Clear); // lost
        let m4 = Channel::parse(&a.encode(&Invalidation::Clear)).unwrap();
        assert_eq!(b.judge(&m1), Verdict::Apply);
        assert_eq!(b.judge(&m2), Verdict::Apply);
        assert_eq!(b.judge(&m4), Verdict::Gap);
        assert_eq!(b.lag_percentiles().samples, 3);
    }

    #[test]
    fn a_late_message_is_not_a_gap() {
        let a = Channel::new("ngx");
        let b = Channel::new("ngx");
        let m: Vec<_> = (0..4)
            .map(|_| Channel::parse(&a.encode(&Invalidation::Clear)).unwrap())
            .collect();
        assert_eq!(b.judge(&m[0]), Verdict::Apply);
        assert_eq!(b.judge(&m[1]), Verdict::Apply);
        assert_eq!(b.judge(&m[0]), Verdict::Apply); // duplicate / late
        assert_eq!(b.judge(&m[2]), Verdict::Apply);
        assert_eq!(b.judge(&m[3]), Verdict::Apply);
    }

    #[test]
    fn heartbeats_reveal_losses() {
        let a = Channel::new("ngx");
        let b = Channel::new("ngx");
        let hb = |c: &Channel| Channel::parse(&c.encode(&c.heartbeat())).unwrap();
        let m1 = Channel::parse(&a.encode(&Invalidation::Clear)).unwrap();
        assert_eq!(b.judge(&m1), Verdict::Apply);
        assert_eq!(b.judge(&hb(&a)), Verdict::Apply);
        let _lost = a.encode(&Invalidation::Clear);
        a.lost();
        assert_eq!(b.judge(&hb(&a)), Verdict::Gap);
        assert_eq!(b.judge(&hb(&a)), Verdict::Apply);
        assert_eq!(
            b.lag_percentiles().samples,
            1,
            "heartbeats are not lag samples"
        );
        // Met for the first time, after a recent loss.
        let c = Channel::new("ngx");
        c.lost();
        assert_eq!(b.judge(&hb(&c)), Verdict::Gap);
        // A gap seen in the sequence is not flushed twice.
        let d = Channel::new("ngx");
        let d1 = Channel::parse(&d.encode(&Invalidation::Clear)).unwrap();
        assert_eq!(b.judge(&d1), Verdict::Apply);
        let _lost = d.encode(&Invalidation::Clear);
        d.lost();
        let d3 = Channel::parse(&d.encode(&Invalidation::Clear)).unwrap();
        assert_eq!(b.judge(&d3), Verdict::Gap);
        assert_eq!(b.judge(&hb(&d)), Verdict::Apply);
    }
}
