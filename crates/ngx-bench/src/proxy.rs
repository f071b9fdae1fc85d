//! A loopback TCP proxy that delays each direction by half a round-trip
//! time: a database across a network, for `ngx-agent bench --db-latency`.
//!
//! Each direction of each connection is a delay line: a reader thread
//! stamps every chunk with the instant it was read, and a writer thread
//! forwards it at that instant plus RTT/2. Chunks keep their order, and a
//! chunk read while earlier ones are still in flight is not held back by
//! them beyond its own deadline, so the connection is delayed, not
//! serialised: back-to-back (pipelined) messages arrive RTT/2 after they
//! were sent, as over a real link. Threads and `std::thread::sleep` give
//! sub-millisecond deadlines (the tokio timer rounds up to whole
//! milliseconds, which would double a 1 ms RTT).
//!
//! Only loopback upstreams are accepted, and the listener binds
//! `127.0.0.1`. The proxy is a bench tool: nothing in the service uses it.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Chunks buffered per direction before the reader waits (back-pressure).
const IN_FLIGHT: usize = 1024;
/// Bytes read at once.
const CHUNK: usize = 64 * 1024;

/// A running delay proxy; stops accepting when dropped (connections already
/// open run until either side closes).
#[derive(Debug)]
pub struct DelayProxy {
    addr: SocketAddr,
    rtt: Duration,
    stop: Arc<AtomicBool>,
    acceptor: Option<thread::JoinHandle<()>>,
    /// How late each chunk was forwarded, in microseconds past its due
    /// instant: the writer thread's wake-up delay. On a busy machine this
    /// adds to the RTT asked for.
    lateness: Lateness,
}

/// Lateness samples of every delay line of a proxy, in microseconds.
type Lateness = Arc<Mutex<Vec<u32>>>;

impl DelayProxy {
    /// Listens on a free `127.0.0.1` port and forwards every connection to
    /// `upstream`, delaying each direction by `rtt / 2`. Refuses an
    /// upstream that is not a loopback address.
    pub fn start(upstream: SocketAddr, rtt: Duration) -> io::Result<Self> {
        if !upstream.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("refusing upstream {upstream}: the delay proxy only forwards to loopback"),
            ));
        }
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let half = rtt / 2;
        let lateness = Lateness::default();
        let samples = lateness.clone();
        let acceptor = thread::Builder::new()
            .name("delay-proxy".into())
            .spawn(move || {
                for client in listener.incoming() {
                    if flag.load(Ordering::Acquire) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    if let Err(e) = connect(client, upstream, half, &samples) {
                        eprintln!("delay proxy: connection to {upstream}: {e}");
                    }
                }
            })?;
        Ok(Self {
            addr,
            rtt,
            stop,
            acceptor: Some(acceptor),
            lateness,
        })
    }

    /// How late chunks were forwarded since the last call (microseconds
    /// past their due instant, sorted), and forgets them.
    pub fn take_lateness(&self) -> Vec<u32> {
        let mut samples = match self.lateness.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        samples.sort_unstable();
        samples
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The round-trip time added.
    pub fn rtt(&self) -> Duration {
        self.rtt
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Opens the upstream connection and starts both delay lines.
fn connect(
    client: TcpStream,
    upstream: SocketAddr,
    half: Duration,
    lateness: &Lateness,
) -> io::Result<()> {
    let server = TcpStream::connect(upstream)?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    delay_line(
        client.try_clone()?,
        server.try_clone()?,
        half,
        lateness.clone(),
    )?;
    delay_line(server, client, half, lateness.clone())?;
    Ok(())
}

/// Forwards `from` to `to`, each chunk at the instant it was read plus
/// `delay`, in order. When `from` ends (or fails), what was read is still
/// delivered, then `to` is shut down for writing; when `to` fails, `from`
/// is shut down for reading.
fn delay_line(
    mut from: TcpStream,
    mut to: TcpStream,
    delay: Duration,
    lateness: Lateness,
) -> io::Result<()> {
    let (tx, rx) = mpsc::sync_channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    let reader_end = from.try_clone()?;
    thread::Builder::new()
        .name("delay-read".into())
        .spawn(move || {
            let mut buf = vec![0u8; CHUNK];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let due = Instant::now() + delay;
                        if tx.send((due, buf[..n].to_vec())).is_err() {
                            break;
                        }
                    }
                }
            }
        })?;
    thread::Builder::new()
        .name("delay-write".into())
        .spawn(move || {
            for (due, chunk) in rx {
                let now = Instant::now();
                if due > now {
                    thread::sleep(due - now);
                }
                let late = Instant::now().saturating_duration_since(due);
                if let Ok(mut samples) = lateness.lock() {
                    samples.push(u32::try_from(late.as_micros()).unwrap_or(u32::MAX));
                }
                if to.write_all(&chunk).is_err() {
                    let _ = reader_end.shutdown(Shutdown::Read);
                    return;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        })?;
    Ok(())
}
