//! The two tasks of the invalidation channel: the publisher, which numbers
//! and sends this instance's messages in order (and its heartbeat), and the
//! subscriber, which
//! applies the other instances' messages and flushes L1 whenever the
//! subscription was lost. Both stop when the cache is dropped.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::message::{Channel, HEARTBEAT};
use super::state::Coherence;
use crate::breaker::BreakerState;
use crate::error::log_skipped;
use crate::telemetry::Count;
use crate::tier::remote::Remote;

/// Most messages sent in one pipelined batch.
const PUBLISH_BATCH: usize = 256;

// The publisher numbers and publishes this instance's invalidations in
// order: one pipelined batch at a time, each acknowledged by Redis before
// the next is sent, so receivers see sequence numbers in order. It holds
// the channel and the Redis tier it publishes through.
impl Coherence {
    /// Starts the publisher task (see the module documentation). Between
    /// batches it sends this instance's heartbeat every [`HEARTBEAT`]. A
    /// batch that fails is pending: retried by the retry task.
    pub(super) fn spawn_publisher(self: &Arc<Self>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let coherence = Arc::clone(self);
        let Some(channel) = coherence.channel.clone() else {
            return;
        };
        let Some(mut inbox) = channel.take_inbox() else {
            return;
        };
        let mut stopped = coherence.stopped.clone();
        handle.spawn(async move {
            let remote: &Remote = &coherence.remote;
            let mut batch = Vec::with_capacity(PUBLISH_BATCH);
            let mut heartbeat = tokio::time::interval(HEARTBEAT);
            heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            heartbeat.tick().await;
            loop {
                let received = tokio::select! {
                    n = inbox.recv_many(&mut batch, PUBLISH_BATCH) => n,
                    _ = heartbeat.tick() => {
                        coherence.send_heartbeat(&channel).await;
                        continue;
                    }
                    _ = stopped.changed() => return,
                };
                if received == 0 {
                    return;
                }
                let messages: Vec<String> =
                    batch.iter().map(|out| channel.encode(&out.what)).collect();
                let ok = match remote.call(|b| b.publish(&channel.name, &messages)).await {
                    Ok(()) => {
                        remote
                            .counters()
                            .inc(Count::InvalidationsSent, batch.len() as u64);
                        true
                    }
                    Err(e) => {
                        log_skipped("publish invalidation", &e);
                        // The numbers are spent: receivers see the gap at
                        // the next message or heartbeat. The messages are
                        // pending and sent again.
                        channel.lost();
                        for out in &batch {
                            coherence.pending.add_publish(out.what.clone());
                        }
                        coherence.ensure_retry();
                        false
                    }
                };
                for out in batch.drain(..) {
                    let _ = out.done.send(ok);
                }
            }
        });
    }

    /// Publishes this instance's heartbeat, unless the breaker is open; a
    /// failure is only logged (the next one carries the same news).
    async fn send_heartbeat(&self, channel: &Channel) {
        let Some(backend) = self.remote.backend() else {
            return;
        };
        if self.remote.breaker().state() != BreakerState::Closed {
            return;
        }
        let message = [channel.encode(&channel.heartbeat())];
        if let Err(e) = backend.publish(&channel.name, &message).await {
            tracing::debug!(error = %e, "heartbeat not published");
        }
    }

    /// Starts the task that keeps a subscription to the invalidation
    /// channel, applying messages, and re-subscribing (with L1 flushed)
    /// after a loss. The task holds this component.
    pub(super) fn spawn_subscriber(self: &Arc<Self>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let coherence = Arc::clone(self);
        handle.spawn(async move {
            let mut stopped = coherence.stopped.clone();
            let Some(channel) = coherence.channel.clone() else {
                return;
            };
            let Some(backend) = coherence.remote.backend() else {
                return;
            };
            let timeout = coherence.connect_timeout;
            let mut backoff = Duration::from_millis(50);
            let mut first = true;
            loop {
                let subscription = tokio::select! {
                    s = backend.subscribe(&channel.name, timeout) => s,
                    _ = stopped.changed() => return,
                };
                if let Some(mut subscription) = subscription {
                    // Anything published while we were away was missed,
                    // and so was anything published before the first
                    // subscription: what L1 and the tag versions learnt
                    // until now is not trusted.
                    channel.reset_seen();
                    if first {
                        coherence.reset();
                    } else {
                        coherence.flush_l1();
                        coherence.counters().inc(Count::Resubscribes, 1);
                        tracing::info!("invalidation channel subscribed again");
                    }
                    // Redis answers: whatever opened the breaker is over.
                    coherence.remote.breaker().close();
                    channel.subscribed.store(true, Ordering::Release);
                    first = false;
                    backoff = Duration::from_millis(50);
                    let mut ping = tokio::time::interval(Duration::from_secs(5));
                    ping.tick().await;
                    loop {
                        tokio::select! {
                            message = subscription.recv() => {
                                let Some(payload) = message else { break };
                                if let Ok(text) = std::str::from_utf8(&payload) {
                                    coherence.apply(text);
                                }
                            }
                            _ = ping.tick() => {
                                if !subscription.ping(timeout).await {
                                    break;
                                }
                            }
                            _ = stopped.changed() => return,
                        }
                    }
                    tracing::warn!("invalidation channel lost, flushing L1 and re-subscribing");
                    channel.subscribed.store(false, Ordering::Release);
                    coherence.flush_l1();
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stopped.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::message::Channel;

    #[test]
    fn channel_is_named_after_the_namespace() {
        assert_eq!(Channel::new("ngx").name, "ngx:__invalidation");
    }
}
