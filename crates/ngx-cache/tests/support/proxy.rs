//! A loopback TCP proxy that can stall the connections it already carries
//! while still forwarding new ones: a model of a half-dead path (a NAT or
//! load balancer that lost a flow, a hung host behind a virtual IP), where
//! an existing connection stops answering but never errors.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The proxy; stops accepting when dropped.
pub struct StallingProxy {
    addr: SocketAddr,
    epoch: watch::Sender<u64>,
    task: JoinHandle<()>,
}

impl StallingProxy {
    /// Forwards `127.0.0.1:{port of the proxy}` to `127.0.0.1:upstream`.
    pub async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let (epoch, rx) = watch::channel(0u64);
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut rx = rx.clone();
                let born = *rx.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                        return;
                    };
                    let stalled = tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => false,
                        res = rx.wait_for(|e| *e > born) => res.is_ok(),
                    };
                    if stalled {
                        // Keep both sockets open and forward nothing, for ever.
                        std::future::pending::<()>().await;
                    }
                });
            }
        });
        Self { addr, epoch, task }
    }

    /// Every connection open now stops forwarding (without closing);
    /// connections made later work normally.
    pub fn stall_existing(&self) {
        self.epoch.send_modify(|e| *e += 1);
    }

    /// `redis://127.0.0.1:{proxy port}`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }
}

impl Drop for StallingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback TCP proxy that can cut the network: [`cut`](Self::cut)
/// closes every connection it carries and closes new ones at once, so
/// nothing sent during the cut reaches Redis, which keeps its data (unlike
/// a restart); [`restore`](Self::restore) forwards new connections again.
pub struct CutProxy {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl CutProxy {
    /// Forwards `127.0.0.1:{port of the proxy}` to `127.0.0.1:upstream`.
    pub async fn start(upstream: u16) -> Self {
        Self::start_with(upstream, None).await
    }

    /// Like [`start`](Self::start), and cuts by itself just before it would
    /// forward the `nth` command (counted over every connection) whose bytes
    /// contain `needle`: the commands before it were answered, that one
    /// never reaches Redis. A deterministic "Redis lost part-way".
    pub async fn cutting_at(upstream: u16, needle: &'static [u8], nth: usize) -> Self {
        Self::start_with(upstream, Some((needle, nth))).await
    }

    async fn start_with(upstream: u16, trigger: Option<(&'static [u8], usize)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let (cut, rx) = watch::channel(false);
        let cut_by_trigger = cut.clone();
        let seen = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *rx.borrow() {
                    continue; // dropped: closed at once
                }
                let mut rx = rx.clone();
                let cut = cut_by_trigger.clone();
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                        return;
                    };
                    tokio::select! {
                        _ = forward(client, server, trigger, &seen, &cut) => {}
                        _ = rx.wait_for(|cut| *cut) => {}
                    }
                    // Both sockets close here.
                });
            }
        });
        Self { addr, cut, task }
    }

    /// Closes every connection and refuses new ones until `restore`.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }

    /// `redis://127.0.0.1:{proxy port}`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies both ways until either side closes. With a trigger, the
/// client's bytes are searched for the needle (across reads), and the
/// proxy is cut instead of forwarding the read that holds the `nth` one.
async fn forward(
    mut client: TcpStream,
    mut server: TcpStream,
    trigger: Option<(&'static [u8], usize)>,
    seen: &AtomicUsize,
    cut: &watch::Sender<bool>,
) {
    let Some((needle, nth)) = trigger else {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        return;
    };
    let (mut client_rx, mut client_tx) = client.split();
    let (mut server_rx, mut server_tx) = server.split();
    let upstream = async {
        // The previous read's last `needle.len() - 1` bytes (too few to
        // hold a needle already counted), so one split across two reads is
        // still found.
        let mut window: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_rx.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            window.extend_from_slice(&buf[..n]);
            let found = window
                .windows(needle.len())
                .filter(|w| *w == needle)
                .count();
            if found > 0 && seen.fetch_add(found, Ordering::SeqCst) + found >= nth {
                cut.send_replace(true);
                return;
            }
            let keep = window.len().saturating_sub(needle.len() - 1);
            window.drain(..keep);
            if server_tx.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let downstream = tokio::io::copy(&mut server_rx, &mut client_tx);
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}
