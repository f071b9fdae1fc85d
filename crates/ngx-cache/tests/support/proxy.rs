//! A loopback TCP proxy that can stall the connections it already carries
//! while still forwarding new ones: a model of a half-dead path (a NAT or
//! load balancer that lost a flow, a hung host behind a virtual IP), where
//! an existing connection stops answering but never errors.

use std::net::SocketAddr;

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
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let (cut, rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if *rx.borrow() {
                    continue; // dropped: closed at once
                }
                let mut rx = rx.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
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
